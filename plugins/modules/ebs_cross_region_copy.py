#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ebs_cross_region_copy
short_description: Copy EBS volumes and snapshots to another AWS region, in parallel, and make volumes or AMIs there
version_added: 0.1.0
description:
  - Snapshots the given volumes (or the EBS volumes of the given instances), copies each snapshot
    to O(destination_region) as soon as it is C(completed), with at most O(max_concurrent) copies in
    flight, and optionally creates volumes from the copies and registers an AMI per instance from
    its root volume.
  - Waits by polling that adapts to how long the work has been pending (one DescribeSnapshots call
    per region and round, from 0.2 s up to 30 s apart), not a fixed 15 s.
  - AWS's limits are respected - C(ResourceLimitExceeded) (20 copies in flight per destination
    region by default), throttling and the per-volume pending-snapshot limit are retried with
    jittered backoff until O(wait_timeout), never reported as failures.
  - Idempotent and resumable - everything it creates is tagged with C(cloudshift:migration-id),
    C(cloudshift:role) and the source's id; a re-run (also after a crash) finds it and copies nothing
    twice. Check mode returns the plan.
  - Refuses before changing anything - unknown instance, volume or snapshot ids, unknown region names,
    encrypted sources without O(kms_key_id), a key that does not exist in the destination, volumes
    or snapshots in state C(error), missing credentials.
  - The source is never changed except for the new snapshots (removed by the cleanup phase).
  - O(migration_id) is required here - the tags that make re-runs safe carry it.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  region:
    description:
      - The source region.
    type: str
    required: true
    aliases: [source_region, aws_region, ec2_region]
  destination_region:
    description:
      - The region to copy to.
    type: str
    required: true
  instances:
    description:
      - Instance ids whose EBS volumes (root and data) are copied. Their details (type, subnet,
        security groups, key, root device) are returned in RV(instances) for the template that
        recreates them.
    type: list
    elements: str
    default: []
  volumes:
    description:
      - Volume ids to snapshot and copy.
    type: list
    elements: str
    default: []
  snapshots:
    description:
      - Existing snapshot ids to copy (a pending one is waited for).
    type: list
    elements: str
    default: []
  kms_key_id:
    description:
      - A KMS key in O(destination_region) (id, ARN or C(alias/...)) that encrypts the copies.
        Required when a source is encrypted - KMS keys are regional.
    type: str
  tags:
    description:
      - Tags added to everything the module creates (besides its own C(cloudshift:*) tags).
    type: dict
    default: {}
  max_concurrent:
    description:
      - Copies in flight at once, at most O(copy_quota). More than the account allows only costs time - AWS
        refuses the surplus (C(ResourceLimitExceeded)) and the module backs off.
    type: int
    default: 20
  copy_quota:
    description:
      - The concurrent snapshot copies the account may have in flight per destination region - AWS's default is 20;
        give the raised value when Service Quotas granted more. O(max_concurrent) above it is refused.
    type: int
    default: 20
  wait_timeout:
    description:
      - Seconds to wait for snapshots and copies. On timeout the module fails; a re-run continues.
    type: int
    default: 7200
  snapshot_only:
    description:
      - Only create (or find) the source snapshots and return at once, without waiting for them -
        for the moment an instance's filesystems are frozen. A later call copies them.
    type: bool
    default: false
  create_volumes:
    description:
      - Create a volume from each copy in the destination.
    type: bool
    default: false
  availability_zone:
    description:
      - The destination availability zone for O(create_volumes). Default the source zone's letter
        in the destination region.
    type: str
  availability_zone_map:
    description:
      - Source zone -> destination zone, for O(create_volumes).
    type: dict
    default: {}
  register_images:
    description:
      - Register an AMI per instance of O(instances) from the copy of its root volume (named
        C(cloudshift-<migration_id>-<instance name>)).
    type: bool
    default: false
  mapping_csv:
    description:
      - Write the mapping (source instance, volume, snapshot -> copy, volume, AMI) as CSV to this path,
        on the host the module runs on.
    type: path
extends_documentation_fragment:
  - cloudshift.migrate.aws_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
notes:
  - Tested against moto server with the lab's extension for pending states and AWS's limits; moto's
    RegisterImage is a stub, so the lab checks the request the module sends.
"""

EXAMPLES = r"""
- name: Copy two instances' volumes to Sydney, re-encrypted, with AMIs
  cloudshift.migrate.ebs_cross_region_copy:
    region: us-east-1
    destination_region: ap-southeast-2
    instances: [i-0123456789abcdef0, i-0fedcba9876543210]
    kms_key_id: alias/migration
    register_images: true
    migration_id: shop-2026-12
    mapping_csv: /var/lib/migrations/shop-2026-12.csv
  register: copied

- name: Only snapshot, while the filesystems are frozen
  cloudshift.migrate.ebs_cross_region_copy:
    region: us-east-1
    destination_region: ap-southeast-2
    volumes: [vol-0123456789abcdef0]
    snapshot_only: true
    migration_id: shop-2026-12
"""

RETURN = r"""
actions:
  description: What the module did (in check mode, would do).
  returned: always
  type: list
  elements: str
  sample: ["copy the snapshot of vol-0a1b from us-east-1 to ap-southeast-2 encrypted with alias/migration"]
