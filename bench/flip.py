#!/usr/bin/env python3
"""Benchmark: the database flip of a site move, under continuous writes, on the lab's MariaDB and PostgreSQL.

A writer inserts one row at a time through HAProxy's database frontends as the application, both
engines: the outage is what an application sees, not the module's own timer.
Each flip moves the primary from site-db0 to site-db1 (site-db2 repointed, the old primary
attached as a replica, HAProxy switched) with cloudshift.migrate.db_replica_promote; each
revert moves it back. Per flip: the write outage (the longest gap between two acknowledged
writes around it), failed writes, and at the end lost and duplicated acknowledged writes
(must be 0). The baseline is the same flip done task by task with ansible.mysql and
community.general.haproxy (bench/flip/mariadb_by_tasks.yml), timed the same way.

    python3 bench/flip.py [--flips 20] [--baseline 3] [--pg-flips 20]

Needs the site lab up (make bench-flip does that).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "pytest"))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
os.environ.setdefault("ANSIBLE_PYTHON_INTERPRETER", os.path.join(ROOT, ".venv", "bin", "python"))
os.environ["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"]

import site_lab  # noqa: E402  (tests/pytest/site_lab.py: the lab's site)


def module_flip(primary, candidate, activate, deactivate):
    info = site_lab.site()
    users = info["site-db0"]["users"]

    def node(name):
        return {"name": name, "host": "127.0.0.1", "port": info[name]["port"]}

    args = dict(primary=node(primary), candidate=node(candidate), replicas=[node("site-db2")], login_user="admin",
                login_password=users["admin"], replication_user="repl", replication_password=users["repl"],
                traffic=dict(socket=info["site-haproxy"]["socket"], backend="db", activate=activate,
                             deactivate=[deactivate], state_file=info["site-haproxy"]["server_state_file"]))
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    out = subprocess.run(["ansible", "localhost", "-m", "cloudshift.migrate.db_replica_promote", "-a", json.dumps(args)],
                         env=env, capture_output=True, text=True, check=False).stdout
    result = json.loads(out[out.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if result.get("failed") or not result.get("flipped"):
        raise SystemExit("flip failed: %s" % result.get("msg"))
    return result


def pg_module_flip(primary, candidate):
    users = site_lab.site()["site-pg0"]["users"]
    args = dict(engine="postgresql", primary=site_lab.pg_node_spec(primary), candidate=site_lab.pg_node_spec(candidate),
                login_user="admin", login_password=users["admin"], replication_user="repl",
                replication_password=users["repl"], traffic=site_lab.traffic("pg", site_lab.pg_server(candidate)))
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    out = subprocess.run(["ansible", "localhost", "-m", "cloudshift.migrate.db_replica_promote", "-a", json.dumps(args)],
                         env=env, capture_output=True, text=True, check=False).stdout
    result = json.loads(out[out.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if result.get("failed") or not result.get("flipped"):
        raise SystemExit("PostgreSQL flip failed: %s" % result.get("msg"))
    time.sleep(1.0)  # the old primary's WAL receiver connects before the next flip's preflight
    return result


def task_flip(primary, candidate, activate, deactivate):
    info = site_lab.site()
    extra = dict(primary_port=info[primary]["port"], candidate_port=info[candidate]["port"],
                 login_password=info["site-db0"]["users"]["admin"], haproxy_socket=info["site-haproxy"]["socket"],
                 activate=activate, deactivate=deactivate)
    out = subprocess.run(["ansible-playbook", os.path.join(ROOT, "bench", "flip", "mariadb_by_tasks.yml"),
                          "-e", json.dumps(extra)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit("baseline flip failed: %s" % out.stdout[-2000:])


def measured(writer, flip, *args):
    """Run one flip while the writer writes; the outage it caused in ms."""
    time.sleep(0.3)
    started = time.monotonic()
    failed_before = writer.failed
    flip(*args)
    time.sleep(0.3)
    acks = [t for t in writer.acked_at if t >= started - 0.3]
    gaps = [b - a for a, b in zip(acks, acks[1:])]
    return max(gaps) * 1000.0, writer.failed - failed_before


def summary(label, outages, failed):
    return "%-32s n=%-3d outage ms min %7.1f median %7.1f max %7.1f   failed writes %d" % (
        label, len(outages), min(outages), statistics.median(outages), max(outages), failed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=20)
    parser.add_argument("--baseline", type=int, default=3, help="task-by-task flips (each ~15 s)")
    parser.add_argument("--pg-flips", type=int, default=20, help="PostgreSQL flips and reverts (0: none)")
    args = parser.parse_args()
    if args.pg_flips:
        site_lab.fresh_postgres([sys.executable, os.path.join(ROOT, "lab", "labctl.py")])
        writer = site_lab.PgWriter()
        writer.start()
        pg_flips, pg_reverts, pg_failed = [], [], [0, 0]
        for unused in range(args.pg_flips):
            outage, fails = measured(writer, pg_module_flip, "site-pg0", "site-pg1")
            pg_flips.append(outage)
            pg_failed[0] += fails
            outage, fails = measured(writer, pg_module_flip, "site-pg1", "site-pg0")
            pg_reverts.append(outage)
            pg_failed[1] += fails
        writer.finish()
        time.sleep(1)
        lost = duplicated = 0
        for name in site_lab.PG_NAMES:  # every server, not only the primary
            conn = site_lab.pg_connect(name)
            stored = [row[0] for row in conn.execute("SELECT v FROM t")]
            conn.close()
            lost += len(set(writer.acked) - set(stored))
            duplicated += len(stored) - len(set(stored))
        print(summary("postgresql flip (through HAProxy)", pg_flips, pg_failed[0]))
        print(summary("postgresql revert (through HAProxy)", pg_reverts, pg_failed[1]))
        print("postgresql flips and reverts: %d acknowledged writes, lost %d, duplicated %d (on %s)" % (
            len(writer.acked), lost, duplicated, ", ".join(site_lab.PG_NAMES)))
    site_lab.fresh_replication()
    writer = site_lab.Writer()
    writer.start()
    flips, reverts, failed = [], [], [0, 0]
    for unused in range(args.flips):
        outage, fails = measured(writer, module_flip, "site-db0", "site-db1", "new", "old")
        flips.append(outage)
        failed[0] += fails
        outage, fails = measured(writer, module_flip, "site-db1", "site-db0", "old", "new")
        reverts.append(outage)
        failed[1] += fails
    writer.finish()
    site_lab.wait_applied(site_lab.NAMES[1:], site_lab.sql("site-db0", "SELECT @@gtid_binlog_pos")[0][0], timeout=30)
    lost = duplicated = 0
    for name in site_lab.NAMES:  # every server, not only the primary
        stored = [row[0] for row in site_lab.sql(name, "SELECT v FROM app.t WHERE v LIKE 'w%'")]
        lost += len(set(writer.acked) - set(stored))
        duplicated += len(stored) - len(set(stored))
    acked = len(writer.acked)
    baseline, baseline_failed = [], 0
    for unused in range(args.baseline):
        # the baseline leaves db2 and db0 unattached: rebuild replication before each
        writer.finish()
        site_lab.fresh_replication()
        writer = site_lab.Writer()
        writer.start()
        outage, fails = measured(writer, task_flip, "site-db0", "site-db1", "new", "old")
        baseline.append(outage)
        baseline_failed += fails
    writer.finish()
    print(summary("db_replica_promote flip", flips, failed[0]))
    print(summary("db_replica_promote revert", reverts, failed[1]))
    if baseline:
        print(summary("task by task (ansible.mysql)", baseline, baseline_failed))
        print("median outage: task by task / module = %.0fx" % (statistics.median(baseline) / statistics.median(flips)))
    print("module flips and reverts: %d acknowledged writes, lost %d, duplicated %d (on %s)" % (
        acked, lost, duplicated, ", ".join(site_lab.NAMES)))
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(main())
