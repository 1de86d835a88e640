# -*- coding: utf-8 -*-
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import ledger as ledger_mod
from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import (
    Ledger,
    LedgerError,
    LedgerSecretError,
    find_secrets,
    run_operation,
)


@pytest.fixture
def ledger(tmp_path):
    return Ledger(str(tmp_path / "ledgers"), "mig-1")


def test_record_creates_document_with_timestamps(ledger):
    entry, changed = ledger.record("volume", "vol-src", destination_id="vol-dst", phase="transfer",
                                   status="running", bytes=1024)
    assert changed
    assert entry["key"] == "volume:vol-src"
    assert entry["started"] and "finished" not in entry
    entry, changed = ledger.record("volume", "vol-src", status="done", checksum="sha512:ab")
    assert changed and entry["finished"] >= entry["started"]
    assert entry["destination_id"] == "vol-dst"  # untouched fields kept
    document = json.loads(open(ledger.path).read())
    assert document["migration_id"] == "mig-1"
    assert document["entries"]["volume:vol-src"]["checksum"] == "sha512:ab"
    assert oct(os.stat(ledger.path).st_mode & 0o777) == "0o600"


def test_same_record_twice_changes_nothing(ledger):
    ledger.record("image", "img-1", status="done", data={"name": "web01"})
    before = open(ledger.path).read()
    unused, changed = ledger.record("image", "img-1", status="done", data={"name": "web01"})
    assert not changed
    assert open(ledger.path).read() == before


def test_started_given_is_kept_and_a_rerecord_is_no_change(ledger):
    entry, changed = ledger.record("volume", "v1", status="done", started="2026-11-22T04:40:00+00:00")
    assert changed and entry["started"] == "2026-11-22T04:40:00.000000Z" and entry["finished"] > entry["started"]
    before = open(ledger.path).read()
    unused, changed = ledger.record("volume", "v1", status="done", started="2026-11-22T05:00:00.5Z")
    assert not changed and open(ledger.path).read() == before
    with pytest.raises(LedgerError, match="started must be an ISO 8601 time"):
        ledger.record("volume", "v2", status="done", started="yesterday")


def test_a_finished_step_with_seconds_started_that_long_before(ledger):
    import datetime

    entry, unused = ledger.record("image", "i1", status="done", seconds=90.5)

    def parse(text):
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")

    assert (parse(entry["finished"]) - parse(entry["started"])).total_seconds() == pytest.approx(90.5, abs=0.01)
    running, unused = ledger.record("image", "i2", status="running", seconds=30)
    assert running["started"] == running["updated"]  # a running step starts now


def test_data_is_merged(ledger):
    ledger.record("server", "srv", data={"a": 1})
    entry, unused = ledger.record("server", "srv", data={"b": 2})
    assert entry["data"] == {"a": 1, "b": 2}


def test_list_filters_and_mark_cleaned(ledger):
    ledger.record("snapshot", "s1", phase="transfer", status="done")
    ledger.record("snapshot", "s2", phase="transfer", status="failed")
    ledger.record("image", "i1", phase="transfer", status="done")
    assert [e["key"] for e in ledger.entries(entry_type="snapshot")] == ["snapshot:s1", "snapshot:s2"]
    assert [e["key"] for e in ledger.entries(status=["failed"])] == ["snapshot:s2"]
    entry, changed = ledger.mark_cleaned("snapshot:s1")
    assert changed and entry["status"] == "cleaned" and entry["cleaned"]
    unused, changed = ledger.mark_cleaned("snapshot:s1")
    assert not changed
    with pytest.raises(LedgerError, match="no ledger entry"):
        ledger.mark_cleaned("snapshot:nope")
    # Recording the status (as cleanup_temporaries' entries do) stamps the time the same way.
    entry, changed = ledger.record("image", "i1", status="cleaned")
    assert changed and entry["status"] == "cleaned" and entry["cleaned"]
    unused, changed = ledger.record("image", "i1", status="cleaned")
    assert not changed


@pytest.mark.parametrize("fields", [
    {"data": {"password": "hunter2"}},
    {"data": {"auth": {"username": "u", "password": "p"}}},
    {"data": {"nested": [{"os_token": "x"}]}},
    {"data": {"note": "-----BEGIN RSA PRIVATE KEY-----\nMIIE..."}},
    {"data": {"note": "key AKIAABCDEFGHIJKLMNOP leaked"}},
    {"data": {"url": "mysql://app:s3cret@db:3306/x"}},
    {"destination_id": "gAAAAA" + "x" * 80},
])
def test_secrets_are_refused_and_nothing_written(ledger, fields):
    with pytest.raises(LedgerSecretError):
        ledger.record("server", "srv", **fields)
    assert not os.path.exists(ledger.path)


def test_non_secrets_pass():
    assert find_secrets({"key_name": "ops", "auth_url": "http://127.0.0.1:5000/v3", "checksum": "sha512:aa",
                         "public_key": "ssh-ed25519 AAAA ops", "password_set": None}) == []


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "a/b", "x" * 129, ".hidden"])
def test_bad_migration_id(tmp_path, bad):
    with pytest.raises(LedgerError, match="migration_id"):
        Ledger(str(tmp_path), bad)


def test_bad_status_and_unknown_fields(ledger):
    with pytest.raises(LedgerError, match="status"):
        ledger.record("x", "y", status="finished")
    with pytest.raises(LedgerError, match="unknown"):
        ledger.record("x", "y", colour="blue")
    assert not os.path.exists(ledger.path)


