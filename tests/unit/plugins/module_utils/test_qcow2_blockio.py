# -*- coding: utf-8 -*-
"""The in-order qcow2 writer and the disk mapper, checked against qemu-img."""
from __future__ import annotations

import array
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import blockio, qcow2
from ansible_collections.cloudshift.migrate.plugins.module_utils import image_stream
from ansible_collections.cloudshift.migrate.plugins.module_utils.image_stream import Plan, stream_chunks

QEMU_IMG = shutil.which("qemu-img")
needs_qemu = pytest.mark.skipif(QEMU_IMG is None and not os.environ.get("CI"), reason="qemu-img not installed")
C = qcow2.CLUSTER_SIZE
MIB = 1024 * 1024


def make_disk(path, size, writes):
    """A sparse file of ``size`` bytes with ``writes`` (offset, bytes) on it."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, data in writes:
            handle.seek(offset)
            handle.write(data)
    return str(path)


def write_stream(plan, out_path):
    with plan.source.open() as handle, open(out_path, "wb") as out:
        for chunk in stream_chunks(plan, handle):
            out.write(chunk)


def file_sha512(path):
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


DISKS = {
    "scattered": (600 * MIB + 12345 * 512, [(0, b"boot" * 1000), (5 * C + 100, os.urandom(70000)),
                                            (520 * MIB, os.urandom(3 * C)), (600 * MIB, b"tail" * 3000)]),
    "empty": (64 * MIB, []),
    "dense-small": (3 * C + 512, [(0, os.urandom(3 * C + 512))]),
    "zeros-written": (4 * MIB, [(0, b"\0" * (4 * MIB)), (2 * MIB, b"x")]),
    "region-edges": (1100 * MIB, [(512 * MIB - C, os.urandom(2 * C)), (1024 * MIB, os.urandom(C))]),
}


@needs_qemu
@pytest.mark.parametrize("name", sorted(DISKS))
def test_stream_is_valid_qcow2_with_the_same_content(tmp_path, name):
    size, writes = DISKS[name]
    disk = make_disk(tmp_path / "disk.raw", size, writes)
    source = blockio.Source(disk)
    disk_map = blockio.scan(source)
    plan = Plan(source, "x", "qcow2", disk_map)
    out = str(tmp_path / "out.qcow2")
    write_stream(plan, out)
    raw_sha512 = blockio.content_sha512(source)

    assert os.path.getsize(out) == plan.layout.size == plan.upload_bytes
    assert raw_sha512 == file_sha512(disk)
    subprocess.run([QEMU_IMG, "check", out], check=True, stdout=subprocess.DEVNULL)
    back = str(tmp_path / "back.raw")
    subprocess.run([QEMU_IMG, "convert", "-f", "qcow2", "-O", "raw", out, back], check=True)
    assert file_sha512(back) == raw_sha512
    if not disk_map.clusters:
        return  # qemu-img leaves out the empty L2/refcount room of an empty image; nothing to compare
    # The same size qemu-img itself would produce for these clusters.
    reference = str(tmp_path / "ref.qcow2")
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", disk, reference], check=True)
    assert os.path.getsize(out) == os.path.getsize(reference)


def test_scan_skips_holes_and_finds_zero_clusters(tmp_path):
    disk = make_disk(tmp_path / "d.raw", 64 * MIB, [(10 * C, b"a"), (11 * C, b"\0" * C), (40 * MIB, b"b" * (C + 1))])
    disk_map = blockio.scan(blockio.Source(disk))
    assert list(disk_map.clusters) == [10, 40 * MIB // C, 40 * MIB // C + 1]
    assert disk_map.data_bytes == 3 * C
    assert disk_map.scanned_bytes < 64 * MIB // 4  # the holes were not read
    assert blockio.content_sha512(blockio.Source(disk)) == file_sha512(disk)


def test_scan_can_be_stopped():
    def stop():
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        blockio.scan(blockio.Source(__file__), check=stop)


def test_data_bytes_of_a_partial_last_cluster(tmp_path):
    disk = make_disk(tmp_path / "d.raw", C + 512, [(C, b"z" * 512)])
    assert blockio.scan(blockio.Source(disk)).data_bytes == 512


def test_layout_refcounts_cover_themselves_for_big_disks():
    clusters = array.array("Q", range(0, 2 * 1024 * 1024 * 1024 * 1024 // C, 7))  # 2 TiB, every 7th cluster
    layout = qcow2.Qcow2Layout(2 * 1024 ** 4, clusters)
    capacity = layout.refcount_blocks * qcow2.REFCOUNTS_PER_BLOCK
    assert capacity >= layout.total_clusters > capacity - qcow2.REFCOUNTS_PER_BLOCK
    assert layout.l1_size == 4096 and layout.size == layout.total_clusters * C


def test_cluster_runs():
    assert list(blockio.cluster_runs([1, 2, 3, 7, 8, 20], max_clusters=2)) == [(1, 2), (3, 1), (7, 2), (20, 1)]


@pytest.mark.parametrize("make,message", [
    (lambda p: str(p / "missing"), "does not exist"),
    (str, "is a directory"),
    (lambda p: make_disk(p / "zero", 0, []), "is empty"),
    (lambda p: "/dev/null", "neither a block device nor a regular file"),
])
def test_bad_sources(tmp_path, make, message):
    with pytest.raises(blockio.SourceError, match=message):
        blockio.Source(make(tmp_path))


def test_progress_file(tmp_path):
    path = str(tmp_path / "progress.json")
    progress = blockio.Progress(path, 1000, "upload", interval=0)
    progress.update(500)
    import json
    state = json.load(open(path))
    assert state["bytes_done"] == 500 and state["percent"] == 50.0 and state["pid"] == os.getpid()


def test_rate_limiter_waits():
    import time
    limiter = blockio.RateLimiter(10 * MIB)
    started = time.time()
    for unused in range(3):
        limiter.consume(MIB)
    assert time.time() - started >= 0.25


def test_sample_density_counts_written_zeros_as_empty(tmp_path):
    written_zeros = tmp_path / "zeros.raw"
    written_zeros.write_bytes(b"\0" * (16 * MIB))  # allocated, no holes, yet empty
    assert blockio.sample_density(blockio.Source(str(written_zeros))) == 0.0
    dense = make_disk(tmp_path / "dense.raw", 16 * MIB, [(0, os.urandom(16 * MIB))])
    assert blockio.sample_density(blockio.Source(dense)) == 1.0


@pytest.mark.parametrize("writes,expected", [
    ([(0, os.urandom(16 * MIB))], "raw"),  # dense: sent as it is
    ([(0, os.urandom(MIB))], "qcow2"),  # mostly empty
])
def test_auto_mode_follows_the_content(tmp_path, writes, expected):
    disk = make_disk(tmp_path / "disk.raw", 16 * MIB, writes)

    class Module:
        check_mode = True

    streamer = image_stream.Streamer(Module(), {"progress_file": None, "image_size_cap": 1 << 40})
    assert streamer.prepare(blockio.Source(disk), "x", "auto").mode == expected


class _CheckModule:
    check_mode = True


def _streamer():
    return image_stream.Streamer(_CheckModule(), {"progress_file": None, "image_size_cap": 1 << 40})


def test_size_not_whole_sectors_is_sent_raw_or_refused(tmp_path):
    # qemu reads a qcow2's size in whole 512-byte sectors: such a disk's tail would be lost.
    disk = make_disk(tmp_path / "odd.raw", 3 * C + 100, [(0, b"x" * 100)])
    assert _streamer().prepare(blockio.Source(disk), "x", "auto").mode == "raw"
    from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
    with pytest.raises(MigrateError, match="512-byte sectors"):
        _streamer().prepare(blockio.Source(disk), "x", "qcow2")


class _ShortReads:
    """A file that returns at most 1000 bytes a read, as NFS or FUSE may."""

    def __init__(self, handle):
        self.handle = handle

    def read(self, size=-1):
        return self.handle.read(min(size, 1000) if size >= 0 else 1000)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def test_short_reads_are_completed_not_zero_padded(tmp_path, monkeypatch):
    payload = os.urandom(2 * C + 512)
    disk = make_disk(tmp_path / "d.raw", 4 * C, [(C, payload)])
    source = blockio.Source(disk)
    real_open = blockio.Source.open
    monkeypatch.setattr(blockio.Source, "open", lambda self: _Wrapped(real_open(self)))
    assert list(blockio.scan(source).clusters) == [1, 2, 3]
    assert blockio.content_sha512(source) == file_sha512(disk)


class _Wrapped(_ShortReads):
    def __enter__(self):
        return self

    def __exit__(self, *unused):
        self.handle.close()


def test_a_source_that_shrank_is_an_error(tmp_path):
    disk = make_disk(tmp_path / "d.raw", 4 * C, [(0, b"a" * C)])
    source = blockio.Source(disk)
    os.truncate(disk, 2 * C)
    with pytest.raises(blockio.SourceError, match="changed size"):
        blockio.scan(source)


def test_progress_file_is_never_written_through_a_planted_link(tmp_path):
    """The progress file's temporary name is unpredictable and created exclusively; a link at the file's own
    name is replaced by the rename, never followed."""
    target = tmp_path / "victim"
    target.write_text("keep me\n")
    path = tmp_path / "job.progress.json"
    os.symlink(str(target), str(path))
    for pid_guess in range(os.getpid() - 2, os.getpid() + 3):  # the names the old code used
        os.symlink(str(target), str(tmp_path / ("job.progress.json.%d.tmp" % pid_guess)))
    progress = blockio.Progress(str(path), 100, "scan")
    progress.update(50)
    progress.write(force=True)
    assert target.read_text() == "keep me\n"
    assert not os.path.islink(str(path)) and json.loads(path.read_text())["bytes_done"] == 50
    assert oct(os.stat(str(path)).st_mode & 0o777) == "0o600"
