#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: usage_report
short_description: Save an OpenStack project's usage statistics as JSON, for the whole period and month by month
version_added: 0.1.0
description:
  - Reads the project's usage from Nova's usage API (C(os-simple-tenant-usage)) - every server that lived in the
    period, with its flavor, vCPUs, RAM, disk and hours - before the old cloud's database disappears.
  - Writes one JSON file for the whole period and, with O(per_month), one per calendar month (UTC) from the start
    to the end. Each file holds the servers and the totals (hours, vCPU hours, MiB-RAM hours, GiB-disk hours)
    summed from the servers; the months' totals add up to the whole period's, which the module checks.
  - Without O(start) the period starts at the project's first server (a first call from 2000-01-01 finds it).
  - Idempotent - a file that already holds the same report is left alone. With the default O(end) (now) the hours
    of running servers grow between two runs; give O(end) for a report that a re-run does not change.
  - Check mode reads the usage and returns the reports and the files it would write, writing nothing.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  project:
    description:
      - The project, by id or name. Default - the project the credentials are scoped to.
      - Reading another project's usage needs the admin role (Nova's policy); a project's own members may read its.
    type: str
  start:
    description: The period's start (UTC) - C(YYYY-MM-DD), C(YYYY-MM) or C(YYYY-MM-DDTHH:MM:SS).
    type: str
  end:
    description: The period's end (UTC, excluded), as O(start). Default - now.
    type: str
  per_month:
    description: Also report each calendar month of the period.
    type: bool
    default: true
  path:
    description:
      - The directory for the JSON files (created when missing) - C(<prefix>-whole.json) and
        C(<prefix>-YYYY-MM.json). Without it nothing is written and the reports are only returned.
    type: path
  prefix:
    description: The files' name prefix. Default - C(usage-<project id>).
    type: str
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Save the project's usage before the old cloud goes
  cloudshift.migrate.usage_report:
    cloud: old-cloud
    project: shop
    end: "2026-12-01"
    path: /srv/archive/shop/usage
    migration_id: shop-volumes
  register: usage

- name: Show the whole period's vCPU hours
  ansible.builtin.debug:
    msg: "{{ usage.whole.total_vcpus_usage | round(1) }} vCPU hours in {{ usage.months | length }} months"
"""

RETURN = r"""
actions:
  description: The files written (in check mode, the files that would be).
  returned: always
  type: list
  elements: str
project:
  description: The project's id and name.
  returned: success
  type: dict
whole:
  description:
    - The whole period - C(start), C(end), C(servers) (instance_id, name, flavor, vcpus, memory_mb, local_gb, hours,
      started_at, ended_at, state), C(server_count), C(total_hours), C(total_vcpus_usage), C(total_memory_mb_usage),
      C(total_local_gb_usage).
  returned: success
  type: dict
months:
  description: One report per month (as RV(whole), with C(month) - C(YYYY-MM)), in order.
  returned: success
  type: list
  elements: dict
files:
  description: Every file of the report (written now or already up to date).
  returned: success
  type: list
  elements: str
api_calls:
  description: Calls made to Nova's usage API.
  returned: success
  type: int
ledger_entries:
  description: One C(usage_report) entry with the files and the whole period's totals.
  returned: always
  type: list
  elements: dict
"""

import datetime
import os

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule
from ansible_collections.cloudshift.migrate.plugins.module_utils import archive, usage

EARLIEST = datetime.datetime(2000, 1, 1)


class UsageReport(OpenStackMigrateModule):
    argument_spec = dict(
        project=dict(type="str"),
        start=dict(type="str"),
        end=dict(type="str"),
        per_month=dict(type="bool", default=True),
        path=dict(type="path"),
        prefix=dict(type="str"),
    )

    def find_project(self):
        wanted = self.params.get("project")
        own_id = self.conn.current_project_id
        if not wanted or wanted == own_id:
            own = self.conn.identity.get_project(own_id) if wanted else None
            return own_id, own.name if own else (self.conn.auth.get("project_name") or own_id)
        try:
            found = self.conn.identity.find_project(wanted, ignore_missing=True)
        except Exception:  # pylint: disable=broad-except
            found = None  # a project member may not list projects: only its own id/name can be checked
        if found is None:
            if wanted in (self.conn.auth.get("project_name"), self.conn.auth.get("project_id")):
                return own_id, wanted
            raise MigrateError("no project %s that these credentials can see" % wanted)
        return found.id, found.name

    def run(self):
        p = self.params
        now = datetime.datetime.utcnow().replace(microsecond=0)
        end = usage.parse_time(p["end"], "end") if p.get("end") else now
        start = usage.parse_time(p["start"], "start") if p.get("start") else None
        if start is not None and not start < end:
            raise MigrateError("start (%s) must be before end (%s)" % (start, end))
        if end > now:
            raise MigrateError("end (%s) is in the future: Nova counts up to now only, the report would change" % end)
        if p.get("path"):
            if os.path.exists(p["path"]) and not os.path.isdir(p["path"]):
                raise MigrateError("path %s is not a directory" % p["path"])
            archive.check_room(p["path"], 0)  # it, or the parent it will be made in, can be written
        project_id, project_name = self.find_project()
        reader = usage.UsageReader(self.conn, project_id)
        if start is None:
            first = [u.get("started_at") for u in reader.window(EARLIEST, end) if u.get("started_at")]
            start = usage.parse_time(min(first)[:19], "the first server's start") if first else end
            start = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0) if first else start
        whole = usage.summarize(reader.window(start, end), start, end) if start < end else usage.summarize([], end, end)
        monthly = []
        if p["per_month"]:
            for label, first, stop in usage.months(start, end):
                report = usage.summarize(reader.window(first, stop), first, stop)
                report["month"] = label
                monthly.append(report)
            usage.check_sums(whole, monthly)
        for report in [whole] + monthly:
            report.update(project_id=project_id, project_name=project_name)
        files = []
        if p.get("path"):
            prefix = p.get("prefix") or "usage-%s" % project_id
            documents = [(os.path.join(p["path"], "%s-whole.json" % prefix), whole)]
            documents += [(os.path.join(p["path"], "%s-%s.json" % (prefix, report["month"])), report)
                          for report in monthly]
            if not self.module.check_mode and not os.path.isdir(p["path"]):
                os.makedirs(p["path"])
            for path, document in documents:
                files.append(path)
                if self.module.check_mode:
                    if not os.path.exists(path):
                        self.plan("write %s" % path)
                elif usage.write_json(path, document):
                    self.plan("write %s" % path)
            totals = dict((key, round(whole[key], 6)) for key in usage.TOTALS)
            self.record("usage_report", project_id, destination_id=documents[0][0], phase="usage", status="done",
                        data=dict(files=files, start=whole["start"], end=whole["end"], servers=whole["server_count"],
                                  **totals))
        return dict(project=dict(id=project_id, name=project_name), whole=whole, months=monthly, files=files,
                    api_calls=reader.calls)


def main():
    UsageReport.main()


if __name__ == "__main__":
    main()
