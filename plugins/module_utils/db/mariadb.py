# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB (and MySQL-compatible GTID) replication steps for db_replica_promote.

Every statement goes through ``Node.run``, which notes it (passwords masked) in the
module's actions. Connections are made once, before the freeze, with SSL off on
loopback-speed links (PyMySQL builds an SSL context per connect: 60-150 ms).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.db.engine import Engine

try:
    import pymysql
    import pymysql.cursors

    HAS_PYMYSQL = True
except ImportError:
    HAS_PYMYSQL = False

SYSTEM_ACCOUNTS = ("'root'@'localhost'", "'mariadb.sys'@'localhost'", "'mysql'@'localhost'")


def quote(value):
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "''")


class Node:
    """One server: a connection, its statements noted in ``log``."""

    def __init__(self, name, spec, log, connect_timeout=5):
        self.name = name
        self.spec = spec
        self.log = log
        self.connect_timeout = connect_timeout
        self._conn = None

    @property
    def address(self):
        return "%s:%s" % (self.spec.get("host"), self.spec.get("port"))

    def connect(self):
        if self._conn is None:
            kwargs = dict(user=self.spec["user"], password=self.spec.get("password") or "", autocommit=True,
                          connect_timeout=self.connect_timeout, cursorclass=pymysql.cursors.DictCursor)
            if self.spec.get("socket"):
                kwargs["unix_socket"] = self.spec["socket"]
            else:
                kwargs.update(host=self.spec["host"], port=int(self.spec.get("port") or 3306))
                if not self.spec.get("ssl"):
                    kwargs["ssl_disabled"] = True
            try:
                self._conn = pymysql.connect(**kwargs)
            except pymysql.MySQLError as exc:
                raise MigrateError("cannot connect to %s (%s): %s" % (self.name, self.address, exc.args[-1]))
        return self._conn

    def run(self, statement, note=True, masked=None):
        if note:
            self.log.append("%s: %s" % (self.name, masked or statement))
        try:
            with self.connect().cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall()
        except pymysql.MySQLError as exc:
            raise MigrateError("%s (%s): %s failed: %s" % (self.name, self.address, masked or statement, exc.args[-1]))

    def one(self, statement, note=False):
        rows = self.run(statement, note=note)
        return rows[0] if rows else {}

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # pylint: disable=broad-except
                pass
            self._conn = None


