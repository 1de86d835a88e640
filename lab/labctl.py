"""Start real OpenStack services on loopback for tests.

    python3 lab/labctl.py install
    python3 lab/labctl.py up [SERVICE...]
    python3 lab/labctl.py down [--purge] [SERVICE...]
    python3 lab/labctl.py status [SERVICE...]

SERVICE is a service name (source-keystone), a cloud (source), a kind
(glance) or nothing for all. Everything lives under <repo>/.lab. Standard
library only; the services themselves run from the .lab/venv it installs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab.services import compute  # noqa: E402
from lab.services.base import Cloud, Lab, LabError, Service, write_private  # noqa: E402
from lab.services.glance import Glance  # noqa: E402
from lab.services.keystone import Keystone  # noqa: E402
from lab.services.mariadb import MariaDB  # noqa: E402
from lab.services.moto import REQUIREMENTS as AWS_REQUIREMENTS, Moto  # noqa: E402
from lab.services.rabbitmq import RabbitMQ  # noqa: E402
from lab.services.site import (DB_PORTS, DNS_PORT, FASTLY_PORT, HAPROXY_PORTS, PG_PORTS, WEB_PORTS,  # noqa: E402
                               SiteDNS, SiteFastly, SiteHAProxy, SiteMariaDB, SitePostgres, SiteWeb)

REQUIREMENTS = HERE / "requirements-services.txt"
PLUGINS = HERE / "plugins"
PYTHON_VERSION = (3, 12)

KINDS = {
    "keystone": Keystone, "glance": Glance, "placement": compute.Placement,
    "neutron": compute.Neutron, "cinder-api": compute.CinderApi,
    "cinder-scheduler": compute.CinderScheduler, "cinder-volume": compute.CinderVolume,
    "nova-api": compute.NovaApi, "nova-conductor": compute.NovaConductor,
    "nova-scheduler": compute.NovaScheduler, "nova-compute": compute.NovaCompute,
}

# Shared by both clouds (one database server, one message broker with a vhost
# per cloud), and AWS (moto serves every region).
SHARED = {"mariadb": (MariaDB, 13306), "rabbitmq": (RabbitMQ, 35672), "moto": (Moto, 14566)}

# Two independent clouds; a port is overridden by LAB_<CLOUD>_<KIND>_PORT,
# e.g. LAB_SOURCE_KEYSTONE_PORT. Processes without a port (conductor,
# scheduler, compute, volume) have 0.
CLOUDS = {
    "source": {"keystone": 15000, "glance": 19292, "placement": 18778, "neutron": 19696,
               "cinder-api": 18776, "cinder-scheduler": 0, "cinder-volume": 0,
               "nova-api": 18774, "nova-conductor": 0, "nova-scheduler": 0,
               "nova-compute": 0},
    "destination": {"keystone": 25000, "glance": 29292, "placement": 28778,
                    "neutron": 29696, "cinder-api": 28776, "cinder-scheduler": 0,
                    "cinder-volume": 0, "nova-api": 28774, "nova-conductor": 0,
                    "nova-scheduler": 0, "nova-compute": 0},
}


# The site to move (issue: migrate_site): three MariaDB servers, two web backends, HAProxy.
SITE = dict([(name, (SiteMariaDB, port)) for name, port in DB_PORTS.items()]
            + [(name, (SiteWeb, port)) for name, port in WEB_PORTS.items()]
            + [(name, (SitePostgres, port)) for name, port in PG_PORTS.items()]
            + [("site-dns", (SiteDNS, DNS_PORT)), ("site-fastly", (SiteFastly, FASTLY_PORT))]
            + [("site-haproxy", (SiteHAProxy, HAPROXY_PORTS["web"]))])


def build(lab: Lab) -> list[Service]:
    """All services of the lab, in start order."""
    services: list[Service] = []
    for kind, (cls, port) in SHARED.items():
        service = cls(lab, kind, port)
        lab.shared.append(service)
        services.append(service)
    for name, (cls, port) in SITE.items():
        services.append(cls(lab, name, port))
        if name == "site-pg0":
            lab.site_pg0 = services[-1]
    for short, ports in CLOUDS.items():
        cloud = Cloud(f"lab-{short}")
        for kind, port in ports.items():
            service = KINDS[kind](lab, f"{short}-{kind}", port, cloud)
            cloud.members.append(service)
            services.append(service)
    return services


def select(services: list[Service], names: list[str], with_requirements: bool) -> list[Service]:
    """Services matching the names (all if none), in start order."""
    if not names:
        return list(services)
    def aliases(service: Service) -> set:
        found = {service.name, service.kind}
        if service.name.startswith("site-"):
            found.add("site")
        if service.cloud:
            found |= {service.cloud.name, service.cloud.name[len("lab-"):]}
        return found

    wanted = set()
    for name in names:
        matches = [s for s in services if name in aliases(s)]
        if not matches:
            valid = sorted(set().union(*(aliases(s) for s in services)))
            raise LabError(f"unknown service {name!r}; one of: {', '.join(valid)}")
        wanted.update(matches)
    if with_requirements:
        todo = list(wanted)
        while todo:
            for required in todo.pop().requires:
                if required not in wanted:
                    wanted.add(required)
                    todo.append(required)
    return [s for s in services if s in wanted]


@contextlib.contextmanager
def locked(lab: Lab):
    """One labctl at a time changes the lab (e.g. parallel test sessions)."""
    lab.run_dir.mkdir(parents=True, exist_ok=True)
    with open(lab.run_dir / "labctl.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for another labctl to finish...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def log(message: str) -> None:
    print(message, flush=True)


# -- install ------------------------------------------------------------------

def _python_version(executable: str) -> tuple | None:
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True,
                             timeout=30, check=False)
    except OSError:
        return None
    match = re.match(r"Python (\d+)\.(\d+)", out.stdout + out.stderr)
    if out.returncode != 0 or not match:
        return None
    return int(match.group(1)), int(match.group(2))


def find_python() -> str:
    """A working python3.12: pyenv shims of versions not enabled exit 127."""
    name = "python{}.{}".format(*PYTHON_VERSION)

    def version_key(path: str):
        return [int(part) for part in re.findall(r"\d+", Path(path).parent.parent.name)]

    candidates = [os.environ.get("LAB_PYTHON"), shutil.which(name)]
    for home in {str(Path.home()), "/root"}:
        candidates += sorted(glob.glob(f"{home}/.pyenv/versions/3.12*/bin/{name}"),
                             key=version_key, reverse=True)
    candidates += [f"/usr/local/bin/{name}", f"/usr/bin/{name}"]
    for candidate in candidates:
        if candidate and _python_version(candidate) == PYTHON_VERSION:
            return candidate
    raise LabError(f"no working {name} found (set LAB_PYTHON)")


def find_uv() -> str | None:
    local = ROOT / ".venv" / "bin" / "uv"
    if local.exists():
        return str(local)
    return shutil.which("uv")


def _dpkg_installed(package: str) -> bool:
    out = subprocess.run(["dpkg", "-s", package], capture_output=True, text=True, check=False)
    return out.returncode == 0 and "Status: install ok installed" in out.stdout


def ensure_debian_packages(packages: list[str]) -> None:
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends"] + missing
    if os.geteuid() != 0:
        raise LabError(f"missing Debian packages; as root run: {' '.join(command)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"apt-get install {' '.join(missing)}")
    for step in (["apt-get", "update"], command):
        if subprocess.run(step, env=env, check=False).returncode != 0:
            raise LabError(f"`{' '.join(step)}` failed")


def _run(command: list[str]) -> None:
    if subprocess.run(command, check=False).returncode != 0:
        raise LabError(f"`{' '.join(command[:4])} ...` failed")


def install_aws(lab: Lab) -> None:
    """moto in .lab/aws-venv: its own venv, so its pins never meet OpenStack's."""
    venv = lab.state / "aws-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".labctl-installed"
    digest = hashlib.sha256(AWS_REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and _python_version(str(python)) == PYTHON_VERSION:
        return
    uv = find_uv()
    if _python_version(str(python)) != PYTHON_VERSION:
        if venv.exists():
            shutil.rmtree(venv)
        lab.state.mkdir(parents=True, exist_ok=True)
        _run([find_python(), "-m", "venv"] + (["--without-pip"] if uv else []) + [str(venv)])
    log(f"installing {AWS_REQUIREMENTS.name} into {venv}")
    if uv:
        _run([uv, "pip", "install", "-q", "--python", str(python), "-r", str(AWS_REQUIREMENTS)])
    else:
        _run([str(python), "-m", "ensurepip"])
        _run([str(python), "-m", "pip", "install", "-q", "-r", str(AWS_REQUIREMENTS)])
    _run([str(python), "-m", "compileall", "-q", "-j", "0", "-x", r"/tests?/"]
         + glob.glob(str(venv / "lib" / "python*" / "site-packages" / "moto")))
    stamp.write_text(digest)


def install(lab: Lab, services: list[Service]) -> None:
    """Idempotent: Debian packages, the service venvs, then bytecode."""
    ensure_debian_packages(sorted({p for s in services for p in s.debian_packages}))
    if any(isinstance(s, Moto) for s in services):
        install_aws(lab)
    stamp = lab.venv / ".labctl-installed"
    inputs = hashlib.sha256(REQUIREMENTS.read_bytes())
    for path in sorted(PLUGINS.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            inputs.update(str(path.relative_to(PLUGINS)).encode() + path.read_bytes())
    digest = inputs.hexdigest()
    if (stamp.exists() and stamp.read_text() == digest
            and _python_version(str(lab.python)) == PYTHON_VERSION):
        return
    started = time.monotonic()
    uv = find_uv()
    if _python_version(str(lab.python)) != PYTHON_VERSION:
        if lab.venv.exists():
            shutil.rmtree(lab.venv)
        python = find_python()
        log(f"creating {lab.venv} with {python}")
        lab.state.mkdir(parents=True, exist_ok=True)
        _run([python, "-m", "venv"] + (["--without-pip"] if uv else []) + [str(lab.venv)])
    log(f"installing {REQUIREMENTS.name} into {lab.venv}")
    if uv:
        _run([uv, "pip", "install", "--python", str(lab.python), "-r", str(REQUIREMENTS)])
    else:
        if not lab.venv_bin("pip").exists():
            _run([str(lab.python), "-m", "ensurepip"])
        _run([str(lab.python), "-m", "pip", "install", "-r", str(REQUIREMENTS)])
    # The lab's own plugins (ML2 port binding, fake virt driver with disks), a copy
    # of the tree so that no build output lands in the repository.
    build_dir = lab.state / "build" / "plugins"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    shutil.copytree(PLUGINS, build_dir, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    if uv:
        _run([uv, "pip", "install", "--python", str(lab.python), "--reinstall-package",
              "cloudshift-lab", str(build_dir)])
    else:
        _run([str(lab.python), "-m", "pip", "install", "--force-reinstall", "--no-deps",
              str(build_dir)])
    # Nova loads its compute driver only from nova.virt.<name>: a one-line module
    # there points at the lab's driver.
    for virt in glob.glob(str(lab.venv / "lib" / "python*" / "site-packages" / "nova" / "virt")):
        (Path(virt) / "cloudshift_lab.py").write_text(
            '"""Lab only: see lab/plugins/cloudshift_lab/virt.py."""\n'
            "from cloudshift_lab.virt import LabDriver  # noqa: F401\n")
    # Bytecode is not written at run time when PYTHONDONTWRITEBYTECODE is set (it is
    # here) and uv does not compile: every keystone/glance start would then take ~3x
    # longer. Test suites inside the packages are skipped.
    site_packages = glob.glob(str(lab.venv / "lib" / "python*" / "site-packages"))
    _run([str(lab.python), "-m", "compileall", "-q", "-j", "0", "-x", r"/tests?/"]
         + site_packages)
    stamp.write_text(digest)
    log(f"installed in {time.monotonic() - started:.1f}s")


# -- up / down / status ---------------------------------------------------------

def write_clouds(lab: Lab, services: list[Service]) -> Path:
    clouds: dict[str, dict] = {}
    for service in services:
        if isinstance(service, Keystone):
            clouds.update(service.clouds())
    path = lab.state / "clouds.yaml"
    write_private(path, "\n".join(_yaml({"clouds": clouds})) + "\n")
    return path


def _yaml(data: dict, indent: int = 0) -> list[str]:
    # JSON scalars are valid YAML scalars.
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{'  ' * indent}{key}:")
            lines.extend(_yaml(value, indent + 1))
        else:
            lines.append(f"{'  ' * indent}{key}: {json.dumps(value)}")
    return lines


def _check_running(service: Service) -> bool:
    """True if our process runs with the requested settings; raises if it runs
    with other settings (it is never replaced behind the caller's back)."""
    pid = service.pid()
    if pid is None:
        return False
    running = service.running_settings()
    if running is not None and running != service.settings():
        raise LabError(f"{service.name} (pid {pid}) runs with {running}, requested "
                       f"{service.settings()}: run `labctl down {service.name}` first")
    return True


def _wait_ready(services: list[Service], started: list[Service], started_at: float,
                timeout: float) -> None:
    """Wait until every service answers, then run its ready hook; one thread per
    service, so that a Keystone provisions while the others are still loading."""
    deadline = time.monotonic() + timeout
    abort = threading.Event()

    def wait(service: Service) -> None:
        while not (service.check_ready() if service in started else service.answering()):
            if abort.is_set():
                return
            if time.monotonic() > deadline:
                raise LabError(f"{service.name} not answering at {service.health_url} "
                               f"after {timeout:.0f}s\n{service.log_tail()}")
            time.sleep(0.1)
        answered = time.monotonic() - started_at
        service.ready_hook()
        line = f"{service.name:24} %-16s pid {service.pid() or '-'!s:<7} {service.url}"
        if service in started:
            log(line % "started" + f"  (answered {answered:.1f}s, "
                                   f"ready {time.monotonic() - started_at:.1f}s)")
        else:
            log(line % "already running")

    with concurrent.futures.ThreadPoolExecutor(len(services)) as pool:
        futures = [pool.submit(wait, service) for service in services]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        finally:
            abort.set()


def up(lab: Lab, services: list[Service], everything: list[Service]) -> None:
    started_at = time.monotonic()
    install(lab, everything)  # cheap when done
    lab.make_dirs()
    timeout = float(os.environ.get("LAB_START_TIMEOUT", "180"))

    for tier in sorted({s.tier for s in services}):
        _up_tier(lab, [s for s in services if s.tier == tier], started_at, timeout)
    path = write_clouds(lab, everything)
    log(f"up in {time.monotonic() - started_at:.1f}s; clouds: {path}")


def _up_tier(lab: Lab, services: list[Service], started_at: float, timeout: float) -> None:
    running = [s for s in services if _check_running(s)]
    to_start = [s for s in services if s not in running]
    for service in to_start:
        service.stop()  # clears a stale pid file (and strays of a dead leader)
        if service.port_in_use():
            raise LabError(f"{service.name}: port {service.port} is in use by a process "
                           f"labctl did not start (or whose pid file is gone)")

    if to_start:
        # Setup commands are CPU-bound Python processes: about one per core.
        workers = min(len(to_start), max(2, os.cpu_count() or 2))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(s.prepare) for s in to_start]:
                future.result()
        log(f"prepared in {time.monotonic() - started_at:.1f}s")

    started: list[Service] = []
    try:
        for service in to_start:
            service.start()
            started.append(service)
        _wait_ready(services, started, started_at, timeout)
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise


def down(lab: Lab, services: list[Service], purge: bool) -> None:
    def stop(service: Service) -> None:
        if service.stop():
            log(f"{service.name:24} stopped")
        if purge and hasattr(service, "unmount_share"):
            service.unmount_share()
        if purge and service.data_dir.exists():
            shutil.rmtree(service.data_dir)
            log(f"{service.name:24} data removed")

    # uWSGI takes ~1 s to bury its worker: stop all at once.
    with concurrent.futures.ThreadPoolExecutor(max(1, len(services))) as pool:
        for future in [pool.submit(stop, s) for s in reversed(services)]:
            future.result()


def status(services: list[Service]) -> int:
    all_up = True
    for service in services:
        pid = service.pid()
        if pid is None:
            state, all_up = "stopped", False
        elif service.answering():
            state = "running"
        else:
            state, all_up = "not-answering", False
        log(f"{service.name:24} {state:14} pid {pid or '-':<8} {service.url}")
    return 0 if all_up else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="create .lab/venv and install Debian packages")
    sub.add_parser("up", help="start services (and what they need)").add_argument(
        "services", nargs="*")
    down_parser = sub.add_parser("down", help="stop services")
    down_parser.add_argument("--purge", action="store_true",
                             help="also remove their data (fresh clouds on next up)")
    down_parser.add_argument("services", nargs="*")
    sub.add_parser("status", help="show services (exit 3 if any is not running)").add_argument(
        "services", nargs="*")
    args = parser.parse_args(argv)

    lab = Lab(ROOT)
    try:
        everything = build(lab)
        if args.command == "status":
            return status(select(everything, args.services, False))
        with locked(lab):
            if args.command == "install":
                install(lab, everything)
            elif args.command == "up":
                up(lab, select(everything, args.services, True), everything)
            else:
                down(lab, select(everything, args.services, False), args.purge)
    except LabError as exc:
        print(f"labctl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
