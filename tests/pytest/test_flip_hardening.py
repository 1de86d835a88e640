# -*- coding: utf-8 -*-
"""Regression tests of the database flip's hardening (issue: nothing lost, never frozen, never hung,
nothing injected), each named after the review's finding, against the lab's real MariaDB servers,
PostgreSQL servers and HAProxy.

Writer-based tests count, on every server, the acknowledged writes that are missing (lost), stored
twice (duplicated), or stored without ever having been attempted (phantom).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time

import pytest

import site_lab
from conftest import LAB, kill_tree
from test_site_flip import aborted_pg_flip, flip_args, http, pg_args, pg_rows, rows, run_module, wait_for_writes

pytestmark = pytest.mark.usefixtures("collection", "site_lab")

KILL_AFTER = "CLOUDSHIFT_TEST_KILL_FLIP_AFTER"


@pytest.fixture
def fresh():
    site_lab.fresh_replication()


@pytest.fixture
def fresh_pg():
    site_lab.fresh_postgres(LAB)


def with_page(args):
    """The flip shows the lab's maintenance page while it runs."""
    args["traffic"]["maintenance_acl"] = site_lab.site()["site-haproxy"]["maintenance_acl"]
    return args


def page_shown():
    return http(site_lab.site()["site-haproxy"]["web_url"])[0] == 503


def read_only(name):
    return site_lab.sql(name, "SELECT @@read_only")[0][0] == 1


def weight(backend, server):
    return site_lab.haproxy("get weight %s/%s" % (backend, server)).split()[0]


def assert_rows_exact(writer, names, stored_of):
    """On each server: no acknowledged write lost, none twice, none that was never attempted."""
    attempted = {"w%d" % n for n in range(1, writer.attempts + 1)}
    for name in names:
        stored = stored_of(name)
        lost = set(writer.acked) - set(stored)
        duplicated = len(stored) - len(set(stored))
        phantom = set(stored) - attempted
        assert (len(lost), duplicated, len(phantom)) == (0, 0, 0), (name, sorted(lost)[:5], duplicated, phantom)


def mariadb_rows(name):
    return [v for v in rows(name) if v != "before"]


def converge(primary):
    """The other servers apply everything the primary has (they replicate from it)."""
    site_lab.wait_applied([n for n in site_lab.NAMES if n != primary],
                          site_lab.sql(primary, "SELECT @@gtid_binlog_pos")[0][0], timeout=30)


def killed_at(step, args):
    """The module, killed by itself (SIGKILL) right after ``step``; waits for it to die."""
    command = ["ansible", "localhost", "-m", "cloudshift.migrate.db_replica_promote", "-a", json.dumps(args)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=dict(os.environ, **{KILL_AFTER: step}))
    try:
        process.wait(120)
    finally:
        kill_tree(process.pid)
    assert process.returncode != 0, "the module was not killed after %s: it completed" % step


# -- privileges: acknowledged writes were lost through a role's READ_ONLY ADMIN ------------------------

@pytest.mark.parametrize("how", ["default role", "role not default", "role of a role"])
def test_read_only_admin_through_a_role_is_refused(fresh, how):
    grants = ["CREATE ROLE IF NOT EXISTS cs_ro_admin", "GRANT READ_ONLY ADMIN ON *.* TO cs_ro_admin"]
    if how == "role of a role":
        grants += ["CREATE ROLE IF NOT EXISTS cs_outer", "GRANT cs_ro_admin TO cs_outer",
                   "GRANT cs_outer TO 'app'@'127.0.0.1'"]
    else:
        grants += ["GRANT cs_ro_admin TO 'app'@'127.0.0.1'"]
    if how == "default role":
        grants += ["SET DEFAULT ROLE cs_ro_admin FOR 'app'@'127.0.0.1'"]
    site_lab.sql("site-db0", "SET SESSION sql_log_bin = 0", *grants)
    try:
        result = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old"))
    finally:
        site_lab.sql("site-db0", "SET SESSION sql_log_bin = 0", "SET DEFAULT ROLE NONE FOR 'app'@'127.0.0.1'",
                     "DROP ROLE IF EXISTS cs_outer", "DROP ROLE IF EXISTS cs_ro_admin")
    assert result.get("failed") and "can write through read_only" in result["msg"], result
    assert "'app'@'127.0.0.1' (through role" in result["msg"], result["msg"]
    assert not read_only("site-db0") and result["actions"] == []


