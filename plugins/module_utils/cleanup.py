# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove a migration's temporary resources of one cloud, all at once, from ledger entries.

A fleet leaves hundreds of them (a copy and a snapshot per volume, images). One
task per resource costs a process and the SDK's import each (1.5 s of CPU here);
this deletes every resource of a kind with one request each, then waits for all
of them together, kind after kind, in the order their dependencies need:
detach the copies, delete the copies, delete the snapshots they were made from.
Images depend on nothing and go first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

# Ledger entry type -> the kind of resource its destination_id names.
KINDS = {
    "volume_copy": "volume",
    "volume_snapshot": "snapshot",
    "snapshot_image": "image",
    "image": "image",
}
# Every temporary resource the collection makes is named so; anything else is refused.
PREFIX = "cloudshift-"


def check_entries(entries):
    """Refuse, before anything changes, entries that are not temporary resources."""
    problems = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append("entries[%d] is not a ledger entry" % index)
            continue
        if entry.get("type") not in KINDS:
            problems.append("entries[%d]: type %r is not a temporary resource (one of %s)" % (
                index, entry.get("type"), ", ".join(sorted(KINDS))))
        if not entry.get("destination_id"):
            problems.append("entries[%d]: no destination_id (the resource to remove)" % index)
        if entry.get("source_id") in (None, ""):
            problems.append("entries[%d]: no source_id" % index)
    if problems:
        raise MigrateError("refusing the entries: %s" % "; ".join(problems))


class Cleaner:
    """Deletes one cloud's temporaries; ``plan`` is the module's plan() (check mode aware)."""

    def __init__(self, conn, exceptions, plan, poll=2.0, timeout=900, clock=time.monotonic, sleep=time.sleep):
        self.conn = conn
        self.not_found = exceptions.NotFoundException
        self.plan = plan
        self.poll = poll
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep

    # -- reading -------------------------------------------------------------
    def _get(self, kind, resource_id):
        getter = {
            "volume": self.conn.block_storage.get_volume,
            "snapshot": self.conn.block_storage.get_snapshot,
            "image": self.conn.image.get_image,
        }[kind]
        try:
            return getter(resource_id)
        except self.not_found:
            return None

    def look_up(self, entries):
        """(entry, kind, resource or None) for each entry; refuses resources not named as temporaries."""
        found, foreign = [], []
        for entry in entries:
            kind = KINDS[entry["type"]]
            resource = self._get(kind, entry["destination_id"])
            if resource is not None and not str(resource.name or "").startswith(PREFIX):
                foreign.append("%s %s (%s)" % (kind, resource.id, resource.name))
            found.append((entry, kind, resource))
        if foreign:
            raise MigrateError("refusing to delete what this collection did not make (its temporaries are "
                               "named %s...): %s" % (PREFIX, ", ".join(foreign)))
        return found

    # -- waiting -------------------------------------------------------------
    def _wait(self, kind, ids, done, what):
        """Poll until done(resource or None) holds for every id; fail on an error state or timeout."""
        pending = list(ids)
        deadline = self.clock() + self.timeout
        interval = self.poll
        while pending:
            still = []
            for resource_id in pending:
                resource = self._get(kind, resource_id)
                status = str(getattr(resource, "status", "") or "").lower() if resource is not None else ""
                if status.startswith("error"):
                    raise MigrateError("%s %s is in status %s while waiting to %s" % (kind, resource_id, status, what),
                                       resource_id=resource_id)
                if not done(resource):
                    still.append(resource_id)
            pending = still
            if not pending:
                return
            if self.clock() >= deadline:
                raise MigrateError("timed out after %s s waiting to %s: %s" % (self.timeout, what, ", ".join(pending)),
                                   pending=pending)
            self.sleep(interval)
            interval = min(interval * 1.5, self.poll * 4)  # a fleet's hundreds of copies: fewer rounds of GETs

    # -- removing ------------------------------------------------------------
    def remove(self, entries):
        """Delete what still exists of ``entries``; return (removed, already_gone) as lists of dicts."""
        found = self.look_up(entries)
        removed, gone = [], []
        by_kind = {"volume": [], "snapshot": [], "image": []}
        for entry, kind, resource in found:
            item = {"type": entry["type"], "id": entry["destination_id"],
                    "name": resource.name if resource is not None else None}
            if resource is None:
                gone.append(item)
            else:
                by_kind[kind].append(resource)
                removed.append(item)

        for resource in by_kind["image"]:
            if self.plan("delete image %s (%s)" % (resource.id, resource.name)):
                self.conn.image.delete_image(resource.id, ignore_missing=True)

        detaching = []
        for resource in by_kind["volume"]:
            for attachment in resource.attachments or []:
                server = attachment.get("server_id")
                if server and self.plan("detach volume %s (%s) from server %s" % (resource.id, resource.name, server)):
                    self.conn.compute.delete_volume_attachment(server, resource.id, ignore_missing=True)
                    detaching.append(resource.id)
        if detaching:
            self._wait("volume", detaching, lambda volume: volume is None or not volume.attachments,
                       "detach the copies")

        # The copies before the snapshots they were made from.
        for kind, label, delete, what in (
                ("volume", "volume", self.conn.block_storage.delete_volume, "delete the copies"),
                ("snapshot", "volume snapshot", self.conn.block_storage.delete_snapshot, "delete the snapshots")):
            deleting = []
            for resource in by_kind[kind]:
                if self.plan("delete %s %s (%s)" % (label, resource.id, resource.name)):
                    delete(resource.id, ignore_missing=True)
                    deleting.append(resource.id)
            if deleting:
                self._wait(kind, deleting, lambda found: found is None, what)
        return removed, gone
