# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare two host_scan reports; plan a rebuild from one.

Pure functions over the reports' dicts, used by the scan_diff and scan_rebuild
filters on the controller and by the unit tests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch

# category -> (what identifies an entry, the fields whose change is a change)
KEYS = {
    "packages": (("name", "arch"), ("version",)),
    "services": (("name",), ("enabled", "wanted_by", "running", "masked")),
    "ports": (("proto", "address", "port"), ("process",)),
    "users": (("name",), ("uid", "gid", "home", "shell")),
    "groups": (("name",), ("gid", "members")),
    "cron": (("source", "user", "schedule", "command"), ()),
    "mounts": (("mountpoint",), ("device", "fstype")),
    "addresses": (("interface", "address", "prefix"), ()),
    "changed_files": (("path",), ("reason", "type", "sha256", "mode", "owner", "group", "target")),
    "unowned_files": (("path",), ("type", "sha256", "mode", "owner", "group", "target")),
}
OS_FIELDS = ("id", "version_id", "kernel", "arch", "hostname")
FILE_CATEGORIES = ("changed_files", "unowned_files")
CATEGORIES = ("os",) + tuple(KEYS)

# Files a rebuild leaves alone unless told otherwise: the host's identity, its accounts (made by packages and by
# the operator), and what the new cloud configures itself (network, repositories, mounts, cloud-init).
REBUILD_EXCLUDE = (
    "/etc/machine-id", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab", "/etc/fstab", "/etc/adjtime",
    "/etc/passwd*", "/etc/group*", "/etc/shadow*", "/etc/gshadow*", "/etc/subuid*", "/etc/subgid*",
    "/etc/ssh/ssh_host_*", "/etc/alternatives/*", "/etc/apt/*", "/etc/network/*", "/etc/netplan/*", "/etc/cloud/*",
    "/etc/udev/rules.d/70-persistent-*", "/etc/systemd/system/*", "/etc/ssl/certs/*", "/etc/dpkg/*",
    "/etc/ld.so.cache", "/etc/localtime", "/etc/timezone", "/etc/debian_version", "/etc/os-release",
)


# Paths that hold keys and credentials: a rebuild leaves them out (and so do files whose content the scan found
# credential-like) unless include_secrets is set - then they are copied, with a warning in the plan.
SECRET_PATHS = (
    "/etc/ssl/private/*", "*.key", "/etc/security/opasswd", "/root/.ssh/*", "/home/*/.ssh/*", "/etc/ssh/*_key",
    "*/.pgpass", "*/.my.cnf", "/etc/mysql/debian.cnf", "*/.netrc", "*/.aws/credentials", "*/.git-credentials",
)


class ScanDiffError(Exception):
    pass


def _key(entry, fields):
    return tuple(entry.get(f) for f in fields)


def _label(category, entry):
    if category == "packages":
        return "%s %s" % (entry.get("name"), entry.get("version"))
    if category == "ports":
        return "%s %s:%s" % (entry.get("proto"), entry.get("address"), entry.get("port"))
    if category == "cron":
        return "%s %s (%s)" % (entry.get("schedule"), entry.get("command"), entry.get("source"))
    if category == "addresses":
        return "%s %s/%s" % (entry.get("interface"), entry.get("address"), entry.get("prefix"))
    if category == "mounts":
        return entry.get("mountpoint")
    return entry.get("path") or entry.get("name")


def matches(path, patterns):
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns or ())


def check_scan(scan, which):
    if not isinstance(scan, dict) or scan.get("format") != 1:
        raise ScanDiffError("%s is not a host_scan report (format 1): give the scan dict the module returned" % which)


