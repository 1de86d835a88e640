# -*- coding: utf-8 -*-
"""The migrate_aws_region scenario end to end on the lab's moto server.

Two instances (root + data volume each, one data volume encrypted) move from
us-east-1 to ap-southeast-2: networks recreated, a KMS key made, filesystems
frozen on the "instance" (this machine, with a recording stand-in for fsfreeze
and mount) around the snapshots, copies, AMIs, a cfn-lint-validated template,
the stack, verify, cleanup. A re-run changes nothing; check mode only plans;
a failing freeze still thaws; bad input changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("collection")

PLAYBOOK = "cloudshift.migrate.migrate_aws_region"
FIXTURES = os.path.join(ROOT, "lab", "playbooks", "aws_fixtures.yml")
SRC, DST = "us-east-1", "ap-southeast-2"
STAND_IN = r"""#!/bin/sh
# Records what it was asked; fails like the real fsfreeze on /fail and on thawing what is not frozen.
echo "$(date +%s.%N) $(basename "$0") $*" >> "{log}"
marker="{state}/$(echo "$2" | tr / _)"
case "$1" in
  --freeze) case "$2" in /fail*) echo "fsfreeze: $2: Operation not supported" >&2; exit 1;; esac; touch "$marker";;
  --unfreeze) [ -e "$marker" ] || {{ echo "fsfreeze: $2: Invalid argument" >&2; exit 1; }}; rm "$marker";;
