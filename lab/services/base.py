"""Generic pieces of a lab service: paths, settings, secrets, one process with a
pid file and a log, and a readiness check over HTTP or TCP.

A service is one process started by labctl in its own session (process group),
so that stopping it also stops its workers and helpers. Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

HOST = "127.0.0.1"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Never route loopback calls through a proxy taken from the caller's environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LabError(Exception):
    """A failure reported to the user as a message, without a traceback."""


def http_request(method: str, url: str, body: dict | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 10.0):
    """Send a JSON request; return (status, headers, decoded JSON body or None).

    HTTP error statuses are returned, not raised; connection errors raise OSError.
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, resp_headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers, raw = exc.code, exc.headers, exc.read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    return status, resp_headers, payload


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def ini(sections: dict[str, dict[str, object]]) -> str:
    """Render an oslo.config / paste style INI file (None values are left out)."""
    out = []
    for section, options in sections.items():
        out.append(f"[{section}]")
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            out.append(f"{key} = {value}")
        out.append("")
    return "\n".join(out)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], pgrp [2])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[0] not in ("Z", "X") and int(stat[2]) == pgid:
                members.append(int(entry))
    return members


class Lab:
    """Paths and shared state of one lab: everything lives under <root>/.lab."""

    def __init__(self, root: Path):
        self.root = root
        self.state = root / ".lab"
        self.venv = self.state / "venv"
        self.run_dir = self.state / "run"
        self.log_dir = self.state / "log"
        self.data_dir = self.state / "data"
        self.cache_dir = self.state / "cache"
        self.secrets_path = self.state / "secrets.json"
        self.shared: list = []  # services of no cloud (MariaDB, RabbitMQ)
        self._lock = threading.Lock()
        self._template_locks: dict[str, threading.Lock] = {}

    def make_dirs(self) -> None:
        for path in (self.state, self.run_dir, self.log_dir, self.data_dir, self.cache_dir):
            path.mkdir(parents=True, exist_ok=True)

    def venv_bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    @property
    def python(self) -> Path:
        return self.venv_bin("python")

    def package_version(self, dist: str) -> str:
        """Version of a package installed in the lab venv (from its dist-info name)."""
        wanted = dist.lower().replace("-", "_")
        for info in self.venv.glob("lib/python*/site-packages/*.dist-info"):
            name, _, version = info.name[: -len(".dist-info")].partition("-")
            if name.lower().replace("-", "_") == wanted:
                return version
        raise LabError(f"{dist} is not installed in {self.venv}: run `labctl install`")

    def package_file(self, relative: str) -> Path:
        """A data file a package installed into the venv (e.g. etc/glance/...)."""
        path = self.venv / relative
        if not path.exists():
            raise LabError(f"{path} is missing: run `labctl install`")
        return path

    def secret(self, scope: str, name: str) -> str:
        """A generated password, kept in .lab/secrets.json (mode 0600)."""
        with self._lock:
            data = {}
            if self.secrets_path.exists():
                data = json.loads(self.secrets_path.read_text())
            value = data.get(scope, {}).get(name)
            if value is None:
                value = secrets.token_urlsafe(24)
                data.setdefault(scope, {})[name] = value
                self.state.mkdir(parents=True, exist_ok=True)
                write_private(self.secrets_path, json.dumps(data, indent=2, sort_keys=True) + "\n")
            return value

    def template(self, name: str, build: Callable[[Path], None]) -> Path:
        """A prepared file in .lab/cache, built once by build(path) and reused.

        The name must carry whatever the content depends on (e.g. a version).
        """
        with self._lock:
            lock = self._template_locks.setdefault(name, threading.Lock())
        path = self.cache_dir / name
        with lock:
            if not path.exists():
                tmp = self.cache_dir / f".{name}.{os.getpid()}.tmp"
                if tmp.is_dir():
                    shutil.rmtree(tmp)
                elif tmp.exists():
                    tmp.unlink()
                build(tmp)
                os.replace(tmp, path)
        return path


