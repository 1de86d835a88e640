# -*- coding: utf-8 -*-
"""ebs_cross_region_copy against the lab's moto server (pending states, AWS's copy limits).

Each test resets moto, makes volumes with boto3, runs the module through Ansible
(its action plugin writes the ledger) and checks AWS's state and, where moto is a
stub, the requests the module sent (the lab's request log).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import LAB

pytestmark = pytest.mark.usefixtures("collection")

SRC, DST = "us-east-1", "eu-west-1"
MODULE = "cloudshift.migrate.ebs_cross_region_copy"


def run_module(args, ledger_dir, check=False, env=None, background=False):
    """Run the module ad hoc; the parsed result (or the process when background)."""
    command = ["ansible", "localhost", "-m", MODULE, "-a", json.dumps(args)] + (["--check"] if check else [])
    environ = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                   CLOUDSHIFT_LEDGER_DIR=str(ledger_dir), **(env or {}))
    if background:
        return subprocess.Popen(command, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    out = subprocess.run(command, env=environ, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    return parse(out.stdout, out.stderr)


def parse(stdout, stderr=""):
    try:
        document = json.loads(stdout[stdout.index("{"):])
    except ValueError:
        raise AssertionError("no JSON from ansible: %s %s" % (stdout[-3000:], stderr[-3000:]))
    return document["plays"][0]["tasks"][0]["hosts"]["localhost"]


def make_volumes(ec2, count, size=1, encrypted=False):
    return [ec2.create_volume(Size=size, AvailabilityZone=SRC + "a", Encrypted=encrypted)["VolumeId"]
            for unused in range(count)]


def tagged_copies(ec2, migration_id):
    return ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:cloudshift:migration-id", "Values": [migration_id]},
        {"Name": "tag:cloudshift:role", "Values": ["copy"]}])["Snapshots"]


def ledger(ledger_dir, migration_id):
    with open(os.path.join(str(ledger_dir), migration_id + ".json")) as handle:
        return json.load(handle)["entries"]


def test_copies_in_parallel_then_rerun_copies_nothing(aws_lab, tmp_path):
    aws_lab.reset(snapshot_seconds=1, copy_seconds=2)
    src, dst = aws_lab.client("ec2", SRC), aws_lab.client("ec2", DST)
    volumes = make_volumes(src, 6)
    csv_path = tmp_path / "mapping.csv"
    args = dict(region=SRC, destination_region=DST, volumes=volumes, max_concurrent=3, migration_id="par",
                mapping_csv=str(csv_path), create_volumes=True, tags={"team": "ops"})

    plan = run_module(args, tmp_path, check=True)
    assert plan["changed"] and len(plan["actions"]) == 18, plan
    assert not aws_lab.requests("CreateSnapshot") and not aws_lab.requests("CopySnapshot")

    started = time.monotonic()
    result = run_module(args, tmp_path)
    took = time.monotonic() - started
    assert result["changed"] and not result.get("failed"), result
    assert result["copies_made"] == 6 and result["snapshots_made"] == 6
    assert all(row["copy_snapshot"] and row["destination_volume"] for row in result["mapping"])
    # 6 copies of 2 s, 3 at a time: two waves (plus the 1 s snapshots); one at a time would take 12 s.
    assert took < 12, took
    copies = tagged_copies(dst, "par")
    assert len(copies) == 6 and all(c["State"] == "completed" for c in copies)
    assert all({"Key": "team", "Value": "ops"} in c["Tags"] for c in copies)
    # never more than 3 in flight: a copy starts only when one of the 3 before it ended
    times = sorted(r["time"] for r in aws_lab.requests("CopySnapshot"))
    assert all(later - earlier >= 1.9 for earlier, later in zip(times, times[3:])), times
    # only completed snapshots were copied (moto with the lab extension refuses others)
    assert "IncorrectState" not in json.dumps(result)
    assert csv_path.read_text().count("\n") == 7
    entries = ledger(tmp_path, "par")
    assert sum(1 for e in entries.values() if e["type"] == "aws_copy" and e["status"] == "done") == 6

    aws_lab.clear_requests()
    again = run_module(args, tmp_path)
    assert not again["changed"] and again["copies_made"] == 0, again
    assert not [r for r in aws_lab.requests() if r["action"].startswith(("Create", "Copy", "Register"))]
    assert len(tagged_copies(dst, "par")) == 6


def test_resource_limit_is_retried_not_failed(aws_lab, tmp_path):
    aws_lab.reset(copy_seconds=1, copy_limit=2)
    volumes = make_volumes(aws_lab.client("ec2", SRC), 5)
    result = run_module(dict(region=SRC, destination_region=DST, volumes=volumes, max_concurrent=5,
                             migration_id="limit"), tmp_path)
    assert not result.get("failed"), result
    assert result["copies_made"] == 5 and result["retries"] > 0
    assert len(tagged_copies(aws_lab.client("ec2", DST), "limit")) == 5


def test_throttling_is_retried(aws_lab, tmp_path):
    aws_lab.reset(throttle_every=2)
    volumes = make_volumes(aws_lab.client("ec2", SRC), 3)
    result = run_module(dict(region=SRC, destination_region=DST, volumes=volumes, migration_id="throttle"), tmp_path)
    assert not result.get("failed"), result
    assert len(tagged_copies(aws_lab.client("ec2", DST), "throttle")) == 3


def test_pending_snapshot_is_copied_once_completed(aws_lab, tmp_path):
    aws_lab.reset(snapshot_seconds=3)
    src = aws_lab.client("ec2", SRC)
    snapshot = src.create_snapshot(VolumeId=make_volumes(src, 1)[0])
    assert snapshot["State"] == "pending"
    result = run_module(dict(region=SRC, destination_region=DST, snapshots=[snapshot["SnapshotId"]],
                             migration_id="pending"), tmp_path)
    assert not result.get("failed") and result["copies_made"] == 1, result
    create = aws_lab.requests("CreateSnapshot")[0]["time"]
    copy = aws_lab.requests("CopySnapshot")[0]["time"]
    assert copy >= create + 3
    # adaptive polling: a handful of DescribeSnapshots, not one every 15 s nor a busy loop
    assert 3 <= len(aws_lab.requests("DescribeSnapshots")) <= 40


def test_instance_root_becomes_an_ami_reencrypted(aws_lab, tmp_path):
    aws_lab.reset(copy_seconds=1)
    src = aws_lab.client("ec2", SRC)
    kms = aws_lab.client("kms", DST)
    key = kms.create_key(Description="migration")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/migration", TargetKeyId=key)
    image = src.register_image(Name="base", RootDeviceName="/dev/xvda",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}])["ImageId"]
    instance = src.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small", BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "Encrypted": True}}])["Instances"][0]["InstanceId"]
    result = run_module(dict(region=SRC, destination_region=DST, instances=[instance], register_images=True,
                             kms_key_id="alias/migration", migration_id="ami"), tmp_path)
    assert not result.get("failed"), result
    root = [row for row in result["mapping"] if row["root"]]
    assert len(root) == 1 and root[0]["image"] and result["instances"][instance]["image"] == root[0]["image"]
    copies = aws_lab.requests("CopySnapshot")
    assert len(copies) == 2 and all(c["params"]["KmsKeyId"] == key and c["params"]["Encrypted"] == "true"
                                    for c in copies)
    # moto's RegisterImage is a stub: check what was asked
    register = [r for r in aws_lab.requests("RegisterImage") if r["region"] == DST][0]["params"]
    assert register["BlockDeviceMapping.1.Ebs.SnapshotId"] == root[0]["copy_snapshot"]
    assert register["RootDeviceName"] == register["BlockDeviceMapping.1.DeviceName"]
    images = aws_lab.client("ec2", DST).describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in images] == [root[0]["image"]]
    again = run_module(dict(region=SRC, destination_region=DST, instances=[instance], register_images=True,
                            kms_key_id="alias/migration", migration_id="ami"), tmp_path)
    assert not again["changed"], again


@pytest.mark.parametrize("case", ["unknown volume", "unknown region", "same region", "encrypted without key",
                                  "unknown key", "no credentials", "partial credentials", "reserved tag"])
def test_bad_input_changes_nothing(aws_lab, tmp_path, case):
    aws_lab.reset()
    src = aws_lab.client("ec2", SRC)
    plain = make_volumes(src, 1)
    args = dict(region=SRC, destination_region=DST, volumes=plain, migration_id="bad")
    env, expect = {}, None
    if case == "unknown volume":
        args["volumes"] = plain + ["vol-0123456789abcdef0"]
        expect = "unknown volume ids"
    elif case == "unknown region":
        args["destination_region"] = "eu-westt-1"
        expect = "unknown AWS region 'eu-westt-1'"
    elif case == "same region":
        args["destination_region"] = SRC
        expect = "both us-east-1"
    elif case == "encrypted without key":
        args["volumes"] = plain + make_volumes(src, 1, encrypted=True)
        expect = "encrypted: give kms_key_id"
    elif case == "unknown key":
        args["kms_key_id"] = "alias/nope"
        expect = "no such KMS key"
    elif case in ("no credentials", "partial credentials"):
        env = dict(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                   AWS_CONFIG_FILE="/nonexistent")
        expect = "no AWS credentials"
        if case == "partial credentials":
            args["secret_key"] = "do-not-print-this-secret"
            expect = "incomplete AWS credentials"
    elif case == "reserved tag":
        args["tags"] = {"cloudshift:role": "x"}
        expect = "reserved"
    aws_lab.clear_requests()
    result = run_module(args, tmp_path, env=env)
    assert result.get("failed") and expect in result["msg"], result
    assert not result["changed"]
    assert "do-not-print-this-secret" not in json.dumps(result)
    assert not [r for r in aws_lab.requests() if r["action"].startswith(("Create", "Copy", "Register"))]


def test_moto_restart_mid_run_then_rerun_continues(aws_lab, tmp_path):
    aws_lab.reset(copy_seconds=4)
    dst = aws_lab.client("ec2", DST)
    volumes = make_volumes(aws_lab.client("ec2", SRC), 4)
    args = dict(region=SRC, destination_region=DST, volumes=volumes, max_concurrent=2, migration_id="restart")
    proc = run_module(args, tmp_path, background=True)
    deadline = time.monotonic() + 60
    while not aws_lab.requests("CopySnapshot") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert aws_lab.requests("CopySnapshot")
    subprocess.run(LAB + ["down", "moto"], check=True, stdout=subprocess.DEVNULL)  # saves its state
    time.sleep(1)
    subprocess.run(LAB + ["up", "moto"], check=True, stdout=subprocess.DEVNULL)
    out = proc.communicate(timeout=300)[0]
    first = parse(out)
    assert len(tagged_copies(dst, "restart")) >= 2
    second = run_module(args, tmp_path)
    assert not second.get("failed"), (first, second)
    copies = tagged_copies(dst, "restart")
    # every volume copied exactly once, whichever run finished it
    sources = sorted(c["Tags"] and dict((t["Key"], t["Value"]) for t in c["Tags"])["cloudshift:source-volume"]
                     for c in copies)
    assert sources == sorted(volumes), copies
    assert all(row["copy_state"] == "completed" for row in second["mapping"])