def test_corrupt_or_foreign_document_is_an_error(ledger):
    os.makedirs(ledger.ledger_dir)
    with open(ledger.path, "w") as handle:
        handle.write("{not json")
    with pytest.raises(LedgerError, match="not valid JSON"):
        ledger.load()
    with open(ledger.path, "w") as handle:
        json.dump({"migration_id": "other", "entries": {}}, handle)
    with pytest.raises(LedgerError, match="does not belong"):
        ledger.record("x", "y")


def _writer(ledger_dir, worker, count):
    book = Ledger(ledger_dir, "mig-1")
    for number in range(count):
        book.record("volume", "w%d-v%d" % (worker, number), status="done", bytes=number)


def test_concurrent_writers_lose_nothing(tmp_path):
    ledger_dir = str(tmp_path / "ledgers")
    workers, count = 6, 25
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_writer, args=(ledger_dir, worker, count)) for worker in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    entries = Ledger(ledger_dir, "mig-1").entries()
    assert len(entries) == workers * count
    assert not [name for name in os.listdir(ledger_dir) if name.endswith(".tmp")]


def test_crash_between_write_and_rename_keeps_old_document(tmp_path):
    ledger_dir = str(tmp_path / "ledgers")
    book = Ledger(ledger_dir, "mig-1")
    book.record("volume", "v1", status="done")
    before = open(book.path).read()
    # A writer that dies (no cleanup, no exception handlers) right before the rename.
    script = textwrap.dedent("""
        import os, sys
        sys.path[:0] = %r
        from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import Ledger
        os.replace = lambda *args: os._exit(9)
        Ledger(%r, "mig-1").record("volume", "v2", status="done")
    """) % (sys.path, ledger_dir)
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 9
    assert open(book.path).read() == before  # the old document, whole
    assert [name for name in os.listdir(ledger_dir) if name.endswith(".tmp")]  # the torn temp file
    entry, changed = book.record("volume", "v2", status="done")  # and the ledger still works
    assert changed
    assert [e["key"] for e in book.entries()] == ["volume:v1", "volume:v2"]


def _params(tmp_path, **overrides):
    params = dict(ledger_dir=str(tmp_path), migration_id="mig-1", operation="record", key=None, type=None,
                  source_id=None, destination_id=None, phase=None, status=None, checksum=None, bytes=None,
                  seconds=None, data=None, entries=None)
    params.update(overrides)
    return params


def test_run_operation_check_mode_writes_nothing(tmp_path):
    result = run_operation(_params(tmp_path, type="image", source_id="i1", status=["done"]), check_mode=True)
    assert result["changed"] and result["actions"] == ["record image:i1 in ledger mig-1"]
    assert not os.path.exists(result["path"])


def test_run_operation_entries_are_all_validated_first(tmp_path):
    entries = [{"type": "image", "source_id": "i1"}, {"type": "image", "source_id": "i2", "data": {"token": "t"}}]
    with pytest.raises(LedgerSecretError):
        run_operation(_params(tmp_path, entries=entries))
    assert not os.path.exists(str(tmp_path / "mig-1.json"))
    entries[1]["data"] = {"size": 1}
    result = run_operation(_params(tmp_path, entries=entries))
    assert result["changed"] and len(result["entries"]) == 2
    assert not run_operation(_params(tmp_path, entries=entries))["changed"]


def test_run_operation_get_list_and_errors(tmp_path):
    run_operation(_params(tmp_path, type="image", source_id="i1", status=["done"]))
    got = run_operation(_params(tmp_path, operation="get", key="image:i1"))
    assert got["found"] and got["entry"]["status"] == "done"
    assert not run_operation(_params(tmp_path, operation="get", type="image", source_id="zz"))["found"]
    listed = run_operation(_params(tmp_path, operation="list", status=["done", "failed"]))
    assert [e["key"] for e in listed["entries"]] == ["image:i1"]
    with pytest.raises(LedgerError, match="needs key"):
        run_operation(_params(tmp_path, type="image"))
    with pytest.raises(LedgerError, match="one status"):
        run_operation(_params(tmp_path, type="image", source_id="i1", status=["done", "failed"]))
    with pytest.raises(LedgerError, match="no ledger entry"):
        run_operation(_params(tmp_path, operation="mark_cleaned", key="image:zz"))
    assert ledger_mod.FORMAT_VERSION == 1


def test_none_in_data_removes_a_key_and_data_must_be_a_dict(ledger):
    ledger.record("image", "i", status="failed", data={"error": "boom", "name": "x"})
    entry, unused = ledger.record("image", "i", status="done", data={"error": None})
    assert entry["data"] == {"name": "x"}
    with pytest.raises(LedgerError, match="must be a dict"):
        ledger.record("image", "i", data=["not", "a", "dict"])


def test_unwritable_ledger_is_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    book = Ledger(str(folder), "m")
    os.chmod(str(folder), 0o500)
    try:
        if os.access(str(folder), os.W_OK):  # root writes anywhere: make the lock file unopenable instead
            os.chmod(str(folder), 0o700)
            os.mkdir(book.lock_path)
        with pytest.raises(LedgerError, match="cannot (lock|write) ledger"):
            book.record("x", "y")
    finally:
        os.chmod(str(folder), 0o700)
