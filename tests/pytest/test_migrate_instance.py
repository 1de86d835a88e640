# -*- coding: utf-8 -*-
"""The migrate_instance scenario end to end between the lab's two full clouds.

A volume-backed server (boot + data volume, known bytes written into both), an
ephemeral server through a snapshot and one whose running root disk is streamed
move in one playbook run; the destination volumes are
compared byte for byte with the source, a re-run changes nothing, and a run
killed mid-transfer resumes without leaving duplicates.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("lab", "collection")

PLAYBOOK = "cloudshift.migrate.migrate_instance"
FIXTURES = os.path.join(ROOT, "lab", "playbooks", "instance_fixtures.yml")


def connect(cloud):
    import openstack

    return openstack.connect(cloud=cloud)


def sha512_file(path):
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def volume_file(conn, volume_id):
    """The lab's NFS file of an attached volume (storage side)."""
    volume = conn.block_storage.get_volume(volume_id)
    attachment = volume.attachments[0]["attachment_id"]
    info = conn.block_storage.get("/attachments/%s" % attachment, microversion="3.27").json()
    data = info["attachment"]["connection_info"]
    assert data["format"] == "raw", data
    return os.path.join(data["export"].split(":", 1)[1], data["name"])


def playbook(*args, ledger_dir, check=True, **popen):
    env = dict(os.environ, CLOUDSHIFT_LEDGER_DIR=str(ledger_dir), ANSIBLE_FORCE_COLOR="0")
    command = ["ansible-playbook", *args]
    if popen:
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, **popen)
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if check:
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def recap(output):
    """{host: {ok: n, changed: n, failed: n, ...}} from PLAY RECAP."""
    hosts = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        hosts[host] = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", counts))
    return hosts


def migrate_args(servers, **extra):
    args = ["-e", "source=lab-source", "-e", "destination=lab-destination",
            "-e", json.dumps({"instance": servers}), "-e", "copy_host_server=copy-host",
            "-e", "verify_read_back=true"]
    for key, value in extra.items():
        args += ["-e", json.dumps({key: value})]
    return [PLAYBOOK] + args


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ledger")


@pytest.fixture(scope="module")
def migrated(ledger_dir):
    """web (volume-backed), eph (ephemeral, through a Nova snapshot) and dd (ephemeral, its running root
    disk streamed after a quiesce command, for clouds that forbid snapshots) in one run."""
    tag = uuid.uuid4().hex[:6]
    web, eph, dd = "web-%s" % tag, "eph-%s" % tag, "dd-%s" % tag
    playbook(FIXTURES, "-e", json.dumps({"fixture_names": [web], "fixture_ephemeral_names": [eph, dd]}),
             ledger_dir=ledger_dir)
    source = connect("lab-source")
    server = source.compute.find_server(web)
    before = {}
    for attachment in source.compute.volume_attachments(server):
        before[attachment.device] = sha512_file(volume_file(source, attachment.volume_id))
    disks = {}
    for name in (eph, dd):
        found = source.compute.find_server(name)
        disks[name] = (found.id, os.path.join(ROOT, ".lab", "data", "source-nova-api", "instances", found.id, "disk"))
    marker = os.path.join(str(ledger_dir), "quiesced")
    # dd's root disk is read where it lies (the lab's disk file stands for /dev/vda, read on localhost).
    args = migrate_args([web, eph, dd], root_disk={dd: "stream"}, root_disk_host={dd: "localhost"},
                        root_disk_path={dd: disks[dd][1]}, quiesce_command="touch %s" % marker)
    # The first run is killed mid-transfer - web's first volume in Glance, its second being copied, the
    # ephemeral servers' disks on their way - and the second run finishes the move (a crash at any point,
    # then a re-run, continues from the ledger). Every test below checks the resumed move.
    killed = kill_mid_transfer(args, ledger_dir, web,
                               "instance-lab-source-lab-destination-%s-%s-%s.json" % (web, eph, dd))
    started = time.monotonic()
    result = playbook(*args, ledger_dir=ledger_dir)
    return dict(web=web, eph=eph, dd=dd, before=before, killed=killed, args=args, marker=marker,
                temporary="cloudshift-instance-lab-source-lab-destination-%s-%s-%s-" % (web, eph, dd),
                eph_sha512=sha512_file(disks[eph][1]), dd_sha512=sha512_file(disks[dd][1]), output=result.stdout,
                seconds=time.monotonic() - started, source_ids={web: server.id, eph: disks[eph][0], dd: disks[dd][0]})


