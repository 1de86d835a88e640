# -*- coding: utf-8 -*-
from __future__ import annotations

from ansible_collections.cloudshift.migrate.plugins.plugin_utils.action import LedgerRecordingAction


class ActionModule(LedgerRecordingAction):
    """Writes ledger_probe's entries on the controller, as every module's action plugin does."""
