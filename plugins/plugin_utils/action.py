# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin base: run a cloudshift.migrate module, then write its ledger entries.

Modules may run on a copy host that cannot see the controller's ledger, so they
return the entries they want recorded in ``ledger_entries``; every module's
action plugin (``plugins/action/<module>.py``, a subclass of
LedgerRecordingAction and nothing more) writes them into
``<ledger_dir>/<migration_id>.json``, also when the module failed, so a crashed
step leaves its trace. Nothing is written in check mode or for async tasks (the
async result carries the entries; record them with cloudshift.migrate.ledger).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import Ledger, LedgerError, default_ledger_dir


class LedgerRecordingAction(ActionBase):
    _supports_async = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        wrap_async = self._task.async_val and not self._connection.has_native_async
        module_result = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
        result = merge_hash(result, module_result)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
            self._record(result)
        return result

    def _record(self, result):
        migration_id = self._task.args.get("migration_id")
        entries = result.get("ledger_entries") or []
        if not migration_id or not entries or self._task.check_mode:
            return
        try:
            ledger = Ledger(default_ledger_dir(self._task.args.get("ledger_dir")), migration_id)
            for entry in entries:
                entry = dict(entry)
                ledger.record(entry.pop("type"), entry.pop("source_id"), key=entry.pop("key", None), **entry)
            result["ledger_path"] = ledger.path
        except (LedgerError, KeyError, TypeError, ValueError, OSError) as exc:
            result["failed"] = True
            result["msg"] = "%s; and the ledger could not be written: %s" % (
                result.get("msg") or "the module succeeded", exc)
