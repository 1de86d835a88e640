# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EBS snapshots copied to another region, in parallel within AWS's limits.

``EbsCopier`` does the work of ``ebs_cross_region_copy``:

1. resolve the request (instances -> their EBS volumes, volumes, snapshots) and
   refuse bad input before anything changes (unknown ids, encrypted data without
   a destination KMS key, a key that does not exist, volumes or snapshots in error);
2. find what an earlier run made: everything it creates carries the tags
   ``cloudshift:migration-id``, ``cloudshift:role`` and the source's id, so a
   re-run (also after a crash) reuses it and copies nothing twice;
3. snapshot the volumes (retrying AWS's per-volume pending limit), then copy each
   snapshot as soon as it is ``completed`` with at most ``max_concurrent`` copies
   in flight, backing off with jitter on ``ResourceLimitExceeded`` and
   throttling; one DescribeSnapshots call per region and round, at an interval
   that grows with the age of what is pending (a twentieth of it, 0.2 s to 30 s;
   once a copy finished in D seconds, younger ones are not looked at before 0.9 D)
   instead of a fixed 15 s;
4. optionally create volumes from the copies and register AMIs for root volumes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import concurrent.futures
import csv
import io
import os
import re
import tempfile
import time

from ansible_collections.cloudshift.migrate.plugins.module_utils.aws import (
    BUSY_CODES,
    error_code,
    jittered_backoff,
)
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

TAG_MIGRATION = "cloudshift:migration-id"
TAG_ROLE = "cloudshift:role"
TAG_REGION = "cloudshift:source-region"
TAG_INSTANCE = "cloudshift:source-instance"
TAG_VOLUME = "cloudshift:source-volume"
TAG_SNAPSHOT = "cloudshift:source-snapshot"
GIB = 1024 ** 3
POLL_MIN = 0.2
POLL_MAX = 30.0
POLL_FRACTION = 0.05
NOT_FOUND = {
    "InvalidInstanceID.NotFound": "unknown instance", "InvalidInstanceID.Malformed": "malformed instance id",
    "InvalidVolume.NotFound": "unknown volume", "InvalidVolumeID.Malformed": "malformed volume id",
    "InvalidSnapshot.NotFound": "unknown snapshot", "InvalidSnapshotID.Malformed": "malformed snapshot id",
    "InvalidParameterValue": "invalid id",
}
CSV_FIELDS = (
    "source_region", "source_instance", "device", "root", "source_volume", "source_snapshot",
    "destination_region", "copy_snapshot", "destination_volume", "image", "size_gib", "encrypted", "kms_key_id",
)


class Item:
    """One source volume (or given snapshot) on its way to the destination region."""

    def __init__(self, volume_id=None, snapshot_id=None, instance_id=None, device=None, root=False):
        self.volume_id = volume_id
        self.instance_id = instance_id
        self.device = device
        self.root = root
        self.volume = {}
        self.snapshot_id = snapshot_id
        self.snapshot_state = None
        self.snapshot_created = False
        self.copy_id = None
        self.copy_state = None
        self.copy_created = False
        self.copy_started = None
        self.copy_seconds = None
        self.pending_since = None
        self.new_volume_id = None
        self.size_gib = None
        self.encrypted = False
        self.availability_zone = None

    @property
    def source_id(self):
        return self.volume_id or self.snapshot_id


def same_device(name, other):
    """True when two device names are the same disk (/dev/sda1 and /dev/xvda: Xen's renaming)."""
    def disk(value):
        value = re.sub(r"^/dev/", "", value or "")
        value = re.sub(r"^(xvd|sd|hd|vd)", "", value)
        return re.sub(r"\d+$", "", value)

    return bool(name and other) and (name == other or disk(name) == disk(other))


def _tags(mapping):
    return [{"Key": key, "Value": str(value)} for key, value in sorted(mapping.items())]


def _tag_dict(resource):
    return dict((tag["Key"], tag["Value"]) for tag in resource.get("Tags") or [])


class EbsCopier:
    def __init__(self, module, src, dst, kms=None, sleep=time.sleep, clock=time.monotonic):
        self.module = module
        self.p = module.params
        self.src = src
        self.dst = dst
        self.kms = kms
        self.sleep = sleep
        self.clock = clock
        self.migration_id = self.p["migration_id"]
        self.src_region = self.p["region"]
        self.dst_region = self.p["destination_region"]
        self.items = []
        self.instances = {}
        self.images = {}
        self.kms_key_arn = None
        self.retries = 0
        self.snapshots_made = 0
        self.copies_made = 0

    # -- helpers ----------------------------------------------------------------

    def base_tags(self, role, **sources):
        tags = dict(self.p.get("tags") or {})
        tags.update({TAG_MIGRATION: self.migration_id, TAG_ROLE: role, TAG_REGION: self.src_region})
        for key, value in sources.items():
            if value:
                tags["cloudshift:source-" + key] = value
        return tags

    def _describe(self, what, ids, call, key):
        try:
            return call()[key]
        except Exception as exc:  # pylint: disable=broad-except
            code = error_code(exc)
            if code in NOT_FOUND:
                message = exc.response.get("Error", {}).get("Message", "")
                raise MigrateError("%s ids in %s: %s (AWS: %s)" % (
                    NOT_FOUND[code], self.src_region, ", ".join(ids), message), error_code=code)
            raise

    def _find(self, client, api, key, role, extra_filters=None, owners=True):
        """Everything of this migration with this role, by tag (paginated)."""
        filters = [{"Name": "tag:%s" % TAG_MIGRATION, "Values": [self.migration_id]},
                   {"Name": "tag:%s" % TAG_ROLE, "Values": [role]}] + (extra_filters or [])
        kwargs = dict(Filters=filters)
        if owners:
            kwargs["OwnerIds" if api == "describe_snapshots" else "Owners"] = ["self"]
        found = []
        for page in client.get_paginator(api).paginate(**kwargs):
            found.extend(page[key])
        return found

    # -- 1. what was asked ----------------------------------------------------------

    def gather(self):
        p = self.p
        instance_ids = p.get("instances") or []
        if instance_ids:
            reservations = self._describe("instance", instance_ids,
                                          lambda: self.src.describe_instances(InstanceIds=instance_ids), "Reservations")
            for reservation in reservations:
                for instance in reservation["Instances"]:
                    self._add_instance(instance)
        seen = set(item.volume_id for item in self.items)
        for volume_id in p.get("volumes") or []:
            if volume_id not in seen:
                self.items.append(Item(volume_id=volume_id))
                seen.add(volume_id)
        volume_ids = [item.volume_id for item in self.items if item.volume_id]
        if volume_ids:
            volumes = self._describe("volume", volume_ids,
                                     lambda: self.src.describe_volumes(VolumeIds=volume_ids), "Volumes")
            by_id = dict((volume["VolumeId"], volume) for volume in volumes)
            for item in self.items:
                if item.volume_id:
                    self._set_volume(item, by_id[item.volume_id])
        snapshot_ids = [sid for sid in p.get("snapshots") or [] if sid not in set(i.snapshot_id for i in self.items)]
        if snapshot_ids:
            snapshots = self._describe("snapshot", snapshot_ids,
                                       lambda: self.src.describe_snapshots(SnapshotIds=snapshot_ids), "Snapshots")
            for snapshot in snapshots:
                item = Item(snapshot_id=snapshot["SnapshotId"])
                item.snapshot_state = snapshot["State"]
                item.size_gib = snapshot.get("VolumeSize")
                item.encrypted = bool(snapshot.get("Encrypted"))
                self.items.append(item)
        if not self.items:
            raise MigrateError("nothing to copy: give instances, volumes or snapshots (the instances have no EBS volumes)")

    def _add_instance(self, instance):
        instance_id = instance["InstanceId"]
        root_device = instance.get("RootDeviceName")
        volumes = []
        for mapping in instance.get("BlockDeviceMappings") or []:
            ebs = mapping.get("Ebs")
            if not ebs:
                continue
            item = Item(volume_id=ebs["VolumeId"], instance_id=instance_id, device=mapping["DeviceName"],
                        root=mapping["DeviceName"] == root_device)
            if not any(mapping.get("DeviceName") == root_device for mapping in instance["BlockDeviceMappings"]):
                item.root = same_device(mapping["DeviceName"], root_device)
            item.volume["DeleteOnTermination"] = ebs.get("DeleteOnTermination")
            self.items.append(item)
            volumes.append(item)
        tags = _tag_dict(instance)
        self.instances[instance_id] = dict(
            instance_id=instance_id,
            name=tags.get("Name", instance_id),
            instance_type=instance.get("InstanceType"),
            subnet_id=instance.get("SubnetId"),
            vpc_id=instance.get("VpcId"),
            availability_zone=(instance.get("Placement") or {}).get("AvailabilityZone"),
            security_group_ids=[group["GroupId"] for group in instance.get("SecurityGroups") or []],
            key_name=instance.get("KeyName"),
            private_ip_address=instance.get("PrivateIpAddress"),
            root_device_name=root_device,
            architecture=instance.get("Architecture") or "x86_64",
            ena_support=bool(instance.get("EnaSupport")),
            virtualization_type=instance.get("VirtualizationType") or "hvm",
            state=(instance.get("State") or {}).get("Name"),
            tags=dict((k, v) for k, v in tags.items() if not k.startswith(("aws:", "cloudshift:"))),
        )

    def _set_volume(self, item, volume):
        delete_on_termination = item.volume.get("DeleteOnTermination")
        item.volume = dict(volume)
        item.volume["DeleteOnTermination"] = delete_on_termination
        item.size_gib = volume.get("Size")
        item.encrypted = bool(volume.get("Encrypted"))
        item.availability_zone = volume.get("AvailabilityZone")
        if volume.get("State") == "error":
            raise MigrateError("volume %s is in state error: nothing to copy from it" % item.volume_id)

    # -- 2. refuse bad input --------------------------------------------------------

    def validate(self):
        key = self.p.get("kms_key_id")
        # snapshot_only makes no copies: the key matters to the call that copies
        encrypted = [item.source_id for item in self.items if item.encrypted and not self.p.get("snapshot_only")]
        if encrypted and not key:
            raise MigrateError(
                "%s %s encrypted: give kms_key_id, a KMS key in %s (keys are regional, the source's key "
                "cannot encrypt the copies)" % (", ".join(encrypted), "is" if len(encrypted) == 1 else "are",
                                                self.dst_region))
        if key:
            try:
                metadata = self.kms.describe_key(KeyId=key)["KeyMetadata"]
            except Exception as exc:  # pylint: disable=broad-except
                if error_code(exc) not in ("NotFoundException", "InvalidArnException"):
                    raise
                if not self.module.check_mode:
                    raise MigrateError("kms_key_id %s: no such KMS key in %s" % (key, self.dst_region))
                # a plan may name a key that an earlier phase of the same run creates
                self.module.warn("kms_key_id %s does not exist in %s yet: it must when the copies run" % (
                    key, self.dst_region))
                return
            if metadata.get("KeyState") not in (None, "Enabled"):
                raise MigrateError("kms_key_id %s is %s, not Enabled" % (key, metadata.get("KeyState")))
            self.kms_key_arn = metadata["Arn"]
        errors = [item.snapshot_id for item in self.items if item.snapshot_state == "error"]
        if errors:
            raise MigrateError("snapshot %s is in state error: nothing to copy from it" % ", ".join(errors))
        if self.p.get("register_images"):
            without_root = [iid for iid in self.instances if not any(i.root for i in self.items if i.instance_id == iid)]
            if without_root:
                raise MigrateError("instance %s has no EBS root volume: no AMI can be registered" % ", ".join(without_root))

    # -- 3. what an earlier run made ------------------------------------------------

    def find_existing(self):
        by_volume = {}
        for snapshot in self._find(self.src, "describe_snapshots", "Snapshots", "snapshot"):
            if snapshot["State"] != "error":
                by_volume.setdefault(_tag_dict(snapshot).get(TAG_VOLUME), snapshot)
        for item in self.items:
            if item.volume_id and not item.snapshot_id and item.volume_id in by_volume:
                snapshot = by_volume[item.volume_id]
                item.snapshot_id = snapshot["SnapshotId"]
                item.snapshot_state = snapshot["State"]
        copies = {}
        for snapshot in self._find(self.dst, "describe_snapshots", "Snapshots", "copy",
                                   [{"Name": "tag:%s" % TAG_REGION, "Values": [self.src_region]}]):
            if snapshot["State"] != "error":
                copies.setdefault(_tag_dict(snapshot).get(TAG_SNAPSHOT), snapshot)
        for item in self.items:
            if item.snapshot_id in copies:
                item.copy_id = copies[item.snapshot_id]["SnapshotId"]
                item.copy_state = copies[item.snapshot_id]["State"]
        if self.p.get("create_volumes"):
            volumes = dict((_tag_dict(v).get(TAG_VOLUME) or _tag_dict(v).get(TAG_SNAPSHOT), v)
                           for v in self._find(self.dst, "describe_volumes", "Volumes", "volume", owners=False))
            for item in self.items:
                if item.source_id in volumes:
                    item.new_volume_id = volumes[item.source_id]["VolumeId"]
        if self.p.get("register_images"):
            for image in self._find(self.dst, "describe_images", "Images", "image"):
                self.images[_tag_dict(image).get(TAG_INSTANCE)] = image["ImageId"]
            for instance_id in self.instances:
                if instance_id not in self.images:
                    found = self.dst.describe_images(
                        Owners=["self"], Filters=[{"Name": "name", "Values": [self.image_name(instance_id)]}])["Images"]
                    if found:  # registered, then the run died before it was tagged
                        self.images[instance_id] = found[0]["ImageId"]

    def image_name(self, instance_id):
        name = "cloudshift-%s-%s" % (self.migration_id, self.instances[instance_id]["name"])
        return "".join(c if c.isalnum() or c in "()[] ./-'@_" else "_" for c in name)[:128]

    # -- the plan -------------------------------------------------------------------

    def plan(self):
        """Note every change to make; True when they should be made (not check mode)."""
        act = not self.module.check_mode
        for item in self.items:
            if not item.snapshot_id:
                self.module.plan("create a snapshot of %s in %s" % (item.volume_id, self.src_region))
        for item in self.items:
            if not item.copy_id:
                key = " encrypted with %s" % self.p["kms_key_id"] if self.p.get("kms_key_id") else ""
                self.module.plan("copy the snapshot of %s from %s to %s%s" % (
                    item.source_id, self.src_region, self.dst_region, key))
        if self.p.get("create_volumes"):
            for item in self.items:
                if not item.new_volume_id:
                    self.module.plan("create a volume from the copy of %s in %s" % (item.source_id, self.zone(item)))
        if self.p.get("register_images"):
            for instance_id in self.instances:
                if instance_id not in self.images:
                    self.module.plan("register an AMI %s in %s from the copy of %s's root volume" % (
                        self.image_name(instance_id), self.dst_region, instance_id))
        return act

    def zone(self, item):
        zones = self.p.get("availability_zone_map") or {}
        if item.availability_zone in zones:
            return zones[item.availability_zone]
        if self.p.get("availability_zone"):
            return self.p["availability_zone"]
        suffix = (item.availability_zone or "a")[-1]
        return self.dst_region + (suffix if suffix.isalpha() else "a")

    # -- 4. the work ----------------------------------------------------------------

    def run(self):
        self.gather()
        self.validate()
        self.find_existing()
        if not self.plan():
            return
        started = self.clock()
        self.deadline = started + self.p["wait_timeout"]
        self.create_snapshots()
        if self.p.get("snapshot_only"):
            return
        self.copy_all()
        if self.p.get("create_volumes"):
            self.create_volumes()
        if self.p.get("register_images"):
            self.register_images()

    def create_snapshots(self):
        todo = [item for item in self.items if not item.snapshot_id]

        def create(item):
            attempt = 0
            while True:
                try:
                    tags = self.base_tags("snapshot", volume=item.volume_id, instance=item.instance_id)
                    snapshot = self.src.create_snapshot(
                        VolumeId=item.volume_id, Description="cloudshift %s: %s" % (self.migration_id, item.volume_id),
                        TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tags(tags)}])
                    return item, snapshot
                except Exception as exc:  # pylint: disable=broad-except
                    if error_code(exc) not in BUSY_CODES or self.clock() > self.deadline:
                        raise
                    self.retries += 1
                    self.sleep(jittered_backoff(attempt))
                    attempt += 1

        if not todo:
            return
        with concurrent.futures.ThreadPoolExecutor(min(10, len(todo))) as pool:
            for item, snapshot in pool.map(create, todo):
                item.snapshot_id = snapshot["SnapshotId"]
                item.snapshot_state = snapshot["State"]
                item.snapshot_created = True
                item.pending_since = self.clock()
                self.snapshots_made += 1
                self.module.record("aws_snapshot", item.volume_id, destination_id=item.snapshot_id, phase="snapshot",
                                   status="done", bytes=(item.size_gib or 0) * GIB,
                                   data=dict(region=self.src_region, instance=item.instance_id, device=item.device))

    def _refresh(self, client, region, items, id_attr, state_attr):
        ids = [getattr(item, id_attr) for item in items]
        if not ids:
            return
        states = {}
        for page in client.get_paginator("describe_snapshots").paginate(SnapshotIds=ids):
            for snapshot in page["Snapshots"]:
                states[snapshot["SnapshotId"]] = snapshot
        for item in items:
            snapshot = states.get(getattr(item, id_attr))
            if snapshot is None:
                raise MigrateError("snapshot %s disappeared from %s" % (getattr(item, id_attr), region))
            if snapshot["State"] == "error":
                raise MigrateError("snapshot %s in %s failed: %s" % (
                    snapshot["SnapshotId"], region, snapshot.get("StateMessage") or "state error"))
            setattr(item, state_attr, snapshot["State"])

    def copy_all(self):
        cap = self.p["max_concurrent"]
        busy_until = 0.0
        attempt = 0
        while True:
            now = self.clock()
            waiting = [i for i in self.items if not i.copy_id and i.snapshot_state != "completed"]
            copying = [i for i in self.items if i.copy_id and i.copy_state != "completed"]
            self._refresh(self.src, self.src_region, waiting, "snapshot_id", "snapshot_state")
            self._refresh(self.dst, self.dst_region, copying, "copy_id", "copy_state")
            now = self.clock()
            for item in copying:
                if item.copy_state == "completed":
                    if item.copy_started is not None:
                        item.copy_seconds = round(now - item.copy_started, 3)
                    self._record_copy(item)
            in_flight = sum(1 for i in self.items if i.copy_id and i.copy_state != "completed")
            ready = [i for i in self.items if not i.copy_id and i.snapshot_state == "completed"]
            if ready and now >= busy_until:
                for item in ready:
                    if in_flight >= cap:
                        break
                    try:
                        self._copy(item)
                    except Exception as exc:  # pylint: disable=broad-except
                        if error_code(exc) not in BUSY_CODES:
                            raise
                        # AWS's own cap (other copies of the account count too) or throttling:
                        # wait with jitter, then try again.
                        self.retries += 1
                        busy_until = self.clock() + jittered_backoff(attempt, base=0.5)
                        attempt += 1
                        break
                    attempt = 0
                    in_flight += 1
            if all(i.copy_state == "completed" for i in self.items):
                return
            if self.clock() > self.deadline:
                left = [i.source_id for i in self.items if i.copy_state != "completed"]
                raise MigrateError(
                    "timed out after %ss waiting for the copies of %s; re-run to continue (they are tagged)"
                    % (self.p["wait_timeout"], ", ".join(left)), pending=left)
            self.sleep(self._interval(busy_until))

    def _interval(self, busy_until):
        """Seconds to the next round: a twentieth of the age of the oldest work in flight
        (the first to finish), 0.2 s to 30 s; sooner when a backoff ends."""
        now = self.clock()
        in_flight = [i for i in self.items if (i.copy_id and i.copy_state != "completed")
                     or (not i.copy_id and i.snapshot_state != "completed")]
        for item in in_flight:
            if item.pending_since is None:
                item.pending_since = now
        if in_flight:
            oldest = min(item.pending_since for item in in_flight)
            age = now - oldest
            interval = min(POLL_MAX, max(POLL_MIN, POLL_FRACTION * age))
            # Copies of one run take about as long as each other: once one finished in D
            # seconds, nothing younger than 0.9 D needs looking at.
            seen = [i.copy_seconds for i in self.items if i.copy_seconds]
            if seen and age < 0.9 * min(seen):
                interval = min(POLL_MAX, max(interval, 0.9 * min(seen) - age))
        else:
            interval = POLL_MAX
        if busy_until > now:
            interval = min(interval, max(0.05, busy_until - now))
        return interval

    def _copy(self, item):
        tags = self.base_tags("copy", snapshot=item.snapshot_id, volume=item.volume_id, instance=item.instance_id)
        kwargs = dict(SourceSnapshotId=item.snapshot_id, SourceRegion=self.src_region,
                      Description="cloudshift %s: %s from %s" % (self.migration_id, item.source_id, self.src_region),
                      TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tags(tags)}])
        if self.kms_key_arn:
            kwargs.update(Encrypted=True, KmsKeyId=self.kms_key_arn)
        copy = self.dst.copy_snapshot(**kwargs)
        item.copy_id = copy["SnapshotId"]
        item.copy_state = "pending"
        item.copy_created = True
        item.copy_started = self.clock()
        item.pending_since = item.copy_started
        self.copies_made += 1
        self.module.record("aws_copy", item.snapshot_id, destination_id=item.copy_id, phase="copy", status="running",
                           bytes=(item.size_gib or 0) * GIB,
                           data=dict(source_region=self.src_region, destination_region=self.dst_region,
                                     volume=item.volume_id, instance=item.instance_id))

    def _record_copy(self, item):
        self.module.record("aws_copy", item.snapshot_id, destination_id=item.copy_id, phase="copy", status="done",
                           bytes=(item.size_gib or 0) * GIB, seconds=item.copy_seconds,
                           data=dict(source_region=self.src_region, destination_region=self.dst_region,
                                     volume=item.volume_id, instance=item.instance_id))

    def create_volumes(self):
        for item in self.items:
            if item.new_volume_id:
                continue
            kwargs = dict(SnapshotId=item.copy_id, AvailabilityZone=self.zone(item),
                          VolumeType=item.volume.get("VolumeType") or "gp3",
                          TagSpecifications=[{"ResourceType": "volume", "Tags": _tags(self.base_tags(
                              "volume", volume=item.volume_id, snapshot=item.snapshot_id, instance=item.instance_id))}])
            for key in ("Iops", "Throughput"):
                if item.volume.get(key) and kwargs["VolumeType"] in ("io1", "io2", "gp3"):
                    kwargs[key] = item.volume[key]
            if self.kms_key_arn:
                kwargs.update(Encrypted=True, KmsKeyId=self.kms_key_arn)
            item.new_volume_id = self.dst.create_volume(**kwargs)["VolumeId"]
            self.module.record("aws_volume", item.source_id, destination_id=item.new_volume_id, phase="volume",
                               status="done", data=dict(availability_zone=kwargs["AvailabilityZone"], copy=item.copy_id))

    def register_images(self):
        for instance_id, instance in self.instances.items():
            if instance_id in self.images:
                continue
            root = [item for item in self.items if item.instance_id == instance_id and item.root][0]
            ebs = dict(SnapshotId=root.copy_id, DeleteOnTermination=True,
                       VolumeType=root.volume.get("VolumeType") or "gp3")
            if root.size_gib:
                ebs["VolumeSize"] = root.size_gib
            image_id = self.dst.register_image(
                Name=self.image_name(instance_id), Description="cloudshift %s: %s from %s" % (
                    self.migration_id, instance_id, self.src_region),
                RootDeviceName=instance["root_device_name"], Architecture=instance["architecture"],
                VirtualizationType=instance["virtualization_type"], EnaSupport=instance["ena_support"],
                BlockDeviceMappings=[dict(DeviceName=instance["root_device_name"], Ebs=ebs)])["ImageId"]
            self.dst.create_tags(Resources=[image_id], Tags=_tags(self.base_tags(
                "image", instance=instance_id, snapshot=root.snapshot_id, volume=root.volume_id)))
            self.images[instance_id] = image_id
            self.module.record("aws_image", instance_id, destination_id=image_id, phase="image", status="done",
                               data=dict(region=self.dst_region, copy=root.copy_id, name=self.image_name(instance_id)))

    # -- results --------------------------------------------------------------------

    def mapping(self):
        rows = []
        for item in self.items:
            rows.append(dict(
                source_region=self.src_region, source_instance=item.instance_id, device=item.device, root=item.root,
                source_volume=item.volume_id, source_snapshot=item.snapshot_id,
                destination_region=self.dst_region, copy_snapshot=item.copy_id,
                destination_volume=item.new_volume_id,
                image=self.images.get(item.instance_id) if item.root else None,
                size_gib=item.size_gib, encrypted=bool(item.encrypted or self.kms_key_arn),
                kms_key_id=self.kms_key_arn,
                volume_type=item.volume.get("VolumeType"), delete_on_termination=item.volume.get("DeleteOnTermination"),
                copy_state=item.copy_state, copy_seconds=item.copy_seconds,
            ))
        return rows

    def instances_result(self):
        result = {}
        for instance_id, instance in self.instances.items():
            entry = dict(instance)
            entry["image"] = self.images.get(instance_id)
            entry["volumes"] = [row for row in self.mapping() if row["source_instance"] == instance_id]
            result[instance_id] = entry
        return result


def write_csv(path, rows):
    """Write the mapping as CSV, atomically; False when the file already says the same."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(dict((k, "" if row.get(k) is None else row.get(k)) for k in CSV_FIELDS))
    text = out.getvalue()
    path = os.path.expanduser(path)
    if os.path.exists(path):
        with open(path) as handle:
            if handle.read() == text:
                return False
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".mapping.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.rename(tmp, path)
    return True
