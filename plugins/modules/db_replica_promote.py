#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: db_replica_promote
short_description: Promote a database replica to primary in one call - freeze, catch up, promote, switch traffic
version_added: 0.1.0
description:
  - The whole database flip of a site move as one module call, so that the write outage is the
    database's own time (tens of milliseconds), not Ansible's (seconds per task).
  - "Steps: preflight (the candidate replicates from the primary and runs, lags at most O(max_lag), has no errant
    transactions; no account other than O(login_user) and O(allowed_writers) holds C(READ_ONLY ADMIN) on the primary,
    which would let it write through the freeze) - optional maintenance page - freeze the primary (C(read_only))
    - read its final GTID position - wait for the candidate to apply it (C(MASTER_GTID_WAIT), at most
    O(wait_timeout)) - promote the candidate (stop and reset replication, C(read_only) off) - switch the
    load balancer (HAProxy runtime API, O(traffic)) - maintenance page off. Then, outside the outage, the
    O(replicas) are repointed to the new primary and, with O(attach_old_primary), the old primary becomes a
    read-only replica of the new one, so that a revert is the same call with O(primary) and O(candidate) swapped."
  - "Any failure before the promotion aborts the flip - the freeze that waits longer than O(freeze_timeout) for a lock,
    a candidate that does not catch up within O(wait_timeout), a lost connection: the old primary is writable again,
    the traffic and the maintenance page as they were, nothing else changed."
  - "The preflight resolves effective privileges - an account that can write through C(read_only) (C(READ_ONLY ADMIN),
    C(ALL), C(SUPER) before MariaDB 10.11) directly or through a role, default or not, is refused unless listed in
    O(allowed_writers); system accounts such as C(root@localhost) only while a session of theirs is connected. A
    primary that is itself a replica is refused."
  - Idempotent - when the candidate is already a writable non-replica and the old primary read-only, only the
    missing follow-up steps run. Check mode runs the preflight only and returns the plan.
  - "Interrupted flips (the process or its host died at any step after the freeze): the same call again finishes
    the flip (on PostgreSQL it first starts the stopped primary with its C(start_command) and waits for the candidate
    to stream); the reversed call (the revert) undoes it. On MariaDB both calls recognise every state a flip passes
    through - frozen, replication stopped, replication reset - from the servers themselves: when both are frozen and
    the call's candidate holds every transaction of the other, the candidate is made writable, traffic pointed at it
    and the other attached as its replica (again); RV(recovered) is then true. Nothing is lost either way, because
    nothing was written after the freeze."
  - Engines - MariaDB (and MySQL-compatible GTID servers through the same statements) and PostgreSQL (streaming
    replication), behind one interface.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  engine:
    description:
      - The database engine. V(mariadb) (and MySQL-compatible GTID servers) freezes with C(read_only);
        V(postgresql) freezes with a clean stop of the primary (O(primary) C(stop_command)), waits until the
        candidate replayed everything the primary sent, promotes it (C(pg_promote)), repoints standbys
        (C(primary_conninfo), reload) and makes the old primary a standby (C(pgdata), C(start_command)).
    type: str
    choices: [mariadb, postgresql]
    default: mariadb
  primary:
    description:
      - The current primary - C(host) and C(port) (or C(socket)); the other suboptions as needed.
    type: dict
    required: true
    suboptions: &node_options
      name:
        description: Its name in actions, messages and the ledger (default the option's name).
        type: str
      host:
        description: Its address.
        type: str
      port:
        description: Its port (default 3306 or 5432).
        type: int
      socket:
        description: A unix socket instead of O(primary.host) and O(primary.port).
        type: str
      user:
        description: The account to connect with (default O(login_user)).
        type: str
      password:
        description: Its password (default O(login_password)).
        type: str
      replication_host:
        description: The address replicas reach it by, when it is not O(primary.host).
        type: str
      replication_port:
        description: The port replicas reach it by, when it is not O(primary.port).
        type: int
      ssl:
        description:
          - V(true) - require TLS (verified against O(primary.ssl_ca), else the system's CAs); V(false) - never.
          - Unset - TLS whenever the server offers it (MariaDB without certificate verification unless
            O(primary.ssl_ca) is given; PostgreSQL C(sslmode=prefer)).
          - Replicas repointed to this server use TLS whenever it offers it (C(MASTER_SSL=1), C(sslmode=prefer)),
            unless this is V(false).
        type: bool
      ssl_ca:
        description: A CA file (where the module runs) to verify the server's certificate and host name with.
        type: str
      replication_ssl_ca:
        description:
          - A CA file on the replicas' hosts that they verify this server's certificate with when they replicate
            from it (MariaDB C(MASTER_SSL_CA) with C(MASTER_SSL_VERIFY_SERVER_CERT=1); PostgreSQL
            C(sslmode=verify-full sslrootcert=...) in C(primary_conninfo)).
        type: str
      dbname:
        description: PostgreSQL only - the database to connect to (default C(postgres)).
        type: str
      stop_command:
        description:
          - PostgreSQL only - a shell command, run where the module runs, that stops the server cleanly, for example
            C(pg_ctlcluster 15 main stop -m fast) over ssh. It is the freeze, bounded by O(freeze_timeout).
        type: str
      start_command:
        description: PostgreSQL only - starts it (the abort path, and after it became a standby).
        type: str
      pgdata:
        description:
          - PostgreSQL only - its data directory, when the module runs on its host. C(standby.signal) and
            C(primary_conninfo) are written there to make the old primary a standby; with O(attach_old_primary=false)
            C(standby.signal) alone fences it, so that a restart cannot make it writable.
        type: str
      fence_file:
        description:
          - MariaDB only - an option file that this server reads at start (for example
            C(/etc/mysql/mariadb.conf.d/99-cloudshift-fence.cnf)), when the module runs on its host. C(read_only)
            set at run time is lost on a restart; once this server is the old primary the module writes
            C(read_only = ON) there, so that a restart cannot make it writable, and removes the file once it is
            promoted again (a revert).
        type: str
  candidate:
    description: The replica to promote, as O(primary).
    type: dict
    required: true
    suboptions: *node_options
  replicas:
    description: Other replicas (of the primary or the candidate) to repoint to the candidate, as O(primary).
    type: list
    elements: dict
    default: []
    suboptions: *node_options
  login_user:
    description: The account the module connects with (needs replication admin rights and C(READ_ONLY ADMIN)).
    type: str
    required: true
  login_password:
    description: Its password.
    type: str
  replication_user:
    description: The account replicas connect to the new primary with (for O(replicas) and O(attach_old_primary)).
    type: str
  replication_password:
    description: Its password.
    type: str
  max_lag:
    description: The candidate's replication lag allowed by the preflight, in seconds.
    type: int
    default: 5
  wait_timeout:
    description:
      - Seconds the candidate may take to apply the final position before the flip aborts (at most 3600).
    type: float
    default: 10
  freeze_timeout:
    description:
      - Seconds the freeze may take before the flip aborts (at most 600). MariaDB - C(read_only) waits this long for
        the locks it needs (C(lock_wait_timeout)); a C(LOCK TABLES ... WRITE) or a long statement would otherwise hold
        it, and every writer queued behind it, without a bound. PostgreSQL - the O(primary.stop_command) is killed
        after this long.
      - Every other statement is bounded by the connection's read timeout (O(wait_timeout) + O(freeze_timeout) + 30 s),
        every other host command by 120 s.
    type: float
    default: 2
  allowed_writers:
    description: Accounts (C(name) or C('name'@'host')) allowed to hold C(READ_ONLY ADMIN), such as a monitoring user.
    type: list
    elements: str
    default: []
  attach_old_primary:
    description: Make the old primary a replica of the new one afterwards (the revert path).
    type: bool
    default: true
  traffic:
    description:
      - The load balancer switch, made right after the promotion (HAProxy runtime API, no reload). Every name is
        checked (letters, digits and C(._:/@-) only) before anything is sent.
      - On PostgreSQL the O(traffic.deactivate) servers are put in maintenance right before the freeze, so that new
        connections do not queue towards a primary that is stopping.
    type: dict
    suboptions:
      provider:
        description: The load balancer.
        type: str
        choices: [haproxy]
        default: haproxy
      socket:
        description: HAProxy's admin socket.
        type: str
      backend:
        description: The backend to switch.
        type: str
      activate:
        description: The server to make ready.
        type: str
      deactivate:
        description: The servers to put in maintenance, their sessions cut.
        type: list
        elements: str
        default: []
      state_file:
        description: HAProxy's server-state file, written so that a reload keeps the change.
        type: str
      maintenance_acl:
        description:
          - An ACL file whose value shows a maintenance page during the flip. Once the flip is complete the page is
            hidden, whoever showed it.
        type: str
      maintenance_value:
        description: The ACL value of the maintenance page.
        type: str
        default: /
extends_documentation_fragment:
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
requirements:
  - PyMySQL (MariaDB)
  - psycopg 3 (PostgreSQL)
"""

EXAMPLES = r"""
- name: Flip the site's database to the new cloud
  cloudshift.migrate.db_replica_promote:
    primary: {name: old-db, host: 10.0.0.10, port: 3306}
    candidate: {name: new-db1, host: 10.20.0.11, port: 3306}
    replicas:
      - {name: new-db2, host: 10.20.0.12, port: 3306}
    login_user: admin
    login_password: "{{ vault_db_admin_password }}"
    replication_user: repl
    replication_password: "{{ vault_db_repl_password }}"
    traffic:
      socket: /run/haproxy/admin.sock
      backend: db
      activate: new
      deactivate: [old]
      state_file: /var/lib/haproxy/server-state
    migration_id: shop-2026-12
  register: flip

- name: Revert - the same call, reversed
  cloudshift.migrate.db_replica_promote:
    primary: {name: new-db1, host: 10.20.0.11, port: 3306}
    candidate: {name: old-db, host: 10.0.0.10, port: 3306}
    replicas:
      - {name: new-db2, host: 10.20.0.12, port: 3306}
    login_user: admin
    login_password: "{{ vault_db_admin_password }}"
    replication_user: repl
    replication_password: "{{ vault_db_repl_password }}"
    traffic: {socket: /run/haproxy/admin.sock, backend: db, activate: old, deactivate: [new]}
"""

RETURN = r"""
actions:
  description: Every statement and load balancer command run, in order (passwords masked); in check mode the plan.
  returned: always
  type: list
  elements: str
  sample: ["old-db: SET GLOBAL read_only = 1", "new-db1: SELECT MASTER_GTID_WAIT('0-13400-1042', 10.0)"]
positions:
  description: C(primary_final) (the old primary's last GTID position) and C(candidate) (the new primary's).
  returned: always
  type: dict
timings:
  description: Milliseconds of each step (connect, preflight, freeze, position, wait, promote, switch, ...).
  returned: always
  type: dict
outage_ms:
  description: Milliseconds from the freeze to traffic reaching the writable new primary (null when nothing flipped).
  returned: always
  type: float
flipped:
  description: Whether this call did the flip (false on a re-run or in check mode).
  returned: always
  type: bool
recovered:
  description: True when this call undid the freeze of an interrupted flip in the other direction (see above).
  returned: when it did
  type: bool
facts:
  description: What the preflight read of each server (read_only, positions, replication state).
  returned: always
  type: dict
ledger_entries:
  description: The flip's entry (C(db_promote), with the outage and the timings).
  returned: always
  type: list
  elements: dict
"""

import math

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError, MigrateModule
from ansible_collections.cloudshift.migrate.plugins.module_utils.db.mariadb import MariaDB
from ansible_collections.cloudshift.migrate.plugins.module_utils.db.postgresql import PostgreSQL
from ansible_collections.cloudshift.migrate.plugins.module_utils.db.switchover import Switchover
from ansible_collections.cloudshift.migrate.plugins.module_utils.traffic import haproxy

NODE_OPTIONS = dict(
    name=dict(type="str"),
    host=dict(type="str"),
    port=dict(type="int"),
    socket=dict(type="str"),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    replication_host=dict(type="str"),
    replication_port=dict(type="int"),
    ssl=dict(type="bool"),
    ssl_ca=dict(type="str"),
    replication_ssl_ca=dict(type="str"),
    dbname=dict(type="str"),
    stop_command=dict(type="str"),
    start_command=dict(type="str"),
    pgdata=dict(type="str"),
    fence_file=dict(type="str"),
)
TRAFFIC_OPTIONS = dict(
    provider=dict(type="str", choices=["haproxy"], default="haproxy"),
    socket=dict(type="str"),
    backend=dict(type="str"),
    activate=dict(type="str"),
    deactivate=dict(type="list", elements="str", default=[]),
    state_file=dict(type="str"),
    maintenance_acl=dict(type="str"),
    maintenance_value=dict(type="str", default="/"),
)
# Seconds: a larger value is a typo or an attempt to hang the flip, not a plan.
LIMITS = dict(wait_timeout=3600, freeze_timeout=600)


def bounded(name, value):
    """``value`` a finite number in (0, LIMITS[name]], else a MigrateError (inf, nan and 1e309 included)."""
    if not (math.isfinite(value) and 0 < value <= LIMITS[name]):
        raise MigrateError("%s must be a number > 0 and at most %s, not %r" % (name, LIMITS[name], value))
    return value


class DbReplicaPromote(MigrateModule):
    argument_spec = dict(
        engine=dict(type="str", choices=["mariadb", "postgresql"], default="mariadb"),
        primary=dict(type="dict", required=True, options=NODE_OPTIONS),
        candidate=dict(type="dict", required=True, options=NODE_OPTIONS),
        replicas=dict(type="list", elements="dict", default=[], options=NODE_OPTIONS),
        login_user=dict(type="str", required=True),
        login_password=dict(type="str", no_log=True),
        replication_user=dict(type="str"),
        replication_password=dict(type="str", no_log=True),
        max_lag=dict(type="int", default=5),
        wait_timeout=dict(type="float", default=10),
        freeze_timeout=dict(type="float", default=2),
        allowed_writers=dict(type="list", elements="str", default=[]),
        attach_old_primary=dict(type="bool", default=True),
        traffic=dict(type="dict", options=TRAFFIC_OPTIONS),
    )

    def node_spec(self, role, spec):
        spec = dict((key, value) for key, value in spec.items() if value is not None)
        if not spec.get("socket") and not spec.get("host"):
            raise MigrateError("%s needs host (and port) or socket" % role)
        spec.setdefault("user", self.params["login_user"])
        spec.setdefault("password", self.params.get("login_password"))
        return spec

    def run(self):
        p = self.params
        traffic = dict((key, value) for key, value in (p["traffic"] or {}).items()
                       if value not in (None, []) and key != "provider")
        if set(traffic) - {"maintenance_value"} and not (
                traffic.get("socket") and traffic.get("backend") and traffic.get("activate")):
            raise MigrateError("traffic needs socket, backend and activate")
        if not traffic.get("socket"):
            traffic = {}
        if traffic:
            # every name that goes into a runtime API line is checked before anything is sent
            haproxy.check_names(backend=traffic["backend"], server=[traffic["activate"]] + (traffic.get("deactivate") or []),
                                maintenance_acl=traffic.get("maintenance_acl"),
                                maintenance_value=traffic.get("maintenance_value") if traffic.get("maintenance_acl") else None)
        if (p["replicas"] or p["attach_old_primary"]) and not (p.get("replication_user") and p.get("replication_password")):
            raise MigrateError("replication_user and replication_password are needed to repoint replicas "
                               "and to attach the old primary (or set attach_old_primary=false)")
        for name in LIMITS:
            bounded(name, p[name])
        if p["max_lag"] < 0:
            raise MigrateError("max_lag must be >= 0")
        if p["engine"] == "postgresql":
            engine = PostgreSQL(self.actions, self.module.run_command)
        else:
            # no statement may outlast the flip's own bounds (a server that stops answering fails it)
            engine = MariaDB(self.actions, read_timeout=p["wait_timeout"] + p["freeze_timeout"] + 30)
        specs = [("primary", p["primary"]), ("candidate", p["candidate"])] + [
            ("replicas[%d]" % i, spec) for i, spec in enumerate(p["replicas"])]
        nodes = []
        for role, spec in specs:
            spec = self.node_spec(role, spec)
            nodes.append(engine.node(spec.get("name") or role, spec))
        addresses = [(n.spec.get("host"), n.spec.get("port"), n.spec.get("socket")) for n in nodes]
        if len(set(addresses)) != len(addresses):
            raise MigrateError("primary, candidate and replicas must be different servers")
        switchover = Switchover(self, engine, nodes[0], nodes[1], nodes[2:], traffic)
        try:
            result = switchover.run()
        finally:
            for node in nodes:
                node.close()
        if result["flipped"]:
            self.record("db_promote", nodes[0].name, destination_id=nodes[1].name, phase="flip", status="done",
                        data=dict(outage_ms=result["outage_ms"], position=result["positions"].get("primary_final"),
                                  timings=result["timings"]))
        elif result.get("recovered") and not self.module.check_mode:
            self.record("db_promote", nodes[1].name, key="db_promote/%s/recovered" % nodes[1].name,
                        destination_id=nodes[1].name, phase="flip", status="done",
                        data=dict(recovered=True, replica=nodes[0].name, timings=result["timings"]))
        return result


def main():
    DbReplicaPromote.main()


if __name__ == "__main__":
    main()
