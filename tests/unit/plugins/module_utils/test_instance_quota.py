# -*- coding: utf-8 -*-
"""Unit tests of instance and quota helpers at the SDK boundary (fakes); the lab covers the wire."""
from __future__ import annotations

import os

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import instance, quota
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError


class Response:
    def __init__(self, status_code, body):
        self.status_code = status_code
        self._body = body

    def json(self):
        return self._body


class Proxy:
    def __init__(self, routes):
        self.routes = routes

    def get(self, path, **kwargs):
        return self.routes[path]


class Obj:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class Conn:
    def __init__(self, compute=None, block_storage=None):
        self.compute = compute
        self.block_storage = block_storage


def limits(**absolute):
    return Response(200, {"limits": {"absolute": absolute}})


def test_quota_room_lists_every_shortage():
    conn = Conn(compute=Proxy({"/limits": limits(maxTotalInstances=10, totalInstancesUsed=9,
                                                 maxTotalCores=-1, totalCoresUsed=50)}),
                block_storage=Proxy({"/limits": limits(maxTotalVolumes=10, totalVolumesUsed=10)}))
    free, shortages = quota.room(conn, {"instances": 2, "cores": 100, "volumes": 1})
    assert free == {"instances": 1, "cores": None, "volumes": 0}
    assert shortages == ["instances: need 2, 1 free (limit 10, used 9)",
                         "volumes: need 1, 0 free (limit 10, used 10)"]


def test_quota_room_refuses_unknown_and_negative():
    conn = Conn(compute=Proxy({"/limits": limits()}))
    with pytest.raises(MigrateError, match="unknown quota"):
        quota.room(conn, {"floating_ips": 1})
    with pytest.raises(MigrateError, match=">= 0"):
        quota.room(conn, {"instances": -1})


class Compute:
    def __init__(self, servers):
        self.servers_list = servers

    def get_server(self, name_or_id):
        for server in self.servers_list:
            if server.id == name_or_id:
                return server
        raise LookupError(name_or_id)

    def servers(self, name=None):
        return list(self.servers_list)


def test_find_server_by_id_name_and_ambiguity():
    a = Obj(id="11111111-1111-1111-1111-111111111111", name="web01")
    b = Obj(id="22222222-2222-2222-2222-222222222222", name="web02")
    c = Obj(id="33333333-3333-3333-3333-333333333333", name="web02")
    conn = Conn(compute=Compute([a, b, c]))
    assert instance.find_server(conn, a.id) is a
    assert instance.find_server(conn, "web01") is a
    with pytest.raises(MigrateError, match="2 servers are named 'web02'; give the id"):
        instance.find_server(conn, "web02")
    with pytest.raises(MigrateError, match="no server 'web03'"):
        instance.find_server(conn, "web03")


def test_regex_escape_for_nova_name_filter():
    assert instance._regex_escape("web.01+(a)") == "web\\.01\\+\\(a\\)"


class BlockStorage:
    def __init__(self, volume, connection_info):
        self.volume = volume
        self.connection_info = connection_info

    def get_volume(self, volume_id):
        return self.volume

    def get(self, path, microversion=None):
        return Response(200, {"attachment": {"connection_info": self.connection_info}})


def test_locate_volume_storage_side_with_export_map(tmp_path):
    (tmp_path / "volume-v1").write_bytes(b"\0" * 512)
    volume = Obj(attachments=[{"server_id": "s1", "attachment_id": "a1"}])
    info = {"driver_volume_type": "nfs", "export": "10.0.0.5:/srv/cinder", "name": "volume-v1",
            "format": "raw", "auth_password": "never-returned"}
    conn = Conn(block_storage=BlockStorage(volume, info))
    path, how, connection = instance.locate_volume(conn, "v1", "s1", {"10.0.0.5:/srv/cinder": str(tmp_path)})
    assert (path, how) == (os.path.join(str(tmp_path), "volume-v1"), "storage")
    assert "auth_password" not in connection


def test_locate_volume_refuses_qcow2_files_and_other_servers(tmp_path):
    volume = Obj(attachments=[{"server_id": "s1", "attachment_id": "a1"}])
    info = {"export": "h:/x", "name": "volume-v1.snap", "format": "qcow2"}
    conn = Conn(block_storage=BlockStorage(volume, info))
    with pytest.raises(MigrateError, match="stored as qcow2"):
        instance.locate_volume(conn, "v1", "s1", {"h:/x": str(tmp_path)})
    with pytest.raises(MigrateError, match="is not attached to server s2"):
        instance.locate_volume(conn, "v1", "s2")


def test_locate_volume_finds_the_copy_host_device(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "virtio-5f0c8a2e-0d7c-4b44-9").touch()
    (by_id / "virtio-5f0c8a2e-0d7c-4b44-9-part1").touch()
    volume = Obj(attachments=[{"server_id": "copy", "attachment_id": "a1"}])
    conn = Conn(block_storage=BlockStorage(volume, {"driver_volume_type": "rbd", "name": "volumes/v"}))
    path, how, connection = instance.locate_volume(conn, "5f0c8a2e-0d7c-4b44-9a57-3c5e1f4d2a10", "copy", by_id_dir=str(by_id))
    assert (path, how) == (str(by_id / "virtio-5f0c8a2e-0d7c-4b44-9"), "device")
    assert connection == {"driver_volume_type": "rbd", "name": "volumes/v"}
    with pytest.raises(MigrateError, match="no device for volume"):
        instance.locate_volume(conn, "99999999-0d7c-4b44-9a57-3c5e1f4d2a10", "copy", by_id_dir=str(by_id),
                               wait=0)
