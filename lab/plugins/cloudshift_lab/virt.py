"""A fake Nova virt driver with real root disks.

Nova's FakeDriverWithoutFakeNodes keeps its node identity across restarts but
has no disks: createImage of an image-booted server would leave an empty image.
Volume snapshots of attached
NFS volumes are "assisted" by the hypervisor: Cinder writes the qcow2 overlay
and waits for Nova; on delete the hypervisor merges the files. This driver does
both with qemu-img (no guest writes to redirect).

This driver copies the boot image into <instances_path>/<uuid>/disk at spawn
and uploads that file on snapshot, so ephemeral servers carry real bytes.
"""

import hashlib
import json
import os
import shutil
import subprocess

from nova.compute import task_states
from nova import conf
from nova.image import glance
from nova import objects
from nova.virt import fake
from nova.volume import cinder

CONF = conf.CONF


def disk_path(instance):
    return os.path.join(CONF.instances_path, instance.uuid, "disk")


class LabDriver(fake.FakeDriverWithoutFakeNodes):

    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        super().spawn(context, instance, image_meta, injected_files, admin_password,
                      allocations, network_info=network_info,
                      block_device_info=block_device_info, power_on=power_on,
                      accel_info=accel_info)
        if instance.image_ref and not os.path.exists(disk_path(instance)):
            os.makedirs(os.path.dirname(disk_path(instance)), exist_ok=True)
            partial = disk_path(instance) + ".part"
            glance.API().download(context, instance.image_ref, dest_path=partial)
            os.replace(partial, disk_path(instance))

    def snapshot(self, context, instance, image_id, update_task_state):
        path = disk_path(instance)
        if not os.path.exists(path):
            return super().snapshot(context, instance, image_id, update_task_state)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        metadata = {"disk_format": "raw", "container_format": "bare"}
        with open(path, "rb") as data:
            glance.API().update(context, image_id, metadata, data=data, purge_props=False)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        super().destroy(context, instance, network_info, block_device_info,
                        destroy_disks, destroy_secrets)
        if destroy_disks:
            shutil.rmtree(os.path.dirname(disk_path(instance)), ignore_errors=True)

    # -- assisted volume snapshots (Cinder's NFS driver, attached volumes) ---

    def volume_snapshot_create(self, context, instance, volume_id, create_info):
        # Cinder has created the overlay; a real hypervisor would now point the
        # guest at it. Report Nova's part as done.
        cinder.API().update_snapshot_status(context, create_info["snapshot_id"], "creating")

    def volume_snapshot_delete(self, context, instance, volume_id, snapshot_id, delete_info):
        try:
            directory = self._volume_dir(context, instance, volume_id)
            # Cinder's info file names the file the guest writes to.
            with open(os.path.join(directory, f"volume-{volume_id}.info")) as info:
                active = os.path.join(directory, json.load(info)["active"])
            if delete_info.get("merge_target_file") is None:
                # Pull the base into the active file: it no longer needs it.
                new_base = delete_info.get("file_to_merge")
                backing = ["-b", os.path.join(directory, new_base), "-F", "qcow2"] \
                    if new_base else ["-b", ""]
                subprocess.run(["qemu-img", "rebase", "-f", "qcow2", *backing, active],
                               check=True, capture_output=True)
            else:
                subprocess.run(["qemu-img", "commit", "-f", "qcow2",
                                os.path.join(directory, delete_info["file_to_merge"])],
                               check=True, capture_output=True)
        except Exception:
            cinder.API().update_snapshot_status(context, snapshot_id, "error_deleting")
            raise
        cinder.API().update_snapshot_status(context, snapshot_id, "deleting")

    @staticmethod
    def _volume_dir(context, instance, volume_id):
        bdm = objects.BlockDeviceMapping.get_by_volume_and_instance(
            context, volume_id, instance.uuid)
        data = json.loads(bdm.connection_info)["data"]
        digest = hashlib.md5(data["export"].encode(), usedforsecurity=False).hexdigest()
        return os.path.join(data["mount_point_base"], digest)
