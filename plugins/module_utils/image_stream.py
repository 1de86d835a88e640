# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_stream_to_image's work: a disk streamed into a Glance image, verified.

Three ways to send a disk (``Plan.mode``):

* ``qcow2``: the disk's non-zero clusters as a qcow2 stream, stored as a qcow2
  image. Sends only data. Glance stores exactly the bytes sent: its sha512
  (``os_hash_value``) must equal the sha512 of the stream. The raw content's
  sha512 is kept in the image property ``cloudshift_raw_sha512``.
* ``qcow2-import``: the same stream staged, then imported through Glance's
  ``image_conversion`` plugin into a raw image. Sends only data, but Glance
  converts and stores every byte (slower on the Glance side); its sha512 must
  equal the raw content's sha512 - the strongest end-to-end check.
* ``raw``: every byte as it is (raw passthrough); Glance's sha512 must equal the
  raw content's.

Images this module makes carry properties that let a re-run recognise them:
``cloudshift_raw_sha512``, ``cloudshift_source_id``, ``cloudshift_migration_id``
and, once verified, ``cloudshift_verified``. A re-run finds a verified image with
the same content and changes nothing; it removes its own unfinished images
(queued, saving, importing ...) left by a crash before uploading again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.cloudshift.migrate.plugins.module_utils import archive, blockio
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import BackgroundCall, MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.glance import GlanceError, SourceReadError
from ansible_collections.cloudshift.migrate.plugins.module_utils.qcow2 import CLUSTER_SIZE, Qcow2Layout

PROP_RAW_SHA512 = "cloudshift_raw_sha512"
PROP_SOURCE = "cloudshift_source_id"
PROP_MIGRATION = "cloudshift_migration_id"
PROP_VERIFIED = "cloudshift_verified"
PROP_RAW_SIZE = "cloudshift_raw_size"
UNFINISHED = ("queued", "saving", "importing", "uploading")
SECTOR = 512
MIB = 1048576.0


# With ``disk_format=auto``, a disk whose data fills at least this share of it is sent raw:
# skipping the few zeros would not pay for hashing the content a second time.
DENSE_SHARE = 0.9


def resolve_auto(disk_map):
    return "raw" if disk_map.data_bytes >= DENSE_SHARE * disk_map.size else "qcow2"


def choose_mode(disk_format, sparse):
    """The transfer mode for the options; ``auto`` is resolved by ``resolve_auto`` after the scan."""
    if disk_format == "auto":
        return "auto" if sparse else "raw"
    if disk_format == "qcow2":
        if not sparse:
            raise MigrateError("disk_format=qcow2 always sends a sparse qcow2 stream: leave sparse at true")
        return "qcow2"
    return "qcow2-import" if sparse else "raw"


class Plan:
    """What the module is about to do with one source."""

    def __init__(self, source, name, mode, disk_map=None):
        self.source = source
        self.name = name
        self.mode = mode
        self.disk_map = disk_map
        self.layout = Qcow2Layout(source.size, disk_map.clusters) if disk_map is not None else None

    @property
    def disk_format(self):
        return "qcow2" if self.mode == "qcow2" else "raw"

    @property
    def upload_bytes(self):
        return self.layout.size if self.layout else self.source.size

    @property
    def stored_bytes(self):
        """What Glance keeps: the stream, or (after conversion, or raw) the whole disk."""
        return self.layout.size if self.mode == "qcow2" else self.source.size

    def describe(self):
        summary = {
            "path": self.source.path,
            "size": self.source.size,
            "is_device": self.source.is_device,
            "image_name": self.name,
            "mode": self.mode,
            "disk_format": self.disk_format,
            "upload_bytes": self.upload_bytes,
        }
        if self.disk_map is not None:
            summary["data_bytes"] = self.disk_map.data_bytes
            summary["scan_seconds"] = round(self.disk_map.seconds, 3)
        return summary


