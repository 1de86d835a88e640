# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL streaming replication steps for db_replica_promote (same interface as mariadb.py).

PostgreSQL has no read_only switch that a session cannot undo, so the freeze is a clean
("fast") stop of the primary: it sends all its WAL, its shutdown checkpoint included, to the
connected standbys before it exits. The candidate has everything once its WAL receiver lost
the primary and it replayed all it received. Stopping, starting and rejoining the old primary
are host commands the operator gives (``stop_command``, ``start_command``; ``pgdata`` when the
module runs on the old primary's host, to make it a standby).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.db.engine import Engine

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    HAS_PSYCOPG = True
except ImportError:
    HAS_PSYCOPG = False


def lsn(value):
    """'0/3000060' -> an integer (None stays None)."""
    if not value:
        return None
    high, low = str(value).split("/")
    return (int(high, 16) << 32) + int(low, 16)


def config_string(value):
    """A value as a quoted string of postgresql.conf (what ALTER SYSTEM writes): ' and \\ doubled."""
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "''")


# what libpq says when nothing listens (TCP, unix socket) or the server is shutting down or starting
NOT_RUNNING = ("Connection refused", "No such file or directory", "the database system is shutting down",
               "the database system is starting up", "the database system is not yet accepting connections")

# a host command that does not end within this many seconds is killed (the freeze's own bound is freeze_timeout)
COMMAND_TIMEOUT = 120


def tls_arguments(spec):
    """libpq's TLS settings for a node: O(ssl=false) disable; O(ssl_ca) or O(ssl=true) verify-full (against
    O(ssl_ca), else the system's CAs); unset, prefer (TLS whenever the server offers it)."""
    if spec.get("ssl") is False:
        return dict(sslmode="disable")
    if spec.get("ssl_ca") or spec.get("ssl"):
        return dict(sslmode="verify-full", sslrootcert=spec.get("ssl_ca") or "system")
    return dict(sslmode="prefer")


class Node:
    def __init__(self, name, spec, log, runner, connect_timeout=5):
        self.name, self.spec, self.log, self.connect_timeout = name, spec, log, connect_timeout
        self.runner = runner  # AnsibleModule.run_command
        self._conn = None

    @property
    def address(self):
        return "%s:%s" % (self.spec.get("host"), self.spec.get("port"))

    def connect(self):
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    host=self.spec.get("socket") or self.spec["host"], port=int(self.spec.get("port") or 5432),
                    user=self.spec["user"], password=self.spec.get("password") or "",
                    dbname=self.spec.get("dbname") or "postgres", autocommit=True,
                    connect_timeout=self.connect_timeout, **tls_arguments(self.spec))
            except psycopg.Error as exc:
                raise MigrateError("cannot connect to %s (%s): %s" % (self.name, self.address, str(exc).strip()))
        return self._conn

    def run(self, statement, args=None, note=True, masked=None):
        """``statement`` (a string or a psycopg ``sql`` composition) with ``args`` as parameters; ``masked`` is
        how it is noted when it holds a secret (the server's message is then left out: it may quote it)."""
        shown = masked or (statement if isinstance(statement, str) else statement.as_string(self.connect()))
        if note:
            self.log.append("%s: %s" % (self.name, shown))
        try:
            cursor = self.connect().execute(statement, args)
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            detail = "SQLSTATE %s" % getattr(exc, "sqlstate", None) if masked else str(exc).strip()
            raise MigrateError("%s (%s): %s failed: %s" % (self.name, self.address, shown, detail))

    def one(self, statement, note=False):
        rows = self.run(statement, note=note)
        return rows[0] if rows else None

    def reachable(self):
        """False when the server is not running (stopped cleanly, as a frozen primary is); refused
        credentials are an error, not a stopped server."""
        try:
            self.connect()
            return True
        except MigrateError as exc:
            # only a server that is not running (or is stopping or starting) counts as stopped: a refused
            # certificate or credentials, or a timeout, are errors - never a reason to start or promote anything
            if any(sign in exc.msg for sign in NOT_RUNNING):
                return False
            raise

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # pylint: disable=broad-except
                pass
            self._conn = None

    def host_command(self, key, timeout=COMMAND_TIMEOUT):
        """The operator's own command line (ssh, sudo, pg_ctlcluster ...), run by a shell under coreutils'
        ``timeout``, which kills it and all it started (its process group) after ``timeout`` seconds."""
        command = self.spec.get(key)
        if not command:
            raise MigrateError("%s needs %s for this step" % (self.name, key))
        self.log.append("%s: $ %s" % (self.name, command))
        rc, out, err = self.runner(["timeout", "--kill-after=5", "%g" % timeout, "/bin/sh", "-c", command])
        if rc in (124, 137):
            raise MigrateError("%s: %s did not end within %ss (killed)" % (self.name, key, timeout))
        if rc != 0:
            raise MigrateError("%s: %s failed (exit %d): %s" % (self.name, key, rc, (out + err)[-800:]))


