#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_scan
short_description: Scan a live system - packages, services, ports, users, cron, mounts, addresses, files
version_added: 0.1.0
description:
  - Runs on the host it scans (an SSH host, a container, a chroot) and reports what is on it, as structured data
    ready to store, compare (P(cloudshift.migrate.scan_diff#filter)) and rebuild from
    (P(cloudshift.migrate.scan_rebuild#filter)).
  - C(os) - release and kernel. C(packages) - installed packages with version, architecture and origin (the apt
    repository that offers that version, C(local) when none does; the vendor on rpm hosts). C(services) - enabled
    systemd units (their C(*.wants)/C(*.requires) links), masked units, SysV rc links and, where systemd runs, the
    running ones. C(ports) - listening TCP and UDP sockets with their process. C(users) and C(groups) - from
    C(/etc/passwd) and C(/etc/group) (never password hashes). C(cron) - jobs of C(/etc/crontab), C(/etc/cron.d),
    user crontabs and the periodic directories. C(mounts) - real filesystems with size and usage. C(addresses) -
    network addresses.
  - C(changed_files) - files that differ from what their package shipped (the equivalent of C(dpkg --verify), or
    C(rpm -Va)). C(unowned_files) - files under O(directories) that no package owns.
  - Files are reported by path, type, size, mode, owner, group, link target and sha256 - their contents never
    leave the host. Hashing is bounded (O(hash_max_bytes), O(hash_max_files), O(hash_max_total_bytes)) and so is
    the listing (O(max_files)); whatever a bound or the host kept out of the scan is listed in the report's C(skipped),
    never left out silently (no C(/proc) in a chroot, systemd not running, a file that cannot be read).
  - Only reads; check mode does the same.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  categories:
    description: What to scan.
    type: list
    elements: str
    choices: [os, packages, services, ports, users, groups, cron, mounts, addresses, changed_files, unowned_files]
    default: [os, packages, services, ports, users, groups, cron, mounts, addresses, changed_files, unowned_files]
  directories:
    description: Where to look for files no package owns (each walked on its own filesystem, links not followed).
    type: list
    elements: path
    default: [/etc, /srv, /opt, /usr/local]
  exclude:
    description:
      - Shell patterns of paths to leave out of the file categories, added to the built-in ones (the enablement
        links under C(/etc/systemd/system/*.wants) and C(/etc/rc?.d), reported as services; C(/etc/ld.so.cache);
        C(__pycache__)).
    type: list
    elements: str
    default: []
  package_verify:
    description:
      - How much of the packages' files to check against their package's checksums - C(all) files (like
        C(dpkg --verify)), only C(conffiles) (fast), or C(none).
    type: str
    choices: [all, conffiles, none]
    default: all
  package_origin:
    description: Find each package's origin in apt's lists (reads them once; turn off for a faster scan).
    type: bool
    default: true
  hash_max_bytes:
    description: Files larger than this are listed without a sha256.
    type: int
    default: 33554432
  hash_max_files:
    description: At most this many files are hashed; later ones are listed without a sha256.
    type: int
    default: 20000
  hash_max_total_bytes:
    description: At most this many bytes are hashed in all.
    type: int
    default: 2147483648
  max_files:
    description: At most this many unowned files are listed; the rest are counted in the report's C(skipped).
    type: int
    default: 100000
extends_documentation_fragment:
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
notes:
  - With O(migration_id), a C(host_scan) ledger entry records the scan's counts and the sha256 of its report, so
    the verify phase can name the scan it compared with.
"""

EXAMPLES = r"""
- name: Scan the server before it moves
  cloudshift.migrate.host_scan:
  register: before

- name: A quick scan - packages and services only
  cloudshift.migrate.host_scan:
    categories: [packages, services]
    package_origin: false

- name: Files of the application, hashed up to 100 MiB each
  cloudshift.migrate.host_scan:
    categories: [unowned_files]
    directories: [/srv/app, /etc]
    exclude: ["/srv/app/cache/*"]
    hash_max_bytes: 104857600
"""

RETURN = r"""
scan:
  description:
    - The report. C(format) (1), C(host), C(scanned_at) (UTC, ISO 8601), C(seconds), C(counts) (entries per
      category), C(skipped) (a list of C(category), C(reason), and C(path) or C(count)), and one key per scanned
      category.
    - C(packages) - C(name), C(version), C(arch), C(origin), C(manager). C(services) - C(name), C(enabled),
      C(wanted_by), C(unit_path), C(running) (null when unknown), C(init). C(ports) - C(proto), C(address), C(port),
      C(process). C(users) - C(name), C(uid), C(gid), C(home), C(shell). C(groups) - C(name), C(gid), C(members).
      C(cron) - C(source), C(user), C(schedule), C(command). C(mounts) - C(mountpoint), C(device), C(fstype),
      C(options), C(size_bytes), C(used_bytes). C(addresses) - C(interface), C(family), C(address), C(prefix).
    - C(changed_files) - C(path), C(package), C(reason) (C(checksum), C(missing), or rpm's failed checks),
      C(conffile), and the file fields. C(unowned_files) - C(path), C(type) (C(file), C(link), C(other)), C(size),
      C(mode), C(owner), C(group), C(sha256) (null when not hashed), C(target) (links).
  returned: success
  type: dict
actions:
  description: Always empty; the module changes nothing.
  returned: always
  type: list
  elements: str
ledger_entries:
  description: With O(migration_id), one C(host_scan) entry (counts and the report's sha256).
  returned: always
  type: list
  elements: dict
"""

import hashlib
import json
import time

from ansible_collections.cloudshift.migrate.plugins.module_utils import scan
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError, MigrateModule


class HostScan(MigrateModule):
    argument_spec = dict(
        categories=dict(type="list", elements="str", choices=list(scan.CATEGORIES), default=list(scan.CATEGORIES)),
        directories=dict(type="list", elements="path", default=["/etc", "/srv", "/opt", "/usr/local"]),
        exclude=dict(type="list", elements="str", default=[]),
        package_verify=dict(type="str", choices=["all", "conffiles", "none"], default="all"),
        package_origin=dict(type="bool", default=True),
        hash_max_bytes=dict(type="int", default=32 * 1024 * 1024),
        hash_max_files=dict(type="int", default=20000),
        hash_max_total_bytes=dict(type="int", default=2048 * 1024 * 1024),
        max_files=dict(type="int", default=100000),
    )

    def run(self):
        p = self.params
        for name in ("hash_max_bytes", "hash_max_files", "hash_max_total_bytes", "max_files"):
            if p[name] < 0:
                raise MigrateError("%s must be >= 0, not %d" % (name, p[name]))
        relative = [d for d in p["directories"] if not d.startswith("/")]
        if relative:
            raise MigrateError("directories must be absolute paths: %s" % ", ".join(relative))
        started = time.time()
        scanner = scan.Scanner("/", categories=p["categories"], directories=p["directories"], exclude=p["exclude"],
                               package_verify=p["package_verify"], package_origin=p["package_origin"],
                               hash_max_bytes=p["hash_max_bytes"], hash_max_files=p["hash_max_files"],
                               hash_max_total_bytes=p["hash_max_total_bytes"], max_files=p["max_files"], runner=self.module.run_command)
        try:
            body = scanner.run()
        except scan.ScanError as exc:
            raise MigrateError(str(exc))
        hostname = body["os"]["hostname"] if "os" in body else scan.scan_os("/")["hostname"]
        report = dict(format=1, host=hostname, scanned_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                      seconds=round(time.time() - started, 3), counts=scan.summary_counts(body))
        report.update(body)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()
        self.record("host_scan", hostname, key="host_scan:%s:%s" % (hostname, report["scanned_at"]), phase="scan",
                    status="done", checksum="sha256:" + digest, seconds=report["seconds"],
                    data=dict(counts=report["counts"], skipped=len(report["skipped"])))
        return dict(scan=report)


def main():
    HostScan.main()


if __name__ == "__main__":
    main()
