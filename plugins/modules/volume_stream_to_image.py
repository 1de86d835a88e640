#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: volume_stream_to_image
short_description: Stream a block device or raw disk file into a Glance image, sparse-aware and verified
version_added: 0.1.0
description:
  - Reads a disk on the host where the task runs (a copy host with the volume attached, or a
    storage host with the volume's file) and streams it into a new image in a cloud's Glance, with
    constant memory and no temporary copy.
  - By default only the non-zero 64 KiB clusters are sent, as a qcow2 stream written on the fly
    (holes of sparse files are never read). The layout is computed from a first pass over the disk,
    so the stream is emitted strictly in order with its exact length announced.
  - Verifies before it reports success - the image is C(active) and Glance's C(os_hash_value)
    (sha512 of what it stored) equals the sha512 of what was sent (V(qcow2)) or of the disk's raw
    content (V(raw), and sparse V(raw) through import). On any failure the new image is deleted.
  - Idempotent - images it makes carry the raw content's sha512; a re-run that finds a verified image
    of the same name and content changes nothing, and unfinished images left by a crashed run are
    removed before uploading again. An image of the same name with other content is an error unless
    O(replace=true).
  - Run it as an C(async) task for long transfers and poll O(progress_file) for bytes, percent and MiB/s.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  path:
    description:
      - The block device (for example C(/dev/disk/by-id/virtio-<volume id prefix>)) or raw disk file to read.
    type: path
    required: true
  name:
    description:
      - The name of the image to create.
    type: str
    required: true
  disk_format:
    description:
      - The format of the image in Glance.
      - V(auto) samples the disk (256 clusters spread over it); a dense disk is sent V(raw) as it is,
        at once. Otherwise it maps the disk and picks V(qcow2) when zeros make up more than a tenth
        of it, else V(raw) (skipping a few zeros would not pay for reading and hashing data twice).
      - V(qcow2) sends only the data, as qcow2, and keeps it so. Nova boots it; Cinder converts it to raw
        when it creates a volume from it. Fastest for sparse disks.
      - V(raw) ends with a raw image, which Ceph-backed clouds clone without copying. With O(sparse=true)
        a qcow2 stream is staged and Glance's C(image_conversion) import plugin converts it (the cloud
        must enable that plugin; Glance then writes every byte itself). With O(sparse=false) every byte
        is sent as it is.
    type: str
    choices: [auto, qcow2, raw]
    default: auto
  sparse:
    description:
      - Whether to skip zero clusters. Must stay V(true) with O(disk_format=qcow2); V(false) with
        O(disk_format=auto) means V(raw).
      - V(false) reads the disk once and sends all of it, which suits dense disks on slow storage
        (a sparse transfer reads data clusters more than once - to map them, hash them and send them).
    type: bool
    default: true
  container_format:
    description:
      - The image's container format.
    type: str
    default: bare
  properties:
    description:
      - Further image properties, for example C(hw_disk_bus), C(os_distro), C(min_disk).
      - Properties starting with C(cloudshift_) are the module's own and cannot be set.
    type: dict
  tags:
    description:
      - Image tags.
    type: list
    elements: str
  replace:
    description:
      - Replace an image of the same name that holds other content. The new image is uploaded and
        verified first; the old one is deleted after.
    type: bool
    default: false
  source_id:
    description:
      - What the disk is, for the ledger and the image's C(cloudshift_source_id) property, typically
        the source volume's id. Default is O(path).
    type: str
  image_size_cap:
    description:
      - The destination Glance's C(image_size_cap) in bytes. A source that would need more is refused
        before anything is created. The default is Glance's own default (1 TiB).
    type: int
    default: 1099511627776
  rate_limit:
    description:
      - The most MiB per second to send; V(0) for no limit.
    type: float
    default: 0
  archive_dir:
    description:
      - Also write the disk, from the same read, as a raw file into this directory (an archive or a tape's staging
        area), next to a JSON sidecar and a C(sha256sum)-style line with its sha256 and sha512. The file is read back
        and hashed before it gets its name (C(.part) until then); its sha512 must equal the source's.
      - The archive is fed through a bounded buffer (O(archive_buffer_mib)) - a slow archive holds the upload back by
        at most that much, and C(reader_waited_seconds) in RV(archive) says how long the reader waited for it.
      - Refused before anything changes when the directory cannot be written or has less room than the disk's data.
      - A re-run whose image is done writes a missing archive alone.
    type: path
  archive_name:
    description: The archive file's name. Default - O(name) with C(.raw).
    type: str
  archive_buffer_mib:
    description: MiB of read data the archive may lag behind the upload.
    type: float
    default: 64
  progress_file:
    description:
      - A JSON file on the host where the task runs, rewritten about every second with C(phase),
        C(bytes_done), C(bytes_total), C(percent), C(mib_per_s) and C(pid).
    type: path
  timeout:
    description:
      - Seconds to wait for Glance to make the image C(active) after the upload (or the import).
    type: int
    default: 1800
notes:
  - Supports check mode - it maps the disk and returns the plan (size, data bytes, upload bytes,
    format) in RV(plan) and RV(actions), and changes nothing.
  - Do not run two transfers of the same source into the same image name at once - each takes the
    other's unfinished image for a crashed run's leftover and removes it.
  - Verification of V(qcow2) images proves Glance stored exactly the stream produced; that the stream
    holds the disk's content rests on the writer, which is tested against C(qemu-img). V(raw) images
    (sparse or not) are checked against the raw content itself.
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Stream the attached copy of the root volume into the destination cloud
  cloudshift.migrate.volume_stream_to_image:
    cloud: new-provider
    path: /dev/disk/by-id/virtio-5f0c8a2e-0d7c-4b44-9
    name: web01-root
    source_id: 5f0c8a2e-0d7c-4b44-9a57-3c5e1f4d2a10
    migration_id: web01-2026-11
    progress_file: /run/cloudshift/web01-root.progress
  async: 7200
  poll: 0
  register: stream_job

