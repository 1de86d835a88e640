# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.cloudshift.migrate.plugins.plugin_utils.action import LedgerRecordingAction


class ActionModule(LedgerRecordingAction):
    """Runs cleanup_temporaries; marks its entries cleaned in the controller's ledger."""
