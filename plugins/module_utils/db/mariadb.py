# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB (and MySQL-compatible GTID) replication steps for db_replica_promote.

Every statement goes through ``Node.run``, which notes it (passwords masked) in the
module's actions; values travel as the driver's parameters, never spliced into SQL.
Connections are made once, before the freeze, with SSL off on loopback-speed links
(PyMySQL builds an SSL context per connect: 60-150 ms). Every statement is bounded:
the connection's read timeout, and the freeze by ``lock_wait_timeout``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import ssl
import time

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.db.engine import Engine

try:
    import pymysql
    import pymysql.cursors

    HAS_PYMYSQL = True
except ImportError:
    HAS_PYMYSQL = False

# Accounts every server has that hold READ_ONLY ADMIN: allowed while no session of theirs (but the
# module's own) is connected - an application that uses one of them would write through the freeze.
SYSTEM_ACCOUNTS = ("'root'@'localhost'", "'mariadb.sys'@'localhost'", "'mysql'@'localhost'")
# Global privileges that let a session write while read_only=1 (SUPER did before 10.11).
WRITE_THROUGH = ("READ_ONLY ADMIN", "ALL PRIVILEGES")
WRITE_THROUGH_BEFORE_10_11 = WRITE_THROUGH + ("SUPER",)


def account(user, host):
    return "'%s'@'%s'" % (user, host) if host is not None else "'%s'" % user


def gtid_seqs(gtid_list):
    """'0-1-5,1-2-7' -> {domain: highest seq}"""
    seqs = {}
    for gtid in re.split(r"\s*,\s*", gtid_list or ""):
        if gtid:
            domain, unused, seq = gtid.split("-")
            seqs[domain] = max(seqs.get(domain, -1), int(seq))
    return seqs


def tls_arguments(spec):
    """PyMySQL's TLS arguments for a node: O(ssl=false) none; O(ssl_ca) verifies the certificate and the host
    name against that CA; O(ssl=true) requires TLS (verified against the system's CAs without O(ssl_ca));
    unset, TLS whenever the server offers it (PyMySQL falls back to plain when it does not)."""
    if spec.get("ssl") is False:
        return dict(ssl_disabled=True)
    if spec.get("ssl_ca"):
        return dict(ssl=dict(ca=spec["ssl_ca"], check_hostname=True))
    if spec.get("ssl"):
        return dict(ssl=dict(check_hostname=True, verify_mode=ssl.CERT_REQUIRED))
    return dict(ssl=dict(check_hostname=False, verify_mode=ssl.CERT_NONE))


