# -*- coding: utf-8 -*-
"""Unit tests of the copy scheduler at the boto3 boundary (a fake EC2 on a fake clock).

The lab's moto covers the wire; here the clock is simulated, so that the cap, the backoff
on ResourceLimitExceeded and the adaptive polling can be checked for long copies in no time.
"""
from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError

from ansible_collections.cloudshift.migrate.plugins.module_utils import ebs_copy
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class Paginator:
    def __init__(self, method):
        self.method = method

    def paginate(self, **kwargs):
        yield self.method(**kwargs)


class FakeEC2:
    """Snapshots that complete `seconds` after they start; at most `limit` copies pending."""

    ids = itertools.count(1)

    def __init__(self, clock, seconds=0.0, copy_seconds=600.0, limit=20, other=None):
        self.clock, self.seconds, self.copy_seconds, self.limit = clock, seconds, copy_seconds, limit
        self.other = other
        self.snapshots = {}
        self.calls = []

    def _new(self, seconds, copy=False, **fields):
        sid = "snap-%04d" % next(self.ids)
        self.snapshots[sid] = dict(SnapshotId=sid, done_at=self.clock() + seconds, copy=copy, **fields)
        return sid

    def _state(self, snapshot):
        return "completed" if self.clock() >= snapshot["done_at"] else "pending"

    def describe_volumes(self, VolumeIds):
        self.calls.append("DescribeVolumes")
        return {"Volumes": [dict(VolumeId=v, Size=1, AvailabilityZone="us-east-1a", State="in-use") for v in VolumeIds]}

    def create_snapshot(self, VolumeId, **kwargs):
        self.calls.append("CreateSnapshot")
        sid = self._new(self.seconds, volume=VolumeId)
        return {"SnapshotId": sid, "State": self._state(self.snapshots[sid])}

    def copy_snapshot(self, SourceSnapshotId, **kwargs):
        self.calls.append("CopySnapshot")
        source = self.other.snapshots[SourceSnapshotId]
        assert self.other._state(source) == "completed", "copied a pending snapshot"
        pending = sum(1 for s in self.snapshots.values() if s["copy"] and self._state(s) == "pending")
        if pending >= self.limit:
            raise ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": "too many"}}, "CopySnapshot")
        return {"SnapshotId": self._new(self.copy_seconds, copy=True)}

    def describe_snapshots(self, SnapshotIds=None, Filters=None, OwnerIds=None):
        self.calls.append("DescribeSnapshots")
        if Filters:  # what an earlier run made: nothing here
            return {"Snapshots": []}
        return {"Snapshots": [dict(SnapshotId=s, State=self._state(self.snapshots[s])) for s in SnapshotIds]}

    def get_paginator(self, name):
        return Paginator(getattr(self, name))


class Module:
    check_mode = False

    def __init__(self, **params):
        self.params = dict(region="us-east-1", destination_region="eu-west-1", instances=[], volumes=[],
                           snapshots=[], kms_key_id=None, tags={}, max_concurrent=20, wait_timeout=86400,
                           snapshot_only=False, create_volumes=False, register_images=False,
                           availability_zone=None, availability_zone_map={}, migration_id="m1")
        self.params.update(params)
        self.actions, self.entries = [], []

    def plan(self, action):
        self.actions.append(action)
        return not self.check_mode

    def record(self, entry_type, source_id, **fields):
        self.entries.append(dict(type=entry_type, source_id=source_id, **fields))

    def warn(self, message):
        pass


def copier(volumes, max_concurrent=20, limit=20, copy_seconds=600.0, monkeypatch=None):
    clock = Clock()
    src = FakeEC2(clock)
    dst = FakeEC2(clock, copy_seconds=copy_seconds, limit=limit, other=src)
    module = Module(volumes=["vol-%d" % i for i in range(volumes)], max_concurrent=max_concurrent)
    return ebs_copy.EbsCopier(module, src, dst, sleep=clock.sleep, clock=clock), clock, dst, module


def test_fifty_ten_minute_copies_take_three_waves_and_few_polls():
    work, clock, dst, module = copier(50)
    work.run()
    ideal = 3 * 600.0
    assert ideal <= clock.now <= ideal * 1.06, clock.now
    assert work.copies_made == 50 and all(item.copy_state == "completed" for item in work.items)
    # adaptive: ~120 rounds for the first wave, a few for the next (they last as long), none over 30 s
    assert len(clock.sleeps) < 200 and max(clock.sleeps) <= 30, len(clock.sleeps)
    assert sum(1 for e in module.entries if e["type"] == "aws_copy" and e["status"] == "done") == 50


def test_cap_is_kept():
    work, clock, dst, module = copier(7, max_concurrent=3, copy_seconds=10)
    seen = []
    original = dst.copy_snapshot

    def spy(**kwargs):
        pending = sum(1 for s in dst.snapshots.values() if s["copy"] and dst._state(s) == "pending")
        seen.append(pending)
        return original(**kwargs)

    dst.copy_snapshot = spy
    work.run()
    assert max(seen) < 3 and work.retries == 0
    assert 30 <= clock.now <= 33


def test_resource_limit_is_retried_with_backoff():
    work, clock, dst, module = copier(6, max_concurrent=6, limit=2, copy_seconds=5)
    work.run()
    assert work.retries > 0 and work.copies_made == 6
    assert dst.calls.count("CopySnapshot") == 6 + work.retries


def test_timeout_names_what_is_left(monkeypatch):
    work, clock, dst, module = copier(2, copy_seconds=1000)
    module.params["wait_timeout"] = 100
    with pytest.raises(MigrateError) as raised:
        work.run()
    assert "timed out" in raised.value.msg and "re-run" in raised.value.msg


def test_same_device_sees_xen_renames():
    assert ebs_copy.same_device("/dev/sda1", "/dev/xvda")
    assert ebs_copy.same_device("/dev/xvdf", "/dev/sdf")
    assert not ebs_copy.same_device("/dev/sda1", "/dev/sdf")
    assert not ebs_copy.same_device(None, "/dev/sda1")
