# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side helpers for the action plugins."""

from __future__ import annotations

import os

DEFAULT_LEDGER_DIR = "~/.cloudshift/ledger"


def controller_ledger_dir(task_args):
    """The ledger directory on the controller for a task."""
    return os.path.expanduser(
        task_args.get("ledger_dir") or os.environ.get("CLOUDSHIFT_LEDGER_DIR") or DEFAULT_LEDGER_DIR
    )
