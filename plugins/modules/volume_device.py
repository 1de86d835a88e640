#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: volume_device
short_description: Find where the host it runs on can read an attached volume's bytes
version_added: 0.1.0
description:
  - Runs on the host that will read the volume (a copy host, or a storage host) and returns the path
    to give M(cloudshift.migrate.volume_stream_to_image).
  - File backends (NFS and the like, whose attachment C(connection_info) has C(export) and C(name))
    give the volume's file under the export, read storage-side; O(export_map) says where this host
    mounts each export.
  - With O(storage_attach), a volume attached nowhere (a copy made for the migration) is attached to this host
    through Cinder's attachment API, read-only and without Nova, so that the backend says where its bytes are
    (file backends only). The attachment is returned (RV(attachment_id)) and recorded in the ledger;
    O(release) removes it once the bytes are read. A re-run reuses an attachment an interrupted run left.
  - A file stored as qcow2 (a volume with snapshots on such a backend) is refused - read a volume made from a
    snapshot instead.
  - Other backends give the device of the copy host where the volume is attached, found in
    C(/dev/disk/by-id) by the volume id (virtio and SCSI serials carry its first 20 characters),
    waiting up to O(device_wait) seconds for it to appear.
  - Changes nothing, but for O(storage_attach) and O(release); check mode returns the plan.
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
  device_wait:
    description:
      - Seconds to wait for a device to appear after an attach.
    type: int
    default: 60
  storage_attach:
    description:
      - When the volume is attached nowhere, attach it to this host storage-side (Cinder's attachment API, read-only,
        no Nova) to learn where its file is. File backends (NFS and the like) only.
    type: bool
    default: false
  connector_host:
    description: The host name given to Cinder for O(storage_attach). Default - this host's name.
    type: str
  release:
    description:
      - Remove this storage-side attachment (an id from RV(attachment_id)) instead of locating anything. Gone
        already is no error.
    type: str
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
  description: The storage-side attachment made or removed (empty when only locating).
  returned: always
  type: list
  elements: str
ledger_entries:
  description: The storage-side attachment (type C(volume_attachment)), when one was made or removed.
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
attachment_id:
  description: With O(storage_attach), the storage-side attachment made (or reused); give it to O(release).
  returned: when a storage-side attachment was made
  type: str
"""

import socket

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

from ansible_collections.cloudshift.migrate.plugins.module_utils.instance import (
    file_path, locate_volume, storage_attach, storage_release)
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule


class VolumeDevice(OpenStackMigrateModule):
    argument_spec = dict(
        volume=dict(type="str", required=True),
        server=dict(type="str"),
        export_map=dict(type="dict", default={}),
        device_wait=dict(type="int", default=60),
        storage_attach=dict(type="bool", default=False),
        connector_host=dict(type="str"),
        release=dict(type="str"),
    )

    def run(self):
        p = self.params
        if p["device_wait"] < 0:
            raise MigrateError("device_wait must be >= 0")
        if p.get("release"):
            if self.plan("remove the storage-side attachment %s of volume %s" % (p["release"], p["volume"])):
                if not storage_release(self.conn, p["release"]):
                    self.actions.pop()
                    self.changed = False
                    return dict(released=False)
                self.record("volume_attachment", p["volume"], destination_id=p["release"], phase="transfer",
                            status="cleaned", data=dict(temporary=True))
            return dict(released=True)
        if p["storage_attach"] and not p.get("server"):
            volume = self.conn.block_storage.get_volume(p["volume"])
            if not volume.attachments:
                return self.attach_storage_side(volume)
        path, how, connection = locate_volume(self.conn, p["volume"], p["server"], p["export_map"], wait=p["device_wait"])
        return dict(path=path, how=how, connection=connection)

    def attach_storage_side(self, volume):
        p = self.params
        host = p.get("connector_host") or socket.gethostname()
        if not self.plan("attach volume %s to %s storage-side (read-only, through Cinder)" % (volume.id, host)):
            return dict(path=None, how="storage", connection={})
        attachment_id, connection = storage_attach(self.conn, volume.id, host)
        self.record("volume_attachment", volume.id, destination_id=attachment_id, phase="transfer", status="done",
                    data=dict(temporary=True, host=host))
        if not (connection.get("export") and connection.get("name")):
            storage_release(self.conn, attachment_id)
            raise MigrateError("volume %s is on a %s backend: only file backends (NFS ...) are read storage-side; "
                               "attach it to a copy host instead" % (volume.id, connection.get("driver_volume_type")))
        path = file_path(volume.id, connection, p["export_map"])
        return dict(path=path, how="storage", connection=connection, attachment_id=attachment_id)


def main():
    VolumeDevice.main()


if __name__ == "__main__":
    main()
