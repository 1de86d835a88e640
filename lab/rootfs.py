#!/usr/bin/env python3
"""Small Debian systems in directories, for host_scan's tests: used through a chroot connection.

    python3 lab/rootfs.py base            build (once) and print the cached base tarball
    python3 lab/rootfs.py root DIR        unpack a fresh root into DIR
    python3 lab/rootfs.py package DIR     build the demo package (a service, a conffile) into DIR
    python3 lab/rootfs.py repo DIR        make DIR (holding .deb files) an apt repository

The base is a debootstrap minbase of the host's own release with python3 (Ansible modules run in it),
from the mirror the host's apt sources name; it is cached under .lab/rootfs/ as a tarball.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".lab", "rootfs")
INCLUDE = "python3"
DEMO = "cloudshift-demo"
DEMO_VERSION = "1.0-1"


def host_release():
    with open("/etc/os-release") as handle:
        values = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    return values.get("VERSION_CODENAME", "").strip('"')


def host_mirror():
    """The first Debian archive the host's apt sources name (deb822 or one-line format)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as handle:
            text = handle.read()
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and "security" not in uris.group(1) and "-" not in suites.group(1).split()[0]:
                return uris.group(1)
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if os.path.exists(path):
            with open(path) as handle:
                for line in handle:
                    fields = line.split()
                    if len(fields) >= 3 and fields[0] == "deb" and "security" not in line:
                        return [f for f in fields[1:] if not f.startswith("[")][0]
    raise SystemExit("no Debian mirror in the host's apt sources")


def base():
    """The cached base tarball, built with debootstrap when missing (under a lock: two test sessions)."""
    release = host_release()
    tarball = os.path.join(CACHE, "%s-minbase.tar" % release)
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(tarball):
            return tarball
        subprocess.run([os.path.join(ROOT, "hack", "ensure-debian-packages"), "debootstrap"], check=True)
        target = os.path.join(CACHE, "build")
        subprocess.run(["rm", "-rf", target], check=True)
        started = time.time()
        subprocess.run(["debootstrap", "--variant=minbase", "--include=" + INCLUDE, release, target, host_mirror()],
                       check=True, stdout=subprocess.DEVNULL)
        # What a fresh image has no use for: downloaded packages and lists.
        subprocess.run(["chroot", target, "apt-get", "clean"], check=True)
        subprocess.run(["tar", "-C", target, "-cf", tarball + ".part", "."], check=True)
        os.rename(tarball + ".part", tarball)
        subprocess.run(["rm", "-rf", target], check=True)
        print("debootstrap %s took %.0f s" % (release, time.time() - started), file=sys.stderr)
    return tarball


def root(directory):
    os.makedirs(directory, exist_ok=True)
    subprocess.run(["tar", "-C", directory, "-xf", base()], check=True)
    return directory


CONTROL = """Package: {name}
Version: {version}
Architecture: all
Maintainer: cloudshift.migrate engineers <cloudshift@example.invalid>
Section: misc
Priority: optional
Description: cloudshift.migrate's demo service
 A shell loop run as a systemd service, with a configuration file.
"""

SERVICE = """[Unit]
Description=cloudshift.migrate demo service

[Service]
ExecStart=/usr/bin/cloudshift-demo
EnvironmentFile=/etc/cloudshift-demo.conf

[Install]
WantedBy=multi-user.target
"""


def package(directory):
    """Build the demo package into ``directory``; return the .deb's path."""
    build = os.path.join(directory, "build-" + DEMO)
    files = {
        "DEBIAN/control": CONTROL.format(name=DEMO, version=DEMO_VERSION),
        "DEBIAN/conffiles": "/etc/cloudshift-demo.conf\n",
        "etc/cloudshift-demo.conf": "INTERVAL=60\n",
        "usr/bin/cloudshift-demo": "#!/bin/sh\nwhile sleep \"${INTERVAL:-60}\"; do :; done\n",
        "lib/systemd/system/cloudshift-demo.service": SERVICE,
    }
    for name, text in files.items():
        path = os.path.join(build, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o755 if name.startswith("usr/bin") else 0o644)
    os.chmod(os.path.join(build, "DEBIAN"), 0o755)
    deb = os.path.join(directory, "%s_%s_all.deb" % (DEMO, DEMO_VERSION))
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", build, deb], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", build], check=True)
    return deb


def repo(directory):
    """Write Packages and Release for the .deb files in ``directory`` (a flat repository)."""
    stanzas = []
    for deb in sorted(glob.glob(os.path.join(directory, "*.deb"))):
        control = subprocess.run(["dpkg-deb", "-f", deb], check=True, capture_output=True, text=True).stdout
        with open(deb, "rb") as handle:
            data = handle.read()
        stanzas.append(control.rstrip("\n") + "\nFilename: ./%s\nSize: %d\nSHA256: %s\n" % (
            os.path.basename(deb), len(data), hashlib.sha256(data).hexdigest()))
    packages = "\n".join(stanzas)
    with open(os.path.join(directory, "Packages"), "w") as handle:
        handle.write(packages)
    digest = hashlib.sha256(packages.encode()).hexdigest()
    with open(os.path.join(directory, "Release"), "w") as handle:
        handle.write("Origin: cloudshift-lab\nLabel: cloudshift-lab\nSuite: lab\nCodename: lab\n"
                     "Date: %s\nSHA256:\n %s %d Packages\n" % (
                         time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()), digest, len(packages)))
    return directory


def main(argv):
    if argv[:1] == ["base"]:
        print(base())
    elif len(argv) == 2 and argv[0] in ("root", "package", "repo"):
        print(dict(root=root, package=package, repo=repo)[argv[0]](argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