def conninfo_fields(conninfo):
    """'host=h port=5 user=u password=...' -> {'host': 'h', 'port': '5', ...} (quoted values kept whole)."""
    fields = {}
    for match in re.finditer(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", conninfo or ""):
        value = match.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        fields[match.group(1)] = value
    return fields


class PostgreSQL(Engine):
    name = "postgresql"
    default_port = 5432
    frozen_primary_is_down = True

    def __init__(self, log, runner):
        if not HAS_PSYCOPG:
            raise MigrateError("psycopg (3) is needed on the host that runs db_replica_promote for PostgreSQL")
        super(PostgreSQL, self).__init__(log)
        self.runner = runner
        self.final = None

    def node(self, name, spec):
        return Node(name, spec, self.log, self.runner)

    def status(self, node):
        if not node.reachable():
            # a cleanly stopped old primary: frozen
            return dict(down=True, read_only=True, replica=None, position="", server_id=None)
        recovery = node.one("SELECT pg_is_in_recovery()")[0]
        status = dict(down=False, read_only=bool(recovery), replica=None, timeline=None, position="")
        if not recovery:
            position, walfile = node.one("SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())")
            status.update(position=position, timeline=int(walfile[:8], 16))
            return status
        receiver = node.one("SELECT status, sender_host, sender_port, received_tli FROM pg_stat_wal_receiver")
        status["timeline"] = receiver[3] if receiver else None
        if not receiver:
            # not connected (its primary is stopped, or it just restarted): where it would connect to
            source = conninfo_fields(node.one("SELECT current_setting('primary_conninfo')")[0])
            receiver = (None, source.get("host"), source.get("port") or self.default_port, None)
        received, replayed, lag = node.one(
            "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
            "CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
            "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END")
        status["position"] = replayed or ""
        status["replica"] = dict(
            source_host=receiver[1], source_port=int(receiver[2]),
            io_running=receiver[0] == "streaming", sql_running=True,
            lag=None if lag is None else float(lag), received=received,
            error="" if receiver[0] else "no WAL receiver")
        return status

    def follows(self, status, source):
        """A standby of ``source`` - or a standby whose WAL receiver has not connected yet (just
        repointed or restarted): starting it again would fail, so it counts as following."""
        replica = status.get("replica")
        if status.get("down") or replica is None:
            return False
        return not replica["source_host"] or self.replicates_from(status, source)

    def interrupted_freeze(self, primary_status, candidate_status, primary, candidate):
        return bool(candidate_status.get("down")) and primary_status["replica"] is not None \
            and self.replicates_from(primary_status, candidate)

    def wait_streaming(self, standby, timeout):
        """After its primary started again: the standby streams (True) within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replica = self.status(standby)["replica"]
            if replica and replica["io_running"]:
                return True
            time.sleep(0.05)
        return False

    def preflight(self, primary, candidate, others, max_lag, allowed_writers, login_user):
        facts = dict(primary=self.status(primary), candidate=self.status(candidate))
        facts["others"] = dict((node.name, self.status(node)) for node in others)
        p, c = facts["primary"], facts["candidate"]
        problems = []
        if p["down"] or p["read_only"]:
            problems.append("%s is not a running primary" % primary.name)
        if not primary.spec.get("stop_command"):
            problems.append("%s needs stop_command: PostgreSQL is frozen by a clean stop" % primary.name)
        if not self.replicates_from(c, primary):
            problems.append("%s is not a standby streaming from %s" % (candidate.name, primary.name))
        elif not c["replica"]["io_running"]:
            problems.append("%s does not stream: %s" % (candidate.name, c["replica"]["error"] or "not streaming"))
        elif c["replica"]["lag"] is not None and c["replica"]["lag"] > max_lag:
            problems.append("%s lags %.1f s behind (max_lag %s)" % (candidate.name, c["replica"]["lag"], max_lag))
        if p.get("timeline") and c.get("timeline") and p["timeline"] != c["timeline"]:
            problems.append("%s is on timeline %s, %s on %s" % (
                candidate.name, c.get("timeline"), primary.name, p.get("timeline")))
        for node in others:
            status = facts["others"][node.name]
            if not (self.replicates_from(status, primary) or self.replicates_from(status, candidate)):
                problems.append("%s streams from neither %s nor %s" % (node.name, primary.name, candidate.name))
        return facts, problems

    def freeze(self, primary, timeout):
        self.final = primary.one("SELECT pg_current_wal_lsn()::text", note=True)[0]
        primary.close()
        primary.host_command("stop_command", timeout)

    def unfreeze(self, primary):
        primary.host_command("start_command")

    def position(self, primary):
        return self.final

    def wait(self, candidate, position, timeout):
        """All the primary sent is replayed: the receiver lost the primary and replay caught up."""
        target = lsn(position)
        deadline = time.monotonic() + timeout
        self.log.append("%s: wait until the WAL receiver lost the primary and replay >= %s" % (candidate.name, position))
        while time.monotonic() < deadline:
            streaming, received, replayed = candidate.one(
                "SELECT (SELECT status = 'streaming' FROM pg_stat_wal_receiver), "
                "pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text")
            done = lsn(replayed) is not None and lsn(replayed) > target and lsn(replayed) >= (lsn(received) or 0)
            if done and not streaming:
                return True
            time.sleep(0.001)
        return False

    def promote(self, candidate, status=None):
        candidate.run("SELECT pg_promote(wait => false)")
        deadline = time.monotonic() + 60
        while candidate.one("SELECT pg_is_in_recovery()")[0]:
            if time.monotonic() > deadline:
                raise MigrateError("%s did not leave recovery within 60 s of pg_promote" % candidate.name)
            time.sleep(0.001)

    def follow(self, replica, source, user, password, reset_position=False):
        host = source.spec.get("replication_host") or source.spec.get("host")
        port = int(source.spec.get("replication_port") or source.spec.get("port") or 5432)
        # libpq's own quoting of every value; the result travels as an SQL literal or a config string
        tls = dict(sslmode="prefer")
        if source.spec.get("ssl") is False:
            tls = dict(sslmode="disable")
        elif source.spec.get("replication_ssl_ca"):
            # the CA file on the standby's host: the standby verifies its new primary
            tls = dict(sslmode="verify-full", sslrootcert=source.spec["replication_ssl_ca"])
        conninfo = make_conninfo(host=host, port=str(port), user=user, password=password,
                                 application_name=replica.name, **tls)
        masked = make_conninfo(host=host, port=str(port), user=user, password="********",
                               application_name=replica.name, **tls)
        if not reset_position:
            # a running standby: a new primary_conninfo is picked up on reload (PostgreSQL >= 13)
            statement = sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(conninfo))
            replica.run(statement, masked="ALTER SYSTEM SET primary_conninfo = %s" % config_string(masked))
            replica.run("SELECT pg_reload_conf()")
            return
        # the old primary, stopped cleanly: a standby of the new one (no pg_rewind needed after a clean stop)
        self.write_standby_files(replica, "primary_conninfo = %s" % config_string(conninfo),
                                 "primary_conninfo = %s" % config_string(masked))
        replica.host_command("start_command")

    def write_standby_files(self, node, setting, shown):
        """standby.signal, and ``setting`` in postgresql.auto.conf (None: only the signal) in ``pgdata``."""
        pgdata = node.spec.get("pgdata")
        if not pgdata:
            raise MigrateError("%s needs pgdata (and start_command) to become a standby" % node.name)
        owner = os.stat(pgdata)
        signal_file = os.path.join(pgdata, "standby.signal")
        auto = os.path.join(pgdata, "postgresql.auto.conf")
        self.log.append("%s: touch %s%s" % (node.name, signal_file, "; %s in %s" % (shown, auto) if setting else ""))
        paths = [signal_file]
        with open(signal_file, "w"):
            pass
        if setting:
            lines = []
            if os.path.exists(auto):
                with open(auto) as handle:
                    lines = [line for line in handle if not line.startswith("primary_conninfo")]
            lines.append(setting + "\n")
            with open(auto, "w") as handle:
                handle.writelines(lines)
            paths.append(auto)
        for path in paths:
            os.chown(path, owner.st_uid, owner.st_gid)
            os.chmod(path, 0o600)

    def fence_plan(self, old_primary):
        """A stopped old primary left alone (attach_old_primary=false) would start as a primary again, and
        writable: with standby.signal in its data directory it starts read-only (a standby of nobody)."""
        pgdata = old_primary.spec.get("pgdata")
        if not pgdata or not os.path.isdir(pgdata) or os.path.exists(os.path.join(pgdata, "standby.signal")):
            return None
        return "fence %s: standby.signal in %s, so that a restart cannot make it writable" % (old_primary.name, pgdata)

    def fence(self, old_primary):
        self.write_standby_files(old_primary, None, None)
