# -*- coding: utf-8 -*-
from __future__ import annotations

import json
import os

from ansible_collections.cloudshift.migrate.plugins.modules import ledger as ledger_module


def test_module_round_trip(run_module, tmp_path):
    args = dict(ledger_dir=str(tmp_path), migration_id="m1", type="image", source_id="i1",
                destination_id="i2", status="done", bytes=7)
    result = run_module(ledger_module.main, args)
    assert result["changed"] and result["entry"]["destination_id"] == "i2"
    assert not run_module(ledger_module.main, args)["changed"]
    got = run_module(ledger_module.main, dict(ledger_dir=str(tmp_path), migration_id="m1", operation="get",
                                              key="image:i1"))
    assert got["entry"]["bytes"] == 7 and not got["changed"]


def test_module_refuses_secret_without_echoing_it(run_module, tmp_path):
    result = run_module(ledger_module.main, dict(ledger_dir=str(tmp_path), migration_id="m1", type="user",
                                                 source_id="u", data={"password": "Sup3rS3cret!"}))
    assert result["failed"] and "secret" in result["msg"]
    assert "Sup3rS3cret!" not in json.dumps(result)
    assert not os.path.exists(str(tmp_path / "m1.json"))


def test_module_check_mode(run_module, tmp_path):
    result = run_module(ledger_module.main, dict(ledger_dir=str(tmp_path), migration_id="m1", type="image",
                                                 source_id="i1", _ansible_check_mode=True))
    assert result["changed"] and result["actions"]
    assert not os.path.exists(str(tmp_path / "m1.json"))