esac
exit 0
"""


def playbook(*args, ledger_dir, check=True):
    env = dict(os.environ, CLOUDSHIFT_LEDGER_DIR=str(ledger_dir), ANSIBLE_FORCE_COLOR="0")
    result = subprocess.run(["ansible-playbook", *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, check=False)
    if check:
        assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    return result


def recap(output):
    return dict((host, dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", counts)))
                for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M))


@pytest.fixture(scope="module")
def instances(aws_lab, tmp_path_factory):
    aws_lab.reset(snapshot_seconds=1, copy_seconds=2)
    playbook(FIXTURES, "-e", json.dumps({"fixture_aws_names": ["app01", "app02"], "fixture_aws_encrypted": True,
                                         "destination_region": DST}),
             ledger_dir=tmp_path_factory.mktemp("fixtures"))
    found = aws_lab.client("ec2", SRC).describe_instances(Filters=[{"Name": "tag:role", "Values": ["app"]}])
    return dict((dict((t["Key"], t["Value"]) for t in i["Tags"])["Name"], i)
                for r in found["Reservations"] for i in r["Instances"])


@pytest.fixture
def stand_in(tmp_path):
    """fsfreeze and mount stand-ins that record their calls in tmp_path/freeze.log."""
    state = tmp_path / "frozen"
    state.mkdir()
    log = tmp_path / "freeze.log"
    for name in ("fsfreeze", "mount"):
        path = tmp_path / name
        path.write_text(STAND_IN.format(log=log, state=state))
        path.chmod(0o755)
    return tmp_path, log


def calls(log):
    return [(float(line.split()[0]), " ".join(line.split()[1:])) for line in log.read_text().splitlines()] \
        if log.exists() else []


def args(migration_id, **extra):
    settings = dict(source_region=SRC, destination_region=DST, instance_tags={"role": "app"},
                    migration_id=migration_id, create_network=True)
    settings.update(extra)
    return ["-e", json.dumps(settings)]


def tagged(ec2, migration_id, role):
    return ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:cloudshift:migration-id", "Values": [migration_id]},
        {"Name": "tag:cloudshift:role", "Values": [role]}])["Snapshots"]


def test_moves_instances_and_rerun_changes_nothing(aws_lab, instances, stand_in, tmp_path):
    bin_dir, log = stand_in
    aws_lab.clear_requests()
    mid = "aws-main"
    result = playbook(PLAYBOOK, *args(mid, create_kms_key=True, freeze_hosts={"app01": "localhost"},
                                      freeze_mounts=["/srv/data", "/var/lib/app"],
                                      fsfreeze_command=str(bin_dir / "fsfreeze")), ledger_dir=tmp_path)
    # app01 frozen around its snapshots, thawed after them; app02 crash-consistent (warned)
    recorded = calls(log)
    assert [c for unused, c in recorded] == [
        "fsfreeze --freeze /srv/data", "fsfreeze --freeze /var/lib/app",
        "fsfreeze --unfreeze /var/lib/app", "fsfreeze --unfreeze /srv/data"]
    app01_volumes = [m["Ebs"]["VolumeId"] for m in instances["app01"]["BlockDeviceMappings"]]
    snapshots = [r for r in aws_lab.requests("CreateSnapshot") if r["params"]["VolumeId"] in app01_volumes]
    assert len(snapshots) == 2
    assert all(recorded[1][0] < r["time"] < recorded[2][0] for r in snapshots), (recorded, snapshots)
    assert "crash-consistent" in result.stdout
    # copies re-encrypted with the KMS key the prepare phase made
    kms_keys = aws_lab.client("kms", DST).list_aliases()["Aliases"]
    key = [a for a in kms_keys if a["AliasName"] == "alias/cloudshift-" + mid][0]["TargetKeyId"]
    copies = aws_lab.requests("CopySnapshot")
    assert len(copies) == 4 and all(key in c["params"]["KmsKeyId"] for c in copies)
    # the template, validated, recreated both instances in the new network with both volumes
    template = json.loads((tmp_path / (mid + ".cfn.json")).read_text())
    assert len(template["Resources"]) == 2
    dst = aws_lab.client("ec2", DST)
    new = [i for r in dst.describe_instances(Filters=[{"Name": "tag:cloudshift:migration-id", "Values": [mid]}])[
        "Reservations"] for i in r["Instances"]]
    assert sorted(dict((t["Key"], t["Value"]) for t in i["Tags"])["Name"] for i in new) == ["app01", "app02"]
    assert all(i["State"]["Name"] == "running" and len(i["BlockDeviceMappings"]) == 2 for i in new)
    subnets = dst.describe_subnets(SubnetIds=list(set(i["SubnetId"] for i in new)))["Subnets"]
    assert [s["CidrBlock"] for s in subnets] == ["10.30.1.0/24"]
    # the template asks for the recreated group only (moto's instances add their VPC's default group)
    asked = set(g for r in template["Resources"].values() for g in r["Properties"]["SecurityGroupIds"])
    groups = dst.describe_security_groups(GroupIds=sorted(asked))["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["web"] and groups[0]["VpcId"] == subnets[0]["VpcId"]
    assert {p.get("FromPort") for p in groups[0]["IpPermissions"]} == {80, 443}
    # cleanup: the source snapshots are gone, the copies behind the AMIs stay
    assert tagged(aws_lab.client("ec2", SRC), mid, "snapshot") == []
    assert len(tagged(dst, mid, "copy")) == 2
    with open(tmp_path / (mid + ".json")) as handle:
        entries = json.load(handle)["entries"].values()
    assert sorted(e["source_id"] for e in entries if e["type"] == "aws_instance") == sorted(
        i["InstanceId"] for i in instances.values())
    assert any(e["type"] == "aws_verify" and e["status"] == "done" for e in entries)
    assert (tmp_path / (mid + ".mapping.csv")).read_text().count("\n") == 5
    assert (tmp_path / (mid + ".md")).exists()

    aws_lab.clear_requests()
    again = playbook(PLAYBOOK, *args(mid, create_kms_key=True, freeze_hosts={"app01": "localhost"},
                                     freeze_mounts=["/srv/data", "/var/lib/app"],
                                     fsfreeze_command=str(bin_dir / "fsfreeze")), ledger_dir=tmp_path)
    assert recap(again.stdout)["localhost"]["changed"] == 0, again.stdout[-4000:]
    assert not [r for r in aws_lab.requests() if r["action"].startswith(("Create", "Copy", "Register", "Delete"))]


def test_failed_freeze_still_thaws(aws_lab, instances, stand_in, tmp_path):
    bin_dir, log = stand_in
    aws_lab.clear_requests()
    result = playbook(PLAYBOOK, *args("aws-freeze-fails", freeze_hosts={"app01": "localhost"},
                                      freeze_mounts=["/srv/data", "/fail"], fsfreeze_command=str(bin_dir / "fsfreeze"),
                                      create_kms_key=True),
                      ledger_dir=tmp_path, check=False)
    assert result.returncode != 0
    assert [c for unused, c in calls(log)] == [
        "fsfreeze --freeze /srv/data", "fsfreeze --freeze /fail",
        "fsfreeze --unfreeze /fail", "fsfreeze --unfreeze /srv/data"]
    assert not os.listdir(bin_dir / "frozen")
    assert not aws_lab.requests("CreateSnapshot")


def test_unmapped_subnet_is_refused_before_any_change(aws_lab, instances, tmp_path):
    aws_lab.clear_requests()
    result = playbook(PLAYBOOK, *args("aws-unmapped", create_network=False), ledger_dir=tmp_path, check=False)
    assert result.returncode != 0 and "have no mapping in ap-southeast-2" in result.stdout
    assert not [r for r in aws_lab.requests() if r["action"].startswith(("Create", "Copy", "Register", "Run"))]


def pipeline_script(job):
    """The job's script lines as docs/pipelines/gitlab-ci.yml has them (anchors resolved, nested lists flattened)."""
    import yaml

    with open(os.path.join(ROOT, "docs", "pipelines", "gitlab-ci.yml")) as handle:
        lines = yaml.safe_load(handle)[job]["script"]
    flat = []
    for line in lines:
        flat.extend(line if isinstance(line, list) else [line])
    return "\n".join(["set -e"] + flat)


