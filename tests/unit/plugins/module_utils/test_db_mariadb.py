# -*- coding: utf-8 -*-
"""MariaDB engine logic that the lab's one server version cannot show (the lab covers the wire)."""
from __future__ import annotations

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils.db import mariadb


class FakeNode:
    """Answers the preflight's privilege queries from a table of accounts, roles and grants."""

    name = "db0"

    def __init__(self, accounts, grants, roles=(), sessions=()):
        self.accounts, self.grants, self.roles, self.sessions = accounts, grants, roles, sessions

    def run(self, statement, args=None, note=True, masked=None):
        if statement.startswith("SELECT User AS user, Host AS host, is_role FROM mysql.user"):
            return [dict(user=u, host=h, is_role="Y" if h is None else "N") for u, h in self.accounts]
        if statement.startswith("SELECT User AS user, Host AS host, Role AS role FROM mysql.roles_mapping"):
            return [dict(user=u, host=h, role=r) for u, h, r in self.roles]
        if "PROCESSLIST" in statement:
            return [dict(user=u, host=h) for u, h in self.sessions]
        if statement.startswith("SHOW GRANTS FOR"):
            key = args if len(args) == 2 else (args[0], None)
            return [{"g": "GRANT %s ON *.* TO `%s`" % (", ".join(self.grants.get(key, ["USAGE"])), key[0])}]
        raise AssertionError(statement)


ACCOUNTS = [("root", "localhost"), ("admin", "%"), ("app", "%"), ("ops", None)]


@pytest.mark.parametrize("version,expected", [((10, 6), ["'app'@'%'"]), ((10, 11), [])])
def test_super_counts_before_10_11(version, expected):
    node = FakeNode(ACCOUNTS, {("app", "%"): ["SELECT", "INSERT", "SUPER"], ("admin", "%"): ["ALL PRIVILEGES"]})
    engine = mariadb.MariaDB([])
    assert engine.writers_through_read_only(node, ["admin"], version) == expected


def test_read_only_admin_through_a_role_is_refused():
    node = FakeNode(ACCOUNTS, {("ops", None): ["READ_ONLY ADMIN"], ("root", "localhost"): ["ALL PRIVILEGES"]},
                    roles=[("app", "%", "ops")])
    found = mariadb.MariaDB([]).writers_through_read_only(node, ["admin"], (10, 11))
    assert found == ["'app'@'%' (through role 'ops')"]


def test_root_at_localhost_counts_while_connected():
    grants = {("root", "localhost"): ["ALL PRIVILEGES"]}
    engine = mariadb.MariaDB([])
    assert engine.writers_through_read_only(FakeNode(ACCOUNTS, grants), ["admin"], (10, 11)) == []
    connected = FakeNode(ACCOUNTS, grants, sessions=[("root", "localhost")])
    assert engine.writers_through_read_only(connected, ["admin"], (10, 11)) == ["'root'@'localhost'"]


def test_covers_compares_domains_and_own_transactions():
    engine = mariadb.MariaDB([])
    primary = dict(server_id=1, position="0-1-10", slave_pos="", binlog_state="0-1-10")
    behind = dict(server_id=2, position="0-1-9", slave_pos="0-1-9", binlog_state="0-1-9")
    level = dict(server_id=2, position="0-1-10", slave_pos="0-1-10", binlog_state="0-1-10")
    assert not engine.covers(behind, primary) and engine.covers(level, primary)
