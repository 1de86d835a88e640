# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: cfn_template
short_description: A CloudFormation template that recreates copied EC2 instances in another region
version_added: 0.1.0
description:
  - Takes the RV(cloudshift.migrate.ebs_cross_region_copy#module:instances) result of
    M(cloudshift.migrate.ebs_cross_region_copy) (with O(cloudshift.migrate.ebs_cross_region_copy#module:register_images=true))
    and returns a template (a dict) with one C(AWS::EC2::Instance) per source instance - its new AMI, its type,
    its subnet and security groups as mapped, its key pair, and its data volumes created from the copies
    (C(BlockDeviceMappings) with C(SnapshotId), so they land in the instance's zone).
  - Refuses an instance whose subnet, security group or AMI has no mapping, naming what is missing.
author:
  - cloudshift.migrate engineers (@cloudshift)
positional: subnet_map, security_group_map
options:
  _input:
    description: The instances, as RV(cloudshift.migrate.ebs_cross_region_copy#module:instances) returns them.
    type: dict
    required: true
  subnet_map:
    description: Source subnet id -> destination subnet id.
    type: dict
    required: true
  security_group_map:
    description: Source security group id -> destination security group id.
    type: dict
    required: true
  key_map:
    description: Source key pair name -> destination key pair name (default the same name; null for none).
    type: dict
    default: {}
  migration_id:
    description: Tagged on every instance (C(cloudshift:migration-id)).
    type: str
  keep_private_ips:
    description: Give each instance its source private IP (the mapped subnet must have the same range).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Write the template
  ansible.builtin.copy:
    content: "{{ copied.instances | cloudshift.migrate.cfn_template(subnet_map, sg_map, migration_id='shop') | to_nice_json }}"
    dest: /tmp/shop.cfn.json
    mode: "0600"
"""

RETURN = r"""
_value:
  description: The template; its C(Outputs) give each new instance's id as C(<logical name>Id).
  type: dict
"""

NAME_RE = re.compile(r"[^A-Za-z0-9]")


def logical_name(instance):
    base = NAME_RE.sub("", instance.get("name") or "") or "Instance"
    suffix = NAME_RE.sub("", instance["instance_id"])[-8:]
    return ("I" + base[:200] + suffix)[:255]


def cfn_template(instances, subnet_map, security_group_map, key_map=None, migration_id=None, keep_private_ips=False):
    if not isinstance(instances, dict):
        raise AnsibleFilterError("cfn_template: expects the instances dict of ebs_cross_region_copy")
    key_map = key_map or {}
    missing = []
    resources, outputs = {}, {}
    for instance_id in sorted(instances):
        instance = instances[instance_id]
        subnet = subnet_map.get(instance.get("subnet_id"))
        groups = [security_group_map.get(group) for group in instance.get("security_group_ids") or []]
        if not instance.get("image"):
            missing.append("%s: no AMI (register_images)" % instance_id)
        if not subnet:
            missing.append("%s: subnet %s not mapped" % (instance_id, instance.get("subnet_id")))
        if None in groups:
            unmapped = [g for g in instance.get("security_group_ids") if g not in security_group_map]
            missing.append("%s: security groups %s not mapped" % (instance_id, ", ".join(unmapped)))
        data = [volume for volume in instance.get("volumes") or [] if not volume.get("root")]
        if any(not volume.get("copy_snapshot") for volume in data):
            missing.append("%s: a data volume has no copy" % instance_id)
        if missing:
            continue
        mappings = []
        root = [volume for volume in instance.get("volumes") or [] if volume.get("root")]
        if root:
            # The root volume comes from the AMI; naming it pins the source's size and type.
            ebs = {"DeleteOnTermination": bool(root[0].get("delete_on_termination", True))}
            if root[0].get("size_gib"):
                ebs["VolumeSize"] = root[0]["size_gib"]
            if root[0].get("volume_type"):
                ebs["VolumeType"] = root[0]["volume_type"]
            mappings.append({"DeviceName": instance.get("root_device_name") or root[0]["device"], "Ebs": ebs})
        for volume in sorted(data, key=lambda v: v["device"]):
            ebs = {"SnapshotId": volume["copy_snapshot"],
                   "DeleteOnTermination": bool(volume.get("delete_on_termination"))}
            if volume.get("size_gib"):
                ebs["VolumeSize"] = volume["size_gib"]
            if volume.get("volume_type"):
                ebs["VolumeType"] = volume["volume_type"]
            mappings.append({"DeviceName": volume["device"], "Ebs": ebs})
        tags = dict(instance.get("tags") or {})
        tags["cloudshift:source-instance"] = instance_id
        if migration_id:
            tags["cloudshift:migration-id"] = migration_id
        properties = {
            "ImageId": instance["image"],
            "InstanceType": instance["instance_type"],
            "SubnetId": subnet,
            "SecurityGroupIds": groups,
            "Tags": [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())],
        }
        key = key_map.get(instance.get("key_name"), instance.get("key_name"))
        if key:
            properties["KeyName"] = key
        if mappings:
            properties["BlockDeviceMappings"] = mappings
        if keep_private_ips and instance.get("private_ip_address"):
            properties["PrivateIpAddress"] = instance["private_ip_address"]
        name = logical_name(instance)
        resources[name] = {"Type": "AWS::EC2::Instance", "Properties": properties}
        outputs[name + "Id"] = {"Description": "new instance of %s (%s)" % (instance_id, instance.get("name")),
                                "Value": {"Ref": name}}
    if missing:
        raise AnsibleFilterError("cfn_template: cannot recreate - " + "; ".join(missing))
    if not resources:
        raise AnsibleFilterError("cfn_template: no instances")
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "cloudshift.migrate: instances recreated from copies%s" % (
            " (migration %s)" % migration_id if migration_id else ""),
        "Resources": resources,
        "Outputs": outputs,
    }


def ec2_sg_rules(ip_permissions, group_names=None):
    """amazon.aws.ec2_security_group rules from DescribeSecurityGroups' IpPermissions.

    A rule that names another group keeps the group's name (ec2_security_group finds it by name
    in the destination VPC); ``group_names`` maps source group ids to names.
    """
    group_names = group_names or {}
    rules = []
    for permission in ip_permissions or []:
        base = {"proto": permission.get("ip_protocol") or permission.get("IpProtocol")}
        low = permission.get("from_port", permission.get("FromPort"))
        high = permission.get("to_port", permission.get("ToPort"))
        if base["proto"] not in ("-1", -1, "all") and low is not None:
            base.update(from_port=low, to_port=high)
        cidrs = [r.get("cidr_ip") or r.get("CidrIp") for r in permission.get("ip_ranges") or permission.get("IpRanges") or []]
        cidrs6 = [r.get("cidr_ipv6") or r.get("CidrIpv6")
                  for r in permission.get("ipv6_ranges") or permission.get("Ipv6Ranges") or []]
        if cidrs:
            rules.append(dict(base, cidr_ip=cidrs))
        if cidrs6:
            rules.append(dict(base, cidr_ipv6=cidrs6))
        for pair in permission.get("user_id_group_pairs") or permission.get("UserIdGroupPairs") or []:
            group_id = pair.get("group_id") or pair.get("GroupId")
            name = group_names.get(group_id) or pair.get("group_name") or pair.get("GroupName")
            if not name:
                raise AnsibleFilterError("ec2_sg_rules: a rule refers to group %s, whose name is unknown" % group_id)
            rules.append(dict(base, group_name=name))
    return rules


class FilterModule:
    def filters(self):
        return {"cfn_template": cfn_template, "ec2_sg_rules": ec2_sg_rules}
