# -*- coding: utf-8 -*-
"""Unit tests of host_scan's readers on a root made in a temporary directory, and of the comparison.

Real Debian roots through a chroot connection are scanned in tests/pytest/test_host_scan.py; here
each reader's parsing is checked on small, exact inputs (and rpm's output, which the lab has no host for).
"""
from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import scan
from ansible_collections.cloudshift.migrate.plugins.module_utils import scan_diff

STATUS = """Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4
Conffiles:
 /etc/issue 0123456789abcdef0123456789abcdef
 /etc/old.conf 0123456789abcdef0123456789abcdef obsolete

Package: gone
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: app
Status: install ok installed
Architecture: all
Version: 2.0-1
"""


def write(root, path, text, mode=0o644):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)
    os.chmod(full, mode)
    return full


@pytest.fixture
def root(tmp_path):
    write(tmp_path, "/var/lib/dpkg/status", STATUS)
    write(tmp_path, "/etc/issue", "Debian\n")  # its md5 differs from the status: an edited conffile
    write(tmp_path, "/var/lib/dpkg/info/base-files.list", "/etc\n/etc/issue\n")
    write(tmp_path, "/var/lib/dpkg/info/app.list", "/usr/bin/app\n")
    app = write(tmp_path, "/usr/bin/app", "#!/bin/sh\n", 0o755)
    write(tmp_path, "/var/lib/dpkg/info/app.md5sums", "%s  usr/bin/app\n" % hashlib.md5(open(app, "rb").read()).hexdigest())
    write(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nweb:x:1000:1000::/srv/web:/bin/sh\n")
    write(tmp_path, "/etc/group", "root:x:0:\nweb:x:1000:deploy,alice\n")
    write(tmp_path, "/etc/crontab", "SHELL=/bin/sh\nPASSWORD=secret\n17 * * * * root cd / && run-parts /etc/cron.hourly\n")
    write(tmp_path, "/etc/cron.d/app", "# comment\n@reboot web /usr/bin/app --start\n")
    write(tmp_path, "/var/spool/cron/crontabs/web", "*/5 * * * * /usr/bin/app --tick\n")
    write(tmp_path, "/etc/app.conf", "token=abc\n", 0o600)
    write(tmp_path, "/etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    write(tmp_path, "/etc/hostname", "web01\n")
    write(tmp_path, "/lib/systemd/system/app.service", "[Service]\n")
    wants = os.path.join(str(tmp_path), "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants)
    os.symlink("/lib/systemd/system/app.service", os.path.join(wants, "app.service"))
    os.symlink("/dev/null", os.path.join(str(tmp_path), "etc/systemd/system/ctrl-alt-del.target"))
    write(tmp_path, "/var/lib/apt/lists/mirror_debian_dists_bookworm_InRelease", "Origin: Debian\nSuite: stable\n")
    write(tmp_path, "/var/lib/apt/lists/mirror_debian_dists_bookworm_main_binary-amd64_Packages",
          "Package: base-files\nVersion: 12.4\n\nPackage: app\nVersion: 1.0-1\n")
    return str(tmp_path)


def run(root, **kwargs):
    return scan.Scanner(root, directories=("/etc",), **kwargs).run()


def test_packages_installed_only_with_their_origin(root):
    report = run(root)
    assert report["packages"] == [
        {"name": "app", "version": "2.0-1", "arch": "all", "manager": "dpkg", "origin": "local"},
        {"name": "base-files", "version": "12.4", "arch": "amd64", "manager": "dpkg", "origin": "Debian bookworm/main"}]
    assert report["os"]["id"] == "debian" and report["os"]["hostname"] == "web01"


def test_changed_files_and_unowned_files_carry_metadata_not_contents(root):
    report = run(root)
    assert [(f["path"], f["package"], f["reason"], f["conffile"]) for f in report["changed_files"]] == [
        ("/etc/issue", "base-files", "checksum", True)]
    unowned = dict((f["path"], f) for f in report["unowned_files"])
    assert "/etc/issue" not in unowned  # owned
    assert "/etc/systemd/system/multi-user.target.wants/app.service" not in unowned  # a service, not a file
    conf = unowned["/etc/app.conf"]
    assert conf["mode"] == "0600" and conf["type"] == "file" and conf["sha256"] == hashlib.sha256(b"token=abc\n").hexdigest()
    assert "token=abc" not in repr(report)
    assert unowned["/etc/systemd/system/ctrl-alt-del.target"]["target"] == "/dev/null"


def test_package_files_verified_like_dpkg_verify(root):
    write(root, "/usr/bin/app", "#!/bin/sh\necho changed\n", 0o755)
    changed = run(root)["changed_files"]
    assert ("/usr/bin/app", "checksum", False) in [(f["path"], f["reason"], f["conffile"]) for f in changed]
    assert [f["path"] for f in run(root, package_verify="conffiles")["changed_files"]] == ["/etc/issue"]
    os.unlink(os.path.join(root, "etc/issue"))
    assert run(root, package_verify="conffiles")["changed_files"][0]["reason"] == "missing"


def test_services_users_groups_cron(root):
    report = run(root)
    services = dict((s["name"], s) for s in report["services"])
    assert services["app.service"]["enabled"] and services["app.service"]["wanted_by"] == ["multi-user.target"]
    assert services["ctrl-alt-del.target"]["masked"]
    assert [u["name"] for u in report["users"]] == ["root", "web"]
    assert report["groups"][1] == {"name": "web", "gid": 1000, "members": ["alice", "deploy"]}
    jobs = [(j["source"], j["user"], j["schedule"], j["command"]) for j in report["cron"]]
    assert jobs == [("/etc/crontab", "root", "17 * * * *", "cd / && run-parts /etc/cron.hourly"),
                    ("/etc/cron.d/app", "web", "@reboot", "/usr/bin/app --start"),
                    ("/var/spool/cron/crontabs/web", "web", "*/5 * * * *", "/usr/bin/app --tick")]
    assert "secret" not in repr(report["cron"])


def test_bounds_are_reported_not_silent(root):
    write(root, "/etc/big.bin", "x" * 4096)
    total = len(run(root)["unowned_files"])
    report = run(root, hash_max_bytes=1024, max_files=3)
    assert len(report["unowned_files"]) == 3
    skipped = dict((s["reason"].split(" ")[0], s) for s in report["skipped"])
    assert skipped["max_files"]["count"] == total - 3 and skipped["max_files"]["category"] == "unowned_files"
    report = run(root, hash_max_bytes=1024)
    big = [f for f in report["unowned_files"] if f["path"] == "/etc/big.bin"][0]
    assert big["sha256"] is None and big["size"] == 4096
    assert any("hash_max_bytes" in s["reason"] and s["count"] == 1 for s in report["skipped"])
    report = run(root, hash_max_files=1)
    assert len([f for f in report["unowned_files"] + report["changed_files"] if f["sha256"]]) == 1
    assert any("hash_max_files" in s["reason"] for s in report["skipped"])


def test_proc_net_rpm_and_ip_parsers():
    tcp = ["  sl  local_address rem_address   st ...",
           "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1",
           "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 99 1"]
    assert scan.parse_proc_net(tcp, "tcp") == [("tcp", "127.0.0.1", 3306, "1234")]
    tcp6 = ["header", "0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0 0 0 0 0 77 1"]
    assert scan.parse_proc_net(tcp6, "tcp6") == [("tcp", "::1", 22, "77")]
    rpm = "bash\t(none):5.1.8-9.el9\tx86_64\tRed Hat, Inc.\nkernel\t(none):5.14-1\tx86_64\t(none)\n"
    assert scan.parse_rpm_query(rpm)[0] == {"name": "bash", "version": "5.1.8-9.el9", "arch": "x86_64",
                                            "manager": "rpm", "origin": "Red Hat, Inc."}
    verify = "S.5....T.  c /etc/ssh/sshd_config\nmissing     /usr/share/doc/x\n.M.......    /usr/bin/y\n"
    assert scan.parse_rpm_verify(verify) == [("/etc/ssh/sshd_config", "checksum", True),
                                             ("/usr/share/doc/x", "missing", False),
                                             ("/usr/bin/y", "attributes:.M.......", False)]
    assert scan.parse_ip_json([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.5",
                                                                 "prefixlen": 24}]}]) == [
        {"interface": "eth0", "family": "inet", "address": "10.0.0.5", "prefix": 24}]