def test_allowed_writer_through_a_role_is_accepted(fresh):
    site_lab.sql("site-db0", "SET SESSION sql_log_bin = 0", "CREATE ROLE IF NOT EXISTS cs_ro_admin",
                 "GRANT READ_ONLY ADMIN ON *.* TO cs_ro_admin", "GRANT cs_ro_admin TO 'app'@'127.0.0.1'")
    try:
        plan = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old",
                                                          allowed_writers=["app"]), check=True)
    finally:
        site_lab.sql("site-db0", "SET SESSION sql_log_bin = 0", "DROP ROLE IF EXISTS cs_ro_admin")
    assert not plan.get("failed") and plan["changed"], plan


def test_primary_that_replicates_from_elsewhere_is_refused(fresh):
    repl = site_lab.site()["site-db0"]["users"]["repl"]
    site_lab.sql("site-db0", "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', "
                             "MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos" % (site_lab.site()["site-db2"]["port"], repl))
    try:
        result = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old"))
    finally:
        site_lab.sql("site-db0", "RESET SLAVE ALL")
    assert result.get("failed") and "site-db0 is itself a replica" in result["msg"], result
    assert not read_only("site-db0")


# -- the freeze is bounded, and undone on every error ------------------------------------------------

def test_freeze_behind_a_table_lock_aborts_within_freeze_timeout(fresh):
    writer = site_lab.Writer()
    writer.start()
    time.sleep(0.3)
    blocker = site_lab.connect("site-db0")
    blocker.cursor().execute("LOCK TABLES app.t WRITE")
    try:
        result = run_module("db_replica_promote", with_page(flip_args("site-db0", "site-db1", ["site-db2"], "new", "old",
                                                                      freeze_timeout=1)))
    finally:
        blocker.close()
    assert result.get("failed") and result["aborted"] and "waited 1.0s for a lock" in result["msg"], result
    assert "writable again" in result["msg"]
    assert not read_only("site-db0") and not page_shown()
    assert site_lab.server_states("db")["new"] & 1 and not site_lab.server_states("db")["old"] & 1
    frozen = len(writer.acked)
    wait_for_writes(writer, frozen)
    writer.finish()
    assert len(writer.acked) > frozen
    converge("site-db0")
    assert_rows_exact(writer, site_lab.NAMES, mariadb_rows)


@pytest.mark.parametrize("value", ["inf", "nan", "1e309", "-1", "0", "86400"])
def test_wait_timeout_not_finite_or_absurd_is_refused(fresh, value):
    result = run_module("db_replica_promote", with_page(flip_args("site-db0", "site-db1", ["site-db2"], "new", "old",
                                                                  wait_timeout=value)))
    assert result.get("failed") and "wait_timeout must be a number" in result["msg"], result
    assert result["actions"] == [] and not result["changed"]
    assert not read_only("site-db0") and not page_shown()
    if value in ("inf", "nan", "1e309"):
        assert not math.isfinite(float(value))