def stream_chunks(plan, handle, archive=None):
    """The bytes to upload, in order: the raw content, or the qcow2 image of its data clusters.

    ``archive`` (an ArchiveWriter) gets each piece of the disk read, at its offset: one read feeds both.
    """
    if plan.mode == "raw":
        offset = 0
        for block in blockio.read_all(plan.source, handle):
            if archive is not None:
                archive.put(offset, block)
            offset += len(block)
            yield block
        return
    yield from plan.layout.metadata_chunks()
    for first, count in blockio.cluster_runs(plan.disk_map.clusters):
        start = first * CLUSTER_SIZE
        handle.seek(start)
        want = count * CLUSTER_SIZE
        block = blockio.read_exactly(plan.source, handle, min(want, plan.source.size - start))
        if archive is not None:
            archive.put(start, block)
        if len(block) < want:  # the disk's last cluster, cut by its end
            block += b"\0" * (want - len(block))
        yield block


class Streamer:
    """One volume_stream_to_image call: ``prepare()`` the source, then ``execute()`` against a Glance."""

    def __init__(self, module, params):
        self.module = module  # a MigrateModule: plan(), record(), warn()
        self.params = params
        self.glance = None
        self.plan = None
        self.digest = None
        self.progress = None
        self.started = None
        self.archive = None  # an ArchiveWriter while an upload also writes the archive
        self.archived = None  # the archive's sidecar (sha256, sha512, size ...)

    # -- deciding ------------------------------------------------------------
    def classify(self, images, raw_sha512_of_source):
        """Split same-named images into (done, unfinished, foreign) relative to this source.

        Unfinished: this module's own, from this source, never verified (a crashed or
        killed run); a re-run removes them. Done: verified, active, same content and
        format. Anything else is foreign: an error unless ``replace``.
        """
        done, unfinished, foreign = [], [], []
        for image in images:
            ours = PROP_RAW_SHA512 in image and image.get(PROP_SOURCE) == self.params["source_id"]
            if ours and image.get(PROP_VERIFIED) != "true" and image.get("status") in UNFINISHED + ("active",):
                unfinished.append(image)
            elif ours and image.get("status") == "active" and image.get("disk_format") == self.plan.disk_format \
                    and raw_sha512_of_source() == image[PROP_RAW_SHA512]:
                done.append(image)
            else:
                foreign.append(image)
        return done, unfinished, foreign

    def prepare(self, source, name, mode, check=None):
        """Map the source and check it fits the destination.

        After the scan the sha512 of the raw content is computed in a thread (a
        mostly-empty disk is mostly zeros to hash, about a second per GiB), so it
        overlaps the upload. Raw mode hashes the stream it sends instead.
        """
        params = self.params
        self.started = time.time()
        progress_file = None if self.module.check_mode else params.get("progress_file")
        self.progress = blockio.Progress(progress_file, source.size, "scan")
        if mode != "raw" and source.size % SECTOR:
            if mode != "auto":
                raise MigrateError("source %s is %d bytes, not a whole number of %d-byte sectors, which is all a "
                                   "qcow2 image can hold: use disk_format=raw with sparse=false"
                                   % (source.path, source.size, SECTOR))
            mode = "raw"
        if mode == "auto" and blockio.sample_density(source) >= DENSE_SHARE:
            mode = "raw"  # dense: send it as it is, without reading it twice
        disk_map = blockio.scan(source, self.progress, check) if mode != "raw" else None
        if mode == "auto":
            mode = resolve_auto(disk_map)
            if mode == "raw":
                disk_map = None
        if mode != "raw":
            self.digest = BackgroundCall(lambda: blockio.content_sha512(source))
        self.plan = Plan(source, name, mode, disk_map)
        if self.plan.stored_bytes > params["image_size_cap"] or self.plan.upload_bytes > params["image_size_cap"]:
            raise MigrateError(
                "source %s needs %d bytes in Glance, more than the destination's image size cap of %d bytes"
                % (source.path, max(self.plan.stored_bytes, self.plan.upload_bytes), params["image_size_cap"]),
                plan=self.plan.describe())
        return self.plan

    def execute(self, glance):
        """Find what exists, clean up, upload and verify (or only plan, in check mode)."""
        self.glance = glance
        params, source, name = self.params, self.plan.source, self.plan.name
        started = self.started

        def source_sha512():
            if self.digest is None:  # raw mode: hash now, only because an existing image must be compared
                self.progress.start("hash", source.size)
                self.digest = BackgroundCall(lambda: blockio.content_sha512(source, self.progress))
            return self.digest.result()

        existing = self.glance.find(name)
        done, unfinished, foreign = self.classify(existing, source_sha512)
        if foreign and not params["replace"]:
            raise MigrateError(
                "an image called %s already exists with other content (%s); set replace=true to replace it"
                % (name, ", ".join("%s %s" % (image["id"], image.get("status")) for image in foreign)),
                plan=self.plan.describe())
        for image in unfinished:
            if self.module.plan("remove unfinished image %s (%s) left by an earlier attempt"
                                % (image["id"], image.get("status"))):
                self.glance.delete(image["id"])
        if done:
            image = done[0]
            for other in foreign:
                if self.module.plan("remove replaced image %s" % other["id"]):
                    self.glance.delete(other["id"])
            self.archive_alone(image[PROP_RAW_SHA512])
            return self.result(image, started, sent=0, verified_by="an earlier run (content sha512 matches)")

        self.module.plan("create %s image %s and upload %d bytes (%s)"
                         % (self.plan.disk_format, name, self.plan.upload_bytes, self.plan.mode))
        if params.get("archive_dir"):
            self.module.plan("write the same read to the archive %s" % archive.paths(
                params["archive_dir"], self.archive_name())["data"])
        for other in foreign:
            self.module.plan("remove replaced image %s once the new one is verified" % other["id"])
        if self.module.check_mode:
            return {"plan": self.plan.describe(), "image": None, "bytes_sent": 0}

        image, sent, raw_sha512, verified_by = self.upload()
        for other in foreign:
            self.glance.delete(other["id"])
        return self.result(image, started, sent=sent, verified_by=verified_by, raw_sha512=raw_sha512)

    # -- doing -------------------------------------------------------------------
    def upload(self):
        plan, params = self.plan, self.params
        properties = dict(params.get("properties") or {})
        properties.update({PROP_SOURCE: params["source_id"], PROP_RAW_SIZE: str(plan.source.size),
                           PROP_RAW_SHA512: "pending"})
        if params.get("migration_id"):
            properties[PROP_MIGRATION] = params["migration_id"]
        upload_format = "qcow2" if plan.mode != "raw" else "raw"
        image = self.glance.create(plan.name, upload_format, params["container_format"], properties,
                                   params.get("tags"))
        image_id = image["id"]
        started = time.time()
        try:
            self.progress.start("upload", plan.upload_bytes)
            limiter = blockio.RateLimiter(int(params["rate_limit"] * MIB) if params.get("rate_limit") else 0)
            if params.get("archive_dir"):
                self.archive = archive.ArchiveWriter(params["archive_dir"], self.archive_name(), plan.source.size,
                                                     int(params["archive_buffer_mib"] * MIB), params["source_id"]).begin()
            with plan.source.open() as handle:
                stream_sha512 = self.glance.upload(image_id, stream_chunks(plan, handle, self.archive),
                                                   plan.upload_bytes, stage=plan.mode == "qcow2-import",
                                                   progress=self.progress, limiter=limiter)
            if plan.mode == "qcow2-import":
                self.progress.write(phase="import")
                self.glance.start_import(image_id)
            image = self.glance.wait_active(image_id, params["timeout"], importing=plan.mode == "qcow2-import")
            raw_sha512 = self.digest.result() if plan.mode != "raw" else stream_sha512
            verified_by = self.verify(image, stream_sha512, raw_sha512)
            if self.archive is not None:
                self.archived = self.archive.finish(raw_sha512)
            image = self.glance.update_properties(image_id, {PROP_RAW_SHA512: raw_sha512, PROP_VERIFIED: "true"})
        except BaseException as exc:
            if self.archive is not None and self.archived is None:
                self.archive.abort()
            self.fail_upload(image_id, exc, time.time() - started)
            raise
        self.progress.write(phase="done")
        return image, plan.upload_bytes, raw_sha512, verified_by

    def archive_name(self):
        return self.params.get("archive_name") or "%s.raw" % self.plan.name

    def archive_alone(self, raw_sha512):
        """The image was done by an earlier run: write the archive if that run did not finish it."""
        directory = self.params.get("archive_dir")
        if not directory:
            return
        name = self.archive_name()
        self.archived = archive.existing(directory, name, raw_sha512, self.plan.source.size)
        if self.archived is not None:
            return
        if not self.module.plan("write the archive %s (the image is done)" % archive.paths(directory, name)["data"]):
            return
        writer = archive.ArchiveWriter(directory, name, self.plan.source.size,
                                       int(self.params["archive_buffer_mib"] * MIB), self.params["source_id"]).begin()
        try:
            with self.plan.source.open() as handle:
                offset = 0
                for block in blockio.read_all(self.plan.source, handle):
                    writer.put(offset, block)
                    offset += len(block)
            self.archived = writer.finish(raw_sha512)
        except BaseException:
            writer.abort()
            raise

    def verify(self, image, stream_sha512, raw_sha512):
        plan = self.plan
        stored = image.get("os_hash_value")
        if image.get("os_hash_algo") not in (None, "sha512"):
            raise GlanceError("Glance hashes with %s; verification needs sha512" % image.get("os_hash_algo"))
        if plan.mode == "qcow2":
            expected, what = stream_sha512, "the qcow2 stream sent"
            if image.get("virtual_size") not in (None, plan.source.size):
                raise GlanceError("image %s has virtual size %s, the source %d" % (
                    image["id"], image.get("virtual_size"), plan.source.size))
        else:
            expected, what = raw_sha512, "the source's raw content"
            if image.get("size") != plan.source.size:
                raise GlanceError("image %s holds %s bytes, the source %d"
                                  % (image["id"], image.get("size"), plan.source.size))
        if stored != expected:
            raise GlanceError("image %s failed verification: Glance's sha512 %s differs from %s's %s"
                              % (image["id"], stored, what, expected))
        return "Glance's os_hash_value equals the sha512 of %s" % what

    def fail_upload(self, image_id, exc, seconds):
        """Remove the broken image; record the failure. Never hides the original error."""
        removed = False
        try:
            removed = self.glance.delete(image_id)
        except Exception as cleanup:  # pylint: disable=broad-except
            note = ("; the unfinished image %s could not be removed (%s): a re-run removes it"
                    % (image_id, str(cleanup).splitlines()[0] if str(cleanup) else type(cleanup).__name__))
            if isinstance(exc, (GlanceError, MigrateError, blockio.SourceError, SourceReadError)):
                exc.args = (str(exc) + note,) + exc.args[1:]
                if isinstance(exc, MigrateError):
                    exc.msg += note
        data = {"name": self.plan.name, "removed": removed, "error": str(exc)[:500]}
        try:
            self.module.record("image", self.params["source_id"], destination_id=image_id, phase="transfer",
                               status="failed", seconds=round(seconds, 3), data=data)
        except MigrateError:  # the error's text looked like a secret: record the failure without it
            data["error"] = type(exc).__name__
            self.module.record("image", self.params["source_id"], destination_id=image_id, phase="transfer",
                               status="failed", seconds=round(seconds, 3), data=data)
        if self.progress:
            self.progress.write(phase="failed")

    def result(self, image, started, sent, verified_by, raw_sha512=None):
        seconds = time.time() - started
        raw_sha512 = raw_sha512 or image.get(PROP_RAW_SHA512)
        summary = {
            "id": image["id"],
            "name": image.get("name"),
            "status": image.get("status"),
            "disk_format": image.get("disk_format"),
            "size": image.get("size"),
            "virtual_size": image.get("virtual_size"),
            "os_hash_algo": image.get("os_hash_algo"),
            "os_hash_value": image.get("os_hash_value"),
            "raw_sha512": raw_sha512,
        }
        data = {"name": image.get("name"), "disk_format": image.get("disk_format"), "error": None, "removed": None}
        if sent:  # a run that found the image done leaves the entry as the run that made it wrote it
            data["verified_by"] = verified_by
        self.module.record("image", self.params["source_id"], destination_id=image["id"], phase="transfer",
                           status="done", checksum="sha512:%s" % raw_sha512, bytes=sent or None,
                           seconds=round(seconds, 3) if sent else None, data=data)
        if self.archived is not None:
            self.module.record("archive", self.params["source_id"], destination_id=archive.paths(
                self.params["archive_dir"], self.archive_name())["data"], phase="archive", status="done",
                checksum="sha256:%s" % self.archived["sha256"], bytes=self.archived["size"],
                data=dict(sha512=self.archived["sha512"], reader_waited_seconds=self.archived["reader_waited_seconds"]))
        return {
            "archive": self.archived,
            "image": summary,
            "plan": self.plan.describe(),
            "bytes_sent": sent,
            "seconds": round(seconds, 3),
            "mib_per_s": round(self.plan.source.size / MIB / seconds, 1) if sent and seconds > 0 else None,
            "verified_by": verified_by,
        }
