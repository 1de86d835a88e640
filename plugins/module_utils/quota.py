# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Room left in a project's quotas, from the limits APIs any project member may read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

# need key: (service, max field, used field)
FIELDS = {
    "instances": ("compute", "maxTotalInstances", "totalInstancesUsed"),
    "cores": ("compute", "maxTotalCores", "totalCoresUsed"),
    "ram": ("compute", "maxTotalRAMSize", "totalRAMUsed"),
    "volumes": ("block_storage", "maxTotalVolumes", "totalVolumesUsed"),
    "gigabytes": ("block_storage", "maxTotalVolumeGigabytes", "totalGigabytesUsed"),
    "snapshots": ("block_storage", "maxTotalSnapshots", "totalSnapshotsUsed"),
}


def absolute_limits(conn, service):
    proxy = getattr(conn, service)
    response = proxy.get("/limits")
    if response.status_code != 200:
        raise MigrateError("cannot read the %s limits: HTTP %s" % (service, response.status_code))
    return response.json()["limits"]["absolute"]


def room(conn, need):
    """``(free, shortages)``: free units per key (None when unlimited) and what does not fit."""
    limits = {}
    free, shortages = {}, []
    for key, amount in sorted(need.items()):
        if key not in FIELDS:
            raise MigrateError("unknown quota %r; one of %s" % (key, ", ".join(sorted(FIELDS))))
        if amount is None or amount < 0:
            raise MigrateError("need.%s must be a number >= 0" % key)
        service, max_field, used_field = FIELDS[key]
        if service not in limits:
            limits[service] = absolute_limits(conn, service)
        maximum = limits[service].get(max_field)
        used = limits[service].get(used_field) or 0
        if maximum is None or maximum < 0:
            free[key] = None
            continue
        free[key] = maximum - used
        if amount > free[key]:
            shortages.append("%s: need %d, %d free (limit %d, used %d)" % (key, amount, free[key], maximum, used))
    return free, shortages