class Cloud:
    """A named group of services sharing one Keystone (e.g. "lab-source")."""

    def __init__(self, name: str):
        self.name = name
        self.members: list[Service] = []

    def member(self, kind: str) -> Service:
        for service in self.members:
            if service.kind == kind:
                return service
        raise LabError(f"cloud {self.name} has no {kind}")


class Service:
    """One process of the lab.

    Subclasses set `kind` and implement command(); they may override prepare()
    (write config, create data; must be idempotent and cheap when done),
    environment(), health_url, and ready_hook() (run once the service answers).
    """

    kind = ""
    debian_packages: tuple = ()
    health_path = "/"
    stop_timeout = 15.0
    # For the Keystone of the service's cloud: register `url` in the catalog under
    # this service type, and create a user named `kind` in project "service" with
    # these roles (password: secret <cloud>/<kind>).
    catalog_type: str | None = None
    keystone_roles: tuple = ()
    # Start order: tier 0 (shared MariaDB, RabbitMQ) is prepared, started and
    # ready before tier 1 is prepared (its set-up needs the database).
    tier = 1

    @property
    def keystone_user(self) -> str:
        return self.kind

    def __init__(self, lab: Lab, name: str, port: int, cloud: Cloud | None = None):
        self.lab = lab
        self.name = name
        self.cloud = cloud
        self.port = self.int_setting("PORT", port, kind_level=False)
        self._proc: subprocess.Popen | None = None
        self._log_offset = 0

    # -- settings and paths -------------------------------------------------

    def setting(self, key: str, default=None, kind_level: bool = True):
        """LAB_<NAME>_<KEY> (e.g. LAB_SOURCE_GLANCE_PORT), else LAB_<KIND>_<KEY>."""
        names = [f"LAB_{self.name}_{key}"]
        if kind_level:
            names.append(f"LAB_{self.kind}_{key}")
        for env_name in names:
            value = os.environ.get(env_name.upper().replace("-", "_"))
            if value not in (None, ""):
                return value
        return default

    def settings(self) -> dict[str, object]:
        """Settings a running process was started with; `up` refuses to leave a
        service running when they differ from the requested ones."""
        return {"port": self.port}

    def int_setting(self, key: str, default: int | None = None,
                    kind_level: bool = True) -> int | None:
        value = self.setting(key, default, kind_level)
        try:
            return None if value is None else int(value)
        except ValueError:
            raise LabError(f"{self.name}: {key} must be an integer, not {value!r}") from None

    @property
    def requires(self) -> list[Service]:
        """Services that must be up for this one to be useful."""
        return []

    @property
    def data_dir(self) -> Path:
        return self.lab.data_dir / self.name

    @property
    def log_path(self) -> Path:
        return self.lab.log_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.lab.run_dir / f"{self.name}.pid"

    @property
    def settings_path(self) -> Path:
        return self.lab.run_dir / f"{self.name}.settings"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """URL registered in the Keystone catalog (see catalog_type)."""
        return self.url

    @property
    def health_url(self) -> str | None:
        """URL that answers once the service is ready; None: a TCP connect suffices."""
        return self.url + self.health_path

    @property
    def marker(self) -> str:
        """A string in the command line that tells our process from a reused pid."""
        return str(self.data_dir)

    # -- to implement -------------------------------------------------------

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {
            "PATH": f"{self.lab.venv / 'bin'}:{SYSTEM_PATH}",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }

    def ready_hook(self) -> None:
        """Runs after the service answers (also when it was already running)."""

    # -- helpers for subclasses ---------------------------------------------

    def sqlite_from_template(self, package: str, manage_tool: str) -> None:
        """Copy an empty schema into ``self.db_path``.

        ``<manage_tool> db_sync`` runs once per package version into a template
        under .lab/cache (the slow part of a cloud's set-up); each cloud copies it.
        The subclass provides ``db_path`` and ``_config(db_path)``.
        """
        def build(path: Path) -> None:
            conf = path.with_name(path.name + ".conf")
            conf.write_text(self._config(path))
            try:
                self.run_tool([str(self.lab.venv_bin(manage_tool)), "--config-file", str(conf), "db_sync"])
            finally:
                conf.unlink()

        version = self.lab.package_version(package)
        shutil.copyfile(self.lab.template(f"{package}-{version}.sqlite", build), self.db_path)

    def run_tool(self, args: list[str], env: dict[str, str] | None = None) -> None:
        """Run a setup command, its output appended to the service log."""
        self.lab.log_dir.mkdir(parents=True, exist_ok=True)
        full_env = self.environment()
        full_env.update(env or {})
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} labctl runs {args[0]}\n".encode())
            offset = log.tell()
            log.flush()
            result = subprocess.run(args, cwd=str(self.data_dir), env=full_env,
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            raise LabError(f"{self.name}: `{' '.join(args[:2])} ...` failed "
                           f"(exit {result.returncode})\n{self.log_tail(offset)}")

    def log_tail(self, offset: int | None = None, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset if offset is None else offset)
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = text.splitlines()[-lines:]
        return f"--- last lines of {self.log_path}:\n" + "\n".join(tail)

    # -- process ------------------------------------------------------------

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        """Pid of our running process, or None (a stale pid file is ignored)."""
        pid = self._read_pid()
        if pid is None:
            return None
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X") or self.marker not in _proc_cmdline(pid):
            return None
        return pid

    def answering(self, timeout: float = 3.0) -> bool:
        if self.health_url is None:
            try:
                with socket.create_connection((HOST, self.port), timeout=timeout):
                    return True
            except OSError:
                return False
        try:
            status, _, _ = http_request("GET", self.health_url, timeout=timeout)
        except (OSError, ValueError):
            return False
        return status < 500

    def port_in_use(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def start(self) -> None:
        """Start the process in its own session; the caller waits with check_ready()."""
        if self.pid() is not None:
            raise LabError(f"{self.name} is already running (pid {self.pid()})")
        if self.port_in_use():
            raise LabError(f"{self.name}: port {HOST}:{self.port} is already in use by a "
                           f"process labctl did not start (or whose pid file is gone)")
        self.lab.run_dir.mkdir(parents=True, exist_ok=True)
        self.lab.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} labctl starts {self.name}\n".encode())
            self._log_offset = log.tell()
            log.flush()
            self._proc = subprocess.Popen(
                self.command(), cwd=str(self.data_dir), env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        write_if_changed(self.settings_path, json.dumps(self.settings(), sort_keys=True))
        tmp = self.pid_path.with_name(f".{self.pid_path.name}.tmp")
        tmp.write_text(f"{self._proc.pid}\n")
        os.replace(tmp, self.pid_path)

    def running_settings(self) -> dict[str, object] | None:
        try:
            return json.loads(self.settings_path.read_text())
        except (OSError, ValueError):
            return None

    def check_ready(self) -> bool:
        """True once the started process answers; raises if it has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            code = self._proc.returncode
            self._remove_pid_file(self._proc.pid)
            raise LabError(f"{self.name} exited during start (exit {code})\n{self.log_tail()}")
        return self.answering()

    def _remove_pid_file(self, pid: int) -> None:
        if self._read_pid() == pid:
            self.pid_path.unlink()
            if self.settings_path.exists():
                self.settings_path.unlink()

    def stop(self) -> bool:
        """Stop our process group: SIGTERM, then SIGKILL after stop_timeout.

        Returns True if something was running.
        """
        pid = self._read_pid()
        if pid is None:
            return False
        members = _group_members(pid)
        # The group id is the pid we started (own session); it is ours only if some
        # member still carries our marker (the leader may already be gone).
        if not any(self.marker in _proc_cmdline(member) for member in members):
            self._remove_pid_file(pid)
            return False
        self._signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while _group_members(pid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        if _group_members(pid):
            self._signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _group_members(pid) and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
            if _group_members(pid):
                raise LabError(f"{self.name}: process group {pid} survived SIGKILL")
        self._reap()
        self._remove_pid_file(pid)
        return True

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
