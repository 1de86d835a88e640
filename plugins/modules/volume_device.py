#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: volume_device
short_description: Find where the host it runs on can read an attached volume's bytes
version_added: 0.2.0
description:
  - Runs on the host that will read the volume (a copy host, or a storage host) and returns the path
    to give M(cloudshift.migrate.volume_stream_to_image).
  - File backends (NFS and the like, whose attachment C(connection_info) has C(export) and C(name))
    give the volume's file under the export, read storage-side; O(export_map) says where this host
    mounts each export. A file stored as qcow2 (a volume with snapshots on such a backend) is refused -
    read a volume made from a snapshot instead.
  - Other backends give the device of the copy host where the volume is attached, found in
    C(/dev/disk/by-id) by the volume id (virtio and SCSI serials carry its first 20 characters),
    waiting up to O(wait) seconds for it to appear.
  - Changes nothing; check mode does the same.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  volume:
    description:
      - Id of the volume.
    type: str
    required: true
  server:
    description:
      - Id of the server it is attached to (the copy host, or the migrated server itself while stopped).
        Without it, its first attachment.
    type: str
  export_map:
    description:
      - Export (as in C(connection_info), for example C(10.0.0.5:/srv/cinder)) to the directory where
        this host has it mounted. Without an entry, the export's own path is used.
    type: dict
    default: {}
  wait:
    description:
      - Seconds to wait for a device to appear after an attach.
    type: int
    default: 60
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Find the copy of web01's root volume on the copy host
  cloudshift.migrate.volume_device:
    cloud: old-provider
    volume: 5f0c8a2e-0d7c-4b44-9a57-3c5e1f4d2a10
    server: "{{ copy_host_id }}"
    export_map:
      "10.0.0.5:/srv/cinder": /mnt/cinder
  delegate_to: copy-host
  register: found

- name: Stream it
  cloudshift.migrate.volume_stream_to_image:
    cloud: new-provider
    path: "{{ found.path }}"
    name: web01-root
  delegate_to: copy-host
"""

RETURN = r"""
actions:
  description: Always empty; the module changes nothing.
  returned: always
  type: list
  elements: str
ledger_entries:
  description: Always empty; the module records nothing.
  returned: always
  type: list
  elements: dict
path:
  description: The file or block device to read.
  returned: success
  type: str
  sample: /dev/disk/by-id/virtio-5f0c8a2e-0d7c-4b44-9
how:
  description: V(storage) (a file under the backend's export) or V(device) (attached to this host).
  returned: success
  type: str
connection:
  description: The keys of the attachment's C(connection_info) that locate the bytes (never secrets).
  returned: success
  type: dict
"""

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.instance import locate_volume
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule


class VolumeDevice(OpenStackMigrateModule):
    argument_spec = dict(
        volume=dict(type="str", required=True),
        server=dict(type="str"),
        export_map=dict(type="dict", default={}),
        wait=dict(type="int", default=60),
    )

    def run(self):
        if self.params["wait"] < 0:
            raise MigrateError("wait must be >= 0")
        path, how, connection = locate_volume(
            self.conn, self.params["volume"], self.params["server"], self.params["export_map"],
            wait=self.params["wait"])
        return dict(path=path, how=how, connection=connection)


def main():
    VolumeDevice.main()


if __name__ == "__main__":
    main()
