# -*- coding: utf-8 -*-
"""usage_report against the lab's real Nova: servers created and deleted in a project of their
own, their usage saved as JSON for the whole period and month by month."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.usefixtures("collection", "lab")

PROJECT = "usage-demo"


def run_module(args, check=False, ledger_dir=None):
    command = ["ansible", "localhost", "-m", "cloudshift.migrate.usage_report", "-a", json.dumps(args)]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    if ledger_dir:
        env["CLOUDSHIFT_LEDGER_DIR"] = str(ledger_dir)
    out = subprocess.run(command + (["--check"] if check else []), env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=False)
    try:
        return json.loads(out.stdout[out.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except ValueError:
        raise AssertionError(out.stdout[-3000:] + out.stderr[-3000:])


def wait(check, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.5)


@pytest.fixture(scope="module")
def lived():
    """Two servers that lived a few seconds each in project usage-demo (nothing else ever did)."""
    import openstack

    admin = openstack.connect(cloud="lab-source-admin")
    project = admin.identity.find_project(PROJECT)
    if project is not None:  # an earlier session's servers would be counted: a new project
        for server in admin.compute.servers(all_projects=True, project_id=project.id):
            admin.compute.delete_server(server)
            admin.compute.wait_for_delete(server, wait=120)
        admin.identity.delete_project(project)
    project = admin.identity.create_project(name=PROJECT, domain_id="default")
    user = admin.identity.find_user("admin", domain_id="default")
    role = admin.identity.find_role("admin")
    admin.identity.assign_project_role_to_user(project, user, role)
    conn = openstack.connect(cloud="lab-source-admin", project_name=PROJECT, project_domain_id="default")
    flavor = admin.compute.find_flavor("usage.tiny") or admin.compute.create_flavor(
        name="usage.tiny", vcpus=2, ram=128, disk=1, is_public=True)
    image = admin.image.find_image("usage-img")
    if image is None:
        image = admin.image.create_image(name="usage-img", data=b"\0" * 65536, disk_format="raw",
                                         container_format="bare", visibility="public", wait=True)
    servers = []
    for name in ("usage-a", "usage-b"):
        server = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, networks="none")
        servers.append(conn.compute.wait_for_server(server, wait=120))
    time.sleep(2)
    for server in servers:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120)
    time.sleep(1.1)
    end = datetime.datetime.utcnow().replace(microsecond=0)
    return dict(project=project, servers=servers, flavor=flavor, end=end)


def test_usage_whole_period_and_months_add_up(lived, tmp_path):
    end = lived["end"]
    first = (end.replace(day=1) - datetime.timedelta(days=40)).replace(day=1)  # two months before this one
    args = dict(cloud="lab-source-admin", project=PROJECT, start=first.strftime("%Y-%m-%d"),
                end=end.strftime("%Y-%m-%dT%H:%M:%S"), path=str(tmp_path / "usage"), migration_id="usage-test")
    plan = run_module(args, check=True)
    assert plan["changed"] and not os.path.exists(tmp_path / "usage"), plan
    result = run_module(args, ledger_dir=tmp_path)
    assert result["changed"] and not result.get("failed"), result
    whole = result["whole"]
    ids = {server.id for server in lived["servers"]}
    assert {s["instance_id"] for s in whole["servers"]} == ids
    assert all(s["state"] == "terminated" and s["hours"] > 0 and s["vcpus"] == 2 for s in whole["servers"])
    assert whole["total_vcpus_usage"] == pytest.approx(2 * whole["total_hours"])
    # this month and the two before: the servers are in the last one only; the months add up
    assert [m["month"] for m in result["months"]] == [
        first.strftime("%Y-%m"), (first + datetime.timedelta(days=32)).strftime("%Y-%m"), end.strftime("%Y-%m")]
    assert [m["server_count"] for m in result["months"]] == [0, 0, 2]
    for key in ("total_hours", "total_vcpus_usage", "total_memory_mb_usage", "total_local_gb_usage"):
        assert sum(m[key] for m in result["months"]) == pytest.approx(whole[key], rel=1e-9)
    # the files: the whole period and one per month, as returned
    files = sorted(os.listdir(tmp_path / "usage"))
    prefix = "usage-%s" % lived["project"].id
    assert files == sorted(["%s-whole.json" % prefix] + ["%s-%s.json" % (prefix, m["month"]) for m in result["months"]])
    with open(tmp_path / "usage" / ("%s-whole.json" % prefix)) as handle:
        saved = json.load(handle)
    assert saved["total_hours"] == whole["total_hours"] and saved["project_name"] == PROJECT
    with open(tmp_path / "usage-test.json") as handle:
        entries = json.load(handle)["entries"]
    assert [e["data"]["servers"] for e in entries.values() if e["type"] == "usage_report"] == [2]
    again = run_module(args)
    assert not again["changed"] and again["actions"] == [], again


@pytest.mark.parametrize("bad, expect", [
    (dict(project="no-such-project"), "no project no-such-project"),
    (dict(end="2999-01-01"), "is in the future"),
    (dict(start="2026-05-01", end="2026-04-01"), "must be before end"),
    (dict(start="last week"), "is not a date"),
])
def test_bad_input_is_refused_and_nothing_written(tmp_path, bad, expect):
    args = dict(cloud="lab-source-admin", project=PROJECT, start="2026-01-01", path=str(tmp_path / "usage"))
    args.update(bad)
    result = run_module(args)
    assert result.get("failed") and expect in result["msg"], result
    assert not os.path.exists(tmp_path / "usage")
