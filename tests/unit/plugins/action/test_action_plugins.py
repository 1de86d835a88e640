# -*- coding: utf-8 -*-
"""Action plugins: plan_check (the plan schema, typos, secrets kept out of messages) and async_wait's progress lines."""
from __future__ import annotations

import json
import os

import jsonschema
import pytest

from ansible_collections.cloudshift.migrate.plugins.action import plan_check

with open(plan_check.SCHEMA) as handle:
    SCHEMA = json.load(handle)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

GOOD = [
    {"plan_version": 1, "scenario": "migrate_instance", "source": "old", "destination": "new",
     "instance": ["web01", "cache01"], "flavor_map": {"m1.small": "s2.small"}, "copy_host_server": "copy-host"},
    {"plan_version": 1, "scenario": "migrate_project", "source": "old", "destination": "new", "project": "shop",
     "all_volumes": True, "archive_dir": "/srv/archive/shop"},
    {"plan_version": 1, "scenario": "migrate_aws_region", "source_region": "us-east-1",
     "destination_region": "ap-southeast-2", "instances": ["i-0123456789abcdef0"], "key_map": {"old": None}},
    {"plan_version": 1, "scenario": "scan_host", "target": "web01", "scan_dir": "/srv/scans", "rebuild": True},
]


def test_schema_is_valid_and_names_every_scenario():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert sorted(SCHEMA["$defs"]) == sorted(plan_check.SCENARIOS)


@pytest.mark.parametrize("plan", GOOD, ids=[p["scenario"] for p in GOOD])
def test_sample_plans_pass(plan):
    assert not list(VALIDATOR.iter_errors(plan))


def test_typos_wrong_types_and_wrong_scenario_are_refused():
    plan = dict(GOOD[0], flavour_map={})
    assert ["(the plan): Additional properties are not allowed ('flavour_map' was unexpected)"] == [
        plan_check.describe(e) for e in VALIDATOR.iter_errors(plan) if e.validator == "additionalProperties"]
    errors = [plan_check.describe(e) for e in VALIDATOR.iter_errors(dict(GOOD[0], volume_copy="rsync"))]
    assert any(m.startswith("volume_copy: must be one of") for m in errors)
    assert list(VALIDATOR.iter_errors(dict(GOOD[0], scenario="migrate_warp")))


def test_messages_never_carry_values():
    site = {"plan_version": 1, "scenario": "migrate_site", "site": {"database": {
        "old_primary": {"host": "10.0.0.1"}, "new_primary": {"host": "10.0.1.1"}, "login_user": "admin",
        "login_password": 12345, "replication_user": "repl", "replication_password": "s3cret-value"}}}
    errors = [plan_check.describe(e) for e in VALIDATOR.iter_errors(site)]
    assert errors and all("12345" not in m and "s3cret" not in m for m in errors)
    assert any(m.startswith("site/database/login_password: must be of type") for m in errors)


def test_command_line_strings_take_the_schema_types():
    assert plan_check.coerce("true", {"type": "boolean"}) is True
    assert plan_check.coerce("no", {"type": "boolean"}) is False
    assert plan_check.coerce("3", {"type": "integer"}) == 3
    assert plan_check.coerce("2.5", {"type": "number"}) == 2.5
    assert plan_check.coerce("3", {"type": ["string", "integer"]}) == "3"
    assert plan_check.coerce("maybe", {"type": "boolean"}) == "maybe"
    assert os.path.isfile(plan_check.SCHEMA)


def test_progress_lines_say_rate_and_eta():
    from ansible_collections.cloudshift.migrate.plugins.action.async_wait import progress_text

    state = {"phase": "streaming", "percent": 25.0, "bytes_done": 256 * 1048576, "bytes_total": 1024 * 1048576,
             "mib_per_s": 64.0}
    assert progress_text(state) == "streaming 25.0% (256.0 of 1024.0 MiB, 64.0 MiB/s, ETA 12s)"
    assert progress_text(dict(state, mib_per_s=0.1)).endswith("ETA 2h08m)")
    assert progress_text(dict(state, mib_per_s=2.0)).endswith("ETA 6m24s)")
    assert progress_text(dict(state, bytes_done=state["bytes_total"], percent=100.0)).endswith("MiB/s)")


def test_a_local_job_is_read_without_a_module(tmp_path):
    """On a local connection async_wait reads the job's files itself, as async_status would."""
    from ansible_collections.cloudshift.migrate.plugins.action.async_wait import ActionModule

    action = object.__new__(ActionModule)
    action._local = True
    action._execute_module = None  # a module run would fail here
    job = tmp_path / "123.456"
    assert action._status("123.456", str(tmp_path), {})["msg"] == "could not find job"
    job.write_text("")
    assert action._status("123.456", str(tmp_path), {}) == {"started": True, "finished": False, "ansible_job_id": "123.456"}
    job.write_text('{"started": 1, "finished": 0, "ansible_job_id": "123.456"}')
    assert not action._status("123.456", str(tmp_path), {})["finished"]
    job.write_text('{"changed": true, "image": {"id": "i1"}}')
    assert action._status("123.456", str(tmp_path), {}) == {"changed": True, "image": {"id": "i1"}, "finished": True,
                                                            "ansible_job_id": "123.456"}
    progress = tmp_path / "progress.json"
    progress.write_text('{"phase": "streaming", "percent": 50.0, "bytes_done": 1048576, "bytes_total": 2097152, "mib_per_s": 1.0}')
    assert action._progress_line(str(progress), {}) == "streaming 50.0% (1.0 of 2.0 MiB, 1.0 MiB/s, ETA 1s)"
    assert action._progress_line(str(tmp_path / "none.json"), {}) is None
