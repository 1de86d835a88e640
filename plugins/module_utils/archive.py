# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A second destination for one read of a disk: a raw copy in an archive directory (tape's stand-in).

The upload hands each piece it reads (offset, bytes) to ``ArchiveWriter.put``; a thread writes the
pieces into a sparse raw file. The queue between them is bounded, so a slow archive holds the
upload back by at most ``buffer_bytes``, and a fast one costs it nothing. At the end the file is
read back and hashed (sha256 and sha512 of what is on disk, not of what was meant to be), and a
JSON sidecar and a ``sha256sum``-style line are written next to it. Only then is the file renamed
from ``.part`` to its name: an archive that has its name is complete and verified.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import threading
import time

try:
    import queue
except ImportError:  # Python 2 is not supported, but sanity's import test must pass
    import Queue as queue  # pylint: disable=import-error

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

READ_SIZE = 4 * 1024 * 1024


def check_name(name):
    """An archive's file name stays in its directory: no "/", no "..", no hidden name."""
    text = str(name)
    if not text or "/" in text or "\x00" in text or text.startswith(".") or text != os.path.basename(text):
        raise MigrateError("archive_name %r must be a plain file name inside archive_dir (no /, not starting with .)"
                           % text)
    return text


def paths(directory, name):
    base = os.path.join(directory, check_name(name))
    return dict(data=base, part=base + ".part", sidecar=base + ".json", sha256=base + ".sha256")


def check_room(directory, need_bytes):
    """The directory can take ``need_bytes`` (else MigrateError, before anything is written)."""
    probe = os.path.abspath(directory)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise MigrateError("directory %s: %s is not a directory" % (directory, probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise MigrateError("directory %s is not writable" % probe)
    stat = os.statvfs(probe)
    free = stat.f_bavail * stat.f_frsize
    if free < need_bytes:
        raise MigrateError("directory %s has %d bytes free, %d are needed" % (directory, free, need_bytes))
    return free


def existing(directory, name, raw_sha512, size):
    """The sidecar of a complete archive of this content, or None."""
    where = paths(directory, name)
    try:
        with open(where["sidecar"]) as handle:
            sidecar = json.load(handle)
        if sidecar.get("sha512") == raw_sha512 and os.path.getsize(where["data"]) == size == sidecar.get("size"):
            return sidecar
    except (IOError, OSError, ValueError):
        pass
    return None


class ArchiveWriter(threading.Thread):
    def __init__(self, directory, name, size, buffer_bytes, source_id):
        super(ArchiveWriter, self).__init__()
        self.daemon = True
        self.directory, self.name, self.size, self.source_id = directory, name, size, source_id
        self.paths = paths(directory, name)
        self.queue = queue.Queue(maxsize=max(1, buffer_bytes // READ_SIZE))
        self.error = None
        self.waited = 0.0  # seconds the reader spent waiting for the archive (the buffer was full)
        self.written = 0
        self.started_at = None

    def begin(self):
        if not os.path.isdir(self.directory):
            os.makedirs(self.directory)
        self.started_at = time.time()
        self.start()
        return self

    def put(self, offset, data):
        if self.error is not None:
            raise MigrateError("writing the archive %s failed: %s" % (self.paths["part"], self.error))
        started = time.monotonic()
        while True:
            try:
                self.queue.put((offset, data), timeout=1.0)
                break
            except queue.Full:
                if self.error is not None or not self.is_alive():
                    raise MigrateError("writing the archive %s failed: %s" % (self.paths["part"], self.error))
        self.waited += time.monotonic() - started

    def run(self):
        fd = None
        try:
            fd = os.open(self.paths["part"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            while True:
                item = self.queue.get()
                if item is None:
                    break
                offset, data = item
                view = memoryview(data)
                while view:
                    done = os.pwrite(fd, view, offset)
                    view, offset = view[done:], offset + done
                    self.written += done
            os.ftruncate(fd, self.size)
            os.fsync(fd)
        except (IOError, OSError) as exc:
            self.error = str(exc)
            while True:  # let the reader go on to its error
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break
        finally:
            if fd is not None:
                os.close(fd)

    def abort(self):
        """Stop and remove the unfinished file (the upload failed)."""
        if self.is_alive():
            self.error = self.error or "aborted"
            try:
                self.queue.put(None, timeout=5)
            except queue.Full:
                pass
            self.join(30)
        if os.path.exists(self.paths["part"]):
            os.unlink(self.paths["part"])

    def finish(self, raw_sha512=None):
        """Close, read back, check against ``raw_sha512`` (when known), name the file; the sidecar."""
        self.queue.put(None)
        self.join()
        if self.error is not None:
            self.abort()
            raise MigrateError("writing the archive %s failed: %s" % (self.paths["part"], self.error))
        sha256, sha512 = hashlib.sha256(), hashlib.sha512()
        with open(self.paths["part"], "rb") as handle:
            while True:
                block = handle.read(READ_SIZE)
                if not block:
                    break
                sha256.update(block)
                sha512.update(block)
        if raw_sha512 and sha512.hexdigest() != raw_sha512:
            self.abort()
            raise MigrateError("the archive %s read back differs from the source (sha512 %s, source %s)" % (
                self.paths["part"], sha512.hexdigest(), raw_sha512))
        sidecar = dict(name=self.name, size=self.size, sha256=sha256.hexdigest(), sha512=sha512.hexdigest(),
                       source_id=self.source_id, seconds=round(time.time() - self.started_at, 3),
                       written_bytes=self.written, reader_waited_seconds=round(self.waited, 3))
        with open(self.paths["sha256"], "w") as handle:
            handle.write("%s  %s\n" % (sidecar["sha256"], self.name))
        with open(self.paths["sidecar"], "w") as handle:
            json.dump(sidecar, handle, indent=2, sort_keys=True)
        os.rename(self.paths["part"], self.paths["data"])
        return sidecar
