# -*- coding: utf-8 -*-
"""ledger_timeline: offsets, durations and phase spans from a ledger's entries (the HTML report's chart)."""
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.cloudshift.migrate.plugins.filter.ledger_timeline import ledger_timeline


def test_rows_and_phases_from_started_and_finished():
    entries = [
        {"type": "volume", "source_id": "v1", "phase": "transfer", "status": "done",
         "started": "2026-12-01T10:00:05.000000Z", "finished": "2026-12-01T10:00:35.500000Z", "bytes": 10},
        {"type": "keypair", "source_id": "k", "phase": "prepare", "status": "done",
         "started": "2026-12-01T10:00:00Z", "finished": "2026-12-01T10:00:01Z"},
        {"type": "volume", "source_id": "v2", "phase": "transfer", "status": "running",
         "started": "2026-12-01T10:00:10.000000Z", "updated": "2026-12-01T10:00:40.000000Z"},
        {"type": "cloud", "source_id": "c", "status": "planned"},  # never ran: not on the timeline
    ]
    timeline = ledger_timeline(entries)
    assert timeline["start"] == "2026-12-01T10:00:00Z" and timeline["seconds"] == 40.0
    assert [(r["label"], r["offset"], r["duration"]) for r in timeline["rows"]] == [
        ("keypair k", 0.0, 1.0), ("volume v1", 5.0, 30.5), ("volume v2", 10.0, 30.0)]
    assert timeline["phases"] == [
        {"phase": "prepare", "first": 0.0, "last": 1.0, "seconds": 1.0, "entries": 1},
        {"phase": "transfer", "first": 5.0, "last": 40.0, "seconds": 35.0, "entries": 2}]
    assert ledger_timeline([]) == {"start": None, "seconds": 0, "rows": [], "phases": []}
    with pytest.raises(AnsibleFilterError, match="not a ledger time"):
        ledger_timeline([{"started": "yesterday"}])