mapping:
  description: One row per source volume or snapshot; ids not made yet (check mode) are null.
  returned: always
  type: list
  elements: dict
  sample:
    - source_region: us-east-1
      source_instance: i-0123456789abcdef0
      device: /dev/xvda
      root: true
      source_volume: vol-0a1b
      source_snapshot: snap-0c2d
      destination_region: ap-southeast-2
      copy_snapshot: snap-0e3f
      destination_volume: null
      image: ami-0a4b
      size_gib: 8
      encrypted: true
      kms_key_id: arn:aws:kms:ap-southeast-2:123456789012:key/...
instances:
  description: Per source instance - name, instance_type, subnet_id, vpc_id, availability_zone,
    security_group_ids, key_name, private_ip_address, root_device_name, architecture, image (the new AMI),
    tags and its volumes (rows of RV(mapping)).
  returned: always
  type: dict
snapshots_made:
  description: Source snapshots created by this run.
  returned: always
  type: int
copies_made:
  description: Copies started by this run (0 on a re-run).
  returned: always
  type: int
retries:
  description: Calls retried because AWS was at a limit or throttling.
  returned: always
  type: int
api_calls:
  description: AWS API calls made.
  returned: always
  type: int
seconds:
  description: Wall time of the call.
  returned: always
  type: float
mapping_csv:
  description: Where the CSV was written.
  returned: when O(mapping_csv) is set
  type: str
ledger_entries:
  description: Entries for the snapshots, copies, volumes and AMIs.
  returned: always
  type: list
  elements: dict
"""

import time

from ansible_collections.cloudshift.migrate.plugins.module_utils.aws import AWSMigrateModule, check_region
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.ebs_copy import EbsCopier, write_csv


class EbsCrossRegionCopy(AWSMigrateModule):
    argument_spec = dict(
        region=dict(type="str", required=True, aliases=["source_region", "aws_region", "ec2_region"]),
        destination_region=dict(type="str", required=True),
        instances=dict(type="list", elements="str", default=[]),
        volumes=dict(type="list", elements="str", default=[]),
        snapshots=dict(type="list", elements="str", default=[]),
        kms_key_id=dict(type="str", no_log=False),
        tags=dict(type="dict", default={}),
        max_concurrent=dict(type="int", default=20),
        copy_quota=dict(type="int", default=20),
        wait_timeout=dict(type="int", default=7200),
        snapshot_only=dict(type="bool", default=False),
        create_volumes=dict(type="bool", default=False),
        availability_zone=dict(type="str"),
        availability_zone_map=dict(type="dict", default={}),
        register_images=dict(type="bool", default=False),
        mapping_csv=dict(type="path"),
    )
    module_kwargs = dict(required_one_of=[("instances", "volumes", "snapshots")])

    def run(self):
        started = time.monotonic()
        p = self.params
        if not p.get("migration_id"):
            raise MigrateError("migration_id is required: it tags what the module creates so that a re-run finds it")
        check_region(p["region"], "region")
        check_region(p["destination_region"], "destination_region")
        if p["region"] == p["destination_region"]:
            raise MigrateError("region and destination_region are both %s" % p["region"])
        if p["max_concurrent"] < 1 or p["wait_timeout"] < 1 or p["copy_quota"] < 1:
            raise MigrateError("max_concurrent, copy_quota and wait_timeout must be >= 1")
        if p["max_concurrent"] > p["copy_quota"]:
            raise MigrateError("max_concurrent %d is above the account's %d concurrent copies per destination region "
                               "(copy_quota): AWS would refuse the surplus and the module would only back off - lower "
                               "it, or give copy_quota the raised quota" % (p["max_concurrent"], p["copy_quota"]))
        if p["snapshot_only"] and (p["create_volumes"] or p["register_images"] or p["snapshots"]):
            raise MigrateError("snapshot_only makes snapshots of volumes and instances only; it cannot be combined "
                               "with snapshots, create_volumes or register_images")
        bad_tags = [key for key in p["tags"] if key.startswith(("cloudshift:", "aws:"))]
        if bad_tags:
            raise MigrateError("tags may not set %s (reserved)" % ", ".join(sorted(bad_tags)))
        self.check_credentials()
        copier = EbsCopier(self, self.client("ec2", p["region"]), self.client("ec2", p["destination_region"]),
                           self.client("kms", p["destination_region"]) if p.get("kms_key_id") else None)
        try:
            copier.run()
        except MigrateError as exc:
            exc.details.setdefault("mapping", copier.mapping())
            raise
        mapping = copier.mapping()
        result = dict(mapping=mapping, instances=copier.instances_result(), snapshots_made=copier.snapshots_made,
                      copies_made=copier.copies_made, retries=copier.retries, api_calls=self.api_calls,
                      seconds=round(time.monotonic() - started, 3))
        if p.get("mapping_csv") and not self.check_mode:
            write_csv(p["mapping_csv"], mapping)
            result["mapping_csv"] = p["mapping_csv"]
        return result


def main():
    EbsCrossRegionCopy.main()


if __name__ == "__main__":
    main()
