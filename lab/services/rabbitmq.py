"""RabbitMQ (Debian's rabbitmq-server) as a plain process, shared by both clouds.

Each cloud has its own virtual host (/source, /destination): Nova and Cinder
talk to "conductor", "scheduler", ... topics, and two clouds on one vhost would
answer each other's calls. The Erlang port mapper runs in the same process
group on a lab port, so `down` leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess

from .base import (HOST, LabError, Service, _group_members, _proc_cmdline, _proc_stat,
                   write_if_changed)

RABBIT_BIN = "/usr/lib/rabbitmq/bin"
NODE = "lab@localhost"


class RabbitMQ(Service):
    kind = "rabbitmq"
    debian_packages = ("rabbitmq-server",)
    tier = 0
    stop_timeout = 30.0
    vhosts: tuple = ("source", "destination")

    @property
    def health_url(self):
        return None

    @property
    def epmd_port(self) -> int:
        return self.port + 2

    def transport_url(self, vhost: str) -> str:
        return f"rabbit://guest:guest@{HOST}:{self.port}/{vhost}"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update({
            "HOME": str(self.data_dir),  # .erlang.cookie, shared with rabbitmqctl
            "RABBITMQ_NODENAME": NODE,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 1),
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self.data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.data_dir / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_CONFIG_FILE": str(self.data_dir / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data_dir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.data_dir / "rabbitmq.pid"),
            "PATH": f"{RABBIT_BIN}:{env['PATH']}",
        })
        return env

    def prepare(self) -> None:
        super().prepare()
        write_if_changed(self.data_dir / "enabled_plugins", "[].\n")
        write_if_changed(self.data_dir / "rabbitmq.conf", "\n".join([
            "loopback_users.guest = true",
            "log.console = true",
            "log.file = false",
            "",
        ]))
        cookie = self.data_dir / ".erlang.cookie"
        if not cookie.exists():
            fd = os.open(str(cookie), os.O_WRONLY | os.O_CREAT, 0o400)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.lab.secret("lab", "erlang-cookie").replace("-", "x"))

    def command(self) -> list[str]:
        # epmd in the foreground, in our process group; the data dir in the command
        # line is the marker labctl looks for.
        return ["sh", "-c",
                f'epmd -address {HOST} -port {self.epmd_port} & '
                f'exec {RABBIT_BIN}/rabbitmq-server # {self.data_dir}']

    def pid(self) -> int | None:
        # The leader is the rabbitmq-server script (its command line does not
        # carry our data directory); the Erlang VM in its group does.
        pid = self._read_pid()
        if pid is None or _proc_stat(pid) is None:
            return None
        if any(self.marker in _proc_cmdline(member) for member in _group_members(pid)):
            return pid
        return None

    def ctl(self, *args: str) -> None:
        result = subprocess.run([f"{RABBIT_BIN}/rabbitmqctl", "-n", NODE, *args],
                                env=self.environment(), capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            raise LabError(f"{self.name}: rabbitmqctl {' '.join(args)} failed: "
                           f"{(result.stderr or result.stdout).strip()[-800:]}")

    def ready_hook(self) -> None:
        stamp = self.data_dir / "vhosts"
        if stamp.exists() and stamp.read_text() == ",".join(self.vhosts):
            return
        self.ctl("await_startup")
        for vhost in self.vhosts:
            self.ctl("add_vhost", vhost)
            self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        stamp.write_text(",".join(self.vhosts))
