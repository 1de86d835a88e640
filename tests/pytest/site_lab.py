# -*- coding: utf-8 -*-
"""Helpers for the site tests: the lab's three MariaDB servers and HAProxy (lab/services/site.py)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pymysql

from conftest import ROOT

SITE_JSON = os.path.join(ROOT, ".lab", "site.json")
NAMES = ("site-db0", "site-db1", "site-db2")


def site():
    with open(SITE_JSON) as handle:
        return json.load(handle)


def connect(name, user="admin", **kwargs):
    info = site()[name]
    return pymysql.connect(host=info["host"], port=info["port"], user=user, password=info["users"][user],
                           autocommit=True, ssl_disabled=True, connect_timeout=3, **kwargs)


def sql(name, *statements, user="admin"):
    conn = connect(name, user)
    try:
        with conn.cursor() as cursor:
            result = None
            for statement in statements:
                cursor.execute(statement)
                result = cursor.fetchall()
            return result
    finally:
        conn.close()


def haproxy(command):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(site()["site-haproxy"]["socket"])
    client.sendall((command + "\n").encode())
    chunks = []
    while True:
        chunk = client.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    client.close()
    return b"".join(chunks).decode()


def server_states(backend):
    lines = [line.split() for line in haproxy("show servers state %s" % backend).splitlines()[1:]
             if line and not line.startswith("#")]
    return dict((fields[3], int(fields[6])) for fields in lines)  # server -> admin state (0 ready, 1 maint)


def fresh_replication():
    """db0 primary with table app.t, db1 and db2 its GTID replicas; HAProxy back to old."""
    repl = site()["site-db0"]["users"]["repl"]
    for name in NAMES:
        sql(name, "SET SESSION sql_log_bin = 0", "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0",
            "DROP TABLE IF EXISTS app.t", "RESET MASTER", "SET GLOBAL gtid_slave_pos = ''")
    sql("site-db0", "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB",
        "INSERT INTO app.t (v) VALUES ('before')")
    for name in NAMES[1:]:
        sql(name, "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', "
                  "MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos" % (site()["site-db0"]["port"], repl),
            "SET GLOBAL read_only = 1", "START SLAVE")
    wait_applied(NAMES[1:], sql("site-db0", "SELECT @@gtid_binlog_pos")[0][0])
    for backend in ("db", "web"):
        haproxy("set server %s/old state ready" % backend)
        haproxy("set server %s/new state maint" % backend)
    for value in haproxy("show acl %s" % site()["site-haproxy"]["maintenance_acl"]).split("\n"):
        if " " in value:
            haproxy("del acl %s %s" % (site()["site-haproxy"]["maintenance_acl"], value.split(" ", 1)[1]))


def wait_applied(names, position, timeout=10):
    for name in names:
        waited = sql(name, "SELECT MASTER_GTID_WAIT('%s', %s)" % (position, timeout))[0][0]
        assert waited == 0, "%s did not reach %s" % (name, position)


class Writer(threading.Thread):
    """Writes through HAProxy's database frontend as the application, one row at a time; records
    which writes were acknowledged and the longest gap between two acknowledged writes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.acked, self.failed = [], 0
        self.acked_at = []
        self.attempts = 0  # writes tried: w1 .. w<attempts>; a stored row outside them is a phantom

    def run(self):
        info, app = site()["site-haproxy"]["db"], site()["site-db0"]["users"]["app"]
        n, conn = 0, None
        while not self.stop.is_set():
            n += 1
            self.attempts = n
            try:
                if conn is None:
                    conn = pymysql.connect(host=info["host"], port=info["port"], user="app", password=app,
                                           autocommit=True, ssl_disabled=True, connect_timeout=1, read_timeout=2,
                                           write_timeout=2)
                with conn.cursor() as cursor:
                    cursor.execute("INSERT INTO app.t (v) VALUES (%s)", ("w%d" % n,))
                self.acked.append("w%d" % n)
                self.acked_at.append(time.monotonic())
            except pymysql.MySQLError:
                self.failed += 1
                try:
                    conn.close()
                except Exception:  # pylint: disable=broad-except
                    pass
                conn = None
                time.sleep(0.001)

    def finish(self):
        self.stop.set()
        self.join(5)

    def max_gap_ms(self, after=None):
        times = [t for t in self.acked_at if after is None or t >= after]
        return max((b - a for a, b in zip(times, times[1:])), default=0) * 1000.0


