# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs cloudshift.migrate.ledger on the controller, where the ledger lives."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import LedgerError, run_operation
from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger_module import argument_spec, module_kwargs


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        params = self.validate_argument_spec(argument_spec=argument_spec(), **module_kwargs())[1]
        try:
            result.update(run_operation(params, self._task.check_mode))
        except LedgerError as exc:
            result.update(failed=True, msg=str(exc), changed=False, actions=[])
        result["ledger_entries"] = []
        return result
