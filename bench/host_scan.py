#!/usr/bin/env python3
"""Benchmark: a full scan of this machine, the module vs the manual way, in one run.

  (a) the manual way - what operators run by hand to learn the same things: dpkg-query for the
      packages, dpkg --verify for the files changed from their package, the enablement links for
      the services, /etc/passwd and /etc/group, and, for the files no package owns under /etc,
      /srv, /opt and /usr/local, find + sha256sum of every file compared with dpkg's file lists;
  (b) cloudshift.migrate.host_scan through Ansible (ansible localhost -m ...), every category,
      every package file verified, every unowned file hashed (no bound, as the manual way);
  (c) the same with the module's default bounds (32 MiB a file, 20000 files, 2 GiB in all).

Each way starts with the page cache dropped (when this runs as root), so both read from disk.
Prints seconds per way and the ratios (a)/(b) and (a)/(c); no lab needed.

    python3 bench/host_scan.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRECTORIES = ["/etc", "/srv", "/opt", "/usr/local"]
MANUAL = r"""
set -u
dpkg-query -W -f '${binary:Package}\t${Version}\t${Architecture}\n' > "$out/packages"
dpkg --verify > "$out/verify" || true
ls -l /etc/systemd/system/*.wants/ > "$out/services" 2>/dev/null || true
cut -d: -f1,3,4,6,7 /etc/passwd > "$out/users"; cut -d: -f1,3,4 /etc/group > "$out/groups"
cat /var/lib/dpkg/info/*.list | sort -u > "$out/owned"
find %s -xdev -type f | sort > "$out/all"
comm -23 "$out/all" "$out/owned" > "$out/unowned"
tr '\n' '\0' < "$out/unowned" | xargs -0 -r sha256sum > "$out/hashes" 2>/dev/null || true
""" % " ".join(DIRECTORIES)


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
        return True
    except OSError:
        return False


def manual(workdir):
    started = time.monotonic()
    subprocess.run(["bash", "-c", MANUAL], env=dict(os.environ, out=workdir), check=True)
    with open(os.path.join(workdir, "packages")) as handle:
        packages = sum(1 for _ in handle)
    with open(os.path.join(workdir, "unowned")) as handle:
        unowned = sum(1 for _ in handle)
    return time.monotonic() - started, packages, unowned


def module(args=None):
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_PYTHON_INTERPRETER=os.path.join(ROOT, ".venv", "bin", "python"))
    started = time.monotonic()
    out = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m",
                          "cloudshift.migrate.host_scan"] + (["-a", json.dumps(args)] if args else []), env=env, capture_output=True, text=True, check=False,
                         stdin=subprocess.DEVNULL)
    took = time.monotonic() - started
    result = json.loads(out.stdout[out.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if result.get("failed"):
        raise SystemExit(result.get("msg"))
    return took, result["scan"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    subprocess.run([os.path.join(ROOT, "hack", "sync-collection")], check=True, stdout=subprocess.DEVNULL)
    import tempfile

    for round_number in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as workdir:
            cold = drop_caches()
            manual_seconds, packages, unowned = manual(workdir)
        drop_caches()
        unbounded_seconds, unbounded = module(dict(hash_max_bytes=2 ** 50, hash_max_files=10 ** 9,
                                                   hash_max_total_bytes=2 ** 50))
        drop_caches()
        module_seconds, scan = module()
        print("round %d (%s cache):" % (round_number, "cold" if cold else "warm"))
        print("  (a) manual way          %6.1f s  %d packages, %d unowned files hashed" % (
            manual_seconds, packages, unowned))
        for name, seconds, each in (("(b) host_scan unbounded", unbounded_seconds, unbounded),
                                    ("(c) host_scan bounded  ", module_seconds, scan)):
            print("  %s %6.1f s  %d packages, %d changed and %d unowned files (%d hashed), %d more categories; "
                  "in the module %.1f s" % (name, seconds, len(each["packages"]), len(each["changed_files"]),
                                            len(each["unowned_files"]),
                                            sum(1 for f in each["unowned_files"] if f["sha256"]),
                                            len(each["counts"]) - 3, each["seconds"]))
            for item in [s for s in each["skipped"] if s.get("count")]:
                print("      skipped: %s (%d)" % (item["reason"], item["count"]))
        print("  ratio (a)/(b): %.2fx   (a)/(c): %.2fx" % (manual_seconds / unbounded_seconds,
                                                          manual_seconds / module_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
