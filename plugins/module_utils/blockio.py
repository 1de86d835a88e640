# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading disks: size, a map of the non-zero clusters, hashing, rate and progress.

Works on block devices and regular (possibly sparse) files, with constant
memory. Holes in files are found with SEEK_DATA/SEEK_HOLE and never read;
everything else is read in large blocks and checked for zeros by comparing
against a zero block (bytes comparison runs at memory speed).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import array
import errno
import fcntl
import hashlib
import json
import os
import stat
import struct
import tempfile
import threading
import time


from ansible_collections.cloudshift.migrate.plugins.module_utils.qcow2 import CLUSTER_SIZE

READ_SIZE = 4 * 1024 * 1024  # 64 clusters
ZERO_READ = b"\0" * READ_SIZE
ZERO_CLUSTER = b"\0" * CLUSTER_SIZE
BLKGETSIZE64 = 0x80081272
SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)


class SourceError(Exception):
    """The source cannot be used; the message says why."""


class Source:
    """A disk to read: a block device or a regular file."""

    def __init__(self, path):
        self.path = path
        try:
            info = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise SourceError("source %s does not exist" % path)
            raise SourceError("cannot stat source %s: %s" % (path, exc.strerror))
        if stat.S_ISDIR(info.st_mode):
            raise SourceError("source %s is a directory, not a disk" % path)
        self.is_device = stat.S_ISBLK(info.st_mode)
        if not self.is_device and not stat.S_ISREG(info.st_mode):
            raise SourceError("source %s is neither a block device nor a regular file" % path)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise SourceError("cannot open source %s: %s" % (path, exc.strerror))
        try:
            if self.is_device:
                self.size = struct.unpack("Q", fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8))[0]
            else:
                self.size = info.st_size
        finally:
            os.close(fd)
        if self.size == 0:
            raise SourceError("source %s is empty (0 bytes)" % path)

    def check_unchanged(self, handle):
        """A file that changed size while being read is no consistent source: say so."""
        if not self.is_device:
            size = os.fstat(handle.fileno()).st_size
            if size != self.size:
                raise SourceError("source %s changed size while being read (%d bytes, then %d)"
                                  % (self.path, self.size, size))

    def open(self):
        handle = open(self.path, "rb", buffering=0)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return handle

    def data_ranges(self, handle):
        """(start, end) byte ranges that may hold data; holes of sparse files are skipped."""
        if self.is_device:
            yield 0, self.size
            return
        fd = handle.fileno()
        offset = 0
        while offset < self.size:
            try:
                start = os.lseek(fd, offset, SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after offset
                    return
                if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # no SEEK_DATA here: read it all
                    yield offset, self.size
                    return
                raise
            end = min(os.lseek(fd, start, SEEK_HOLE), self.size)
            yield start, end
            offset = end


def sample_density(source, samples=256):
    """The share of ``samples`` clusters, spread evenly over the disk, that hold data.

    A cheap look (``samples`` x 64 KiB of reads) to tell a dense disk, not worth
    mapping, from one with room to save; written zeros count as empty, unlike a
    file's allocation map would.
    """
    clusters = max(1, (source.size + CLUSTER_SIZE - 1) // CLUSTER_SIZE)
    samples = min(samples, clusters)
    found = 0
    with source.open() as handle:
        for index in range(samples):
            offset = (index * clusters // samples) * CLUSTER_SIZE
            handle.seek(offset)
            block = read_exactly(source, handle, min(CLUSTER_SIZE, source.size - offset))
            if block != ZERO_CLUSTER[:len(block)]:
                found += 1
    return found / float(samples)


class DiskMap:
    """The non-zero 64 KiB clusters of a disk."""

    def __init__(self, size, clusters, scanned_bytes, seconds):
        self.size = size
        self.clusters = clusters
        self.scanned_bytes = scanned_bytes
        self.seconds = seconds

    @property
    def data_bytes(self):
        """Bytes in non-zero clusters (the last one counted only up to the disk's end)."""
        if not self.clusters:
            return 0
        full = len(self.clusters) * CLUSTER_SIZE
        last_end = (self.clusters[-1] + 1) * CLUSTER_SIZE
        return full - max(0, last_end - self.size)


def scan(source, progress=None, check=None):
    """Map the non-zero clusters of ``source``.

    ``check()``, called for every block read, may raise to stop the scan.
    """
    started = time.time()
    clusters = array.array("Q")
    scanned = 0
    position = 0
    with source.open() as handle:
        for start, end in source.data_ranges(handle):
            # A range starts on a filesystem block boundary; widen it to whole clusters.
            start -= start % CLUSTER_SIZE
            if start < position:
                start = position
            handle.seek(start)
            position = start
            while position < end:
                length = min(READ_SIZE, end - position + (-end % CLUSTER_SIZE), source.size - position)
                block = read_exactly(source, handle, length)
                scanned += length
                if block != ZERO_READ[:length]:
                    first = position // CLUSTER_SIZE
                    for index in range(0, length, CLUSTER_SIZE):
                        if block[index:index + CLUSTER_SIZE] != ZERO_CLUSTER[:length - index]:
                            clusters.append(first + index // CLUSTER_SIZE)
                position += length
                if progress:
                    progress.update(position)
                if check:
                    check()
        source.check_unchanged(handle)
    return DiskMap(source.size, clusters, scanned, time.time() - started)


def hash_zeros(digest, count):
    """Feed ``count`` zero bytes into ``digest`` (a hole reads as zeros)."""
    while count > 0:
        step = min(count, READ_SIZE)
        digest.update(ZERO_READ[:step])
        count -= step


def content_sha512(source, progress=None):
    """The sha512 of a source's whole logical content; holes are hashed as zeros, never read."""
    digest = hashlib.sha512()
    position = 0
    with source.open() as handle:
        for start, end in source.data_ranges(handle):
            hash_zeros(digest, start - position)
            handle.seek(start)
            position = start
            while position < end:
                block = read_exactly(source, handle, min(READ_SIZE, end - position))
                digest.update(block)
                position += len(block)
                if progress:
                    progress.update(position)
        source.check_unchanged(handle)
    hash_zeros(digest, source.size - position)
    return digest.hexdigest()


def read_exactly(source, handle, length):
    """``length`` bytes from the handle's position, however many reads it takes.

    A short read (NFS, FUSE, a device) is not the end; the disk's end is known
    (its size), so running out of bytes before it is an error, never zeros.
    """
    block = handle.read(length)
    if len(block) == length:
        return block
    parts = [block]
    got = len(block)
    while got < length:
        more = handle.read(length - got)
        if not more:
            raise SourceError("source %s ended at byte %d, before its size %d (did it shrink?)"
                              % (source.path, handle.tell(), source.size))
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def cluster_runs(clusters, max_clusters=READ_SIZE // CLUSTER_SIZE):
    """Group sorted cluster indexes into (first, count) runs of consecutive clusters."""
    first = None
    count = 0
    for cluster in clusters:
        if first is not None and cluster == first + count and count < max_clusters:
            count += 1
            continue
        if first is not None:
            yield first, count
        first, count = cluster, 1
    if first is not None:
        yield first, count


def read_all(source, handle, digest=None):
    """Every byte of the source in large reads (raw passthrough), hashing as it goes."""
    position = 0
    handle.seek(0)
    while position < source.size:
        block = read_exactly(source, handle, min(READ_SIZE, source.size - position))
        if digest is not None:
            digest.update(block)
        position += len(block)
        yield block


class Progress:
    """Bytes done, percent and MiB/s, written atomically to a JSON file a role can poll."""

    def __init__(self, path, total, phase, interval=1.0):
        self.path = path
        self.total = total
        self.phase = phase
        self.interval = interval
        self.done = 0
        self.started = time.time()
        self._written = 0.0
        self._lock = threading.Lock()
        self.write(force=True)

    def start(self, phase, total):
        self.phase = phase
        self.total = total
        self.done = 0
        self.started = time.time()
        self.write(force=True)

    def add(self, count):
        self.update(self.done + count)

    def update(self, done):
        self.done = done
        if time.time() - self._written >= self.interval:
            self.write()

    def snapshot(self):
        elapsed = max(time.time() - self.started, 1e-6)
        return {
            "pid": os.getpid(),
            "phase": self.phase,
            "bytes_done": self.done,
            "bytes_total": self.total,
            "percent": round(100.0 * self.done / self.total, 1) if self.total else 100.0,
            "mib_per_s": round(self.done / elapsed / 1048576.0, 1),
            "seconds": round(elapsed, 2),
            "updated": time.time(),
        }

    def write(self, force=False, **extra):
        with self._lock:
            self._written = time.time()
            if not self.path:
                return
            state = self.snapshot()
            state.update(extra)
            # a temporary file of an unpredictable name, created exclusively (mkstemp: O_EXCL, 0600), renamed
            # over the path: a link planted at either name is replaced, never followed
            directory = os.path.dirname(os.path.abspath(self.path))
            temp = None
            try:
                fd, temp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(self.path),
                                            suffix=".tmp")
                with os.fdopen(fd, "w") as handle:
                    json.dump(state, handle)
                os.replace(temp, self.path)
            except OSError:
                if temp and os.path.exists(temp):
                    os.unlink(temp)
                if force:
                    raise


class RateLimiter:
    """Keeps a stream at or below ``bytes_per_second`` (None or 0: no limit)."""

    def __init__(self, bytes_per_second):
        self.rate = bytes_per_second
        self.started = time.time()
        self.sent = 0

    def consume(self, count):
        if not self.rate:
            return
        self.sent += count
        ahead = self.sent / float(self.rate) - (time.time() - self.started)
        if ahead > 0:
            time.sleep(ahead)
