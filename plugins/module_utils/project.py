# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A project's volumes and the operator's selection of them (migrate_project's gather)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

GIB = 1024 ** 3
MOVABLE = ("available", "in-use")


def describe(volume):
    """The facts of a volume the migration needs (plain data)."""
    return dict(
        id=volume.id, name=volume.name or "", size=int(volume.size or 0), status=volume.status,
        volume_type=volume.volume_type, bootable=str(volume.is_bootable).lower() == "true",
        attachments=[a.get("server_id") for a in (volume.attachments or [])],
        metadata=dict(volume.metadata or {}), availability_zone=volume.availability_zone,
        encrypted=bool(getattr(volume, "is_encrypted", False)),
    )


def select(volumes, names=None, metadata=None, everything=False):
    """``(selected, problems)``: by id or name (``names``), by metadata (every pair matches), or all.

    Volumes the migration made itself (metadata ``cloudshift_migration_id``) are never selected.
    """
    own = [v for v in volumes if "cloudshift_migration_id" not in v["metadata"]]
    problems = []
    if everything:
        selected = own
    elif names:
        selected = []
        for wanted in names:
            found = [v for v in own if v["id"] == wanted] or [v for v in own if v["name"] == wanted]
            if not found:
                problems.append("no volume %s in the project" % wanted)
            elif len(found) > 1:
                problems.append("%d volumes are called %s: give their ids (%s)" % (
                    len(found), wanted, ", ".join(v["id"] for v in found)))
            elif found[0] not in selected:
                selected.append(found[0])
    else:
        selected = [v for v in own if all(v["metadata"].get(str(k)) == str(val) for k, val in metadata.items())]
        if not selected:
            problems.append("no volume has the metadata %s" % ", ".join("%s=%s" % i for i in sorted(metadata.items())))
    for volume in selected:
        if volume["status"] not in MOVABLE:
            problems.append("volume %s (%s) is %s: only available or in-use volumes can be moved" % (
                volume["name"] or volume["id"], volume["id"], volume["status"]))
    return selected, problems


def plan(selected, rate_mib_s):
    total = sum(v["size"] for v in selected) * GIB
    return dict(count=len(selected), total_bytes=total,
                estimate_seconds=round(total / (rate_mib_s * 1024 * 1024), 1) if rate_mib_s > 0 else None)


def check_selection_args(names, metadata, everything):
    given = [bool(names), bool(metadata), bool(everything)]
    if sum(given) != 1:
        raise MigrateError("select the volumes one way: volumes (ids or names), volume_metadata, or all_volumes=true")