def test_error_after_the_freeze_undoes_it(fresh):
    """The candidate's connection dies while the module waits for it (not a timeout): the freeze is undone."""
    blocker = site_lab.connect("site-db1")
    blocker.cursor().execute("LOCK TABLES app.t READ")  # the candidate cannot apply the last write
    site_lab.sql("site-db0", "INSERT INTO app.t (v) VALUES ('late')")
    command = ["ansible", "localhost", "-m", "cloudshift.migrate.db_replica_promote", "-a",
               json.dumps(with_page(flip_args("site-db0", "site-db1", ["site-db2"], "new", "old", wait_timeout=60,
                                              max_lag=100000)))]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        waiting = []
        while not waiting and time.monotonic() < deadline:
            waiting = [row[0] for row in site_lab.sql("site-db1", "SELECT ID FROM information_schema.PROCESSLIST "
                                                                  "WHERE INFO LIKE 'SELECT MASTER_GTID_WAIT%'")]
            time.sleep(0.05)
        assert waiting, "the module never waited on the candidate"
        assert read_only("site-db0")
        site_lab.sql("site-db1", "KILL CONNECTION %d" % waiting[0])
        out = process.communicate(timeout=60)[0]
    finally:
        blocker.close()
        process.kill()
    result = json.loads(out[out.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result.get("failed") and result["aborted"] and "writable again" in result["msg"], result
    assert not read_only("site-db0") and not page_shown()
    site_lab.sql("site-db0", "INSERT INTO app.t (v) VALUES ('after abort')", user="app")


# -- kills: every step boundary, both directions --------------------------------------------------------

STEPS = ["maintenance_on", "freeze", "wait", "stop_slave", "reset_slave", "promote", "switch", "repoint_site-db2"]


@pytest.mark.parametrize("then", ["re-run", "revert"])
@pytest.mark.parametrize("step", STEPS)
def test_killed_at_every_step_boundary(fresh, step, then):
    writer = site_lab.Writer()
    writer.start()
    time.sleep(0.3)
    forward = with_page(flip_args("site-db0", "site-db1", ["site-db2"], "new", "old"))
    back = with_page(flip_args("site-db1", "site-db0", ["site-db2"], "old", "new"))
    killed_at(step, forward)
    if step in ("freeze", "wait", "stop_slave", "reset_slave"):
        assert read_only("site-db0") and read_only("site-db1")  # frozen, nothing writable: what is recovered
    if step in ("reset_slave", "promote"):
        assert not site_lab.sql("site-db1", "SHOW SLAVE STATUS")
    if then == "re-run":
        result = run_module("db_replica_promote", forward)
        primary, replicas = "site-db1", ["site-db0", "site-db2"]
    else:
        result = run_module("db_replica_promote", back)
        primary, replicas = "site-db0", ["site-db1", "site-db2"]
    assert not result.get("failed"), result
    again = run_module("db_replica_promote", forward if then == "re-run" else back)
    assert not again.get("failed") and not again["changed"], again
    frozen = len(writer.acked)
    wait_for_writes(writer, frozen)
    writer.finish()
    assert len(writer.acked) > frozen, "writes did not come back"
    assert not read_only(primary) and not page_shown()
    for name in replicas:
        status = site_lab.connect(name).cursor(site_lab.pymysql.cursors.DictCursor)
        status.execute("SHOW SLAVE STATUS")
        row = status.fetchone()
        assert row and row["Master_Port"] == site_lab.site()[primary]["port"], (name, row and row["Master_Port"])
        assert row["Slave_IO_Running"] == "Yes" and row["Slave_SQL_Running"] == "Yes", (name, row["Last_Error"])
        assert read_only(name)
    server = "new" if primary == "site-db1" else "old"
    assert not site_lab.server_states("db")[server] & 1
    converge(primary)
    assert_rows_exact(writer, site_lab.NAMES, mariadb_rows)


# -- injection into HAProxy's runtime API -----------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("backend", "db;set weight db/old 7"), ("activate", "new\nset weight db/old 7"),
                                         ("maintenance_acl", "/tmp/x;set weight db/old 7"),
                                         ("deactivate", ["old;set weight db/old 7"])])
def test_haproxy_runtime_commands_cannot_be_injected(fresh, field, value):
    before = weight("db", "old")
    args = flip_args("site-db0", "site-db1", ["site-db2"], "new", "old")
    args["traffic"][field] = value
    result = run_module("db_replica_promote", args)
    assert result.get("failed") and "is not a valid name" in result["msg"], result
    assert result["actions"] == [] and weight("db", "old") == before and not read_only("site-db0")
    proxy = site_lab.site()["site-haproxy"]
    switch = dict(socket=proxy["socket"], backend="db", activate="old", deactivate=["new"])
    switch[field] = value
    if field == "maintenance_acl":
        switch["maintenance"] = True
    result = run_module("traffic_switch", switch)
    assert result.get("failed") and "is not a valid name" in result["msg"] and not result["changed"], result
    assert weight("db", "old") == before


# -- PostgreSQL -----------------------------------------------------------------------------------------------

HOSTILE = "it's a \\ pass'word; DROP"


def pg_standby_of(name):
    conn = site_lab.pg_connect(name, dbname="postgres")
    try:
        row = conn.execute("SELECT sender_port, status FROM pg_stat_wal_receiver").fetchone()
        return row and (row[0], row[1])
    finally:
        conn.close()


def wait_standby_of(name, primary, seconds=30):
    deadline = time.monotonic() + seconds
    while pg_standby_of(name) != (site_lab.site()[primary]["port"], "streaming") and time.monotonic() < deadline:
        time.sleep(0.1)
    return pg_standby_of(name)