def scan_of(**categories):
    report = {"format": 1}
    report.update(categories)
    return report


def test_diff_by_category_with_summary():
    old = scan_of(packages=[{"name": "nginx", "arch": "amd64", "version": "1.22"},
                            {"name": "vim", "arch": "amd64", "version": "9.0"}],
                  unowned_files=[{"path": "/etc/a", "type": "file", "sha256": "1", "mode": "0644"},
                                 {"path": "/etc/hostname", "type": "file", "sha256": "x"}])
    new = scan_of(packages=[{"name": "nginx", "arch": "amd64", "version": "1.24"},
                            {"name": "curl", "arch": "amd64", "version": "7.88"}],
                  unowned_files=[{"path": "/etc/a", "type": "file", "sha256": "2", "mode": "0600"},
                                 {"path": "/etc/hostname", "type": "file", "sha256": "y"}])
    result = scan_diff.diff(old, new, categories=["packages", "unowned_files", "services"],
                            exclude_paths=["/etc/hostname"])
    assert not result["equal"] and result["not_compared"] == ["services"]
    assert result["counts"]["packages"] == {"added": 1, "removed": 1, "changed": 1}
    assert result["categories"]["unowned_files"]["changed"][0]["fields"] == ["sha256", "mode"]
    assert result["summary"][0] == ("packages: 1 added (curl 7.88), 1 removed (vim 9.0), "
                                    "1 changed (nginx: version 1.22 -> 1.24)")
    assert scan_diff.diff(old, old)["equal"]
    with pytest.raises(scan_diff.ScanDiffError, match="not a host_scan report"):
        scan_diff.diff({}, old)
    with pytest.raises(scan_diff.ScanDiffError, match="unknown categories"):
        scan_diff.diff(old, old, categories=["secrets"])