- name: Send a dense raw disk file as it is, at most 200 MiB/s
  cloudshift.migrate.volume_stream_to_image:
    cloud: new-provider
    path: /srv/export/volume-9a1b7c44
    name: db01-data
    disk_format: raw
    sparse: false
    rate_limit: 200

- name: Show what would be sent
  cloudshift.migrate.volume_stream_to_image:
    cloud: new-provider
    path: /dev/vdb
    name: web01-data
  check_mode: true
  register: stream_plan
"""

RETURN = r"""
actions:
  description: What the module did (in check mode, would do).
  returned: always
  type: list
  elements: str
  sample: ["create qcow2 image web01-root and upload 114032640 bytes (qcow2)"]
image:
  description: The verified image (none in check mode when it would be created).
  returned: always
  type: dict
  contains:
    id:
      description: The image's id.
      type: str
    name:
      description: The image's name.
      type: str
    status:
      description: Always C(active).
      type: str
    disk_format:
      description: V(qcow2) or V(raw).
      type: str
    size:
      description: Bytes Glance stores.
      type: int
    virtual_size:
      description: The disk's size.
      type: int
    os_hash_algo:
      description: Glance's hash algorithm (sha512).
      type: str
    os_hash_value:
      description: Glance's hash of what it stores.
      type: str
    raw_sha512:
      description: The sha512 of the disk's raw content.
      type: str
plan:
  description: What was (or would be) sent.
  returned: always
  type: dict
  sample:
    path: /dev/vdb
    size: 10737418240
    is_device: true
    image_name: web01-data
    mode: qcow2
    disk_format: qcow2
    data_bytes: 1073741824
    upload_bytes: 1074200576
    scan_seconds: 3.2
archive:
  description:
    - With O(archive_dir), the archive's sidecar - C(name), C(size), C(sha256), C(sha512), C(source_id), C(seconds),
      C(written_bytes), C(reader_waited_seconds).
  returned: success
  type: dict
bytes_sent:
  description: Bytes uploaded by this run (0 when nothing had to be sent).
  returned: always
  type: int
seconds:
  description: How long the run took.
  returned: success
  type: float
mib_per_s:
  description: The disk's size divided by the time taken, when something was sent.
  returned: success
  type: float
verified_by:
  description: How the image was verified.
  returned: success
  type: str
ledger_entries:
  description: The ledger entry of the image (type C(image), keyed by O(source_id)).
  returned: always
  type: list
  elements: dict
"""

import os

from ansible_collections.cloudshift.migrate.plugins.module_utils import archive
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import BackgroundCall, MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.blockio import Source, SourceError
from ansible_collections.cloudshift.migrate.plugins.module_utils.glance import Glance, GlanceError, SourceReadError
from ansible_collections.cloudshift.migrate.plugins.module_utils.image_stream import Streamer, choose_mode
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule


class VolumeStreamToImage(OpenStackMigrateModule):
    argument_spec = dict(
        path=dict(type="path", required=True),
        name=dict(type="str", required=True),
        disk_format=dict(type="str", default="auto", choices=["auto", "qcow2", "raw"]),
        sparse=dict(type="bool", default=True),
        container_format=dict(type="str", default="bare"),
        properties=dict(type="dict"),
        tags=dict(type="list", elements="str"),
        replace=dict(type="bool", default=False),
        source_id=dict(type="str"),
        image_size_cap=dict(type="int", default=1099511627776),
        rate_limit=dict(type="float", default=0),
        progress_file=dict(type="path"),
        timeout=dict(type="int", default=1800),
        archive_dir=dict(type="path"),
        archive_name=dict(type="str"),
        archive_buffer_mib=dict(type="float", default=64),
    )

    def run(self):
        params = dict(self.params)
        params["source_id"] = params["source_id"] or params["path"]
        mode = choose_mode(params["disk_format"], params["sparse"])
        own = [key for key in (params["properties"] or {}) if key.startswith("cloudshift_")]
        if own:
            raise MigrateError("properties may not set the module's own %s" % ", ".join(sorted(own)))
        if params["rate_limit"] < 0 or params["timeout"] <= 0 or params["image_size_cap"] <= 0:
            raise MigrateError("rate_limit must be >= 0, timeout and image_size_cap > 0")
        progress_dir = os.path.dirname(params["progress_file"] or "")
        if progress_dir and not os.path.isdir(progress_dir):
            raise MigrateError("progress_file's directory %s does not exist" % progress_dir)
        try:
            source = Source(params["path"])
        except SourceError as exc:
            raise MigrateError(str(exc))
        # Authenticate while the disk is mapped; a bad cloud or password stops the mapping at once.
        connecting = BackgroundCall(lambda: self.conn)
        streamer = Streamer(self, params)
        try:
            plan = streamer.prepare(source, params["name"], mode, check=connecting.check)
            if params["archive_dir"]:
                if params["archive_buffer_mib"] <= 0:
                    raise MigrateError("archive_buffer_mib must be > 0")
                where = archive.paths(params["archive_dir"], streamer.archive_name())
                if not os.path.exists(where["data"]):
                    archive.check_room(params["archive_dir"],
                                       plan.disk_map.data_bytes if plan.disk_map is not None else source.size)
            glance = Glance(connecting.result(), timeout=min(params["timeout"], 600))
            return streamer.execute(glance)
        except (GlanceError, SourceError, SourceReadError) as exc:
            raise MigrateError(str(exc))


def main():
    VolumeStreamToImage.main()


if __name__ == "__main__":
    main()