def diff(old, new, categories=None, exclude_paths=(), only_paths=None, old_label="Scan #1", new_label="Scan #2"):
    """What changed from ``old`` to ``new``: per category added, removed and changed entries, and a summary.

    Only categories both scans hold are compared (a category one scan skipped is named in ``not_compared``).
    ``exclude_paths`` (shell patterns) leaves files out; ``only_paths`` keeps only the files that match.
    """
    check_scan(old, "the first scan")
    check_scan(new, "the second scan")
    wanted = list(categories or CATEGORIES)
    unknown = [c for c in wanted if c not in CATEGORIES]
    if unknown:
        raise ScanDiffError("unknown categories %s (known: %s)" % (", ".join(unknown), ", ".join(CATEGORIES)))
    result = dict(old=old_label, new=new_label, categories={}, not_compared=[], summary=[])
    for category in wanted:
        if category not in old or category not in new:
            result["not_compared"].append(category)
            continue
        if category == "os":
            # the shape of every other category's changes (key, fields, old, new): reports read them alike
            changes = [dict(key=f, fields=[f], old={f: old["os"].get(f)}, new={f: new["os"].get(f)}) for f in OS_FIELDS
                       if old["os"].get(f) != new["os"].get(f)]
            result["categories"]["os"] = dict(added=[], removed=[], changed=changes)
            if changes:
                shown = ["%s %s -> %s" % (c["key"], c["old"][c["key"]], c["new"][c["key"]]) for c in changes]
                result["summary"].append("os: " + ", ".join(shown))
            continue
        key_fields, compared = KEYS[category]

        def keep(entry, category=category):
            if category not in FILE_CATEGORIES:
                return True
            path = entry.get("path") or ""
            return not matches(path, exclude_paths) and (only_paths is None or matches(path, only_paths))

        before = dict((_key(e, key_fields), e) for e in old[category] if keep(e))
        after = dict((_key(e, key_fields), e) for e in new[category] if keep(e))
        added = [after[k] for k in sorted(after, key=str) if k not in before]
        removed = [before[k] for k in sorted(before, key=str) if k not in after]
        changed = []
        for k in sorted(set(before) & set(after), key=str):
            fields = [f for f in compared if before[k].get(f) != after[k].get(f)]
            if fields:
                label = after[k]["name"] if category == "packages" else _label(category, after[k])
                changed.append(dict(key=label, fields=fields,
                                    old=dict((f, before[k].get(f)) for f in fields),
                                    new=dict((f, after[k].get(f)) for f in fields)))
        result["categories"][category] = dict(added=added, removed=removed, changed=changed)
        if added or removed or changed:
            parts = []
            for word, items in (("added", added), ("removed", removed)):
                if items:
                    shown = ", ".join(_label(category, e) for e in items[:5])
                    parts.append("%d %s (%s%s)" % (len(items), word, shown, ", ..." if len(items) > 5 else ""))
            if changed:
                shown = ", ".join("%s: %s" % (c["key"], "; ".join(
                    "%s %s -> %s" % (f, c["old"][f], c["new"][f]) for f in c["fields"])) for c in changed[:5])
                parts.append("%d changed (%s%s)" % (len(changed), shown, ", ..." if len(changed) > 5 else ""))
            result["summary"].append("%s: %s" % (category, ", ".join(parts)))
    result["equal"] = not result["summary"]
    result["counts"] = dict((c, dict((w, len(v[w])) for w in ("added", "removed", "changed")))
                            for c, v in result["categories"].items())
    head = "%s -> %s: " % (old_label, new_label)
    result["text"] = head + ("no difference" if result["equal"] else "; ".join(result["summary"]))
    return result


def rebuild_plan(scan, exclude=REBUILD_EXCLUDE, extra_exclude=(), include=None, include_secrets=False):
    """What a rebuild of the scanned host installs, enables and copies.

    Packages: every package at its scanned version. Services: the enabled units with the targets that want
    them. Files: the edited conffiles and the unowned files and links in the scan, less ``exclude`` +
    ``extra_exclude`` (and, with ``include``, only those that match). Keys and credentials (SECRET_PATHS, or
    content the scan flagged ``secret``) are left out and listed in ``secrets``, unless ``include_secrets``:
    then they are copied and ``warnings`` says so.
    """
    check_scan(scan, "the scan")
    for category in ("packages", "services", "changed_files", "unowned_files"):
        if category not in scan:
            raise ScanDiffError("the scan has no %s: scan with categories packages, services, changed_files and "
                                "unowned_files to rebuild from it" % category)
    patterns = tuple(exclude) + tuple(extra_exclude or ())
    packages = ["%s=%s" % (p["name"], p["version"]) for p in scan["packages"]
                if p.get("manager") in (None, "dpkg")]
    services = [dict(name=s["name"], wanted_by=s["wanted_by"], unit_path=s["unit_path"])
                for s in scan["services"] if s.get("enabled") and s.get("init") == "systemd" and s.get("unit_path")]
    files, unhashed, secrets, warnings = [], [], [], []
    for category in FILE_CATEGORIES:
        for entry in scan[category]:
            path = entry["path"]
            if entry.get("reason") == "missing" or entry.get("type") not in ("file", "link"):
                continue
            if category == "changed_files" and not entry.get("conffile"):
                continue  # a package's program or library, changed: reinstalling the package restores it
            if matches(path, patterns) or (include is not None and not matches(path, include)):
                continue
            if entry["type"] == "file" and not entry.get("sha256"):
                unhashed.append(path)
                continue
            if entry["type"] == "file" and (entry.get("secret") or matches(path, SECRET_PATHS)):
                if not include_secrets:
                    secrets.append(path)
                    continue
                warnings.append("%s holds a key or credentials: copied because include_secrets is set" % path)
            files.append(dict((k, entry.get(k)) for k in ("path", "type", "mode", "owner", "group", "sha256", "target")))
    files.sort(key=lambda f: f["path"])
    return dict(host=scan.get("host"), scanned_at=scan.get("scanned_at"), packages=sorted(packages),
                services=services, files=files, unhashed=unhashed, exclude=list(patterns), secrets=sorted(secrets),
                warnings=warnings)
