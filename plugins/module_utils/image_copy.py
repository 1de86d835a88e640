# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Copy an image from one cloud's Glance to another's, streamed, verified by sha512.

Optionally snapshots a server first (Nova createImage), which is how an
ephemeral server's root disk leaves its cloud. Idempotence and crash
recovery use the same image properties as volume_stream_to_image.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.glance import Glance, GlanceError
from ansible_collections.cloudshift.migrate.plugins.module_utils.image_stream import (
    PROP_MIGRATION, PROP_RAW_SHA512, PROP_SOURCE, PROP_VERIFIED)

CHUNK = 4 * 1024 * 1024
PROP_SERVER = "cloudshift_source_server"


def _chunks(response):
    for chunk in response.iter_content(chunk_size=CHUNK):
        if chunk:
            yield chunk


class ImageCopier:
    def __init__(self, module, source_conn, dest_conn, params):
        self.module = module
        self.source_conn = source_conn
        self.dest_conn = dest_conn
        self.params = params
        self.source = Glance(source_conn, timeout=params["timeout"])
        self.dest = Glance(dest_conn, timeout=params["timeout"])
        self.snapshot = None

    # -- the source image ---------------------------------------------------
    def source_image(self):
        params = self.params
        if params["server"]:
            return self._snapshot_server(params["server"])
        image = self.source.get(params["image"]) if _looks_like_id(params["image"]) else None
        if image is None:
            found = list(self.source.find(params["image"]))
            if not found:
                found = list(self.source_conn.image.images(name=params["image"]))
                found = [self.source.get(i.id) for i in found]
            if not found:
                raise MigrateError("no image %r in the source cloud" % params["image"])
            if len(found) > 1:
                raise MigrateError("%d images are named %r in the source cloud; give the id"
                                   % (len(found), params["image"]))
            image = found[0]
        if image.get("status") != "active":
            raise MigrateError("source image %s is %s, not active" % (image["id"], image.get("status")))
        return image

    def _snapshot_server(self, name_or_id):
        from ansible_collections.cloudshift.migrate.plugins.module_utils.instance import find_server

        server = find_server(self.source_conn, name_or_id)
        name = self.params["snapshot_name"] or "%s-cloudshift-snapshot" % server.name
        mine = [i for i in self.source.find(name) if i.get(PROP_SERVER) == server.id]
        active = [i for i in mine if i.get("status") == "active"]
        if active:
            self.snapshot = active[0]
            return active[0]
        for leftover in mine:  # a crashed run's snapshot that never finished
            if self.module.plan("delete unfinished snapshot %s (%s) in the source cloud" % (name, leftover["id"])):
                self.source.delete(leftover["id"])
        if not self.module.plan("snapshot server %s (%s) as image %s in the source cloud" % (server.name, server.id, name)):
            return None
        metadata = {PROP_SERVER: server.id}
        if self.params["migration_id"]:
            metadata[PROP_MIGRATION] = self.params["migration_id"]
        image = self.source_conn.compute.create_server_image(server, name, metadata=metadata)
        image_id = image.id if hasattr(image, "id") else image
        self.module.record("snapshot_image", server.id, destination_id=image_id, phase="transfer",
                           status="running", data=dict(name=name, temporary=True, cloud="source"))
        try:
            snapshot = self.source.wait_active(image_id, self.params["timeout"])
        except GlanceError as exc:
            raise MigrateError("snapshot of server %s failed: %s" % (server.name, exc))
        self.module.record("snapshot_image", server.id, destination_id=image_id, phase="transfer",
                           status="done", bytes=snapshot.get("size"),
                           data=dict(name=name, temporary=True, cloud="source"))
        self.snapshot = snapshot
        return snapshot

    # -- the copy -----------------------------------------------------------
    def run(self):
        params = self.params
        started = time.time()
        server_id = None
        if params["server"]:
            # A verified copy of this server's disk means done: no new snapshot.
            from ansible_collections.cloudshift.migrate.plugins.module_utils.instance import find_server

            server_id = find_server(self.source_conn, params["server"]).id
            done = [i for i in self.dest.find(params["name"]) if i.get(PROP_SERVER) == server_id
                    and i.get("status") == "active" and str(i.get(PROP_VERIFIED)).lower() == "true"]
            if done:
                return dict(image=_summary(done[0]), source_image=None)
        source = self.source_image()
        if source is None:  # check mode, snapshot not made yet
            self.module.plan("copy the snapshot into image %s in the destination cloud, verified by sha512" % params["name"])
            return dict(image=None, source_image=None)
        sha512 = source.get("os_hash_value") if source.get("os_hash_algo") == "sha512" else None
        if not sha512:
            raise MigrateError("source image %s has no sha512 (os_hash_value); cannot verify a copy" % source["id"])
        existing = self.dest.find(params["name"])
        same = [i for i in existing if i.get(PROP_RAW_SHA512) == sha512 and i.get("status") == "active"
                and str(i.get(PROP_VERIFIED)).lower() == "true"]
        if same:
            return dict(image=_summary(same[0]), source_image=_summary(source))
        for image in existing:
            if image.get(PROP_SOURCE) == source["id"] and image.get("status") != "active":
                if self.module.plan("delete unfinished copy %s (%s, %s)" % (image["name"], image["id"], image.get("status"))):
                    self.dest.delete(image["id"])
            elif not params["replace"]:
                raise MigrateError("an image named %s (%s) with other content exists in the destination; "
                                   "remove it or set replace=true" % (params["name"], image["id"]))
        if not self.module.plan("copy image %s (%d bytes, %s) into image %s in the destination cloud" % (
                source["id"], source.get("size") or 0, source.get("disk_format"), params["name"])):
            return dict(image=None, source_image=_summary(source))
        properties = dict(params["properties"] or {})
        properties[PROP_SOURCE] = source["id"]
        if server_id:
            properties[PROP_SERVER] = server_id
        if params["migration_id"]:
            properties[PROP_MIGRATION] = params["migration_id"]
        for key in ("min_disk", "min_ram"):
            if source.get(key):
                properties[key] = source[key]
        created = self.dest.create(params["name"], params["disk_format"] or source.get("disk_format") or "raw",
                                   params["container_format"] or source.get("container_format") or "bare",
                                   properties=properties)
        self.module.record("image", source["id"], destination_id=created["id"], phase="transfer", status="running",
                           data=dict(name=params["name"]))
        try:
            response = self.source.api.get("/images/%s/file" % source["id"], stream=True)
            if response.status_code != 200:
                raise GlanceError("download of source image %s: HTTP %s" % (source["id"], response.status_code))
            try:
                sent = self.dest.upload(created["id"], _chunks(response), int(source["size"]))
            finally:
                response.close()
            if sent != sha512:
                raise GlanceError("what was read from the source (sha512 %s...) differs from the source image's "
                                  "sha512 (%s...)" % (sent[:16], sha512[:16]))
            image = self.dest.wait_active(created["id"], params["timeout"])
            if image.get("os_hash_value") != sha512:
                raise GlanceError("the destination stored sha512 %s..., the source has %s..." % (
                    str(image.get("os_hash_value"))[:16], sha512[:16]))
            image = self.dest.update_properties(created["id"], {PROP_RAW_SHA512: sha512, PROP_VERIFIED: "true"})
        except (GlanceError, MigrateError) as exc:
            self.dest.delete(created["id"])
            self.module.record("image", source["id"], destination_id=created["id"], phase="transfer",
                               status="failed", data=dict(name=params["name"], error=str(exc)[:500]))
            raise MigrateError("copy of image %s failed (the partial copy was deleted): %s" % (source["id"], exc))
        self.module.record("image", source["id"], destination_id=image["id"], phase="transfer", status="done",
                           checksum="sha512:" + sha512, bytes=int(source["size"]),
                           seconds=round(time.time() - started, 3), data=dict(name=params["name"]))
        return dict(image=_summary(image), source_image=_summary(source))


def _looks_like_id(value):
    return len(value) == 36 and value.count("-") == 4


def _summary(image):
    if image is None:
        return None
    keys = ("id", "name", "status", "disk_format", "container_format", "size", "virtual_size",
            "os_hash_algo", "os_hash_value", "min_disk", "min_ram")
    return dict((key, image.get(key)) for key in keys)