def test_postgresql_primary_conninfo_quoting_repoints_replicas(fresh_pg):
    """A password with ' and \\: the second standby follows the new primary, the old primary rejoins, under
    writes nothing is lost on any of the three, and no fragment of the password is anywhere in the result."""
    conn = site_lab.pg_connect("site-pg0", dbname="postgres")
    conn.execute("CREATE ROLE repl2 LOGIN REPLICATION PASSWORD %s" % "'%s'" % HOSTILE.replace("'", "''"))
    conn.close()
    writer = site_lab.PgWriter()
    writer.start()
    time.sleep(0.5)
    args = pg_args("site-pg0", "site-pg1", replicas=[site_lab.pg_node_spec("site-pg2")], replication_user="repl2",
                   replication_password=HOSTILE)
    flip = run_module("db_replica_promote", args)
    assert flip["flipped"] and not flip.get("failed"), flip
    assert wait_standby_of("site-pg2", "site-pg1") == (site_lab.site()["site-pg1"]["port"], "streaming")
    assert wait_standby_of("site-pg0", "site-pg1") == (site_lab.site()["site-pg1"]["port"], "streaming")
    time.sleep(0.5)
    writer.finish()
    time.sleep(1)
    for fragment in (HOSTILE, HOSTILE[:8], HOSTILE[-8:]):
        assert fragment not in json.dumps(flip)
    for name in ("site-pg0", "site-pg1", "site-pg2"):
        stored = pg_rows(name)
        assert set(writer.acked) <= set(stored) and len(stored) == len(set(stored)), name


def test_postgresql_app_visible_outage_stops_connections_to_the_old_primary_first(fresh_pg):
    flip = run_module("db_replica_promote", pg_args("site-pg0", "site-pg1"))
    assert flip["flipped"] and not flip.get("failed"), flip
    drained = flip["actions"].index("haproxy: set server pg/old state maint")
    stopped = next(i for i, action in enumerate(flip["actions"]) if "$ " in action and "stop" in action)
    assert drained < stopped, flip["actions"]
    assert site_lab.server_states("pg")["old"] & 1 and not site_lab.server_states("pg")["new"] & 1


def test_postgresql_abort_after_drain_gives_the_traffic_back(fresh_pg):
    result = aborted_pg_flip()
    assert result.get("failed") and result["aborted"], result
    assert "haproxy: set server pg/old state ready" in result["actions"], result["actions"]
    assert not site_lab.server_states("pg")["old"] & 1 and site_lab.server_states("pg")["new"] & 1


def test_postgresql_old_primary_is_fenced_against_a_restart(fresh_pg):
    flip = run_module("db_replica_promote", pg_args("site-pg0", "site-pg1", attach_old_primary=False))
    assert flip["flipped"] and not flip.get("failed"), flip
    assert any(action.startswith("site-pg0: touch") and "standby.signal" in action for action in flip["actions"])
    subprocess.run(LAB + ["up", "site-pg0"], check=True, stdout=subprocess.DEVNULL)
    conn = site_lab.pg_connect("site-pg0", dbname="postgres")
    try:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # read-only: it cannot take writes
    finally:
        conn.close()
    again = run_module("db_replica_promote", pg_args("site-pg0", "site-pg1", attach_old_primary=False))
    assert not again.get("failed") and not again["changed"], again


# -- TLS: the flip crosses clouds ---------------------------------------------------------------------------

def tls_node(name, ca=None):
    info = site_lab.site()[name]
    ca = ca or info["tls_ca"]
    return {"name": name, "host": "127.0.0.1", "port": info["port"], "ssl": True, "ssl_ca": ca,
            "replication_ssl_ca": info["tls_ca"]}


def test_mariadb_tls_verified_for_the_module_and_for_replication(fresh):
    args = flip_args("site-db0", "site-db1", ["site-db2"], "new", "old")
    args.update(primary=tls_node("site-db0"), candidate=tls_node("site-db1"), replicas=[tls_node("site-db2")])
    flip = run_module("db_replica_promote", args)
    assert flip["flipped"] and not flip.get("failed"), flip
    change = [a for a in flip["actions"] if "CHANGE MASTER" in a]
    assert change and all("MASTER_SSL=1" in a and "MASTER_SSL_VERIFY_SERVER_CERT=1" in a for a in change), change
    for name in ("site-db0", "site-db2"):  # both replicate from the new primary over verified TLS
        cursor = site_lab.connect(name).cursor(site_lab.pymysql.cursors.DictCursor)
        cursor.execute("SHOW SLAVE STATUS")
        row = cursor.fetchone()
        assert row["Master_SSL_Allowed"] == "Yes" and row["Master_SSL_Verify_Server_Cert"] == "Yes", row
        assert row["Slave_IO_Running"] in ("Yes", "Connecting") and not row["Last_IO_Error"], row["Last_IO_Error"]
    site_lab.wait_applied(["site-db0", "site-db2"], site_lab.sql("site-db1", "SELECT @@gtid_binlog_pos")[0][0])


