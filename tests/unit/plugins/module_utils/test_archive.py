# -*- coding: utf-8 -*-
"""Unit tests of the archive writer: pieces at offsets into a sparse file, a bounded buffer, read-back."""
from __future__ import annotations

import hashlib
import os
import time

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import archive
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

MIB = 1024 * 1024


def test_pieces_land_at_their_offsets_and_the_holes_stay_zero(tmp_path):
    content = bytearray(10 * MIB)
    content[MIB:MIB + 5] = b"hello"
    content[7 * MIB:7 * MIB + 3] = b"end"
    writer = archive.ArchiveWriter(str(tmp_path / "a"), "disk.raw", len(content), 4 * MIB, "vol-1").begin()
    writer.put(7 * MIB, bytes(content[7 * MIB:8 * MIB]))
    writer.put(MIB, bytes(content[MIB:2 * MIB]))
    sidecar = writer.finish(hashlib.sha512(content).hexdigest())
    assert (tmp_path / "a" / "disk.raw").read_bytes() == content
    assert sidecar["sha256"] == hashlib.sha256(content).hexdigest() and sidecar["written_bytes"] == 2 * MIB
    assert not (tmp_path / "a" / "disk.raw.part").exists()
    assert archive.existing(str(tmp_path / "a"), "disk.raw", sidecar["sha512"], len(content)) == sidecar


def test_a_slow_archive_holds_the_reader_back_by_the_buffer_only(tmp_path, monkeypatch):
    real = os.pwrite

    def slow(fd, data, offset):
        time.sleep(0.05)
        return real(fd, data, offset)

    monkeypatch.setattr(archive.os, "pwrite", slow)
    writer = archive.ArchiveWriter(str(tmp_path), "d.raw", 12 * archive.READ_SIZE, 2 * archive.READ_SIZE, "v").begin()
    started = time.monotonic()
    for n in range(12):
        writer.put(n * archive.READ_SIZE, b"x" * archive.READ_SIZE)
        assert writer.queue.qsize() <= 2  # never more than the buffer waits in memory
    writer.finish()
    assert writer.waited > 0.3 and time.monotonic() - started >= 0.5


def test_a_read_back_that_differs_is_an_error_and_leaves_nothing(tmp_path):
    writer = archive.ArchiveWriter(str(tmp_path), "d.raw", MIB, MIB, "v").begin()
    writer.put(0, b"a" * MIB)
    with pytest.raises(MigrateError, match="differs from the source"):
        writer.finish("0" * 128)
    assert os.listdir(str(tmp_path)) == []


def test_room_is_checked_before_anything_is_written(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MigrateError, match="is not a directory"):
        archive.check_room(str(tmp_path / "file" / "sub"), 1)
    with pytest.raises(MigrateError, match="bytes free"):
        archive.check_room(str(tmp_path / "new"), 1 << 62)
    assert archive.check_room(str(tmp_path / "new" / "deeper"), 1) > 0 and not (tmp_path / "new").exists()


@pytest.mark.parametrize("name", ["../escape.raw", "sub/dir.raw", "/etc/passwd", ".hidden", "", "..", "a\x00b"])
def test_archive_name_is_confined_to_its_directory(tmp_path, name):
    with pytest.raises(MigrateError, match="plain file name inside archive_dir"):
        archive.paths(str(tmp_path), name)
    assert archive.paths(str(tmp_path), "vol-1.raw")["data"] == str(tmp_path / "vol-1.raw")
