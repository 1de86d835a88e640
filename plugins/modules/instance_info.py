#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: instance_info
short_description: Gather everything a server is made of, for its migration, in one call
version_added: 0.1.0
description:
  - Reads a server of an OpenStack cloud and returns a manifest - its flavor (as embedded in the
    server), image, keypair with its public key, security groups with their rules, ports with networks,
    subnets, fixed and floating IPs, and its volumes (boot or data, C(delete_on_termination), and
    where their bytes are, from the attachment's C(connection_info)).
  - Lists the problems that stop a migration (server in C(ERROR) or busy, a volume attached to another
    server too, a keypair the user cannot read) and fails on them before anything changes unless
    O(fail_on_problems=false).
  - Changes nothing; in check mode it does the same. Returns C(actions) (always empty) like every
    module of the collection, and records the server in the ledger (phase C(gather)).
  - C(connection_info) may hold secrets (CHAP passwords, keyrings); only the keys that locate the bytes
    are returned.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  server:
    description:
      - Name or id of the server. A name that several servers share is refused; give the id.
    type: str
    required: true
  allow_status:
    description:
      - Server statuses that can be migrated.
    type: list
    elements: str
    default: [ACTIVE, SHUTOFF, STOPPED, PAUSED, SUSPENDED]
  fail_on_problems:
    description:
      - Fail when the manifest lists problems. With V(false) they are returned in RV(instance.problems).
    type: bool
    default: true
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Read web01 and everything it needs
  cloudshift.migrate.instance_info:
    cloud: old-provider
    server: web01
    migration_id: web01-2026-12
  register: web01

- name: Show its volumes and IPs
  ansible.builtin.debug:
    msg: "{{ web01.instance.volumes | map(attribute='id') }} {{ web01.instance.addresses }}"
"""

RETURN = r"""
actions:
  description: Always empty; the module changes nothing.
  returned: always
  type: list
  elements: str
instance:
  description: The manifest of the server.
  returned: success
  type: dict
  contains:
    id:
      description: The server's id.
      type: str
    name:
      description: The server's name.
      type: str
    status:
      description: The server's status.
      type: str
    boot_from_volume:
      description: Whether the server boots from a volume (else from an image, on an ephemeral disk).
      type: bool
    flavor:
      description: The flavor as embedded in the server (name, vcpus, ram, disk, ephemeral, swap, extra_specs).
      type: dict
    image:
      description: The image of an image-booted server (id, name, disk_format, min_disk, size); null otherwise.
      type: dict
    keypair:
      description: Name, public key and type of the server's keypair; null without one.
      type: dict
    volumes:
      description:
        - Attached volumes sorted by device; each with id, name, size, volume_type, bootable, device,
          delete_on_termination, status, boot (the root volume), attachment_id, image_metadata and
          connection (the keys of C(connection_info) that locate its bytes).
      type: list
      elements: dict
    ports:
      description: Ports with network_id, network_name, mac_address, fixed_ips (subnet, cidr, address), floating_ips, security_group_ids.
      type: list
      elements: dict
    security_groups:
      description: Security groups of the ports, with rules (remote groups by name).
      type: list
      elements: dict
    addresses:
      description: All fixed and floating IPs of the server.
      type: list
      elements: str
    problems:
      description: What stops the migration (empty when it can go ahead).
      type: list
      elements: str
  sample:
    id: 2f1c7c53-5c55-4d0a-9f5e-0c1b7b2e9c11
    name: web01
    boot_from_volume: true
    addresses: [10.0.0.12]
    problems: []
ledger_entries:
  description: The ledger entry of the server (phase C(gather)).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.instance import MIGRATABLE_STATUSES, gather
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule


class InstanceInfo(OpenStackMigrateModule):
    argument_spec = dict(
        server=dict(type="str", required=True),
        allow_status=dict(type="list", elements="str", default=list(MIGRATABLE_STATUSES)),
        fail_on_problems=dict(type="bool", default=True),
    )

    def run(self):
        if not self.params["server"].strip():
            raise MigrateError("server must not be empty")
        manifest = gather(self.conn, self.params["server"], tuple(self.params["allow_status"]))
        self.record(
            "gather", manifest["id"], phase="gather", status="done",
            data=dict(name=manifest["name"],
                      boot_from_volume=manifest["boot_from_volume"],
                      flavor=manifest["flavor"]["name"], addresses=manifest["addresses"],
                      volumes=[v["id"] for v in manifest["volumes"]]))
        if manifest["problems"] and self.params["fail_on_problems"]:
            raise MigrateError("server %s cannot be migrated: %s" % (
                manifest["name"], "; ".join(manifest["problems"])), instance=manifest)
        return dict(instance=manifest)


def main():
    InstanceInfo.main()


if __name__ == "__main__":
    main()
