# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: ledger_timeline
short_description: A ledger's entries as a timeline - when each step started and how long it took, per phase
version_added: 0.1.0
description:
  - Takes the entries of a migration's ledger (M(cloudshift.migrate.ledger) with O(cloudshift.migrate.ledger#module:operation=list))
    and returns, for the entries that ran (they have C(started)), their offset from the migration's first start
    and their duration in seconds, and the time spent per phase - what the C(report) role draws in its HTML page.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  _input:
    description: The ledger's entries.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: How long each phase took
  ansible.builtin.debug:
    msg: "{{ (ledger.entries | cloudshift.migrate.ledger_timeline).phases }}"
"""

RETURN = r"""
_value:
  description:
    - C(start) (the first start, ISO 8601), C(seconds) (first start to last finish), C(rows) (C(label), C(type),
      C(phase), C(status), C(offset), C(duration), C(bytes)) in order of start, and C(phases) (C(phase), C(first),
      C(last), C(seconds) from its first start to its last finish, C(entries)).
  type: dict
"""


def parse(text):
    if not text:
        return None
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(text, layout)
        except ValueError:
            continue
    raise AnsibleFilterError("ledger_timeline: %r is not a ledger time" % text)


def ledger_timeline(entries):
    if not isinstance(entries, list):
        raise AnsibleFilterError("ledger_timeline: expects the list of a ledger's entries")
    timed = []
    for entry in entries:
        started = parse(entry.get("started"))
        if started is None:
            continue
        finished = parse(entry.get("finished")) or parse(entry.get("updated")) or started
        timed.append((started, max(finished, started), entry))
    if not timed:
        return dict(start=None, seconds=0, rows=[], phases=[])
    timed.sort(key=lambda item: item[0])
    first = timed[0][0]
    last = max(finished for unused, finished, unused2 in timed)
    rows, phases = [], {}
    for started, finished, entry in timed:
        phase = entry.get("phase") or "-"
        rows.append(dict(label="%s %s" % (entry.get("type"), entry.get("source_id")), type=entry.get("type"),
                         phase=phase, status=entry.get("status"), bytes=entry.get("bytes"),
                         offset=round((started - first).total_seconds(), 3),
                         duration=round((finished - started).total_seconds(), 3)))
        span = phases.setdefault(phase, [started, finished, 0])
        span[0], span[1], span[2] = min(span[0], started), max(span[1], finished), span[2] + 1
    ordered = sorted(phases.items(), key=lambda item: item[1][0])
    return dict(start=first.strftime("%Y-%m-%dT%H:%M:%SZ"), seconds=round((last - first).total_seconds(), 3),
                rows=rows, phases=[dict(phase=name, first=round((span[0] - first).total_seconds(), 3),
                                        last=round((span[1] - first).total_seconds(), 3),
                                        seconds=round((span[1] - span[0]).total_seconds(), 3), entries=span[2])
                                   for name, span in ordered])


class FilterModule:
    def filters(self):
        return {"ledger_timeline": ledger_timeline}
