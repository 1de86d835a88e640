"""A fake Nova virt driver with real root disks.

Nova's FakeDriverWithoutFakeNodes keeps its node identity across restarts but
has no disks: createImage of an image-booted server would leave an empty image.
This driver copies the boot image into <instances_path>/<uuid>/disk at spawn
and uploads that file on snapshot, so ephemeral servers carry real bytes.
"""

import os
import shutil

from nova.compute import task_states
from nova import conf
from nova.image import glance
from nova.virt import fake

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