def kill_mid_transfer(args, ledger_dir, web, ledger_name):
    """Start the playbook, SIGKILL its whole session once web's first volume is in Glance and another is
    being copied; return what the ledger held then."""
    ledger = os.path.join(str(ledger_dir), ledger_name)
    with open(os.path.join(str(ledger_dir), "killed-run.log"), "w") as output:
        run = subprocess.Popen(["ansible-playbook", *args], env=dict(os.environ, CLOUDSHIFT_LEDGER_DIR=str(ledger_dir),
                                                                     ANSIBLE_FORCE_COLOR="0"),
                               stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and run.poll() is None:
            try:
                entries = list(json.load(open(ledger))["entries"].values())
            except (OSError, ValueError):
                entries = []
            if any(e["type"] == "volume" for e in entries) and any(
                    e["type"] == "volume_copy" and e["source_id"] not in
                    [x["source_id"] for x in entries if x["type"] == "volume"] for e in entries):
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                return entries
            time.sleep(0.2)
        run.wait()
    raise AssertionError("the first run ended (rc %s) before it could be killed" % run.returncode)


def test_volume_backed_server_moves_byte_for_byte(migrated):
    dest = connect("lab-destination")
    server = dest.compute.find_server(migrated["web"])
    assert server is not None and server.status == "ACTIVE"
    after = {}
    for attachment in dest.compute.volume_attachments(server):
        volume = dest.block_storage.get_volume(attachment.volume_id)
        device = "/dev/" + volume.name.rsplit("-", 1)[1]
        after[device] = sha512_file(volume_file(dest, attachment.volume_id))
    assert after == migrated["before"]
    assert len(after) == 2
    assert server.key_name == "ops"
    assert sorted(g["name"] for g in server.security_groups) == ["default", "web"]
    groups = list(dest.network.security_groups(name="web"))
    assert len(groups) == 1
    ports = sorted(r.port_range_min for r in dest.network.security_group_rules(security_group_id=groups[0].id)
                   if r.port_range_min)
    assert ports == [22, 80, 443]


def test_ephemeral_server_moves_through_a_snapshot(migrated):
    dest = connect("lab-destination")
    server = dest.compute.find_server(migrated["eph"])
    assert server is not None and server.status == "ACTIVE"
    image = dest.image.find_image("%s-root" % migrated["eph"])
    assert image.hash_value == migrated["eph_sha512"]
    assert server.image["id"] == image.id


def test_source_is_kept_and_temporaries_are_gone(migrated):
    source = connect("lab-source")
    for name in (migrated["web"], migrated["eph"], migrated["dd"]):
        assert source.compute.find_server(name) is not None
    prefix = migrated["temporary"]
    assert [v.name for v in source.block_storage.volumes() if (v.name or "").startswith(prefix)] == []
    assert [s.name for s in source.block_storage.snapshots() if (s.name or "").startswith(prefix)] == []
    assert [i.name for i in source.image.images() if (i.name or "").startswith(prefix)] == []
    dest = connect("lab-destination")
    assert [i.name for i in dest.image.images() if (i.name or "").startswith(prefix)] == []


def test_report_says_which_ips_changed(migrated, ledger_dir):
    ledgers = [json.load(open(os.path.join(ledger_dir, name))) for name in os.listdir(ledger_dir)
               if name.endswith(".json") and not name.endswith(".report.json")]
    entries = [e for ledger in ledgers for e in ledger["entries"].values() if e["type"] == "verify"]
    by_name = dict((e["data"]["name"], e["data"]) for e in entries)
    for name in (migrated["web"], migrated["eph"], migrated["dd"]):
        assert by_name[name]["ips_changed"] is True
        assert all(ip.startswith("10.20.") for ip in by_name[name]["new_ips"])
        assert all(ip.startswith("10.10.") for ip in by_name[name]["old_ips"])
    assert "ips_changed" in migrated["output"]


def test_report_timeline_shows_how_long_each_step_took(migrated, ledger_dir):
    """The ledger keeps when each copy, volume and boot began, and the HTML report draws them as bars."""
    name = migrated["temporary"][len("cloudshift-"):-1]
    ledger = json.load(open(os.path.join(str(ledger_dir), name + ".json")))
    for entry in ledger["entries"].values():
        if entry["type"] in ("volume_copy", "volume", "server"):
            assert entry["started"] < entry["finished"], entry
    page = open(os.path.join(str(ledger_dir), name + ".html")).read()
    durations = dict((label, float(seconds)) for label, seconds in
                     re.findall(r"<title>(volume [0-9a-f-]+): ([0-9.]+) s from", page))
    assert len(durations) == 2 and all(seconds > 0 for seconds in durations.values()), durations


def test_second_run_changes_nothing(migrated, ledger_dir):
    result = playbook(*migrated["args"], ledger_dir=ledger_dir)
    counts = recap(result.stdout)
    assert counts and all(c["changed"] == 0 for c in counts.values()), counts


def test_check_mode_stops_after_gather_and_plans(migrated, ledger_dir):
    result = playbook(*migrate_args([migrated["web"]]), "--check", ledger_dir=ledger_dir)
    assert "snapshot copy at the source" in result.stdout
    counts = recap(result.stdout)
    assert all(c["changed"] == 0 for c in counts.values()), counts


def test_refuses_an_unknown_server(ledger_dir):
    result = playbook(*migrate_args(["no-such-server"]), ledger_dir=ledger_dir, check=False)
    assert result.returncode != 0
    assert "no server 'no-such-server'" in result.stdout


def test_refuses_an_unmapped_flavor_before_any_change(migrated, ledger_dir):
    dest = connect("lab-destination")
    keypairs = sorted(k.name for k in dest.compute.keypairs())
    result = playbook(*migrate_args([migrated["web"]], flavor_map={"m1.small": "m9.huge"}),
                      ledger_dir=ledger_dir, check=False)
    assert result.returncode != 0
    assert "no match at the destination for flavor m1.small" in result.stdout
    assert sorted(k.name for k in dest.compute.keypairs()) == keypairs


def test_killed_run_resumed_without_duplicates(migrated):
    """The fixture's first run was killed mid-transfer: the resumed move left one of everything."""
    assert any(e["type"] == "volume" for e in migrated["killed"])
    web = migrated["web"]
    dest = connect("lab-destination")
    for name in (web, migrated["eph"], migrated["dd"]):
        assert len(list(dest.compute.servers(name="^%s$" % name))) == 1
    names = [v.name for v in dest.block_storage.volumes() if (v.name or "").startswith(web)]
    assert sorted(names) == ["%s-sda" % web, "%s-sdb" % web]
    for name in (migrated["eph"], migrated["dd"]):
        assert len(list(dest.image.images(name="%s-root" % name))) == 1
    assert "failed=0" in migrated["output"]


def test_running_root_disk_streamed_without_a_snapshot(migrated):
    """For clouds that forbid snapshots: dd's root disk was read on the server itself after the quiesce
    command (root_disk given per server); the server keeps running and no snapshot was made of it."""
    dd = migrated["dd"]
    assert os.path.exists(migrated["marker"])
    source = connect("lab-source")
    assert source.compute.get_server(migrated["source_ids"][dd]).status == "ACTIVE"
    dest = connect("lab-destination")
    image = dest.image.find_image("%s-root" % dd)
    assert image is not None and image.properties.get("cloudshift_raw_sha512") == migrated["dd_sha512"]
    new = dest.compute.find_server(dd)
    assert new.status == "ACTIVE" and new.image["id"] == image.id
    ledger = json.load(open(os.path.join(os.path.dirname(migrated["marker"]),
                                         migrated["temporary"][len("cloudshift-"):-1] + ".json")))
    snapshots = [e for e in ledger["entries"].values() if e["type"] == "snapshot_image"]
    assert [e["source_id"] for e in snapshots] == [migrated["source_ids"][migrated["eph"]]]
