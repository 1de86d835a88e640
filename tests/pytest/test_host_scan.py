# -*- coding: utf-8 -*-
"""host_scan, scan_diff, scan_host and the rebuild, on real Debian systems: two debootstrap'd roots
used through Ansible's chroot connection (lab/rootfs.py), and this machine itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from conftest import ROOT, run_module

pytestmark = pytest.mark.usefixtures("collection")

ROOTFS = [sys.executable, os.path.join(ROOT, "lab", "rootfs.py")]
CATEGORIES = ["packages", "services", "changed_files", "unowned_files"]


def playbook(*args, check=True, env=None):
    out = subprocess.run(["ansible-playbook"] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=False, env=dict(os.environ, **(env or {})))
    if check:
        assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    return out


def recap(output, host):
    line = [l for l in output.splitlines() if l.startswith(host + " ") and "ok=" in l][-1]
    return dict(part.split("=") for part in line.split(":", 1)[1].split())


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Two fresh roots of the same release (a, the scanned host; b, the rebuilt one), an inventory and the demo package."""
    base = tmp_path_factory.mktemp("roots")
    for name in ("a", "b"):
        subprocess.run(ROOTFS + ["root", str(base / name)], check=True, stdout=subprocess.DEVNULL)
    packages = base / "packages"
    packages.mkdir()
    deb = subprocess.run(ROOTFS + ["package", str(packages)], check=True, capture_output=True,
                         text=True).stdout.strip()
    inventory = base / "inventory.ini"
    inventory.write_text("[roots]\nrootA ansible_host=%s\nrootB ansible_host=%s\n[roots:vars]\n"
                         "ansible_connection=community.general.chroot\nansible_python_interpreter=/usr/bin/python3\n"
                         % (base / "a", base / "b"))
    return dict(base=base, a=base / "a", b=base / "b", deb=deb, inventory=inventory, scans=base / "scans")


def scan_host(roots, host, *extra, check=True):
    return playbook("-i", roots["inventory"], "cloudshift.migrate.scan_host", "-e", "target=" + host,
                    "-e", "scan_dir=%s" % roots["scans"], *extra, check=check)


def known_changes(root, deb):
    """A package installed, a package's config file edited, its service enabled, an application's files added."""
    subprocess.run(["cp", deb, str(root / "tmp")], check=True)
    subprocess.run(["chroot", str(root), "dpkg", "-i", "/tmp/" + os.path.basename(deb)], check=True,
                   stdout=subprocess.DEVNULL)
    os.unlink(str(root / "tmp" / os.path.basename(deb)))
    with open(str(root / "etc" / "debconf.conf"), "a") as handle:
        handle.write("# edited for the test\n")
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    os.symlink("/lib/systemd/system/cloudshift-demo.service", str(wants / "cloudshift-demo.service"))
    app = root / "srv" / "app"
    app.mkdir(parents=True)
    (app / "config.ini").write_text("listen=8080\npassword=not-for-the-report\n")
    os.chmod(str(app / "config.ini"), 0o640)
    os.symlink("config.ini", str(app / "current.ini"))


@pytest.fixture(scope="module")
def scanned(roots):
    """Scan #1 of root a, the known changes, then scan #2 with the rebuild collected."""
    scan_host(roots, "rootA")
    known_changes(roots["a"], roots["deb"])
    # config.ini holds a password: copied only because the rebuild is asked to copy credentials too
    out = scan_host(roots, "rootA", "-e", "rebuild=true", "-e", "rebuild_secrets=true")
    folder = roots["scans"] / "rootA"
    return dict(output=out.stdout, folder=folder, first=json.loads((folder / "scan-1.json").read_text()),
                second=json.loads((folder / "scan-2.json").read_text()),
                comparison=json.loads((folder / "compare-1-2.json").read_text()))


