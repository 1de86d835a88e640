# -*- coding: utf-8 -*-
from __future__ import annotations

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError, MigrateModule


class Copier(MigrateModule):
    """A toy module: 'copies' items, honouring check mode, recording to the ledger."""

    argument_spec = dict(items=dict(type="list", elements="str", required=True),
                         boom=dict(type="str", choices=["none", "migrate", "other", "secret"], default="none"))

    def run(self):
        if self.params["boom"] == "migrate":
            raise MigrateError("cannot copy", item="b")
        if self.params["boom"] == "other":
            raise RuntimeError("unexpected")
        copied = []
        for item in self.params["items"]:
            if self.plan("copy %s" % item):
                copied.append(item)
            self.record("item", item, destination_id=item + "-copy", status="done",
                        data={"password": "x"} if self.params["boom"] == "secret" else None)
        return dict(copied=copied)


def test_actions_and_ledger_entries(run_module):
    result = run_module(Copier.main, dict(items=["a", "b"], migration_id="m"))
    assert result["changed"] and result["actions"] == ["copy a", "copy b"]
    assert result["copied"] == ["a", "b"]
    assert result["ledger_entries"] == [
        {"type": "item", "source_id": "a", "destination_id": "a-copy", "status": "done"},
        {"type": "item", "source_id": "b", "destination_id": "b-copy", "status": "done"},
    ]


def test_check_mode_returns_plan_and_changes_nothing(run_module):
    result = run_module(Copier.main, dict(items=["a"], _ansible_check_mode=True))
    assert result["changed"] and result["actions"] == ["copy a"]
    assert result["copied"] == [] and result["ledger_entries"] == []


def test_nothing_to_do_is_unchanged(run_module):
    result = run_module(Copier.main, dict(items=[]))
    assert not result["changed"] and result["actions"] == []


def test_migrate_error_becomes_failure_with_details(run_module):
    result = run_module(Copier.main, dict(items=["a"], boom="migrate"))
    assert result["failed"] and result["msg"] == "cannot copy" and result["item"] == "b"
    assert "exception" not in result or "Traceback" not in result.get("exception", "")


def test_unknown_error_is_not_hidden(run_module):
    result = run_module(Copier.main, dict(items=["a"], boom="other"))
    assert result["failed"] and result["msg"] == "unexpected error: RuntimeError: unexpected"


def test_secret_in_ledger_entry_is_refused(run_module):
    result = run_module(Copier.main, dict(items=["a"], boom="secret"))
    assert result["failed"] and "secrets" in result["msg"]


def test_bad_input_is_refused(run_module):
    result = run_module(Copier.main, dict(items=["a"], boom="nope"))
    assert result["failed"] and "boom" in result["msg"]
