# -*- coding: utf-8 -*-
"""volume_stream_to_image against the lab's real Glance, run through Ansible as operators run it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import openstack
import pytest

from conftest import LAB, ROOT

MIB = 1024 * 1024
MODULE = "cloudshift.migrate.volume_stream_to_image"
QEMU_IMG = "qemu-img"


def run_module(args, check=False, background=False, env=None):
    """Run the module with `ansible localhost -m`; return its result (or the Popen when in background)."""
    command = ["ansible", "localhost", "-m", MODULE, "-a", json.dumps(args)]
    if check:
        command.append("--check")
    environment = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                       ANSIBLE_DEPRECATION_WARNINGS="0", **(env or {}))
    if background:
        return subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    # Ansible's workers need a real stdin; CI gives none.
    done = subprocess.run(command, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False, timeout=600)
    return parse(done.stdout, done.stderr)


def parse(stdout, stderr=""):
    try:
        report = json.loads(stdout)
    except ValueError:
        raise AssertionError("no JSON from ansible:\n%s\n%s" % (stdout[-3000:], stderr[-3000:]))
    return report["plays"][0]["tasks"][0]["hosts"]["localhost"]


def sha512_of(path):
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def sparse_disk(path, size, data_every=None, data_size=MIB, dense=False):
    with open(path, "wb") as handle:
        if dense:
            for unused in range(size // (4 * MIB)):
                handle.write(os.urandom(4 * MIB))
        else:
            handle.truncate(size)
            for offset in range(0, size, data_every):
                handle.seek(offset)
                handle.write(os.urandom(data_size))
    return str(path)


@pytest.fixture
def glance(lab):
    return openstack.connect(cloud="lab-destination")


@pytest.fixture
def image_name(glance):
    name = "pytest-vsti-%s" % uuid.uuid4().hex[:8]
    yield name
    for image in glance.image.images(name=name):
        glance.image.delete_image(image, ignore_missing=True)


def images_named(conn, name):
    return list(conn.image.images(name=name))


def base_args(name, path, **extra):
    args = {"cloud": "lab-destination", "name": name, "path": path}
    args.update(extra)
    return args


pytestmark = pytest.mark.usefixtures("collection")


def test_sparse_disk_round_trip_through_qcow2(tmp_path, glance, image_name):
    disk = sparse_disk(tmp_path / "disk.raw", 300 * MIB, data_every=30 * MIB)
    ledger_dir = tmp_path / "ledgers"
    result = run_module(base_args(image_name, disk, source_id="vol-123", migration_id="vsti-rt",
                                  ledger_dir=str(ledger_dir)))
    assert result["changed"] and not result.get("failed"), result
    assert result["plan"]["data_bytes"] == 10 * MIB
    assert result["bytes_sent"] < 1.1 * 10 * MIB  # only the data (and qcow2 tables) went over the wire
    image = glance.image.get_image(result["image"]["id"])
    assert image.status == "active" and image.disk_format == "qcow2" and image.virtual_size == 300 * MIB
    assert image.properties["cloudshift_raw_sha512"] == sha512_of(disk) == result["image"]["raw_sha512"]

    # Download what Glance stored, convert it back to raw: the same bytes as the disk.
    stored = tmp_path / "stored.qcow2"
    with open(stored, "wb") as handle:
        glance.image.download_image(image, output=handle)
    subprocess.run([QEMU_IMG, "convert", "-f", "qcow2", "-O", "raw", str(stored), str(tmp_path / "back.raw")],
                   check=True)
    assert sha512_of(tmp_path / "back.raw") == sha512_of(disk)

    ledger = json.loads((ledger_dir / "vsti-rt.json").read_text())
    entry = ledger["entries"]["image:vol-123"]
    assert entry["destination_id"] == image.id and entry["status"] == "done"
    assert entry["checksum"] == "sha512:" + sha512_of(disk)

    again = run_module(base_args(image_name, disk, source_id="vol-123"))
    assert not again["changed"] and again["actions"] == [] and again["image"]["id"] == image.id
    assert len(images_named(glance, image_name)) == 1


def test_check_mode_returns_the_plan_and_creates_nothing(tmp_path, glance, image_name):
    disk = sparse_disk(tmp_path / "disk.raw", 100 * MIB, data_every=50 * MIB, data_size=2 * MIB)
    result = run_module(base_args(image_name, disk), check=True)
    assert result["changed"] and result["image"] is None
    plan = result["plan"]
    assert plan["size"] == 100 * MIB and plan["data_bytes"] == 4 * MIB and plan["disk_format"] == "qcow2"
    expected = "create qcow2 image %s and upload %d bytes (qcow2)" % (image_name, plan["upload_bytes"])
    assert result["actions"] == [expected]
    assert images_named(glance, image_name) == []


@pytest.mark.parametrize("extra,expected_format", [
    ({"disk_format": "raw", "sparse": False}, "raw"),
    ({"disk_format": "raw"}, "raw"),  # qcow2 staged, converted by Glance's import plugin
])
def test_raw_images_verified_against_the_raw_content(tmp_path, glance, image_name, extra, expected_format):
    disk = sparse_disk(tmp_path / "disk.raw", 64 * MIB, data_every=16 * MIB)
    result = run_module(base_args(image_name, disk, **extra))
    assert result["changed"] and not result.get("failed"), result
    image = glance.image.get_image(result["image"]["id"])
    assert image.disk_format == expected_format and image.size == 64 * MIB
    assert image.hash_value == sha512_of(disk)
    assert "raw content" in result["verified_by"]


def test_block_device_source(tmp_path, glance, image_name):
    backing = sparse_disk(tmp_path / "backing.raw", 64 * MIB, data_every=8 * MIB)
    device = subprocess.run(["losetup", "--find", "--show", "--read-only", backing], check=True,
                            capture_output=True, text=True).stdout.strip()
    try:
        result = run_module(base_args(image_name, device))
        assert result["changed"] and not result.get("failed"), result
        assert result["plan"]["is_device"] and result["plan"]["data_bytes"] == 8 * MIB
        image = glance.image.get_image(result["image"]["id"])
        assert image.properties["cloudshift_raw_sha512"] == sha512_of(backing)
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)


def wait_for_progress(progress_file, percent, process, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, "the module ended before reaching %s%%" % percent
        try:
            state = json.loads(open(progress_file).read())
        except (OSError, ValueError):
            state = {}
        if state.get("phase") == "upload" and state.get("percent", 0) >= percent:
            return state
        time.sleep(0.05)
    raise AssertionError("no progress to %s%% in %s s" % (percent, timeout))


def test_killed_halfway_then_rerun_leaves_one_image(tmp_path, glance, image_name):
    disk = sparse_disk(tmp_path / "dense.raw", 128 * MIB, dense=True)
    progress_file = str(tmp_path / "progress.json")
    process = run_module(base_args(image_name, disk, rate_limit=32, progress_file=progress_file), background=True)
    state = wait_for_progress(progress_file, 50, process)
    os.kill(state["pid"], signal.SIGKILL)
    process.communicate(timeout=60)
    leftovers = images_named(glance, image_name)
    assert [image.status for image in leftovers] in (["queued"], ["saving"])  # the broken upload

    result = run_module(base_args(image_name, disk))
    assert result["changed"] and not result.get("failed"), result
    assert any(action.startswith("remove unfinished image %s" % leftovers[0].id) for action in result["actions"])
    images = images_named(glance, image_name)
    assert [(image.id, image.status) for image in images] == [(result["image"]["id"], "active")]
    assert images[0].properties["cloudshift_raw_sha512"] == sha512_of(disk)


def test_glance_stopped_midway_fails_clearly_then_rerun_succeeds(tmp_path, glance, image_name):
    disk = sparse_disk(tmp_path / "dense.raw", 96 * MIB, dense=True)
    progress_file = str(tmp_path / "progress.json")
    process = run_module(base_args(image_name, disk, rate_limit=24, progress_file=progress_file), background=True)
    wait_for_progress(progress_file, 30, process)
    subprocess.run(LAB + ["down", "destination-glance"], check=True, stdout=subprocess.DEVNULL)
    try:
        stdout, stderr = process.communicate(timeout=120)
        result = parse(stdout.decode(), stderr.decode())
    finally:
        subprocess.run(LAB + ["up", "destination-glance"], check=True, stdout=subprocess.DEVNULL)
    assert result["failed"]
    assert "broke off" in result["msg"] or "could not" in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]

    rerun = run_module(base_args(image_name, disk))
    assert rerun["changed"] and not rerun.get("failed"), rerun
    images = images_named(glance, image_name)
    assert [(image.id, image.status) for image in images] == [(rerun["image"]["id"], "active")]


def test_bad_sources_are_refused_and_nothing_is_created(tmp_path, glance, image_name):
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    cases = [
        (str(tmp_path / "missing.raw"), "does not exist"),
        (str(tmp_path), "is a directory"),
        (str(empty), "is empty"),
    ]
    for path, message in cases:
        result = run_module(base_args(image_name, path))
        assert result["failed"] and message in result["msg"], result
        assert result["actions"] == []
    assert images_named(glance, image_name) == []


def test_unreadable_source_is_refused():
    """Root reads every file, so the reader here is an unprivileged user with the system's Python."""
    folder = tempfile.mkdtemp(prefix="vsti-unreadable-")
    try:
        os.chmod(folder, 0o755)
        locked = sparse_disk(os.path.join(folder, "locked.raw"), 4 * MIB, data_every=MIB)
        os.chmod(locked, 0o000)
        code = ("from ansible_collections.cloudshift.migrate.plugins.module_utils.blockio import Source\n"
                "Source(%r)" % locked)
        done = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", code],
                              capture_output=True, text=True, check=False,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": os.path.join(ROOT, ".build", "collections")})
        assert done.returncode != 0
        assert "cannot open source %s: Permission denied" % locked in done.stderr, done.stderr
    finally:
        shutil.rmtree(folder)


