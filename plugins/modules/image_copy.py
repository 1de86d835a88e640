#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: image_copy
short_description: Copy an image (or a fresh snapshot of a server) from one cloud's Glance to another's
version_added: 0.1.0
description:
  - Streams the image data from the source Glance straight into a new image in the destination Glance,
    with no local copy and constant memory, and verifies it - the sha512 of what was read equals the
    source image's C(os_hash_value), and the destination stored the same sha512.
  - With O(server), first snapshots the server (Nova C(createImage)) - how the root disk of an
    ephemeral server leaves its cloud - and waits for the snapshot. The snapshot is tagged with the
    server's id and reused by a re-run; remove it in the cleanup phase (it is in the ledger).
  - Idempotent - a verified image with the same content and name in the destination means no change.
    An unfinished copy from a crashed run is removed first. An image of the same name with other
    content is an error unless O(replace=true). On failure the partial copy is deleted.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  source_cloud:
    description:
      - The source cloud - a clouds.yaml name or a dict of connection settings (as O(cloud)).
    type: raw
    required: true
  image:
    description:
      - Name or id of the image in the source cloud. Exactly one of O(image) and O(server).
    type: str
  server:
    description:
      - Name or id of a server in the source cloud to snapshot and copy.
    type: str
  snapshot_name:
    description:
      - Name of the snapshot of O(server). Default C(<server name>-cloudshift-snapshot).
    type: str
  name:
    description:
      - Name of the image in the destination cloud.
    type: str
    required: true
  disk_format:
    description:
      - Disk format of the copy. Default the source's.
    type: str
  container_format:
    description:
      - Container format of the copy. Default the source's.
    type: str
  properties:
    description:
      - Extra properties of the copy (not the module's own C(cloudshift_*) ones).
    type: dict
    default: {}
  replace:
    description:
      - Replace an image of the same name with other content.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the snapshot and for the copy to become active.
    type: int
    default: 1800
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Move the root disk of an ephemeral server
  cloudshift.migrate.image_copy:
    source_cloud: old-provider
    server: cache01
    cloud: new-provider
    name: cache01-root
    migration_id: cache01-2026-12

- name: Copy a base image between clouds
  cloudshift.migrate.image_copy:
    source_cloud: old-provider
    image: debian-12
    cloud: new-provider
    name: debian-12
"""

RETURN = r"""
actions:
  description: What the module did (in check mode, would do).
  returned: always
  type: list
  elements: str
  sample: ["snapshot server cache01 (4d1c...) as image cache01-cloudshift-snapshot in the source cloud"]
image:
  description: The verified copy in the destination (null in check mode when it would be created).
  returned: always
  type: dict
source_image:
  description: The image that was copied (the snapshot with O(server)).
  returned: always
  type: dict
ledger_entries:
  description: Entries for the snapshot and the copy.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.image_copy import ImageCopier
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import (
    OpenStackMigrateModule, connection_kwargs, sdk)


class ImageCopy(OpenStackMigrateModule):
    argument_spec = dict(
        source_cloud=dict(type="raw", required=True),
        image=dict(type="str"),
        server=dict(type="str"),
        snapshot_name=dict(type="str"),
        name=dict(type="str", required=True),
        disk_format=dict(type="str"),
        container_format=dict(type="str"),
        properties=dict(type="dict", default={}),
        replace=dict(type="bool", default=False),
        timeout=dict(type="int", default=1800),
    )
    module_kwargs = dict(mutually_exclusive=[("image", "server")], required_one_of=[("image", "server")])

    nested_secrets = ("cloud", "source_cloud")

    def run(self):
        params = self.params
        own = [key for key in params["properties"] if key.startswith("cloudshift_")]
        if own:
            raise MigrateError("properties may not set the module's own %s" % ", ".join(sorted(own)))
        if params["timeout"] <= 0:
            raise MigrateError("timeout must be > 0")
        source = sdk().connect(**connection_kwargs({"cloud": params["source_cloud"]}))
        source.authorize()
        return ImageCopier(self, source, self.conn, params).run()


def main():
    ImageCopy.main()


if __name__ == "__main__":
    main()
