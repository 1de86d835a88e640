#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ledger
short_description: Read and record the migration ledger
version_added: 0.1.0
description:
  - Every migration keeps a ledger, one JSON document per O(migration_id) in O(ledger_dir), with an
    entry per resource and step - its type, source id, destination id, phase, status, checksum,
    bytes and timings. It is what lets a crashed run resume and cleanup know what to remove.
  - This module records entries, reads one entry, lists entries, and marks entries cleaned.
  - The document is written atomically (temporary file and rename, under a lock), so parallel tasks
    and crashes never lose or tear it.
  - It refuses anything that looks like a secret (keys named like passwords, tokens, private keys;
    values that are private keys, access key ids or tokens) and fails without writing.
  - The ledger lives on the controller. The collection's action plugin always runs this module's
    work there, whatever host the task targets.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  migration_id:
    description:
      - The migration whose ledger to use.
    type: str
    required: true
  ledger_dir:
    description:
      - The directory on the controller that holds the ledgers.
      - Default is E(CLOUDSHIFT_LEDGER_DIR) on the controller, else C(~/.cloudshift/ledger).
    type: path
  operation:
    description:
      - V(record) creates or updates entries; fields not given keep their value, O(data) is merged.
      - V(get) returns one entry in RV(entry) (RV(found) says whether it exists).
      - V(list) returns the entries in RV(entries), filtered by O(type), O(phase) and O(status) when given.
      - V(mark_cleaned) sets an entry's status to V(cleaned) once cleanup removed its resource.
    type: str
    choices: [record, get, list, mark_cleaned]
    default: record
  key:
    description:
      - The entry's key. Default is C(<type>:<source_id>).
    type: str
  type:
    description:
      - The kind of resource or step, for example V(image), V(volume), V(server), V(step).
      - With O(operation=list), only entries of this type.
    type: str
  source_id:
    description:
      - The resource's id at the source (or the step's name).
    type: str
  destination_id:
    description:
      - The id of what the resource became at the destination.
    type: str
  phase:
    description:
      - The migration phase, for example V(gather), V(prepare), V(transfer), V(verify), V(flip), V(cleanup).
      - With O(operation=list), only entries of this phase.
    type: str
  status:
    description:
      - The entry's status. V(running) sets C(started); V(done) and V(failed) set C(finished).
      - With O(operation=list), only entries with one of these statuses.
    type: list
    elements: str
    choices: [planned, running, done, failed, cleaned]
  checksum:
    description:
      - A checksum of the data moved, as C(<algorithm>:<hex>), for example C(sha512:...).
    type: str
  bytes:
    description:
      - How many bytes the step moved.
    type: int
  seconds:
    description:
      - How long the step took.
      - A step first recorded when it ended (V(done) or V(failed), never V(running)) with O(seconds) is taken
        to have started that long before.
    type: float
  started:
    description:
      - When the step began, as an ISO 8601 time in UTC (for example the C(now(utc=true)) a role noted before
        the work), for a step recorded only once it ended.
      - Kept from the first record on; a later record of the same entry does not move it and is no change.
    type: str
  data:
    description:
      - Further facts about the entry (names, sizes, old and new addresses). Merged key by key.
    type: dict
  entries:
    description:
      - Several entries to record at once, each a dict with C(type), C(source_id) and the fields
        above, for example the RV(ledger_entries) an C(async) task of this collection returned.
      - Only with O(operation=record), instead of O(type) and O(source_id).
    type: list
    elements: dict
notes:
  - Supports check mode; in check mode nothing is written and RV(actions) is the plan.
extends_documentation_fragment:
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Record the root volume's copy
  cloudshift.migrate.ledger:
    migration_id: web01-2026-11
    type: volume
    source_id: 5f0c8a2e-0d7c-4b44-9a57-3c5e1f4d2a10
    destination_id: 9a1b7c44-61d2-4e1f-8f7e-0b2c3d4e5f60
    phase: transfer
    status: done
    checksum: "sha512:4f2a..."
    bytes: 10737418240

- name: List what cleanup has to remove
  cloudshift.migrate.ledger:
    migration_id: web01-2026-11
    operation: list
    status: [done, failed]
  register: leftovers

- name: Mark a temporary snapshot removed
  cloudshift.migrate.ledger:
    migration_id: web01-2026-11
    operation: mark_cleaned
    key: "snapshot:3d2c1b0a-9f8e-4d7c-b6a5-0a1b2c3d4e5f"

- name: Record what an async transfer returned
  cloudshift.migrate.ledger:
    migration_id: web01-2026-11
    entries: "{{ transfer_job.ledger_entries }}"
"""

RETURN = r"""
actions:
  description: What was written (in check mode, what would be).
  returned: always
  type: list
  elements: str
  sample: ["record volume:5f0c8a2e in ledger web01-2026-11"]
path:
  description: The ledger document's path on the controller.
  returned: always
  type: str
  sample: /home/ops/.cloudshift/ledger/web01-2026-11.json
migration_id:
  description: The migration id.
  returned: always
  type: str
entry:
  description: The entry recorded, read or marked.
  returned: when O(operation) is V(record) with a single entry, V(get) or V(mark_cleaned)
  type: dict
  sample:
    key: volume:5f0c8a2e-0d7c-4b44-9a57-3c5e1f4d2a10
    type: volume
    source_id: 5f0c8a2e-0d7c-4b44-9a57-3c5e1f4d2a10
    destination_id: 9a1b7c44-61d2-4e1f-8f7e-0b2c3d4e5f60
    phase: transfer
    status: done
    bytes: 10737418240
    started: "2026-11-22T04:40:00.000000Z"
    finished: "2026-11-22T04:41:02.512000Z"
    data: {}
found:
  description: Whether the entry exists.
  returned: when O(operation=get)
  type: bool
entries:
  description: The entries listed (O(operation=list)) or recorded (O(entries)), oldest first.
  returned: when O(operation=list) or O(entries) is given
  type: list
  elements: dict
ledger_entries:
  description: Always empty for this module; other modules return the entries they queue here.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import LedgerError, run_operation
from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger_module import argument_spec, module_kwargs


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, **module_kwargs())
    try:
        result = run_operation(module.params, module.check_mode)
    except LedgerError as exc:
        module.fail_json(msg=str(exc), changed=False, actions=[])
    module.exit_json(ledger_entries=[], **result)


if __name__ == "__main__":
    main()
