# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A project's usage from Nova's os-simple-tenant-usage API: the whole period and month by month.

Nova counts, for every server alive in a window, the hours it lived inside that window; the
totals are sums over servers. Windows that split a period therefore add up to the period. The
totals here are summed from the servers themselves (on every page), because with paging
(microversion 2.40) Nova's own totals cover one page only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import tempfile

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

FORMAT = "%Y-%m-%dT%H:%M:%S"
TOTALS = ("total_hours", "total_vcpus_usage", "total_memory_mb_usage", "total_local_gb_usage")
SERVER_KEYS = ("instance_id", "name", "flavor", "vcpus", "memory_mb", "local_gb", "hours", "started_at",
               "ended_at", "state")
# sums of floating-point hours: months add up to the period within this relative difference
TOLERANCE = 1e-9


def parse_time(value, name):
    """'2026-11-01', '2026-11-01T10:00:00' or '... 10:00:00' (UTC) -> a naive UTC datetime."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    text = str(value).strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1]
    for fmt in ("%Y-%m-%d", FORMAT, FORMAT + ".%f", "%Y-%m"):
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise MigrateError("%s: %r is not a date (YYYY-MM-DD, YYYY-MM or YYYY-MM-DDTHH:MM:SS, UTC)" % (name, value))


def months(start, end):
    """[(label 'YYYY-MM', window start, window end)] covering [start, end), split at month starts."""
    windows = []
    cursor = start
    while cursor < end:
        first = cursor.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (first + datetime.timedelta(days=32)).replace(day=1)
        stop = min(following, end)
        windows.append((first.strftime("%Y-%m"), cursor, stop))
        cursor = stop
    return windows


def summarize(server_usages, start, end):
    """One window's report: its servers and totals summed from them."""
    servers = [dict((key, usage.get(key)) for key in SERVER_KEYS) for usage in server_usages]
    servers.sort(key=lambda item: (item.get("started_at") or "", item.get("instance_id") or ""))
    totals = dict((key, 0.0) for key in TOTALS)
    for usage in server_usages:
        hours = float(usage.get("hours") or 0)
        totals["total_hours"] += hours
        totals["total_vcpus_usage"] += hours * float(usage.get("vcpus") or 0)
        totals["total_memory_mb_usage"] += hours * float(usage.get("memory_mb") or 0)
        totals["total_local_gb_usage"] += hours * float(usage.get("local_gb") or 0)
    return dict(start=start.strftime(FORMAT), end=end.strftime(FORMAT), servers=servers,
                server_count=len(servers), **totals)


def add_up(parts):
    """The sums of the parts' totals."""
    return dict((key, sum(part[key] for part in parts)) for key in TOTALS)


def check_sums(whole, parts):
    """The months add up to the whole period (else MigrateError)."""
    summed = add_up(parts)
    for key in TOTALS:
        if abs(summed[key] - whole[key]) > TOLERANCE * max(1.0, abs(whole[key])):
            raise MigrateError("the months' %s (%r) do not add up to the whole period's (%r): Nova's usage changed "
                               "between the calls, run it again with a fixed end" % (key, summed[key], whole[key]))
    return summed


def write_json(path, document):
    """Write ``document`` as JSON unless the file already holds exactly that; True when written."""
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except (IOError, OSError):
        pass
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".usage-")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


class UsageReader:
    """Reads Nova's usage of one project for a window, following pages."""

    def __init__(self, conn, project_id, page_size=1000):
        self.conn = conn
        self.project_id = project_id
        self.page_size = page_size
        self.calls = 0

    def window(self, start, end):
        usages, marker = [], None
        while True:
            params = dict(start=start.strftime(FORMAT), end=end.strftime(FORMAT), limit=self.page_size)
            if marker:
                params["marker"] = marker
            response = self.conn.compute.get("/os-simple-tenant-usage/%s" % self.project_id, params=params,
                                             microversion="2.40")
            self.calls += 1
            if response.status_code >= 400:
                raise MigrateError("Nova's usage API answered %s for project %s: %s" % (
                    response.status_code, self.project_id, response.text[:300]))
            body = response.json()
            page = (body.get("tenant_usage") or {}).get("server_usages") or []
            usages.extend(page)
            links = body.get("tenant_usage_links") or []
            if not page or not any(link.get("rel") == "next" for link in links):
                return usages
            marker = page[-1]["instance_id"]