PG_NAMES = ("site-pg0", "site-pg1")
PG_STANDBY2 = "site-pg2"  # a second standby of site-pg0, for the flips that repoint replicas


def pg_connect(name, user="admin", dbname="app"):
    import psycopg

    info = site()[name]
    return psycopg.connect(host="127.0.0.1", port=info["port"], user=user, password=info["users"][user],
                           dbname=dbname, autocommit=True, connect_timeout=2)


def fresh_postgres(labctl):
    """A new PostgreSQL pair (site-pg0 primary, site-pg1 streaming) with an empty table app.public.t."""
    import subprocess

    names = list(PG_NAMES) + [PG_STANDBY2]
    subprocess.run(labctl + ["down", "--purge"] + names, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(labctl + ["up"] + names, check=True, stdout=subprocess.DEVNULL)
    haproxy("set server pg/old state ready")
    haproxy("set server pg/new state maint")
    conn = pg_connect("site-pg0")
    conn.execute("CREATE TABLE t (id serial PRIMARY KEY, v text)")
    conn.execute("GRANT ALL ON t, t_id_seq TO app")
    conn.close()


def pg_node_spec(name):
    info = site()[name]
    return {"name": name, "host": "127.0.0.1", "port": info["port"], "pgdata": info["pgdata"], "dbname": "postgres",
            "stop_command": "runuser -u postgres -- %s/pg_ctl -D %s stop -m fast -w" % (info["bin"], info["pgdata"]),
            "start_command": "python3 %s/lab/labctl.py up %s" % (ROOT, name)}


def traffic(backend, activate):
    """db_replica_promote's traffic option: HAProxy sends ``backend`` to server ``activate`` (old or new)."""
    proxy = site()["site-haproxy"]
    return dict(socket=proxy["socket"], backend=backend, activate=activate,
                deactivate=["new" if activate == "old" else "old"], state_file=proxy["server_state_file"])


def pg_server(name):
    """The HAProxy server (backend "pg") in front of a PostgreSQL node."""
    return "old" if name == "site-pg0" else "new"


class PgWriter(Writer):
    """Writes as the application through HAProxy's PostgreSQL frontend (backend "pg")."""

    def run(self):
        import psycopg

        info, password = site()["site-haproxy"]["pg"], site()["site-pg0"]["users"]["app"]
        n, conn = 0, None
        while not self.stop.is_set():
            n += 1
            self.attempts = n
            try:
                if conn is None:
                    conn = psycopg.connect(host=info["host"], port=info["port"], user="app", password=password,
                                           dbname="app", autocommit=True, connect_timeout=2, sslmode="disable")
                conn.execute("INSERT INTO t (v) VALUES (%s)", ("w%d" % n,))
                self.acked.append("w%d" % n)
                self.acked_at.append(time.monotonic())
            except psycopg.Error:
                self.failed += 1
                try:
                    conn.close()
                except Exception:  # pylint: disable=broad-except
                    pass
                conn = None
                time.sleep(0.001)


def no_replication():
    """db0 alone with table app.t (one row); db1 and db2 empty, writable, replicating from nobody;
    HAProxy back to the old servers; the lab's DNS names back to the old addresses and TTLs."""
    for name in NAMES:
        sql(name, "SET SESSION sql_log_bin = 0", "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0",
            "DROP TABLE IF EXISTS app.t", "RESET MASTER", "SET GLOBAL gtid_slave_pos = ''")
    sql("site-db0", "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB",
        "INSERT INTO app.t (v) VALUES ('before')")
    for backend in ("db", "web"):
        haproxy("set server %s/old state ready" % backend)
        haproxy("set server %s/new state maint" % backend)