def test_mariadb_tls_wrong_ca_is_refused_before_anything_changes(fresh):
    # the server's own certificate is no CA: verification must fail
    wrong = os.path.join(os.path.dirname(site_lab.site()["site-db0"]["tls_ca"]), "server.pem")
    args = flip_args("site-db0", "site-db1", ["site-db2"], "new", "old")
    args.update(primary=tls_node("site-db0", ca=wrong))
    result = run_module("db_replica_promote", args)
    assert result.get("failed") and "cannot connect to site-db0" in result["msg"], result
    assert "CERTIFICATE_VERIFY_FAILED" in result["msg"] or "certificate verify failed" in result["msg"], result
    assert result["actions"] == [] and not read_only("site-db0")


def test_postgresql_tls_verified_for_the_module_and_for_replication(fresh_pg):
    args = pg_args("site-pg0", "site-pg1", replicas=[site_lab.pg_node_spec("site-pg2")])
    for key in ("primary", "candidate"):
        name = args[key]["name"]
        args[key].update(ssl=True, ssl_ca=site_lab.site()[name]["tls_ca"],
                         replication_ssl_ca=site_lab.site()[name]["tls_ca"])
    flip = run_module("db_replica_promote", args)
    assert flip["flipped"] and not flip.get("failed"), flip
    assert any("sslmode=verify-full" in a for a in flip["actions"]), flip["actions"]
    assert wait_standby_of("site-pg2", "site-pg1")[1] == "streaming"
    assert wait_standby_of("site-pg0", "site-pg1")[1] == "streaming"
    conn = site_lab.pg_connect("site-pg1", dbname="postgres")
    try:
        encrypted = conn.execute("SELECT r.application_name, s.ssl FROM pg_stat_replication r "
                                 "JOIN pg_stat_ssl s USING (pid)").fetchall()
    finally:
        conn.close()
    assert sorted(encrypted) == [("site-pg0", True), ("site-pg2", True)], encrypted
    wrong = pg_args("site-pg1", "site-pg0")
    wrong["primary"].update(ssl=True, ssl_ca=os.path.join(os.path.dirname(site_lab.site()["site-pg1"]["tls_ca"]),
                                                          "server.pem"))
    refused = run_module("db_replica_promote", wrong)
    assert refused.get("failed") and "cannot connect to site-pg1" in refused["msg"], refused


# -- fencing: read_only is lost on a restart ------------------------------------------------------------------

def restart(name):
    subprocess.run(LAB + ["down", name], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(LAB + ["up", name], check=True, stdout=subprocess.DEVNULL)


def test_mariadb_old_primary_is_fenced_against_a_restart(fresh):
    fences = {name: site_lab.site()[name]["fence_file"] for name in site_lab.NAMES[:2]}

    def fenced_args(primary, candidate, activate, deactivate):
        args = flip_args(primary, candidate, ["site-db2"], activate, deactivate)
        for key in ("primary", "candidate"):
            args[key]["fence_file"] = fences[args[key]["name"]]
        return args

    try:
        flip = run_module("db_replica_promote", fenced_args("site-db0", "site-db1", "new", "old"))
        assert flip["flipped"] and any(a.startswith("fence site-db0") for a in flip["actions"]), flip
        again = run_module("db_replica_promote", fenced_args("site-db0", "site-db1", "new", "old"))
        assert not again["changed"], again
        restart("site-db0")
        assert read_only("site-db0")  # it came back as it was left: a read-only replica
        revert = run_module("db_replica_promote", fenced_args("site-db1", "site-db0", "old", "new"))
        assert revert["flipped"] and not revert.get("failed"), revert
        assert not os.path.exists(fences["site-db0"]) and os.path.exists(fences["site-db1"])
        restart("site-db0")
        assert not read_only("site-db0")  # the primary again: writable after a restart
    finally:
        for path in fences.values():
            if os.path.exists(path):
                os.unlink(path)
