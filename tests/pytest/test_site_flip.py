# -*- coding: utf-8 -*-
"""db_replica_promote and traffic_switch against the lab's real MariaDB servers and HAProxy.

A writer inserts rows through HAProxy's database frontend as the application
during each flip: no acknowledged write may be lost or duplicated, and the
write outage is measured from its acknowledgements.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import site_lab
from conftest import LAB, kill_tree

pytestmark = pytest.mark.usefixtures("collection", "site_lab")


def run_module(module, args, check=False, ledger_dir=None):
    command = ["ansible", "localhost", "-m", "cloudshift.migrate." + module, "-a", json.dumps(args)]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    if ledger_dir:
        env["CLOUDSHIFT_LEDGER_DIR"] = str(ledger_dir)
    out = subprocess.run(command + (["--check"] if check else []), env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=False)
    try:
        return json.loads(out.stdout[out.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except ValueError:
        raise AssertionError(out.stdout[-3000:] + out.stderr[-3000:])


def node(name):
    return {"name": name, "host": "127.0.0.1", "port": site_lab.site()[name]["port"]}


def flip_args(primary, candidate, replicas, activate, deactivate, **extra):
    info = site_lab.site()
    users = info["site-db0"]["users"]
    proxy = info["site-haproxy"]
    args = dict(primary=node(primary), candidate=node(candidate), replicas=[node(n) for n in replicas],
                login_user="admin", login_password=users["admin"], replication_user="repl",
                replication_password=users["repl"], migration_id="site-test",
                traffic=dict(socket=proxy["socket"], backend="db", activate=activate, deactivate=[deactivate],
                             state_file=proxy["server_state_file"]))
    args.update(extra)
    return args


def rows(name):
    return [row[0] for row in site_lab.sql(name, "SELECT v FROM app.t ORDER BY id")]


@pytest.fixture
def fresh():
    site_lab.fresh_replication()


def test_flip_and_revert_under_writes_lose_nothing(fresh, tmp_path):
    secrets = list(site_lab.site()["site-db0"]["users"].values())
    writer = site_lab.Writer()
    writer.start()
    time.sleep(0.5)
    flip = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old"),
                      ledger_dir=tmp_path)
    time.sleep(0.5)
    assert flip["changed"] and flip["flipped"] and not flip.get("failed"), flip
    assert flip["outage_ms"] < 1000, flip["timings"]
    assert site_lab.server_states("db")["old"] & 1 and not site_lab.server_states("db")["new"] & 1
    again = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old"))
    assert not again["changed"] and not again["flipped"], again
    revert = run_module("db_replica_promote", flip_args("site-db1", "site-db0", ["site-db2"], "old", "new"),
                        ledger_dir=tmp_path)
    time.sleep(0.5)
    writer.finish()
    assert revert["flipped"], revert
    position = site_lab.sql("site-db0", "SELECT @@gtid_binlog_pos")[0][0]
    site_lab.wait_applied(["site-db1", "site-db2"], position)
    # every acknowledged write is on every server, once; nothing else is
    for name in site_lab.NAMES:
        stored = rows(name)[1:]
        assert len(stored) == len(set(stored)), name
        assert set(writer.acked) <= set(stored), name
        assert set(stored) - set(writer.acked) <= {"w%d" % n for n in range(len(writer.acked) + writer.failed + 1)}
    assert len(writer.acked) > 50
    # the statements are the audit log; no password in it
    assert "site-db0: SET GLOBAL read_only = 1" in flip["actions"]
    assert not any(secret in json.dumps(flip) for secret in secrets)
    with open(tmp_path / "site-test.json") as handle:
        entries = json.load(handle)["entries"]
    assert {e["source_id"] for e in entries.values() if e["type"] == "db_promote"} == {"site-db0", "site-db1"}


def test_check_mode_runs_the_preflight_only(fresh):
    plan = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old"), check=True)
    assert plan["changed"] and plan["actions"][0] == "freeze site-db0 (read_only, at most 2.0s)", plan
    assert site_lab.sql("site-db0", "SELECT @@read_only")[0][0] == 0
    assert site_lab.sql("site-db1", "SHOW SLAVE STATUS")


def test_candidate_that_cannot_catch_up_aborts_cleanly(fresh):
    # replication runs, but a lock on the candidate keeps it from applying the last write
    blocker = site_lab.connect("site-db1")
    blocker.cursor().execute("LOCK TABLES app.t READ")
    try:
        site_lab.sql("site-db0", "INSERT INTO app.t (v) VALUES ('late')")
        result = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old",
                                                            wait_timeout=1, max_lag=100000))
    finally:
        blocker.close()
    assert result.get("failed") and result["aborted"] and "writable again" in result["msg"], result
    assert site_lab.sql("site-db0", "SELECT @@read_only")[0][0] == 0
    site_lab.sql("site-db0", "INSERT INTO app.t (v) VALUES ('after abort')", user="app")
    assert site_lab.server_states("db")["new"] & 1  # traffic untouched
    assert site_lab.sql("site-db2", "SELECT @@read_only")[0][0] == 1


@pytest.mark.parametrize("case", ["not a replica", "writer through read_only", "errant transaction",
                                  "unknown server", "no replication password", "lagging replica",
                                  "wrong credentials"])
def test_preflight_refuses_and_changes_nothing(fresh, case):
    args = flip_args("site-db0", "site-db1", ["site-db2"], "new", "old")
    expect, blocker = None, None
    if case == "not a replica":
        args["candidate"], args["replicas"] = node("site-db2"), [node("site-db1")]
        site_lab.sql("site-db2", "STOP SLAVE", "RESET SLAVE ALL")
        expect = "is not a replica of site-db0"
    elif case == "writer through read_only":
        site_lab.sql("site-db0", "SET SESSION sql_log_bin = 0", "GRANT READ_ONLY ADMIN ON *.* TO 'app'@'127.0.0.1'")
        expect = "can write through read_only"
    elif case == "errant transaction":
        site_lab.sql("site-db1", "SET GLOBAL read_only = 0", "INSERT INTO app.t (v) VALUES ('errant')")
        expect = "errant transactions"
    elif case == "unknown server":
        args["traffic"]["activate"] = "nope"
        expect = "no server nope"
    elif case == "no replication password":
        del args["replication_password"]
        expect = "replication_password"
    elif case == "lagging replica":
        # a lock holds the candidate's SQL thread on a write it received: Seconds_Behind_Master grows
        blocker = site_lab.connect("site-db1")
        blocker.cursor().execute("LOCK TABLES app.t READ")
        site_lab.sql("site-db0", "INSERT INTO app.t (v) VALUES ('held back')")
        time.sleep(2.5)
        args["max_lag"] = 1
        expect = "site-db1 lags"
    elif case == "wrong credentials":
        args["login_password"] = "not-the-password-4711"
        expect = "Access denied"
    try:
        result = run_module("db_replica_promote", args)
    finally:
        if blocker:
            blocker.close()
        if case == "writer through read_only":
            site_lab.sql("site-db0", "SET SESSION sql_log_bin = 0", "REVOKE READ_ONLY ADMIN ON *.* FROM 'app'@'127.0.0.1'")
    assert result.get("failed") and expect in result["msg"], result
    assert site_lab.sql("site-db0", "SELECT @@read_only")[0][0] == 0
    assert not site_lab.server_states("db")["old"] & 1
    secrets = list(site_lab.site()["site-db0"]["users"].values()) + ["not-the-password-4711"]
    assert not any(secret in json.dumps(result) for secret in secrets)


def start_module(module, args):
    """The module in its own session, so that it can be killed with everything it started."""
    command = ["ansible", "localhost", "-m", "cloudshift.migrate." + module, "-a", json.dumps(args)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(process, condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the module ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill the module did not come"
        time.sleep(0.02)
    kill_tree(process.pid)
    process.wait()


def served_once(writer, names):
    """Every acknowledged write is on each server once."""
    for name in names:
        stored = rows(name)[1:] if name in site_lab.NAMES else pg_rows(name)
        assert len(stored) == len(set(stored)), name
        assert set(writer.acked) <= set(stored), name


@pytest.mark.parametrize("then", ["re-run", "revert"])
def test_killed_right_after_the_freeze(fresh, then):
    """The module dies while it waits for the candidate (frozen primary, nothing promoted): the same
    call finishes the flip; the reversed call (the revert) undoes the freeze. No write is lost."""
    writer = site_lab.Writer()
    writer.start()
    time.sleep(0.3)
    blocker = site_lab.connect("site-db1")
    blocker.cursor().execute("LOCK TABLES app.t READ")  # the candidate cannot catch up: the module waits
    try:
        process = start_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old",
                                                               wait_timeout=60, max_lag=100000))
        kill_when(process, lambda: site_lab.sql("site-db0", "SELECT @@read_only")[0][0] == 1)
    finally:
        blocker.close()
    frozen = len(writer.acked)
    time.sleep(0.3)
    assert len(writer.acked) == frozen  # no write gets through the freeze
    if then == "re-run":
        result = run_module("db_replica_promote", flip_args("site-db0", "site-db1", ["site-db2"], "new", "old"))
        assert result["flipped"] and not result.get("failed"), result
        primary = "site-db1"
    else:
        result = run_module("db_replica_promote", flip_args("site-db1", "site-db0", ["site-db2"], "old", "new"))
        assert result.get("recovered") and not result["flipped"] and not result.get("failed"), result
        assert "site-db0: SET GLOBAL read_only = 0" in result["actions"]
        primary = "site-db0"
        assert site_lab.sql("site-db1", "SHOW SLAVE STATUS")[0][0]  # still a replica of site-db0
        again = run_module("db_replica_promote", flip_args("site-db1", "site-db0", ["site-db2"], "old", "new"))
        assert not again["changed"] and not again.get("failed"), again  # the revert is done: nothing to do
    wait_for_writes(writer, frozen)
    writer.finish()
    assert len(writer.acked) > frozen  # writes came back
    assert site_lab.sql(primary, "SELECT @@read_only")[0][0] == 0
    site_lab.wait_applied([n for n in site_lab.NAMES if n != primary],
                          site_lab.sql(primary, "SELECT @@gtid_binlog_pos")[0][0])
    served_once(writer, site_lab.NAMES)


def http(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()


def test_traffic_switch_web_maintenance_and_reload(fresh, tmp_path):
    proxy = site_lab.site()["site-haproxy"]
    base = dict(socket=proxy["socket"], state_file=proxy["server_state_file"], migration_id="web-test")
    assert http(proxy["web_url"]) == (200, "old")
    plan = run_module("traffic_switch", dict(base, backend="web", activate="new", deactivate=["old"]), check=True)
    assert plan["changed"] and http(proxy["web_url"]) == (200, "old")
    note = run_module("traffic_switch", dict(base, maintenance=True, maintenance_acl=proxy["maintenance_acl"]))
    assert note["changed"] and http(proxy["web_url"]) == (503, "maintenance")
    switched = run_module("traffic_switch", dict(base, backend="web", activate="new", deactivate=["old"],
                                                 maintenance=False, maintenance_acl=proxy["maintenance_acl"]),
                          ledger_dir=tmp_path)
    assert switched["changed"] and switched["servers"]["old"]["state"] == "maint", switched
    assert http(proxy["web_url"]) == (200, "new")
    again = run_module("traffic_switch", dict(base, backend="web", activate="new", deactivate=["old"]))
    assert not again["changed"] and again["actions"] == []
    # a restart of HAProxy (a reload loses runtime changes) keeps the switch: the server-state file
    subprocess.run(LAB + ["down", "site-haproxy"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(LAB + ["up", "site-haproxy"], check=True, stdout=subprocess.DEVNULL)
    time.sleep(1.5)
    assert http(proxy["web_url"]) == (200, "new")
    bad = run_module("traffic_switch", dict(base, backend="web", activate="nope"))
    assert bad.get("failed") and "no server nope" in bad["msg"]


def pg_args(primary, candidate, **extra):
    users = site_lab.site()["site-pg0"]["users"]
    args = dict(engine="postgresql", primary=site_lab.pg_node_spec(primary), candidate=site_lab.pg_node_spec(candidate),
                login_user="admin", login_password=users["admin"], replication_user="repl",
                replication_password=users["repl"], migration_id="site-pg-test",
                traffic=site_lab.traffic("pg", site_lab.pg_server(candidate)))
    args.update(extra)
    return args


@pytest.fixture
def fresh_pg():
    site_lab.fresh_postgres(LAB)


def pg_rows(name):
    conn = site_lab.pg_connect(name)
    try:
        return [row[0] for row in conn.execute("SELECT v FROM t")]
    finally:
        conn.close()


def test_postgresql_flip_and_revert_under_writes_lose_nothing(fresh_pg, tmp_path):
    writer = site_lab.PgWriter()
    writer.start()
    time.sleep(0.5)
    flip = run_module("db_replica_promote", pg_args("site-pg0", "site-pg1"), ledger_dir=tmp_path)
    assert flip["flipped"] and not flip.get("failed"), flip
    assert flip["outage_ms"] < 3000, flip["timings"]
    assert site_lab.server_states("pg")["old"] & 1 and not site_lab.server_states("pg")["new"] & 1
    time.sleep(0.5)
    again = run_module("db_replica_promote", pg_args("site-pg0", "site-pg1"))
    assert not again["changed"], again
    revert = run_module("db_replica_promote", pg_args("site-pg1", "site-pg0"), ledger_dir=tmp_path)
    assert revert["flipped"], revert
    time.sleep(0.5)
    writer.finish()
    assert len(writer.acked) > 50
    time.sleep(1)  # the standby replays the last rows
    for name in site_lab.PG_NAMES:
        stored = pg_rows(name)
        assert len(stored) == len(set(stored)), name
        assert set(writer.acked) <= set(stored), name
    assert not any(site_lab.site()["site-pg0"]["users"]["repl"] in action for action in flip["actions"])


def aborted_pg_flip():
    """A PostgreSQL flip whose candidate (replay paused) cannot catch up within 2 s: its result."""
    replica = site_lab.pg_connect("site-pg1", dbname="postgres")
    replica.execute("SELECT pg_wal_replay_pause()")
    try:
        conn = site_lab.pg_connect("site-pg0", user="app")
        conn.execute("INSERT INTO t (v) VALUES ('late')")
        conn.close()
        return run_module("db_replica_promote", pg_args("site-pg0", "site-pg1", wait_timeout=2, max_lag=100000))
    finally:
        replica.execute("SELECT pg_wal_replay_resume()")
        replica.close()


def test_postgresql_abort_restarts_the_old_primary(fresh_pg):
    result = aborted_pg_flip()
    assert result.get("failed") and result["aborted"], result
    conn = site_lab.pg_connect("site-pg0", user="app")
    conn.execute("INSERT INTO t (v) VALUES ('after abort')")
    conn.close()
    assert site_lab.pg_connect("site-pg1", dbname="postgres").execute("SELECT pg_is_in_recovery()").fetchone()[0]


def wait_for_writes(writer, frozen, seconds=30):
    """Until the writer has written again after the freeze (its reconnection, through the load balancer,
    takes its own time on a busy machine), at most ``seconds``; the caller asserts that it did."""
    deadline = time.monotonic() + seconds
    while len(writer.acked) <= frozen + 5 and time.monotonic() < deadline:
        time.sleep(0.1)


def pg_stopped(name):
    return not os.path.exists(os.path.join(site_lab.site()[name]["pgdata"], "postmaster.pid"))


@pytest.mark.parametrize("then", ["re-run", "revert"])
def test_postgresql_killed_right_after_the_freeze(fresh_pg, then):
    """The module dies after the clean stop of the primary, while the candidate (replay paused) lags:
    the same call starts the primary and flips; the reversed call starts it and stays. Nothing lost."""
    writer = site_lab.PgWriter()
    writer.start()
    time.sleep(0.3)
    replica = site_lab.pg_connect("site-pg1", dbname="postgres")
    replica.execute("SELECT pg_wal_replay_pause()")
    try:
        process = start_module("db_replica_promote", pg_args("site-pg0", "site-pg1", wait_timeout=60, max_lag=100000))
        kill_when(process, lambda: pg_stopped("site-pg0"))
    finally:
        replica.execute("SELECT pg_wal_replay_resume()")
        replica.close()
    frozen = len(writer.acked)
    if then == "re-run":
        result = run_module("db_replica_promote", pg_args("site-pg0", "site-pg1"))
        assert result["flipped"] and not result.get("failed"), result
        assert site_lab.server_states("pg")["old"] & 1 and not site_lab.server_states("pg")["new"] & 1
    else:
        result = run_module("db_replica_promote", pg_args("site-pg1", "site-pg0"))
        assert result.get("recovered") and not result["flipped"] and not result.get("failed"), result
        assert not site_lab.server_states("pg")["old"] & 1
    wait_for_writes(writer, frozen)
    writer.finish()
    assert len(writer.acked) > frozen
    time.sleep(1)  # the standby replays the last rows
    served_once(writer, site_lab.PG_NAMES)


def test_postgresql_preflight_needs_a_stop_command_and_good_credentials(fresh_pg):
    args = pg_args("site-pg0", "site-pg1")
    del args["primary"]["stop_command"]
    result = run_module("db_replica_promote", args)
    assert result.get("failed") and "needs stop_command" in result["msg"], result
    wrong = run_module("db_replica_promote", pg_args("site-pg0", "site-pg1", login_password="not-the-password-4711"))
    assert wrong.get("failed") and "authentication failed" in wrong["msg"], wrong
    assert "not-the-password-4711" not in json.dumps(wrong)
    assert not pg_stopped("site-pg0")


def dns_answer(name):
    import dns.message
    import dns.query

    info = site_lab.site()["site-dns"]
    response = dns.query.udp(dns.message.make_query("%s.%s" % (name, info["zone"]), "A"), info["server"],
                             port=info["port"], timeout=3)
    rrset = response.answer[0]
    return rrset.ttl, sorted(r.to_text() for r in rrset)


def reset_dns(info):
    """www and db back to their first addresses and TTLs (other tests move them)."""
    import dns.query
    import dns.tsigkeyring
    import dns.update

    keyring = dns.tsigkeyring.from_text({info["key_name"]: info["key_secret"]})
    update = dns.update.UpdateMessage(info["zone"], keyring=keyring, keyalgorithm="hmac-sha256")
    update.replace("www", 3600, "A", "127.0.0.10")
    update.replace("db", 3600, "A", "127.0.0.20")
    dns.query.tcp(update, info["server"], port=info["port"], timeout=5)


def test_dns_ttl_lowered_switched_and_restored(tmp_path):
    info = site_lab.site()["site-dns"]
    reset_dns(info)
    base = dict(provider="rfc2136", server=info["server"], port=info["port"], zone=info["zone"],
                key_name=info["key_name"], key_secret=info["key_secret"], migration_id="dns-test")
    before = dns_answer("db")
    lowered = run_module("traffic_switch", dict(base, records=[{"name": "db", "ttl": 60}]), ledger_dir=tmp_path)
    assert lowered["changed"] and lowered["records"][0]["previous"]["ttl"] == before[0], lowered
    assert dns_answer("db") == (60, before[1])
    plan = run_module("traffic_switch", dict(base, records=[{"name": "db", "values": ["127.0.0.21"]}]), check=True)
    assert plan["changed"] and dns_answer("db") == (60, before[1])
    switched = run_module("traffic_switch", dict(base, records=[{"name": "db", "values": ["127.0.0.21"]}]))
    assert switched["changed"] and dns_answer("db") == (60, ["127.0.0.21"])
    again = run_module("traffic_switch", dict(base, records=[{"name": "db", "values": ["127.0.0.21"]}]))
    assert not again["changed"], again
    # bad input: a key the server does not take, a name outside the zone - nothing changes
    for bad, expect in ((dict(key_secret="AAAA"), "does not take the TSIG key"),
                        (dict(records=[{"name": "db.elsewhere.test.", "values": ["127.0.0.9"]}]), "not in the zone")):
        args = dict(base, records=[{"name": "db", "values": ["127.0.0.9"]}])
        args.update(bad)
        failed = run_module("traffic_switch", args)
        assert failed.get("failed") and expect in failed["msg"] and not failed["changed"], failed
        assert info["key_secret"] not in json.dumps(failed)
    assert dns_answer("db") == (60, ["127.0.0.21"])
    restored = run_module("traffic_switch", dict(base, records=[{"name": "db", "values": before[1], "ttl": before[0]}]))
    assert restored["changed"] and dns_answer("db") == before
    with open(tmp_path / "dns-test.json") as handle:
        entries = json.load(handle)["entries"]
    assert [e["data"]["previous_ttl"] for e in entries.values() if e["type"] == "dns_record"] == [before[0]]


def fastly_requests(clear=False):
    url = site_lab.site()["site-fastly"]["url"] + "/cloudshift-lab/requests"
    request = urllib.request.Request(url, method="DELETE" if clear else "GET")
    with urllib.request.urlopen(request, timeout=5) as response:
        return [(r["method"], r["path"]) for r in json.load(response)]


def test_fastly_clone_change_validate_activate_and_roll_back(tmp_path):
    info = site_lab.site()["site-fastly"]
    with urllib.request.urlopen(urllib.request.Request(info["url"] + "/cloudshift-lab/reset", method="POST")):
        pass
    base = dict(provider="fastly", api_url=info["url"], api_token=info["token"], service_id="site",
                migration_id="cdn-test")
    plan = run_module("traffic_switch", dict(base, backends={"origin": "127.0.0.1:13482"}), check=True)
    assert plan["changed"] and all(method == "GET" for method, unused in fastly_requests()), plan
    fastly_requests(clear=True)
    switched = run_module("traffic_switch", dict(base, backends={"origin": "127.0.0.1:13482"}), ledger_dir=tmp_path)
    assert switched["changed"] and (switched["previous_version"], switched["version"]) == (1, 2), switched
    # the documented sequence: read, clone the active version, change the clone, validate, activate
    assert fastly_requests() == [
        ("GET", "/service/site/details"), ("GET", "/service/site/version/1/backend"),
        ("PUT", "/service/site/version/1/clone"), ("PUT", "/service/site/version/2/backend/origin"),
        ("GET", "/service/site/version/2/validate"), ("PUT", "/service/site/version/2/activate")]
    again = run_module("traffic_switch", dict(base, backends={"origin": "127.0.0.1:13482"}))
    assert not again["changed"], again
    rollback = run_module("traffic_switch", dict(base, activate_version=switched["previous_version"]))
    assert rollback["changed"] and rollback["version"] == 1
    bad = run_module("traffic_switch", dict(base, api_token="not-the-token", backends={"origin": "127.0.0.1:13482"}))
    assert bad.get("failed") and "401" in bad["msg"] and "not-the-token" not in json.dumps(bad)
    unknown = run_module("traffic_switch", dict(base, backends={"nope": "127.0.0.1"}))
    assert unknown.get("failed") and "no backend nope" in unknown["msg"]
    assert info["token"] not in json.dumps([switched, rollback])


def test_fastly_switch_staged_ahead_is_one_activation(tmp_path):
    info = site_lab.site()["site-fastly"]
    with urllib.request.urlopen(urllib.request.Request(info["url"] + "/cloudshift-lab/reset", method="POST")):
        pass
    base = dict(provider="fastly", api_url=info["url"], api_token=info["token"], service_id="site",
                backends={"origin": "127.0.0.1:13482"})
    fastly_requests(clear=True)
    staged = run_module("traffic_switch", dict(base, stage=True))
    assert staged["changed"] and staged["staged"] and (staged["previous_version"], staged["version"]) == (1, 2), staged
    assert ("PUT", "/service/site/version/2/activate") not in fastly_requests()  # staged, not made
    again = run_module("traffic_switch", dict(base, stage=True))
    assert not again["changed"] and again["version"] == 2, again
    fastly_requests(clear=True)
    switched = run_module("traffic_switch", base)
    assert switched["changed"] and (switched["previous_version"], switched["version"]) == (1, 2), switched
    # the flip: read, find the staged version, validate it, activate it - no clone, no change
    assert fastly_requests() == [
        ("GET", "/service/site/details"), ("GET", "/service/site/version/1/backend"),
        ("GET", "/service/site/version/2/backend"), ("GET", "/service/site/version/2/validate"),
        ("PUT", "/service/site/version/2/activate")]
    wrong = run_module("traffic_switch", dict(provider="haproxy", socket="/nonexistent", stage=True))
    assert wrong.get("failed") and "stage is for provider=fastly" in wrong["msg"]
