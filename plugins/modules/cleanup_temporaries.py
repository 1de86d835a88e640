#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cleanup_temporaries
short_description: Remove a migration's temporary resources of one cloud, all at once, from its ledger entries
version_added: 0.1.0
description:
  - Takes the ledger entries of the temporary resources a migration made in one cloud - volume copies
    (C(volume_copy)), volume snapshots (C(volume_snapshot)), server snapshots (C(snapshot_image)) and
    transfer images (C(image)) - and removes what is left of them. Each resource is the entry's
    C(destination_id).
  - All at once, in the order their dependencies need - the images; then every copy detached from the
    server it is attached to (the copy host) and waited for; then every copy deleted and waited for; then
    every snapshot deleted and waited for. One request per resource and one wait for them all, in one
    task, however many servers or volumes the migration moved.
  - Refuses, before deleting anything, an entry that is not one of those types, and a resource whose
    name does not start with C(cloudshift-) (every temporary the collection makes is named so), so that
    a wrong or edited ledger cannot delete a server's data.
  - Marks every given entry C(cleaned) in the ledger, also when its resource was already gone. A second
    run (the entries now cleaned, or the resources gone) changes nothing.
  - In check mode, looks the resources up and returns in RV(actions) what it would delete.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  entries:
    description:
      - The ledger entries to clean up, as M(cloudshift.migrate.ledger) lists them (C(type), C(source_id),
        C(destination_id), and C(key)). Their resources are all in O(cloud).
    type: list
    elements: dict
    required: true
  timeout:
    description:
      - Seconds to wait for each step (detaching, deleting the copies, deleting the snapshots).
    type: int
    default: 900
  poll:
    description:
      - Seconds between two looks at what is still there.
    type: float
    default: 2
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Read the migration's ledger
  cloudshift.migrate.ledger:
    migration_id: web01-2026-12
    operation: list
  register: ledger

- name: Remove the copies and snapshots at the source
  cloudshift.migrate.cleanup_temporaries:
    cloud: old-provider
    entries: >-
      {{ ledger.entries | selectattr('type', 'in', ['volume_copy', 'volume_snapshot', 'snapshot_image'])
         | rejectattr('status', 'equalto', 'cleaned') | list }}
    migration_id: web01-2026-12
"""

RETURN = r"""
actions:
  description: What the module did (in check mode, would do), one line per request.
  returned: always
  type: list
  elements: str
  sample: ["detach volume 5a1e... (cloudshift-web01-2026-12-9f3c...) from server 77c0...",
           "delete volume 5a1e... (cloudshift-web01-2026-12-9f3c...)"]
removed:
  description: The resources deleted (in check mode, to delete) - C(type) of their entry, C(id), C(name).
  returned: always
  type: list
  elements: dict
already_gone:
  description: The entries whose resource no longer existed (marked cleaned all the same).
  returned: always
  type: list
  elements: dict
ledger_entries:
  description: One per entry given, with status C(cleaned) (none in check mode).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.cleanup import Cleaner, check_entries
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule, sdk


class CleanupTemporaries(OpenStackMigrateModule):
    argument_spec = dict(
        entries=dict(type="list", elements="dict", required=True),
        timeout=dict(type="int", default=900),
        poll=dict(type="float", default=2),
    )

    def run(self):
        entries = self.params["entries"]
        check_entries(entries)
        if self.params["timeout"] <= 0 or self.params["poll"] <= 0:
            raise MigrateError("timeout and poll must be > 0")
        if not entries:
            return dict(removed=[], already_gone=[])
        cleaner = Cleaner(self.conn, sdk().exceptions, self.plan, poll=self.params["poll"], timeout=self.params["timeout"])
        removed, gone = cleaner.remove(entries)
        for entry in entries:
            if entry.get("status") != "cleaned":
                self.record(entry["type"], entry["source_id"], key=entry.get("key"), destination_id=entry["destination_id"],
                            status="cleaned")
        return dict(removed=removed, already_gone=gone)


def main():
    CleanupTemporaries.main()


if __name__ == "__main__":
    main()
