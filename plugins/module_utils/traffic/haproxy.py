# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's runtime API (the admin socket): server states and addresses, ACLs, no reload.

Runtime changes are lost on reload unless HAProxy loads a server-state file
(``server-state-file`` + ``load-server-state-from-file``): ``save_state`` writes
``show servers state`` there after a change, so a later reload keeps it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import socket
import tempfile

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

# "show servers state" columns (format version 1) this code reads
COLUMNS = ("be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state")
# srv_admin_state bits: forced, inherited, resolver and hostname maintenance. 0x04 (disabled in
# the configuration) stays set after "set server ... state ready" although the server serves again.
ADMIN_MAINT = 0x01 | 0x02 | 0x20 | 0x40
ADMIN_DRAIN = 0x08 | 0x10
# What a backend, server, ACL file or ACL value may be. The runtime API splits commands on ";" and
# newlines and arguments on blanks: anything else in a name would start another command.
NAME = re.compile(r"^[A-Za-z0-9._:/@-]+$")


def check_name(what, value):
    """``value`` as it may go into a runtime API command, else a MigrateError (nothing sent)."""
    text = str(value)
    if not NAME.match(text):
        raise MigrateError("HAProxy %s %r is not a valid name (letters, digits and . _ : / @ - only)" % (what, text))
    return text


def check_names(**named):
    """Every value of ``named`` (a name, or a list of names) checked, before anything is sent."""
    for what, value in named.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item not in (None, ""):
                check_name(what.replace("_", " "), item)


def server_path(backend, server):
    """``backend/server``: a "/" inside either name would point at another server."""
    for what, name in (("backend", backend), ("server", server)):
        if "/" in check_name(what, name):
            raise MigrateError("HAProxy %s %r is not a valid name (no /)" % (what, name))
    return "%s/%s" % (backend, server)


class HAProxy:
    def __init__(self, socket_path, timeout=5.0):
        self.socket_path = socket_path
        self.timeout = timeout

    def command(self, *words):
        """One runtime API command of ``words``, each checked as a name first; its answer (an error
        answer raises)."""
        line = " ".join(check_name("argument", word) for word in words)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(self.timeout)
        try:
            client.connect(self.socket_path)
        except (OSError, socket.error) as exc:
            raise MigrateError("cannot reach HAProxy's admin socket %s: %s" % (self.socket_path, exc))
        try:
            client.sendall((line + "\n").encode())
            chunks = []
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            client.close()
        answer = b"".join(chunks).decode("utf-8", "replace").strip()
        lowered = answer.lower()
        if lowered.startswith(("unknown", "no such", "permission denied", "'", "require")) or "not found" in lowered \
                or lowered.startswith("invalid"):
            raise MigrateError("HAProxy refused %r: %s" % (line, answer))
        return answer

    def servers(self, backend):
        """{server: {"addr", "port", "state": ready|maint|drain, "up": bool}} of one backend."""
        answer = self.command("show", "servers", "state", backend)
        lines = [line for line in answer.splitlines() if line and not line.startswith("#")]
        if not lines or lines[0].strip() != "1":
            raise MigrateError("HAProxy: unexpected answer to 'show servers state %s': %s" % (backend, answer[:200]))
        found = {}
        for line in lines[1:]:
            fields = line.split()
            if len(fields) < 7 or fields[1] != backend:
                continue
            admin = int(fields[6])
            state = "maint" if admin & ADMIN_MAINT else "drain" if admin & ADMIN_DRAIN else "ready"
            port = fields[18] if len(fields) > 18 else None
            found[fields[3]] = dict(addr=fields[4], port=int(port) if port and port.isdigit() else None,
                                    state=state, up=fields[5] == "2")
        if not found:
            raise MigrateError("HAProxy has no backend %r (or it has no servers)" % backend)
        return found

    def set_state(self, backend, server, state):
        return self.command("set", "server", server_path(backend, server), "state", state)

    def set_addr(self, backend, server, addr, port=None):
        words = ["set", "server", server_path(backend, server), "addr", addr]
        if port:
            words += ["port", "%d" % int(port)]
        return self.command(*words)

    def shutdown_sessions(self, backend, server):
        return self.command("shutdown", "sessions", "server", server_path(backend, server))

    def acl_values(self, acl_file):
        answer = self.command("show", "acl", acl_file)
        return [line.split(" ", 1)[1] for line in answer.splitlines() if " " in line]

    def add_acl(self, acl_file, value):
        return self.command("add", "acl", acl_file, value)

    def del_acl(self, acl_file, value):
        return self.command("del", "acl", acl_file, value)

    def save_state(self, path):
        """Persist every server's runtime state where HAProxy loads it on (re)start."""
        state = self.command("show", "servers", "state")
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".server-state.")
        with os.fdopen(fd, "w") as handle:
            handle.write(state + "\n")
        os.rename(tmp, path)


def switch(proxy, backend, activate, deactivate, log, shutdown=True):
    """Make ``activate`` ready and put ``deactivate`` in maintenance (cutting their sessions).

    Idempotent: only what differs is changed. Returns True when something changed.
    """
    servers = proxy.servers(backend)
    unknown = [name for name in [activate] + list(deactivate) if name not in servers]
    if unknown:
        raise MigrateError("HAProxy backend %s has no server %s (it has %s)" % (
            backend, ", ".join(unknown), ", ".join(sorted(servers))))
    changed = False
    if servers[activate]["state"] != "ready":
        log.append("haproxy: set server %s/%s state ready" % (backend, activate))
        proxy.set_state(backend, activate, "ready")
        changed = True
    for name in deactivate:
        if servers[name]["state"] != "maint":
            log.append("haproxy: set server %s/%s state maint" % (backend, name))
            proxy.set_state(backend, name, "maint")
            if shutdown:
                log.append("haproxy: shutdown sessions server %s/%s" % (backend, name))
                proxy.shutdown_sessions(backend, name)
            changed = True
    return changed


def maintenance(proxy, acl_file, value, on, log):
    """Show (on) or hide the maintenance page switched by an ACL file; True when changed."""
    present = value in proxy.acl_values(acl_file)
    if present == bool(on):
        return False
    if on:
        log.append("haproxy: add acl %s %s" % (acl_file, value))
        proxy.add_acl(acl_file, value)
    else:
        log.append("haproxy: del acl %s %s" % (acl_file, value))
        proxy.del_acl(acl_file, value)
    return True
