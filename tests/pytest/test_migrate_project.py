# -*- coding: utf-8 -*-
"""migrate_project between the lab's two clouds: three volumes of known content, selected by
metadata, moved with an archive copy from the same read; the usage saved; bad input refused."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
import time

import openstack
import pytest

from conftest import ROOT, kill_tree

pytestmark = pytest.mark.usefixtures("collection", "lab")

MIB = 1024 * 1024
PLAYBOOK = "cloudshift.migrate.migrate_project"
NAMES = ("proj-a", "proj-b", "proj-c")


def storage_file(admin, volume_id):
    """The lab's NFS file of a volume: under its cloud's Cinder export (.lab/data/<cloud>-cinder-api/export)."""
    cloud = "source" if admin.config.name.startswith("lab-source") else "destination"
    path = os.path.join(ROOT, ".lab", "data", "%s-cinder-api" % cloud, "export", "volume-%s" % volume_id)
    assert os.path.exists(path), path
    return path


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def playbook(*extra, ledger_dir, check=True):
    env = dict(os.environ, CLOUDSHIFT_LEDGER_DIR=str(ledger_dir), ANSIBLE_FORCE_COLOR="0")
    # the lab's admins, working in project "migration" (the storage-side reads need the admin view of volumes)
    done = subprocess.run(["ansible-playbook", PLAYBOOK, "-e", "source=lab-source-admin", "-e",
                           "destination=lab-destination-admin", "-e", "project=migration", *extra],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if check:
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    return done


def wipe(admin, dest):
    """Earlier runs' volumes, copies, snapshots and images gone from both clouds (the admin forces)."""
    for snapshot in admin.block_storage.snapshots(details=True, all_projects=True):
        if (snapshot.name or "").startswith("cloudshift-"):
            admin.block_storage.delete_snapshot(snapshot, force=True)
            admin.block_storage.wait_for_delete(snapshot, wait=120)
    for volume in admin.block_storage.volumes(details=True, all_projects=True):
        if volume.name in NAMES + ("proj-broken",) or (volume.name or "").startswith("cloudshift-"):
            admin.block_storage.delete_volume(volume, force=True)
            admin.block_storage.wait_for_delete(volume, wait=120)
    for volume in dest.block_storage.volumes(details=True, all_projects=True):
        if volume.name in NAMES:
            dest.block_storage.delete_volume(volume, force=True)
            dest.block_storage.wait_for_delete(volume, wait=120)
    for image in dest.image.images():
        if image.name.startswith("cloudshift-"):
            dest.image.delete_image(image)


@pytest.fixture(scope="module")
def clouds():
    """The non-admin users own project "migration" in both clouds; the admins get a role there."""
    found = dict(conn=openstack.connect(cloud="lab-source"), admin=openstack.connect(cloud="lab-source-admin"),
                 dest=openstack.connect(cloud="lab-destination"),
                 dest_admin=openstack.connect(cloud="lab-destination-admin"))
    for admin in (found["admin"], found["dest_admin"]):
        project = admin.identity.find_project("migration", domain_id="default")
        user = admin.identity.find_user("admin", domain_id="default")
        admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("admin"))
    return found


@pytest.fixture(scope="module")
def volumes(clouds):
    """Three 1 GiB volumes labelled move=yes, each with its own bytes at 0, 300 and 1023 MiB; one unlabelled."""
    conn, admin = clouds["conn"], clouds["admin"]
    wipe(admin, clouds["dest_admin"])
    made = {}
    for name in NAMES + ("proj-keep",):
        existing = conn.block_storage.find_volume(name)
        volume = existing or conn.block_storage.create_volume(
            name=name, size=1, metadata={"move": "yes"} if name != "proj-keep" else {})
        made[name] = conn.block_storage.wait_for_status(volume, "available", wait=120)
    contents = {}
    for name in NAMES:
        path = storage_file(admin, made[name].id)
        with open(path, "r+b") as handle:
            for offset in (0, 300 * MIB, 1023 * MIB):
                handle.seek(offset)
                handle.write(os.urandom(MIB))
        contents[name] = sha256_file(path)
    return dict(volumes=made, sha256=contents)