def test_unknown_cloud_and_wrong_password(tmp_path, lab, glance, image_name):
    disk = sparse_disk(tmp_path / "disk.raw", 4 * MIB, data_every=MIB)
    result = run_module(dict(base_args(image_name, disk), cloud="no-such-cloud"))
    assert result["failed"] and "no-such-cloud" in result["msg"]

    config = openstack.config.OpenStackConfig(config_files=[lab]).get_one("lab-destination").config
    wrong = "Wrong-Passw0rd-%s" % uuid.uuid4().hex[:6]
    args = dict(base_args(image_name, disk), cloud=None, auth=dict(config["auth"], password=wrong))
    del args["cloud"]
    result = run_module(args)
    assert result["failed"] and "authentication failed" in result["msg"]
    assert wrong not in json.dumps(result)
    assert images_named(glance, image_name) == []


def test_name_holding_other_content_is_an_error_unless_replace(tmp_path, glance, image_name):
    glance.image.create_image(name=image_name, disk_format="raw", container_format="bare", data=b"other" * 1000)
    disk = sparse_disk(tmp_path / "disk.raw", 8 * MIB, data_every=4 * MIB)
    result = run_module(base_args(image_name, disk))
    assert result["failed"] and "already exists with other content" in result["msg"]
    assert [image.size for image in images_named(glance, image_name)] == [5000]

    replaced = run_module(base_args(image_name, disk, replace=True))
    assert replaced["changed"] and not replaced.get("failed"), replaced
    images = images_named(glance, image_name)
    assert [image.id for image in images] == [replaced["image"]["id"]]