def test_comparison_reports_exactly_the_known_changes(scanned):
    comparison = scanned["comparison"]
    added = dict((name, [e.get("path") or e.get("name") for e in category["added"]])
                 for name, category in comparison["categories"].items())
    assert added == {"os": [], "packages": ["cloudshift-demo"], "services": ["cloudshift-demo.service"],
                     "ports": [], "users": [], "groups": [], "cron": [], "mounts": [], "addresses": [],
                     "changed_files": ["/etc/debconf.conf"],
                     "unowned_files": ["/srv/app/config.ini", "/srv/app/current.ini"]}
    assert all(not c["removed"] and not c["changed"] for c in comparison["categories"].values())
    assert not comparison["equal"] and comparison["old"] == "Scan #1" and comparison["new"] == "Scan #2"
    assert "packages: 1 added (cloudshift-demo 1.0-1)" in scanned["output"]
    markdown = (scanned["folder"] / "compare-1-2.md").read_text()
    assert "| added | /srv/app/config.ini |" in markdown


def test_scan_holds_metadata_and_hashes_never_contents(scanned):
    second = scanned["second"]
    config = [f for f in second["unowned_files"] if f["path"] == "/srv/app/config.ini"][0]
    assert config["mode"] == "0640" and config["owner"] == "root" and config["type"] == "file"
    import hashlib
    assert config["sha256"] == hashlib.sha256(b"listen=8080\npassword=not-for-the-report\n").hexdigest()
    link = [f for f in second["unowned_files"] if f["path"] == "/srv/app/current.ini"][0]
    assert link["type"] == "link" and link["target"] == "config.ini"
    text = (scanned["folder"] / "scan-2.json").read_text()
    assert "not-for-the-report" not in text
    shadow = [f for f in second["unowned_files"] if f["path"] == "/etc/shadow"][0]
    assert shadow["sha256"] and "root:" not in text.split('"/etc/shadow"')[1][:400]
    assert not any("hash" in u or "password" in u for u in second["users"])
    edited = [f for f in second["changed_files"] if f["path"] == "/etc/debconf.conf"][0]
    assert edited["package"] == "debconf" and edited["reason"] == "checksum" and edited["conffile"]
    demo = [p for p in second["packages"] if p["name"] == "cloudshift-demo"][0]
    assert demo == {"name": "cloudshift-demo", "version": "1.0-1", "arch": "all", "manager": "dpkg", "origin": "local"}
    reasons = " ".join(item["reason"] for item in second["skipped"])
    assert "/proc is not mounted" in reasons and "systemd is not running" in reasons


def test_rebuild_makes_a_fresh_root_compare_equal(roots, scanned):
    """rebuild-2.yml applied to root b (its repository offers the demo package), run twice, then b's scan
    compared with a's scan #2."""
    repo = roots["b"] / "var" / "local" / "repo"
    repo.mkdir(parents=True)
    subprocess.run(["cp", roots["deb"], str(repo)], check=True)
    subprocess.run(ROOTFS + ["repo", str(repo)], check=True, stdout=subprocess.DEVNULL)
    (roots["b"] / "etc" / "apt" / "sources.list").write_text("deb [trusted=yes] file:/var/local/repo ./\n")
    rebuild = scanned["folder"] / "rebuild-2.yml"
    assert "cloudshift-demo=1.0-1" in (scanned["folder"] / "rebuild-2.json").read_text()
    first = playbook("-i", roots["inventory"], rebuild, "-e", "rebuild_target=rootB")
    assert "the target has the plan's packages, services and files" in first.stdout
    assert int(recap(first.stdout, "rootB")["changed"]) > 0
    second = playbook("-i", roots["inventory"], rebuild, "-e", "rebuild_target=rootB")
    assert recap(second.stdout, "rootB")["changed"] == "0"
    assert os.readlink(str(roots["b"] / "srv" / "app" / "current.ini")) == "config.ini"
    scan_host(roots, "rootB", "-e", "compare_host=rootA", "-e", json.dumps(
        {"compare_categories": CATEGORIES, "compare_exclude": ["/etc/apt/*"]}))
    comparison = json.loads((roots["scans"] / "rootB" / "compare-rootA-2-1.json").read_text())
    assert comparison["equal"], comparison["summary"]
    assert comparison["text"] == "rootA Scan #2 -> rootB Scan #1: no difference"
    assert comparison["counts"]["packages"] == {"added": 0, "removed": 0, "changed": 0}