class Node:
    """One server: a connection, its statements noted in ``log``."""

    def __init__(self, name, spec, log, connect_timeout=5, read_timeout=60):
        self.name = name
        self.spec = spec
        self.log = log
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._conn = None

    @property
    def address(self):
        return "%s:%s" % (self.spec.get("host"), self.spec.get("port"))

    def connect(self):
        if self._conn is None:
            # no statement may hang the flip: a server that does not answer within read_timeout fails it
            kwargs = dict(user=self.spec["user"], password=self.spec.get("password") or "", autocommit=True,
                          connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
                          write_timeout=self.read_timeout, cursorclass=pymysql.cursors.DictCursor)
            if self.spec.get("socket"):
                kwargs["unix_socket"] = self.spec["socket"]
            else:
                kwargs.update(host=self.spec["host"], port=int(self.spec.get("port") or 3306))
                kwargs.update(tls_arguments(self.spec))
            try:
                self._conn = pymysql.connect(**kwargs)
            except pymysql.MySQLError as exc:
                raise MigrateError("cannot connect to %s (%s): %s" % (self.name, self.address, exc.args[-1]))
            if self.spec.get("ssl") and not self.one("SHOW SESSION STATUS LIKE 'Ssl_cipher'").get("Value"):
                self.close()
                raise MigrateError("cannot connect to %s (%s) with TLS: the server does not offer it (ssl=true)" % (
                    self.name, self.address))
        return self._conn

    def run(self, statement, args=None, note=True, masked=None):
        """``statement`` with ``args`` as the driver's parameters; ``masked`` is how it is noted when an
        argument is a secret (the server's own message is then left out too: it may quote the value)."""
        shown = masked or (statement % tuple(repr(a) for a in args) if args else statement)
        if note:
            self.log.append("%s: %s" % (self.name, shown))
        try:
            with self.connect().cursor() as cursor:
                cursor.execute(statement, args)
                return cursor.fetchall()
        except pymysql.MySQLError as exc:
            detail = "error %s" % exc.args[0] if masked else exc.args[-1]
            raise MigrateError("%s (%s): %s failed: %s" % (self.name, self.address, shown, detail),
                               error_code=exc.args[0] if exc.args and isinstance(exc.args[0], int) else None)

    def one(self, statement, args=None, note=False):
        rows = self.run(statement, args, note=note)
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

    def __init__(self, log, read_timeout=60):
        if not HAS_PYMYSQL:
            raise MigrateError("PyMySQL is needed on the host that runs db_replica_promote")
        super(MariaDB, self).__init__(log)
        self.read_timeout = read_timeout

    def node(self, name, spec):
        return Node(name, spec, self.log, read_timeout=self.read_timeout)

    # -- reading ------------------------------------------------------------------

    def status(self, node):
        row = node.one("SELECT @@server_id AS server_id, @@read_only AS read_only, @@log_bin AS log_bin, "
                       "@@log_slave_updates AS log_slave_updates, @@gtid_binlog_pos AS binlog_pos, "
                       "@@gtid_slave_pos AS slave_pos, @@gtid_binlog_state AS binlog_state, @@version AS version")
        replica = node.one("SHOW SLAVE STATUS")
        status = dict(server_id=int(row["server_id"]), read_only=bool(int(row["read_only"])),
                      log_bin=bool(int(row["log_bin"])), log_slave_updates=bool(int(row["log_slave_updates"])),
                      position=row["binlog_pos"] or "", slave_pos=row["slave_pos"] or "",
                      binlog_state=row["binlog_state"] or "", replica=None,
                      version=tuple(int(x) for x in re.findall(r"\d+", row["version"] or "0")[:2]))
        if replica:
            status["replica"] = dict(
                source_host=replica.get("Master_Host"), source_port=int(replica.get("Master_Port") or 0),
                io_running=replica.get("Slave_IO_Running") == "Yes",
                sql_running=replica.get("Slave_SQL_Running") == "Yes",
                # "Connecting" is a running IO thread that has not reached its source yet
                stopped=replica.get("Slave_IO_Running") == "No" or replica.get("Slave_SQL_Running") == "No",
                lag=replica.get("Seconds_Behind_Master"), using_gtid=replica.get("Using_Gtid"),
                error=replica.get("Last_IO_Error") or replica.get("Last_SQL_Error") or "")
        return status

    def follows(self, status, source):
        """Replicates from ``source`` with its threads running (a stopped replica is repointed again)."""
        return self.replicates_from(status, source) and not status["replica"]["stopped"]

    def interrupted_freeze(self, primary_status, candidate_status, primary, candidate):
        return False  # MariaDB's interrupted flips, either way, are interrupted_promotion's

    def interrupted_promotion(self, primary_status, candidate_status, primary, candidate):
        """Both servers frozen (read_only), the candidate no running replica of the primary and holding
        every transaction the primary has: the state a flip leaves when it was stopped anywhere between
        its freeze and the candidate's read_only=0 - and, seen from the reversed call, the state to undo.
        Making the call's candidate writable (and the other its replica) loses nothing either way."""
        p, c = primary_status, candidate_status
        if not (p["read_only"] and c["read_only"]):
            return False
        if c["replica"] and not (self.replicates_from(c, primary) and c["replica"]["stopped"]):
            return False
        if p["replica"] and not self.replicates_from(p, candidate):
            return False
        return self.covers(c, p)

    def attach_first(self, primary_status, candidate_status, primary, candidate):
        """The candidate frozen and replicating from nobody, the primary writable: a flip towards the primary
        was stopped after its promotion, and this call goes back. Attached as a replica first (it has nothing
        the primary lacks), the candidate catches up and the flip runs as usual."""
        p, c = primary_status, candidate_status
        if not (c["read_only"] and c["replica"] is None and not p["read_only"] and p["replica"] is None):
            return False
        # it was a primary (it wrote transactions of its own), and all it wrote is on the primary now: a
        # detached replica that never wrote is no interrupted flip, and is refused by the preflight
        own = [gtid for gtid in re.split(r"\s*,\s*", c["binlog_state"]) if gtid
               and gtid.split("-")[1] == str(c["server_id"])]
        return bool(own) and self.covers(p, c)

    def wait_streaming(self, replica, timeout):
        """The replica's threads run and it knows its lag, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(replica)["replica"]
            if status and status["io_running"] and status["sql_running"] and status["lag"] is not None:
                return True
            time.sleep(0.05)
        return False

    def covers(self, status, other):
        """``status`` has every transaction ``other`` has (nothing of ``other``'s own is missing on it)."""
        have = gtid_seqs(status["position"])
        for domain, seq in gtid_seqs(status["slave_pos"]).items():
            have[domain] = max(have.get(domain, -1), seq)
        want = gtid_seqs(other["position"])
        return all(have.get(domain, -1) >= seq for domain, seq in want.items()) and not self.errant(other, status)

    def writers_through_read_only(self, node, allowed, version):
        """Accounts that can write while read_only=1, but for the allowed ones: READ_ONLY ADMIN (or ALL, or
        SUPER before 10.11) held directly or through any role granted to them, however indirectly (a role
        granted but not default can be set by the session itself). System accounts count when a session
        of theirs other than the module's own is connected."""
        privileged = WRITE_THROUGH if version >= (10, 11) else WRITE_THROUGH_BEFORE_10_11
        accounts = node.run("SELECT User AS user, Host AS host, is_role FROM mysql.user", note=False)
        grants = {}
        for row in accounts:
            name = account(row["user"], None if row["is_role"] == "Y" else row["host"])
            grants[name] = self.global_privileges(node, row["user"], None if row["is_role"] == "Y" else row["host"])
        roles = {}
        for row in node.run("SELECT User AS user, Host AS host, Role AS role FROM mysql.roles_mapping", note=False):
            holder = account(row["user"], row["host"]) if row["host"] else account(row["user"], None)
            roles.setdefault(holder, set()).add(account(row["role"], None))
        connected = set(account(row["user"], row["host"].rsplit(":", 1)[0]) for row in node.run(
            "SELECT USER AS user, HOST AS host FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
            "AND COMMAND <> 'Daemon' AND USER IS NOT NULL", note=False) if row["host"])
        connected_users = set(name.split("@")[0] for name in connected)
        found = []
        for row in accounts:
            if row["is_role"] == "Y":
                continue
            name = account(row["user"], row["host"])
            if name in allowed or row["user"] in allowed:
                continue
            reach, todo = set(), [name]
            while todo:  # the account and every role it can reach
                current = todo.pop()
                if current not in reach:
                    reach.add(current)
                    todo.extend(roles.get(current, ()))
            via = sorted(holder for holder in reach if set(grants.get(holder, ())) & set(privileged))
            if not via:
                continue
            if name in SYSTEM_ACCOUNTS and "'%s'" % row["user"] not in connected_users:
                continue
            found.append(name if via == [name] else "%s (through role %s)" % (
                name, ", ".join(holder for holder in via if holder != name)))
        return found

    @staticmethod
    def global_privileges(node, user, host):
        """The privileges ``SHOW GRANTS`` lists ON *.* for an account or a role."""
        target = "%s@%s" if host is not None else "%s"
        args = (user, host) if host is not None else (user,)
        privileges = set()
        for row in node.run("SHOW GRANTS FOR " + target, args, note=False):
            line = list(row.values())[0]
            match = re.match(r"^GRANT (.+?) ON \*\.\* TO ", line)
            if match:
                privileges.update(part.strip() for part in match.group(1).split(","))
        return privileges

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
        if p["replica"] is not None:
            problems.append("%s is itself a replica (of %s:%s): writes that reach it from there would go on after "
                            "the freeze" % (primary.name, p["replica"]["source_host"], p["replica"]["source_port"]))
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
        writers = self.writers_through_read_only(primary, list(allowed_writers) + [login_user], p["version"])
        if writers:
            problems.append("%s can write through read_only on %s (READ_ONLY ADMIN): the freeze would not stop them"
                            % (", ".join(writers), primary.name))
        return facts, problems

    # -- the switchover steps --------------------------------------------------------

    def freeze(self, primary, timeout):
        """read_only=1, waiting at most ``timeout`` s for the locks it needs (a LOCK TABLES ... WRITE or a long
        statement would hold it - and every writer behind it - without a bound)."""
        primary.run("SET SESSION lock_wait_timeout = %s", (max(1, int(round(timeout))),))
        try:
            primary.run("SET GLOBAL read_only = 1")
        except MigrateError as exc:
            if exc.details.get("error_code") == 1205:
                raise MigrateError("%s: the freeze waited %ss for a lock (LOCK TABLES or a long statement holds "
                                   "it): %s" % (primary.name, timeout, exc.msg))
            raise

    def unfreeze(self, primary):
        primary.run("SET GLOBAL read_only = 0")

    def position(self, primary):
        return primary.one("SELECT @@gtid_binlog_pos AS pos", note=True)["pos"] or ""

    def wait(self, candidate, position, timeout):
        row = candidate.one("SELECT MASTER_GTID_WAIT(%s, %s) AS waited", (position, float(timeout)), note=True)
        return int(row["waited"]) == 0

    def promote(self, candidate, status=None):
        """Stop and reset replication, then read_only off; from wherever an interrupted run left it."""
        if status is None or status["replica"] is not None:
            candidate.run("STOP SLAVE")
            self.after_step("stop_slave")
            candidate.run("RESET SLAVE ALL")
            self.after_step("reset_slave")
        candidate.run("SET GLOBAL read_only = 0")

    FENCE = "# written by cloudshift.migrate.db_replica_promote: this server is not the primary\n" \
            "[mysqld]\nread_only = ON\n"

    def fence_plan(self, old_primary):
        """``read_only`` set by SET GLOBAL is lost on a restart: the old primary's ``fence_file`` (an option file
        its server reads) keeps it read-only across one."""
        path = old_primary.spec.get("fence_file")
        if not path or self._read(path) == self.FENCE:
            return None
        return "fence %s: read_only = ON in %s, so that a restart cannot make it writable" % (old_primary.name, path)

    def fence(self, old_primary):
        path = old_primary.spec["fence_file"]
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(self.FENCE)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)

    def unfence_plan(self, new_primary):
        path = new_primary.spec.get("fence_file")
        if not path or not os.path.exists(path):
            return None
        return "unfence %s: remove %s (it is the primary now)" % (new_primary.name, path)

    def unfence(self, new_primary):
        os.unlink(new_primary.spec["fence_file"])

    @staticmethod
    def _read(path):
        try:
            with open(path) as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def follow(self, replica, source, user, password, reset_position=False):
        """Make ``replica`` replicate from ``source`` by GTID (read_only stays on)."""
        replica.run("STOP SLAVE")
        if reset_position:
            # the old primary: its own binlog is where it stands as a replica
            replica.run("SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos")
        host = source.spec.get("replication_host") or source.spec.get("host")
        port = int(source.spec.get("replication_port") or source.spec.get("port") or 3306)
        statement = "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, " \
                    "MASTER_USE_GTID=slave_pos"
        args = [host, port, user, password]
        # the replication password crosses the network too: TLS whenever the source offers it, verified
        # against the CA file on the replica's host when the source names one
        if source.spec.get("ssl") is not False and source.one("SELECT @@have_ssl AS have").get("have") == "YES":
            statement += ", MASTER_SSL=1"
            if source.spec.get("replication_ssl_ca"):
                statement += ", MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=1"
                args.append(source.spec["replication_ssl_ca"])
        shown = [repr(a) if isinstance(a, str) else a for a in args]
        shown[3] = "'********'"
        replica.run(statement, tuple(args), masked=statement % tuple(shown))
        replica.run("SET GLOBAL read_only = 1")
        replica.run("START SLAVE")