def run_job(job, workdir, plan):
    env = dict(os.environ, PLAN=plan, CI_PROJECT_DIR=str(workdir), ANSIBLE_FORCE_COLOR="0")
    env.pop("CLOUDSHIFT_LEDGER_DIR", None)
    env["HOME"] = str(workdir)  # the plan job must not need a ledger: none is written anywhere
    return subprocess.run(["bash", "-c", pipeline_script(job)], cwd=str(workdir), env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)


def test_gitops_pipeline_plans_then_migrates(aws_lab, instances, stand_in, tmp_path):
    """The example pipeline's two jobs, their scripts run as written: a merge request's check-mode plan
    changes nothing; the merge migrates and keeps the ledger and report; a plan with a typo is refused.
    The plan freezes both instances where fsfreeze is missing: a read-only remount around the snapshots."""
    bin_dir, log = stand_in
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = {"plan_version": 1, "scenario": "migrate_aws_region", "migration_id": "gitops-app",
            "source_region": SRC, "destination_region": DST, "instance_tags": {"role": "app"},
            "create_network": True, "create_kms_key": True,
            "freeze_hosts": {"app01": "localhost", "app02": "localhost"}, "freeze_mounts": ["/srv/data"],
            "fsfreeze_command": "/nonexistent/fsfreeze", "mount_command": str(bin_dir / "mount")}
    (plans / "app.yml").write_text(json.dumps(plan, indent=1))  # JSON is YAML
    aws_lab.clear_requests()
    planned = run_job("plan", tmp_path, "plans/app.yml")
    assert planned.returncode == 0, planned.stdout[-5000:] + planned.stderr[-2000:]
    checked = planned.stdout.split("TASK [Check the plan against the collection's schema]")[1]
    assert checked.split("TASK [")[0].strip("* \n").startswith("ok: [localhost]"), planned.stdout[:3000]
    shown = (tmp_path / "plan.txt").read_text()
    assert "copy the snapshot of" in shown and "CloudFormation stack recreates" in shown
    assert not [r for r in aws_lab.requests() if r["action"].startswith(("Create", "Copy", "Register", "Run"))]
    assert not list(tmp_path.rglob("gitops-app.json")) and not calls(log)

    migrated = run_job("migrate", tmp_path, "plans/app.yml")
    assert migrated.returncode == 0, migrated.stdout[-5000:] + migrated.stderr[-2000:]
    artifacts = tmp_path / "artifacts"
    ledger = json.loads((artifacts / "gitops-app.json").read_text())
    assert any(e["type"] == "aws_verify" and e["status"] == "done" for e in ledger["entries"].values())
    assert (artifacts / "gitops-app.md").exists() and (artifacts / "gitops-app.html").exists()
    assert "PLAY RECAP" in (artifacts / "run.txt").read_text()
    assert [c for unused, c in calls(log)] == ["mount -o remount,ro /srv/data", "mount -o remount,rw /srv/data"] * 2

    plan["instance_tagz"] = plan.pop("instance_tags")
    (plans / "typo.yml").write_text(json.dumps(plan))
    refused = run_job("plan", tmp_path, "plans/typo.yml")
    assert refused.returncode != 0
    assert "'instance_tagz' was unexpected" in refused.stdout
