# -*- coding: utf-8 -*-
"""Unit tests of cleanup_temporaries' Cleaner at the SDK boundary (a fake cloud); the lab covers the wire."""
from __future__ import annotations

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.cleanup import Cleaner, check_entries


class NotFound(Exception):
    pass


class Exceptions:
    NotFoundException = NotFound


class Resource:
    def __init__(self, id, name, status="available", attachments=None):
        self.id = id
        self.name = name
        self.status = status
        self.attachments = attachments or []


class Cloud:
    """Volumes, snapshots and images; a request takes effect one look later (as a real cloud's does)."""

    def __init__(self):
        self.volumes, self.snapshots, self.images = {}, {}, {}
        self.calls, self.pending = [], []
        self.block_storage = self.compute = self.image = self

    def _get(self, store, resource_id):
        self.settle()
        if resource_id not in store:
            raise NotFound(resource_id)
        return store[resource_id]

    def settle(self):
        for action in self.pending:
            action()
        self.pending = []

    def get_volume(self, resource_id):
        return self._get(self.volumes, resource_id)

    def get_snapshot(self, resource_id):
        return self._get(self.snapshots, resource_id)

    def get_image(self, resource_id):
        return self._get(self.images, resource_id)

    def delete_image(self, resource_id, ignore_missing=True):
        self.calls.append(("delete_image", resource_id))
        self.images.pop(resource_id, None)

    def delete_volume_attachment(self, server, resource_id, ignore_missing=True):
        self.calls.append(("detach", server, resource_id))
        self.pending.append(lambda: setattr(self.volumes[resource_id], "attachments", []))

    def delete_volume(self, resource_id, ignore_missing=True):
        assert not self.volumes[resource_id].attachments, "a cloud refuses to delete an attached volume"
        self.calls.append(("delete_volume", resource_id))
        self.pending.append(lambda: self.volumes.pop(resource_id))

    def delete_snapshot(self, resource_id, ignore_missing=True):
        assert not self.volumes, "the copies made from the snapshots go first"
        self.calls.append(("delete_snapshot", resource_id))
        self.pending.append(lambda: self.snapshots.pop(resource_id))


def entry(entry_type, resource_id, source_id="src"):
    return {"type": entry_type, "source_id": source_id, "destination_id": resource_id}


def cleaner(cloud, actions, **kwargs):
    def plan(action):
        actions.append(action)
        return not kwargs.get("check_mode", False)

    clock = iter(range(0, 10000, 2))
    return Cleaner(cloud, Exceptions, plan, poll=2, timeout=kwargs.get("timeout", 60),
                   clock=lambda: next(clock), sleep=lambda seconds: None)


def fleet_cloud():
    cloud = Cloud()
    for n in range(3):
        cloud.volumes["v%d" % n] = Resource("v%d" % n, "cloudshift-m-%d" % n, "in-use",
                                            [{"server_id": "copy-host"}] if n else [])
        cloud.snapshots["s%d" % n] = Resource("s%d" % n, "cloudshift-m-%d" % n)
    cloud.images["i0"] = Resource("i0", "cloudshift-m-root", "active")
    return cloud


def fleet_entries():
    return ([entry("volume_copy", "v%d" % n) for n in range(3)] + [entry("volume_snapshot", "s%d" % n) for n in range(3)]
            + [entry("snapshot_image", "i0"), entry("volume_copy", "gone-already")])


def test_removes_everything_in_dependency_order_with_one_request_each():
    cloud, actions = fleet_cloud(), []
    removed, gone = cleaner(cloud, actions).remove(fleet_entries())
    assert not cloud.volumes and not cloud.snapshots and not cloud.images
    kinds = [call[0] for call in cloud.calls]
    assert kinds == ["delete_image", "detach", "detach"] + ["delete_volume"] * 3 + ["delete_snapshot"] * 3
    assert len(removed) == 7 and [item["id"] for item in gone] == ["gone-already"]
    assert actions[0] == "delete image i0 (cloudshift-m-root)"
    assert "detach volume v1 (cloudshift-m-1) from server copy-host" in actions


def test_check_mode_plans_and_changes_nothing():
    cloud, actions = fleet_cloud(), []
    removed, gone = cleaner(cloud, actions, check_mode=True).remove(fleet_entries())
    assert cloud.calls == [] and len(cloud.volumes) == 3 and len(removed) == 7
    assert len(actions) == 1 + 2 + 3 + 3


def test_refuses_a_resource_not_named_as_a_temporary_before_any_change():
    cloud, actions = fleet_cloud(), []
    cloud.volumes["data"] = Resource("data", "web01-data", "available")
    with pytest.raises(MigrateError, match="did not make.*web01-data"):
        cleaner(cloud, actions).remove(fleet_entries() + [entry("volume_copy", "data")])
    assert cloud.calls == [] and actions == []


def test_refuses_entries_that_are_not_temporaries():
    with pytest.raises(MigrateError, match=r"entries\[0\]: type 'volume'.*entries\[1\]: no destination_id"):
        check_entries([entry("volume", "v0"), {"type": "image", "source_id": "x"}])
    check_entries(fleet_entries())


def test_a_resource_in_error_or_too_slow_fails_naming_it():
    cloud, actions = fleet_cloud(), []
    cloud.delete_volume = lambda resource_id, ignore_missing=True: setattr(cloud.volumes[resource_id], "status", "error_deleting")
    with pytest.raises(MigrateError, match="volume v0 is in status error_deleting"):
        cleaner(cloud, actions).remove(fleet_entries())

    cloud, actions = fleet_cloud(), []
    cloud.delete_volume = lambda resource_id, ignore_missing=True: None  # never goes
    with pytest.raises(MigrateError, match="timed out after 10 s waiting to delete the copies: v0, v1, v2"):
        cleaner(cloud, actions, timeout=10).remove(fleet_entries())