def test_source_above_the_size_cap(tmp_path, lab, image_name):
    source_cloud = openstack.connect(cloud="lab-source")  # its Glance caps images at 256 MiB
    disk = sparse_disk(tmp_path / "big.raw", 300 * MIB, data_every=100 * MIB)
    refused = run_module(dict(base_args(image_name, disk, disk_format="raw", sparse=False,
                                        image_size_cap=256 * MIB), cloud="lab-source"))
    assert refused["failed"] and "image size cap" in refused["msg"] and refused["actions"] == []
    assert list(source_cloud.image.images(name=image_name)) == []

    # Not told the cap, the module meets Glance's refusal, says so and leaves nothing behind.
    result = run_module(dict(base_args(image_name, disk, disk_format="raw", sparse=False), cloud="lab-source"))
    assert result["failed"] and "413" in result["msg"], result["msg"]
    assert list(source_cloud.image.images(name=image_name)) == []


def test_one_read_feeds_the_image_and_the_archive(tmp_path, glance, image_name):
    disk = sparse_disk(tmp_path / "disk.raw", 200 * MIB, data_every=20 * MIB)
    archive = tmp_path / "archive"
    ledger_dir = tmp_path / "ledgers"
    args = base_args(image_name, disk, source_id="vol-arc", archive_dir=str(archive), archive_buffer_mib=8,
                     migration_id="vsti-archive", ledger_dir=str(ledger_dir))
    plan = run_module(args, check=True)
    assert any("archive" in action for action in plan["actions"]) and not archive.exists(), plan
    result = run_module(args)
    assert result["changed"] and not result.get("failed"), result
    stored = archive / (image_name + ".raw")
    with open(disk, "rb") as handle:
        content = handle.read()
    assert stored.read_bytes() == content  # byte for byte, holes included
    assert result["archive"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert result["archive"]["sha512"] == result["image"]["raw_sha512"] == sha512_of(disk)
    assert (archive / (image_name + ".raw.sha256")).read_text().split() == [result["archive"]["sha256"], stored.name]
    assert result["plan"]["mode"] == "qcow2" and result["bytes_sent"] < 11 * MIB  # the upload stayed sparse
    entries = json.loads((ledger_dir / "vsti-archive.json").read_text())["entries"]
    assert entries["archive:vol-arc"]["checksum"] == "sha256:" + result["archive"]["sha256"]
    again = run_module(args)
    assert not again["changed"] and again["actions"] == [], again
    # the archive lost (a tape gone bad): a re-run writes it alone, the image stays
    stored.unlink()
    alone = run_module(args)
    assert alone["changed"] and alone["bytes_sent"] == 0 and alone["image"]["id"] == result["image"]["id"], alone
    assert stored.read_bytes() == content


def test_archive_that_cannot_take_the_disk_is_refused_before_any_change(tmp_path, glance, image_name):
    disk = sparse_disk(tmp_path / "disk.raw", 40 * MIB, data_every=4 * MIB)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_module(base_args(image_name, disk, archive_dir=str(blocker / "archive")))
    assert result.get("failed") and "is not a directory" in result["msg"] and result["actions"] == [], result
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=False).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        full = run_module(base_args(image_name, disk, archive_dir=str(small)))
    finally:
        subprocess.run(["umount", str(small)], check=False)
    assert full.get("failed") and "bytes free" in full["msg"] and full["actions"] == [], full
    assert images_named(glance, image_name) == []
