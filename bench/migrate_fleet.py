#!/usr/bin/env python3
"""Benchmark: N servers moved by migrate_instance in one playbook run vs one at a time.

Creates N volume-backed servers in the lab's source cloud (lab/playbooks/instance_fixtures.yml,
each a 1 GiB boot volume and a 1 GiB data volume with 2 MiB of known data), then

  (a) serial:   one ansible-playbook run per server, one after the other (the way a
                hand-written per-server playbook or a shell loop moves a fleet);
  (b) parallel: one ansible-playbook run with all N servers (--forks N).

Half of the servers go each way (different servers, same shape), and the serial time is
the measured time for its half scaled to N - unless --full-serial, which moves N more
servers one at a time. Prints seconds per server for both and the ratio (a)/(b).
Needs the lab up (make bench-fleet does that).

It also counts the machine's busy CPU seconds (/proc/stat: the controller, the modules and
both lab clouds, which share the machine) during each way, and prints the ceiling they put on
the ratio: with C cores, N servers cannot move in less than N x (CPU a server) / C seconds,
so the ratio cannot pass C x (serial seconds a server) / (CPU a server in the one run).

    python3 bench/migrate_fleet.py [--servers 20] [--full-serial]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
FIXTURES = os.path.join(ROOT, "lab", "playbooks", "instance_fixtures.yml")


def environment(ledger_dir):
    env = dict(os.environ)
    env.setdefault("OS_CLIENT_CONFIG_FILE", os.path.join(ROOT, ".lab", "clouds.yaml"))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
    env.setdefault("ANSIBLE_PYTHON_INTERPRETER", os.path.join(VENV_BIN, "python"))
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["CLOUDSHIFT_LEDGER_DIR"] = ledger_dir
    return env


def busy_cpu_seconds():
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq) since boot."""
    with open("/proc/stat") as handle:
        user, nice, system, _idle, _iowait, irq, softirq = [int(value) for value in handle.readline().split()[1:8]]
    return (user + nice + system + irq + softirq) / float(os.sysconf("SC_CLK_TCK"))


def run(args, env):
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", *args], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit("failed: ansible-playbook %s\n%s" % (" ".join(args), result.stdout[-4000:]))
    return seconds


def migrate(servers, env):
    return run(["cloudshift.migrate.migrate_instance", "--forks", str(max(5, len(servers))),
                "-e", "source=lab-source", "-e", "destination=lab-destination",
                "-e", json.dumps({"instance": servers}), "-e", "copy_host_server=copy-host"], env)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--full-serial", action="store_true",
                        help="move N servers one at a time too (no scaling)")
    parser.add_argument("--serial-servers", type=int,
                        help="how many servers to move one at a time for the scaled serial figure (default N/2)")
    parser.add_argument("--reuse", metavar="TAG",
                        help="use the servers an earlier run created (fleet-TAG-*) instead of new ones")
    parser.add_argument("--skip", action="append", default=[],
                        help="leave out a server (for example one an interrupted run moved)")
    args = parser.parse_args()
    subprocess.run([os.path.join(ROOT, "hack", "sync-collection")], check=True, stdout=subprocess.DEVNULL)
    tag = args.reuse or uuid.uuid4().hex[:5]
    parallel = ["fleet-%s-p%02d" % (tag, i) for i in range(args.servers)]
    serial_count = args.servers if args.full_serial else max(2, args.serial_servers or args.servers // 2)
    serial = ["fleet-%s-s%02d" % (tag, i) for i in range(serial_count)]
    serial = [name for name in serial if name not in args.skip]
    with tempfile.TemporaryDirectory() as ledger_dir:
        env = environment(ledger_dir)
        started = time.monotonic()
        if not args.reuse:
            run([FIXTURES, "--forks", "10", "-e", json.dumps({"fixture_names": parallel + serial,
                                                              "fixture_ephemeral_names": []})], env)
            print("fixtures: %d servers in %.0f s" % (len(parallel + serial), time.monotonic() - started))

        serial_seconds = 0.0
        serial_cpu = busy_cpu_seconds()
        for name in serial:
            seconds = migrate([name], env)
            serial_seconds += seconds
            print("  serial %s: %.1f s" % (name, seconds), flush=True)
        serial_cpu = busy_cpu_seconds() - serial_cpu
        serial_per_server = serial_seconds / len(serial)
        serial_total = serial_per_server * args.servers

        parallel_cpu = busy_cpu_seconds()
        parallel_seconds = migrate(parallel, env)
        parallel_cpu = busy_cpu_seconds() - parallel_cpu

    print()
    print("servers                        %d (each: 1 GiB boot + 1 GiB data volume, 2 MiB data each)" % args.servers)
    print("(a) one at a time              %.0f s for %d servers%s (%.1f s a server)" % (
        serial_total, args.servers, "" if args.full_serial else " (scaled from %d measured)" % len(serial),
        serial_per_server))
    print("(b) one run, --forks %-9d %.0f s (%.1f s a server)" % (
        max(5, args.servers), parallel_seconds, parallel_seconds / args.servers))
    print("ratio (a)/(b)                  %.2fx  (goal >= 4x)" % (serial_total / parallel_seconds))
    cores = os.cpu_count() or 1
    cpu_per_server = parallel_cpu / args.servers
    print()
    print("machine CPU, busy (%d cores, shared by the controller and both clouds)" % cores)
    print("(a) a server alone             %.1f CPU-s in %.1f s: %.0f%% of one core" % (
        serial_cpu / len(serial), serial_per_server, 100.0 * serial_cpu / serial_seconds))
    print("(b) a server in the one run    %.1f CPU-s; the run kept %.0f%% of all cores busy" % (
        cpu_per_server, 100.0 * parallel_cpu / (parallel_seconds * cores)))
    print("ceiling of (a)/(b) here        %.2fx  (%d x %.1f s / %.1f CPU-s: the run at 100%% of every core)" % (
        cores * serial_per_server / cpu_per_server, cores, serial_per_server, cpu_per_server))


if __name__ == "__main__":
    main()