def test_verify_phase_checks_a_migrated_host_against_the_old_scan(roots, scanned, tmp_path):
    """verify's host_scan entry point: rootB (rebuilt) passes against rootA's scan #2, fails against scan #1."""
    if not (roots["b"] / "srv" / "app" / "config.ini").exists():
        pytest.skip("needs the rebuilt root of test_rebuild_makes_a_fresh_root_compare_equal")
    book = tmp_path / "verify.yml"
    book.write_text("""- hosts: rootB
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: cloudshift.migrate.verify
        tasks_from: host_scan
      vars:
        verify_scan_before: "{{ before }}"
        verify_migration_id: scan-verify
        verify_ledger_dir: "%s"
""" % tmp_path)
    good = playbook("-i", roots["inventory"], book, "-e", "before=%s" % (scanned["folder"] / "scan-2.json"))
    assert "before (vm) -> after (rootB): no difference" in good.stdout
    bad = playbook("-i", roots["inventory"], book, "-e", "before=%s" % (scanned["folder"] / "scan-1.json"),
                   check=False)
    assert bad.returncode != 0
    assert "packages: 1 added (cloudshift-demo 1.0-1)" in bad.stdout
    ledger = json.loads((tmp_path / "scan-verify.json").read_text())
    statuses = sorted(e["status"] for e in ledger["entries"].values() if e["type"] == "scan_verify")
    assert statuses == ["failed"]  # one entry per host pair: the later check replaced the earlier


HOSTILE_FILE = "{{ lookup('pipe', 'id -u') }} {{ 7 * 6 }}.txt"  # templated, it would be "0 42.txt"
HOSTILE_TARGET = "{{ lookup('env', 'HOME') }}{% if true %}-yes{% endif %}"


def test_rebuild_plan_names_are_never_templated(roots, scanned):
    """A scanned file named like a template and a link whose target is one arrive byte for byte; nothing of
    either runs on the controller (before: the copy looked for the output of a command the name ran)."""
    if not (roots["b"] / "srv" / "app" / "config.ini").exists():
        pytest.skip("needs the rebuilt root of test_rebuild_makes_a_fresh_root_compare_equal")
    hostile = roots["a"] / "srv" / "hostile"
    hostile.mkdir(parents=True)
    (hostile / HOSTILE_FILE).write_text("as it was\n")
    (hostile / "line\nbreak.txt").write_text("split?\n")  # tar --files-from split such a name in two
    os.symlink(HOSTILE_TARGET, str(hostile / "link"))
    try:
        scan_host(roots, "rootA", "-e", "rebuild=true")
        number = max(int(p.name[len("rebuild-"):-len(".json")]) for p in scanned["folder"].glob("rebuild-*.json"))
        plan = json.loads((scanned["folder"] / ("rebuild-%d.json" % number)).read_text())
        assert "/srv/hostile/" + HOSTILE_FILE in [f["path"] for f in plan["files"]]
        playbook("-i", roots["inventory"], scanned["folder"] / ("rebuild-%d.yml" % number), "-e", "rebuild_target=rootB")
        copied = roots["b"] / "srv" / "hostile"
        assert (copied / HOSTILE_FILE).read_text() == "as it was\n"
        assert (copied / "line\nbreak.txt").read_text() == "split?\n"
        assert os.readlink(str(copied / "link")) == HOSTILE_TARGET
        assert not (copied / "0 42.txt").exists(), "a scanned name ran a command on the controller"
    finally:
        subprocess.run(["rm", "-rf", str(hostile), str(roots["b"] / "srv" / "hostile")], check=True)


