# -*- coding: utf-8 -*-
"""The migrate_site scenario on the lab's site: prepare -> test -> flip -> revert -> flip -> cleanup,
with the application writing through HAProxy all along: nothing it was told was written is lost."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

import site_lab
from conftest import ROOT

pytestmark = pytest.mark.usefixtures("collection", "site_lab")

PLAYBOOK = "cloudshift.migrate.migrate_site"


def phase(name, ledger_dir, check=True, extra=(), by_tag=True, site_file=None):
    """One phase: ``--tags <phase>`` (or ``-e phase=<phase>``, the job templates' way; with site_file,
    the site definition as the job template's credential hands it over: a file)."""
    env = dict(os.environ, CLOUDSHIFT_LEDGER_DIR=str(ledger_dir), ANSIBLE_FORCE_COLOR="0")
    chosen = ["--tags", name] if by_tag else ["-e", "phase=" + name]
    plan = ["-e", "site_file=%s" % site_file] if site_file else ["-e", "@" + os.path.join(ROOT, ".lab", "site-plan.json")]
    result = subprocess.run(["ansible-playbook", PLAYBOOK, *plan, *chosen, *extra], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, check=False)
    if check:
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result


def changed(output):
    return int(re.findall(r"^localhost\s+:.*changed=(\d+)", output, re.M)[-1])


def dns(name):
    import dns.message
    import dns.query

    info = site_lab.site()["site-dns"]
    answer = dns.query.udp(dns.message.make_query("%s.%s" % (name, info["zone"]), "A"), info["server"],
                           port=info["port"], timeout=3).answer[0]
    return answer.ttl, sorted(r.to_text() for r in answer)


def web():
    with urllib.request.urlopen(site_lab.site()["site-haproxy"]["web_url"], timeout=5) as response:
        return response.read().decode().strip()


def fastly_staged():
    """Numbers of the CDN service's versions that are neither active nor locked (staged)."""
    info = site_lab.site()["site-fastly"]
    request = urllib.request.Request(info["url"] + "/service/site/details", headers={"Fastly-Key": info["token"]})
    details = json.load(urllib.request.urlopen(request, timeout=5))
    return [v["number"] for v in details["versions"] if not v["active"] and not v["locked"]]


def fastly_origin():
    info = site_lab.site()["site-fastly"]
    request = urllib.request.Request(info["url"] + "/service/site/details", headers={"Fastly-Key": info["token"]})
    active = json.load(urllib.request.urlopen(request, timeout=5))["active_version"]
    request = urllib.request.Request(info["url"] + "/service/site/version/%d/backend" % active,
                                     headers={"Fastly-Key": info["token"]})
    backends = json.load(urllib.request.urlopen(request, timeout=5))
    return "%s:%s" % (backends[0]["address"], backends[0]["port"])


@pytest.fixture
def fresh_site():
    subprocess.run([sys.executable, os.path.join(ROOT, "lab", "site_plan.py")], check=True, stdout=subprocess.DEVNULL)
    site_lab.no_replication()
    info = site_lab.site()
    with urllib.request.urlopen(urllib.request.Request(info["site-fastly"]["url"] + "/cloudshift-lab/reset",
                                                       method="POST"), timeout=5):
        pass
    import dns.query
    import dns.tsigkeyring
    import dns.update

    zone = info["site-dns"]
    keyring = dns.tsigkeyring.from_text({zone["key_name"]: zone["key_secret"]})
    update = dns.update.UpdateMessage(zone["zone"], keyring=keyring, keyalgorithm="hmac-sha256")
    update.replace("www", 3600, "A", "127.0.0.10")
    update.replace("db", 3600, "A", "127.0.0.20")
    dns.query.tcp(update, zone["server"], port=zone["port"], timeout=5)


def test_site_moves_and_comes_back_with_nothing_lost(fresh_site, tmp_path):
    two = phase("flip", tmp_path, check=False, extra=["--tags", "revert"])  # one phase per run
    assert two.returncode != 0 and "one phase" in two.stdout, two.stdout[-2000:]
    phase("prepare", tmp_path)
    assert site_lab.sql("site-db1", "SELECT @@read_only")[0][0] == 1
    position = site_lab.sql("site-db0", "SELECT @@gtid_binlog_pos")[0][0]
    site_lab.wait_applied(["site-db1", "site-db2"], position)
    assert dns("www") == (60, ["127.0.0.10"])
    assert fastly_origin().endswith(":13481") and fastly_staged()  # the CDN's switch staged, not made
    assert changed(phase("prepare", tmp_path).stdout) == 0
    phase("test", tmp_path, extra=["--check"])
    # The job template's way: -e phase=test, the site from the credential's file (no secret in the output).
    site_file = tmp_path / "site.yml"
    with open(os.path.join(ROOT, ".lab", "site-plan.json")) as handle:
        site_file.write_text(json.dumps(json.load(handle)["site"]))
    tested = phase("test", tmp_path, by_tag=False, site_file=site_file)  # records the test: nothing else changes
    assert site_lab.site()["site-fastly"]["token"] not in tested.stdout
    assert "site_test" in (tmp_path / "site-127.0.0.1-13400-127.0.0.1-13401.json").read_text(), tested.stdout[-2000:]

    writer = site_lab.Writer()
    writer.start()
    time.sleep(0.5)
    flipped = phase("flip", tmp_path)
    time.sleep(0.5)
    assert "write outage" in flipped.stdout
    assert web() == "new" and fastly_origin().endswith(":13482")
    assert dns("www") == (60, ["127.0.0.11"]) and dns("db") == (60, ["127.0.0.21"])
    assert site_lab.sql("site-db1", "SELECT @@read_only")[0][0] == 0
    assert changed(phase("flip", tmp_path).stdout) == 0

    phase("revert", tmp_path, by_tag=False)
    time.sleep(0.5)
    assert web() == "old" and fastly_origin().endswith(":13481") and dns("www") == (60, ["127.0.0.10"])
    phase("flip", tmp_path)
    time.sleep(0.5)
    writer.finish()
    assert web() == "new"
    stored = [row[0] for row in site_lab.sql("site-db1", "SELECT v FROM app.t")]
    assert set(writer.acked) <= set(stored) and len(stored) == len(set(stored))
    assert len(writer.acked) > 50

    phase("cleanup", tmp_path)
    assert not site_lab.sql("site-db0", "SHOW SLAVE STATUS")
    assert dns("www") == (3600, ["127.0.0.11"])
    report = (tmp_path / (re.sub(r"[^A-Za-z0-9_.-]", "_", "site-127.0.0.1-13400-127.0.0.1-13401") + ".md")).read_text()
    assert "db_promote" in report and "dns_ttl" in report
