# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    # Where a module's ledger entries go. The collection's action plugin writes them on the controller.
    DOCUMENTATION = r"""
options:
  migration_id:
    description:
      - The migration this task belongs to. Its ledger records what the task created, so that a
        re-run resumes and cleanup knows what to remove.
      - Without it, nothing is written to a ledger; the entries are still returned in RV(ledger_entries).
    type: str
  ledger_dir:
    description:
      - The directory on the B(controller) that holds the ledgers, one C(<migration_id>.json) each.
      - Default is E(CLOUDSHIFT_LEDGER_DIR) on the controller, else C(~/.cloudshift/ledger).
    type: path
notes:
  - Entries are written to the ledger on the controller after the module returns, and never in
    check mode. A module run as an C(async) task returns its entries in RV(ledger_entries); record them
    with M(cloudshift.migrate.ledger) and O(cloudshift.migrate.ledger#module:entries).
"""
