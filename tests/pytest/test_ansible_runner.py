# -*- coding: utf-8 -*-
"""The demo playbook run the way AWX/AAP runs jobs: through ansible-runner."""

from __future__ import annotations

import json
import os
import sys
import uuid

import ansible_runner
import openstack
import pytest


@pytest.fixture
def demo_image(lab):
    name = "runner-demo-%s" % uuid.uuid4().hex[:8]
    yield name
    for cloud in ("lab-source", "lab-destination"):
        conn = openstack.connect(cloud=cloud)
        for image in conn.image.images(name=name):
            conn.image.delete_image(image)


def test_demo_playbook_through_ansible_runner(lab, collection, lab_secrets, demo_image, tmp_path):
    ledger_dir = tmp_path / "ledgers"
    private = tmp_path / "job"
    (private / "env").mkdir(parents=True)
    (private / "env" / "envvars").write_text(json.dumps({
        "ANSIBLE_COLLECTIONS_PATH": collection,
        "OS_CLIENT_CONFIG_FILE": lab,
        "CLOUDSHIFT_LEDGER_DIR": str(ledger_dir),
        "ANSIBLE_PYTHON_INTERPRETER": os.environ["ANSIBLE_PYTHON_INTERPRETER"],
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],  # the openstack CLI
        "TMPDIR": str(tmp_path),
    }))
    extravars = {"migration_id": "runner-demo", "demo_image": demo_image}
    run = ansible_runner.run(private_data_dir=str(private), playbook="cloudshift.migrate.demo", quiet=True,
                             extravars=extravars)
    assert run.status == "successful", run.stdout.read()
    tasks = [event["event_data"].get("task") for event in run.events if event["event"] == "runner_on_ok"]
    assert "Record each cloud's images in the ledger" in tasks
    assert run.stats["failures"] == {}

    ledger = json.loads((ledger_dir / "runner-demo.json").read_text())
    assert sorted(ledger["entries"])[:2] == ["cloud:lab-destination", "cloud:lab-source"]
    image = [entry for entry in ledger["entries"].values() if entry["type"] == "image"][0]
    assert image["status"] == "done" and image["destination_id"]
    assert image["bytes"] < 5 * 1024 * 1024  # 4 MiB of data out of a 256 MiB disk
    source = openstack.connect(cloud="lab-source").image.get_image(image["source_id"])
    assert image["checksum"] == "sha512:" + source.hash_value
    assert (ledger_dir / "runner-demo.md").exists()

    # AWX shows set_stats data as the job's artifacts.
    stats = [event for event in run.events if event["event"] == "playbook_on_stats"][0]
    published = stats["event_data"]["artifact_data"]["cloudshift_migration"]
    assert published["migration_id"] == "runner-demo" and published["summary"] == {"done": 3}

    # A second run changes nothing in either cloud.
    again = ansible_runner.run(private_data_dir=str(private), playbook="cloudshift.migrate.demo", quiet=True,
                               extravars=extravars)
    assert again.status == "successful"
    changed = [event["event_data"]["task"] for event in again.events
               if event["event"] == "runner_on_ok" and event["event_data"]["res"].get("changed")]
    assert not [task for task in changed if "cloud" in task or "Stream" in task or "Put" in task], changed
    everything = "\n".join(
        open(os.path.join(folder, name), errors="replace").read()
        for folder, unused, names in os.walk(str(private / "artifacts")) for name in names
    ) + (ledger_dir / "runner-demo.md").read_text() + json.dumps(ledger)
    for secret in lab_secrets:
        assert secret not in everything