class MariaDB(Engine):
    """The engine: status, preflight and the switchover steps."""

    name = "mariadb"
    default_port = 3306

    def __init__(self, log):
        if not HAS_PYMYSQL:
            raise MigrateError("PyMySQL is needed on the host that runs db_replica_promote")
        super(MariaDB, self).__init__(log)

    def node(self, name, spec):
        return Node(name, spec, self.log)

    # -- reading ------------------------------------------------------------------

    def status(self, node):
        row = node.one("SELECT @@server_id AS server_id, @@read_only AS read_only, @@log_bin AS log_bin, "
                       "@@log_slave_updates AS log_slave_updates, @@gtid_binlog_pos AS binlog_pos, "
                       "@@gtid_slave_pos AS slave_pos, @@gtid_binlog_state AS binlog_state")
        replica = node.one("SHOW SLAVE STATUS")
        status = dict(server_id=int(row["server_id"]), read_only=bool(int(row["read_only"])),
                      log_bin=bool(int(row["log_bin"])), log_slave_updates=bool(int(row["log_slave_updates"])),
                      position=row["binlog_pos"] or "", slave_pos=row["slave_pos"] or "",
                      binlog_state=row["binlog_state"] or "", replica=None)
        if replica:
            status["replica"] = dict(
                source_host=replica.get("Master_Host"), source_port=int(replica.get("Master_Port") or 0),
                io_running=replica.get("Slave_IO_Running") == "Yes",
                sql_running=replica.get("Slave_SQL_Running") == "Yes",
                lag=replica.get("Seconds_Behind_Master"), using_gtid=replica.get("Using_Gtid"),
                error=replica.get("Last_IO_Error") or replica.get("Last_SQL_Error") or "")
        return status

    def follows(self, status, source):
        return self.replicates_from(status, source)

    def interrupted_freeze(self, primary_status, candidate_status, primary, candidate):
        c = candidate_status
        return c["replica"] is None and c["read_only"] and self.replicates_from(primary_status, candidate) \
            and not self.errant(primary_status, c)

    def writers_through_read_only(self, node, allowed):
        """Accounts that can write while read_only=1 (READ_ONLY ADMIN), but for the allowed ones."""
        rows = node.run("SELECT GRANTEE AS grantee FROM information_schema.USER_PRIVILEGES "
                        "WHERE PRIVILEGE_TYPE = 'READ_ONLY ADMIN'", note=False)
        allowed = set(SYSTEM_ACCOUNTS) | set(allowed)
        return sorted(row["grantee"] for row in rows if row["grantee"] not in allowed
                      and row["grantee"].split("@")[0].strip("'") not in allowed)

    @staticmethod
    def errant(candidate_status, primary_status):
        """GTIDs the candidate wrote itself that the primary does not have."""
        own = candidate_status["server_id"]
        primary = dict((gtid.rsplit("-", 1)[0], int(gtid.rsplit("-", 1)[1]))
                       for gtid in re.split(r"\s*,\s*", primary_status["binlog_state"]) if gtid)
        found = []
        for gtid in re.split(r"\s*,\s*", candidate_status["binlog_state"]):
            if not gtid:
                continue
            domain, server, seq = gtid.split("-")
            if int(server) == own and primary.get("%s-%s" % (domain, server), -1) < int(seq):
                found.append(gtid)
        return found

    def preflight(self, primary, candidate, others, max_lag, allowed_writers, login_user):
        """Facts and problems; nothing is changed."""
        facts = dict(primary=self.status(primary), candidate=self.status(candidate))
        facts["others"] = dict((node.name, self.status(node)) for node in others)
        problems = []
        p, c = facts["primary"], facts["candidate"]
        if not p["log_bin"]:
            problems.append("%s has no binary log: nothing to replicate from" % primary.name)
        if not self.replicates_from(c, primary):
            problems.append("%s is not a replica of %s" % (candidate.name, primary.name))
        elif not (c["replica"]["io_running"] and c["replica"]["sql_running"]):
            problems.append("%s's replication is not running: %s" % (candidate.name, c["replica"]["error"] or "stopped"))
        elif c["replica"]["lag"] is None or int(c["replica"]["lag"]) > max_lag:
            problems.append("%s lags %s s behind (max_lag %s)" % (candidate.name, c["replica"]["lag"], max_lag))
        if not (c["log_bin"] and c["log_slave_updates"]) and others:
            problems.append("%s needs log_bin and log_slave_updates to feed the other replicas" % candidate.name)
        errant = self.errant(c, p)
        if errant:
            problems.append("%s has errant transactions (written on it, not on %s): %s" % (
                candidate.name, primary.name, ", ".join(errant)))
        for node in others:
            status = facts["others"][node.name]
            if not (self.replicates_from(status, primary) or self.replicates_from(status, candidate)):
                problems.append("%s replicates from neither %s nor %s" % (node.name, primary.name, candidate.name))
        writers = self.writers_through_read_only(primary, list(allowed_writers) + [login_user])
        if writers:
            problems.append("%s can write through read_only on %s (READ_ONLY ADMIN): the freeze would not stop them"
                            % (", ".join(writers), primary.name))
        return facts, problems

    # -- the switchover steps --------------------------------------------------------

    def freeze(self, primary):
        primary.run("SET GLOBAL read_only = 1")

    def unfreeze(self, primary):
        primary.run("SET GLOBAL read_only = 0")

    def position(self, primary):
        return primary.one("SELECT @@gtid_binlog_pos AS pos", note=True)["pos"] or ""

    def wait(self, candidate, position, timeout):
        row = candidate.one("SELECT MASTER_GTID_WAIT(%s, %s) AS waited" % (quote(position), float(timeout)), note=True)
        return int(row["waited"]) == 0

    def promote(self, candidate):
        candidate.run("STOP SLAVE")
        candidate.run("RESET SLAVE ALL")
        candidate.run("SET GLOBAL read_only = 0")

    def follow(self, replica, source, user, password, reset_position=False):
        """Make ``replica`` replicate from ``source`` by GTID (read_only stays on)."""
        replica.run("STOP SLAVE")
        if reset_position:
            # the old primary: its own binlog is where it stands as a replica
            replica.run("SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos")
        host = source.spec.get("replication_host") or source.spec.get("host")
        port = int(source.spec.get("replication_port") or source.spec.get("port") or 3306)
        statement = "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%%s, " \
                    "MASTER_USE_GTID=slave_pos" % (quote(host), port, quote(user))
        replica.run(statement % quote(password), masked=statement % "'********'")
        replica.run("SET GLOBAL read_only = 1")
        replica.run("START SLAVE")
