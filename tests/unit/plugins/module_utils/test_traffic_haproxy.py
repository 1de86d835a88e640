# -*- coding: utf-8 -*-
"""HAProxy runtime API helpers against a fake admin socket (the lab's real HAProxy covers the wire)."""
from __future__ import annotations

import os
import socket
import tempfile
import threading

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.traffic import haproxy

HEADER = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n"


class FakeHAProxy:
    """Answers 'show servers state' from a dict of admin states and records the other commands."""

    def __init__(self, states):
        self.states = states
        self.commands = []
        self.path = os.path.join(tempfile.mkdtemp(), "admin.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(5)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, unused = self.server.accept()
            line = conn.recv(4096).decode().strip()
            self.commands.append(line)
            if line.startswith("show servers state"):
                answer = HEADER + "".join("5 db %d %s 127.0.0.1 2 %d 1 1 0 1 0 0 0 0 0 0 - %d - 0 0 - - 0\n" % (
                    i, name, state, 13400 + i) for i, (name, state) in enumerate(sorted(self.states.items())))
            elif line.startswith("set server db/nope"):
                answer = "No such server.\n"
            elif line.startswith("set server"):
                name, state = line.split()[2].split("/")[1], line.split()[-1]
                self.states[name] = 0 if state == "ready" else 1
                answer = "\n"
            else:
                answer = "\n"
            conn.sendall(answer.encode())
            conn.close()


def test_states_read_config_disabled_bit_as_ready():
    fake = FakeHAProxy({"old": 0, "new": 4, "spare": 5})
    servers = haproxy.HAProxy(fake.path).servers("db")
    assert {name: s["state"] for name, s in servers.items()} == {"old": "ready", "new": "ready", "spare": "maint"}
    assert servers["new"]["port"] == 13400  # sorted: new, old, spare


def test_switch_changes_only_what_differs():
    fake = FakeHAProxy({"old": 0, "new": 5})
    proxy, log = haproxy.HAProxy(fake.path), []
    assert haproxy.switch(proxy, "db", "new", ["old"], log)
    assert log == ["haproxy: set server db/new state ready", "haproxy: set server db/old state maint",
                   "haproxy: shutdown sessions server db/old"]
    assert not haproxy.switch(proxy, "db", "new", ["old"], [])


def test_unknown_server_and_refusals_are_errors():
    fake = FakeHAProxy({"old": 0})
    proxy = haproxy.HAProxy(fake.path)
    with pytest.raises(MigrateError, match="no server new"):
        haproxy.switch(proxy, "db", "new", ["old"], [])
    with pytest.raises(MigrateError, match="refused"):
        proxy.set_state("db", "nope", "ready")
    with pytest.raises(MigrateError, match="cannot reach"):
        haproxy.HAProxy(fake.path + ".missing").servers("db")


@pytest.mark.parametrize("name", ["db;set weight db/old 7", "db\nshow info", "db old", "", "a/b"])
def test_haproxy_runtime_commands_cannot_be_injected(name):
    fake = FakeHAProxy({"old": 0, "new": 1})
    proxy = haproxy.HAProxy(fake.path)
    with pytest.raises(MigrateError, match="not a valid name"):
        if name == "a/b":
            proxy.set_state("db", name, "ready")  # a "/" in a server name points at another server
        else:
            proxy.servers(name) if name else haproxy.check_name("backend", name)
    assert fake.commands == []  # nothing reached the socket