def test_rebuild_plan_selects_packages_services_and_configuration():
    report = scan_of(
        packages=[{"name": "app", "version": "2.0", "manager": "dpkg"}],
        services=[{"name": "app.service", "enabled": True, "init": "systemd", "wanted_by": ["multi-user"],
                   "unit_path": "/lib/systemd/system/app.service"},
                  {"name": "sysv:old", "enabled": True, "init": "sysv", "wanted_by": [], "unit_path": "/etc/init.d/old"}],
        changed_files=[{"path": "/etc/app.conf", "type": "file", "conffile": True, "reason": "checksum", "sha256": "a"},
                       {"path": "/usr/bin/app", "type": "file", "conffile": False, "reason": "checksum", "sha256": "b"},
                       {"path": "/etc/gone", "conffile": True, "reason": "missing"}],
        unowned_files=[{"path": "/etc/hostname", "type": "file", "sha256": "c"},
                       {"path": "/srv/app/big", "type": "file", "sha256": None},
                       {"path": "/srv/app/current", "type": "link", "target": "v2"}])
    plan = scan_diff.rebuild_plan(report)
    assert plan["packages"] == ["app=2.0"] and [s["name"] for s in plan["services"]] == ["app.service"]
    assert [f["path"] for f in plan["files"]] == ["/etc/app.conf", "/srv/app/current"]
    assert plan["unhashed"] == ["/srv/app/big"]
    with pytest.raises(scan_diff.ScanDiffError, match="has no services"):
        scan_diff.rebuild_plan(scan_of(packages=[]))


def test_any_change_of_an_os_field_compares_and_reports():
    """A hostname (or kernel, release) change broke 'Store the comparison': the os changes had no ``fields``."""
    import jinja2

    old = scan_of(os={"id": "debian", "version_id": "12", "hostname": "web01", "kernel": "6.1.0-1"})
    new = scan_of(os={"id": "debian", "version_id": "12", "hostname": "web02", "kernel": "6.1.0-2"})
    result = scan_diff.diff(old, new, categories=["os"])
    changed = result["categories"]["os"]["changed"]
    assert [c["key"] for c in changed] == ["kernel", "hostname"]
    assert changed[1] == {"key": "hostname", "fields": ["hostname"], "old": {"hostname": "web01"},
                          "new": {"hostname": "web02"}}
    assert result["summary"] == ["os: kernel 6.1.0-1 -> 6.1.0-2, hostname web01 -> web02"]
    templates = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "report", "templates")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined)
    template = env.get_template("scan_compare.md.j2")
    text = template.render(report_scan={"host": "web01"}, report_scan_comparison=result)
    assert "| changed | hostname | hostname: web01 -> web02 |" in text


def test_a_directory_that_does_not_exist_is_not_skipped_silently(root):
    report = scan.Scanner(root, directories=("/etc", "/no/such/dir")).run()
    assert {"category": "unowned_files", "reason": "no such directory", "path": "/no/such/dir"} in report["skipped"]


def test_secrets_flagged_and_masked_in_cron(root):
    write(root, "/etc/cron.d/backup", "15 3 * * * root mysqldump -uroot -pS3cret app && curl https://u:pw@x/ "
                                      "--password=hunter2 DB_PASSWORD=abc\n")
    write(root, "/etc/ssl/private/site.key", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
    write(root, "/etc/plain.conf", "listen=8080\n")
    report = run(root)
    job = [j for j in report["cron"] if j["source"] == "/etc/cron.d/backup"][0]
    for secret in ("S3cret", "hunter2", ":pw@", "=abc"):
        assert secret not in job["command"], job["command"]
    assert "mysqldump -uroot -p******** app" in job["command"]
    unowned = dict((f["path"], f) for f in report["unowned_files"])
    assert unowned["/etc/ssl/private/site.key"].get("secret") and unowned["/etc/app.conf"].get("secret")
    assert not unowned["/etc/plain.conf"].get("secret")
    report = dict(report, format=1, services=[], changed_files=[])
    plan = scan_diff.rebuild_plan(report)
    assert "/etc/ssl/private/site.key" in plan["secrets"] and "/etc/app.conf" in plan["secrets"]
    assert "/etc/plain.conf" in [f["path"] for f in plan["files"]] and not plan["warnings"]
    copied = scan_diff.rebuild_plan(report, include_secrets=True)
    flagged = ["/etc/app.conf", "/etc/crontab", "/etc/cron.d/backup", "/etc/ssl/private/site.key"]
    assert sorted(plan["secrets"]) == sorted(flagged)  # a crontab with a password in it is a credential too
    assert "/etc/app.conf" in [f["path"] for f in copied["files"]]
    assert sorted(w.split()[0] for w in copied["warnings"]) == sorted(flagged)
