# -*- coding: utf-8 -*-
"""Modules driven through pytest-ansible's `localhost` fixture, against the lab."""

from __future__ import annotations

import json


def test_ledger_module_round_trip(localhost, collection, tmp_path):
    ledger = getattr(localhost, "cloudshift.migrate.ledger")
    args = dict(migration_id="pytest-ansible", ledger_dir=str(tmp_path), type="image", source_id="img-1",
                destination_id="img-2", status="done")
    first = ledger(**args)["localhost"]
    second = ledger(**args)["localhost"]
    got = ledger(migration_id="pytest-ansible", ledger_dir=str(tmp_path), operation="get", key="image:img-1")
    assert first["changed"] and not second["changed"]
    assert got["localhost"]["entry"]["destination_id"] == "img-2"
    document = json.loads((tmp_path / "pytest-ansible.json").read_text())
    assert list(document["entries"]) == ["image:img-1"]


def test_openstack_image_info_on_lab(localhost, collection, lab):
    result = getattr(localhost, "openstack.cloud.image_info")(cloud="lab-destination")["localhost"]
    assert not result.get("failed"), result
    assert isinstance(result["images"], list)


def test_openstack_unknown_cloud_fails_clearly(localhost, collection, lab):
    result = getattr(localhost, "openstack.cloud.image_info")(cloud="no-such-cloud")["localhost"]
    assert result["failed"] and "no-such-cloud" in result["msg"]