def test_rebuild_leaves_keys_and_credentials_out_by_default(roots, scanned):
    """A private key and an application file with a password are listed, not packed, unless asked for; a cron
    job's password is masked in the scan, the comparison and the summary."""
    private = roots["a"] / "etc" / "ssl" / "private"
    private.mkdir(parents=True, exist_ok=True)
    (private / "site.key").write_text("-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n")
    cron = roots["a"] / "etc" / "cron.d" / "backup"
    cron.write_text("15 3 * * * root mysqldump -uroot -pcron-secret-4711 app > /var/backups/app.sql\n")
    try:
        out = scan_host(roots, "rootA", "-e", "rebuild=true")
        number = max(int(p.name[len("rebuild-"):-len(".json")]) for p in scanned["folder"].glob("rebuild-*.json"))
        plan = json.loads((scanned["folder"] / ("rebuild-%d.json" % number)).read_text())
        paths = [f["path"] for f in plan["files"]]
        assert "/etc/ssl/private/site.key" in plan["secrets"] and "/etc/ssl/private/site.key" not in paths
        assert "/srv/app/config.ini" in plan["secrets"] and "/srv/app/config.ini" not in paths
        assert "keys or credentials left out: " in out.stdout
        with tarfile.open(str(scanned["folder"] / ("scan-%d-files.tar" % number))) as packed:
            assert not [n for n in packed.getnames() if "private" in n or n.endswith("config.ini")]
        for name in ("scan-%d.json" % number, "compare-%d-%d.json" % (number - 1, number)):
            assert "cron-secret-4711" not in (scanned["folder"] / name).read_text(), name
        assert "cron-secret-4711" not in out.stdout
    finally:
        subprocess.run(["rm", "-rf", str(private / "site.key"), str(cron)], check=True)


def test_bad_input_is_refused_and_check_mode_only_reads(roots, tmp_path):
    bad = run_module("rootA", "cloudshift.migrate.host_scan", {"directories": ["etc"]}, inventory=roots["inventory"])
    assert bad["failed"] and "directories must be absolute paths: etc" in bad["msg"]
    bad = run_module("rootA", "cloudshift.migrate.host_scan", {"categories": ["packages", "secrets"]},
                     inventory=roots["inventory"])
    assert bad["failed"] and "secrets" in bad["msg"]
    before = sorted(os.listdir(str(roots["scans"] / "rootA"))) if (roots["scans"] / "rootA").exists() else []
    out = scan_host(roots, "rootA", "-e", "compare_with=99", check=False)
    assert out.returncode != 0 and "there is no scan #99 of rootA" in out.stdout
    after = sorted(os.listdir(str(roots["scans"] / "rootA"))) if (roots["scans"] / "rootA").exists() else []
    assert after == before  # refused before anything was stored
    checked = run_module("rootA", "cloudshift.migrate.host_scan", {"categories": ["packages", "services"],
                                                                   "migration_id": "scan-check"},
                         inventory=roots["inventory"], check=True, env={"CLOUDSHIFT_LEDGER_DIR": str(tmp_path)})
    assert not checked["changed"] and checked["actions"] == [] and checked["scan"]["counts"]["packages"] > 50
    assert not os.listdir(str(tmp_path))
    recorded = run_module("rootA", "cloudshift.migrate.host_scan", {"categories": ["packages"],
                                                                    "migration_id": "scan-ledger"},
                          inventory=roots["inventory"], env={"CLOUDSHIFT_LEDGER_DIR": str(tmp_path)})
    assert not recorded["changed"]
    ledger = json.loads((tmp_path / "scan-ledger.json").read_text())
    entries = list(ledger["entries"].values()) if isinstance(ledger["entries"], dict) else ledger["entries"]
    assert entries[0]["type"] == "host_scan" and entries[0]["checksum"].startswith("sha256:")
    assert entries[0]["data"]["counts"]["packages"] == recorded["scan"]["counts"]["packages"]


def test_scan_of_this_machine(tmp_path):
    """The whole package set of the machine running the tests, every category; the conffiles verified and
    hashing bounded (the full verification of every package file is timed by make bench-scan, not here)."""
    result = run_module("localhost", "cloudshift.migrate.host_scan", {
        "package_verify": "conffiles", "hash_max_files": 500, "hash_max_total_bytes": 268435456})
    assert not result.get("failed"), result.get("msg")
    scan = result["scan"]
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}${binary:Package}\\n"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    names = set(line[3:].split(":")[0] for line in installed if line.startswith("ii "))
    assert set(p["name"] for p in scan["packages"]) == names
    assert any(p["port"] for p in scan["ports"]) and scan["mounts"] and scan["users"]
    assert any("hash_max_files" in s["reason"] for s in scan["skipped"])  # the bound held, and is reported
    print("scan of this machine: %d packages, %d changed and %d unowned files in %.1f s" % (
        len(scan["packages"]), len(scan["changed_files"]), len(scan["unowned_files"]), scan["seconds"]))