def test_project_volumes_move_with_archive_and_usage(clouds, volumes, tmp_path):
    archive = tmp_path / "archive"
    end = datetime.datetime.utcnow().replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    args = ["-e", json.dumps({"volume_metadata": {"move": "yes"}, "archive_dir": str(archive), "usage_end": end,
                              "usage_start": end[:7], "migration_id": "project-test"})]
    plan = playbook(*args, "--check", ledger_dir=tmp_path)
    assert "3 volumes, 3.00 GB" in plan.stdout, plan.stdout[-3000:]
    assert not archive.exists() and not list(clouds["conn"].block_storage.snapshots())

    # The first run is killed once its first volume has arrived; the re-run finishes the others from the
    # ledger and duplicates nothing. Everything below checks the resumed move.
    env = dict(os.environ, CLOUDSHIFT_LEDGER_DIR=str(tmp_path), ANSIBLE_FORCE_COLOR="0")
    first = subprocess.Popen(["ansible-playbook", PLAYBOOK, "-e", "source=lab-source-admin", "-e",
                              "destination=lab-destination-admin", "-e", "project=migration", *args],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    ledger, killed = tmp_path / "project-test.json", False
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        try:
            entries = json.loads(ledger.read_text())["entries"].values()
        except (OSError, ValueError):
            entries = []
        if [e for e in entries if e["type"] == "project_volume" and e["status"] == "done"]:
            kill_tree(first.pid)
            killed = True
            break
        time.sleep(0.2)
    first.wait()
    assert killed, "the first run ended before it could be killed"

    run = playbook(*args, ledger_dir=tmp_path)
    dest, dest_admin = clouds["dest"], clouds["dest_admin"]
    for name in NAMES:
        assert len([v for v in dest.block_storage.volumes() if v.name == name]) == 1, name
        moved = dest.block_storage.find_volume(name)
        assert moved is not None and moved.metadata["cloudshift_source_id"] == volumes["volumes"][name].id
        assert moved.metadata["move"] == "yes"  # the source's metadata came along
        source_id = volumes["volumes"][name].id
        assert sha256_file(storage_file(dest_admin, moved.id)) == volumes["sha256"][name]
        assert sha256_file(archive / ("%s.raw" % source_id)) == volumes["sha256"][name]
        assert (archive / ("%s.raw.sha256" % source_id)).read_text().split()[0] == volumes["sha256"][name]
    assert dest.block_storage.find_volume("proj-keep") is None  # not selected
    # usage: the whole period and this month, as files
    usage = sorted(os.listdir(archive / "usage"))
    assert len(usage) == 2 and usage[-1].endswith("-whole.json"), usage
    # the temporaries are gone, the sources untouched
    assert not [s for s in clouds["conn"].block_storage.snapshots() if (s.name or "").startswith("cloudshift-")]
    assert not [v for v in clouds["conn"].block_storage.volumes() if (v.name or "").startswith("cloudshift-")]
    assert not [i for i in dest.image.images() if i.name.startswith("cloudshift-")]
    for name in NAMES:
        assert sha256_file(storage_file(clouds["admin"], volumes["volumes"][name].id)) == volumes["sha256"][name]
    with open(tmp_path / "project-test.json") as handle:
        entries = json.load(handle)["entries"].values()
    assert sorted(e["status"] for e in entries if e["type"] == "verify") == ["done"] * 3
    assert len([e for e in entries if e["type"] == "archive"]) == 3
    assert "project-test" in run.stdout

    again = playbook(*args, ledger_dir=tmp_path)
    assert re.findall(r"^localhost\s+:.*changed=(\d+)", again.stdout, re.M)[-1] == "0", again.stdout[-4000:]
    assert not re.findall(r"^volume:\S+\s+:.*changed=[1-9]", again.stdout, re.M), again.stdout[-4000:]


def test_bad_input_is_refused_before_any_change(clouds, volumes, tmp_path):
    conn, dest_admin = clouds["conn"], clouds["dest_admin"]
    base = {"volume_metadata": {"move": "yes"}, "archive_dir": str(tmp_path / "archive")}
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    if dest_admin.identity.find_project("no-role-here") is None:
        dest_admin.identity.create_project(name="no-role-here", domain_id="default")
    broken = conn.block_storage.create_volume(name="proj-broken", size=1, metadata={"move": "yes"})
    conn.block_storage.wait_for_status(broken, "available", wait=120)
    clouds["admin"].block_storage.reset_volume_status(broken, status="error", attach_status=None,
                                                      migration_status=None)
    cases = [
        (dict(base, project="no-such-project"), "cannot work in project no-such-project"),
        (dict(base, volumes=["no-such-volume"], volume_metadata={}), "no volume no-such-volume"),
        (dict(base, volumes=["proj-broken"], volume_metadata={}), "proj-broken"),
        (dict(base, destination_project="no-role-here", volumes=["proj-a"], volume_metadata={}),
         "cannot work in project no-role-here"),
        (dict(base, volumes=["proj-a"], volume_metadata={}, archive_dir=str(blocker / "archive")), "is not a directory"),
    ]
    try:
        for args, expect in cases:
            done = playbook("-e", json.dumps(args), ledger_dir=tmp_path, check=False)
            assert done.returncode != 0 and expect in done.stdout, (expect, done.stdout[-3000:])
        # a destination quota too small for the selection
        project = clouds["dest"].current_project_id
        before = dest_admin.get_volume_quotas(project)["volumes"]
        dest_admin.set_volume_quotas(project, volumes=len(list(clouds["dest"].block_storage.volumes())) + 1)
        try:
            done = playbook("-e", json.dumps(dict(base, volumes=["proj-a", "proj-b"], volume_metadata={})),
                            ledger_dir=tmp_path, check=False)
        finally:
            dest_admin.set_volume_quotas(project, volumes=before)
        assert done.returncode != 0 and "too small" in done.stdout, done.stdout[-3000:]
    finally:
        clouds["admin"].block_storage.reset_volume_status(broken, status="available", attach_status=None,
                                                          migration_status=None)
        conn.block_storage.delete_volume(broken)
    assert not [s for s in conn.block_storage.snapshots() if (s.name or "").startswith("cloudshift-")]
    assert not (tmp_path / "archive").exists()


def test_taken_name_refused_before_any_change(clouds, volumes, tmp_path):
    dest = clouds["dest"]
    # a destination volume called like a selected one, but not its copy: refused before any change
    stranger = dest.block_storage.create_volume(name="proj-keep", size=1)
    dest.block_storage.wait_for_status(stranger, "available", wait=120)
    try:
        taken = playbook("-e", json.dumps({"volumes": ["proj-keep"], "archive_dir": str(tmp_path / "a0")}),
                         ledger_dir=tmp_path, check=False)
    finally:
        dest.block_storage.delete_volume(stranger)
    assert taken.returncode != 0 and "already has volumes called proj-keep" in taken.stdout, taken.stdout[-3000:]
    assert not [s for s in clouds["conn"].block_storage.snapshots() if (s.name or "").startswith("cloudshift-")]
