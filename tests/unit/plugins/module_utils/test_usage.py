# -*- coding: utf-8 -*-
"""Unit tests of the usage report's arithmetic: month windows, sums, the file writer.

The lab's Nova covers the wire (tests/pytest/test_usage_report.py); here the windows are checked
for periods across month and year ends.
"""
from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import usage
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

D = datetime.datetime


def test_months_split_a_period_at_month_starts():
    windows = usage.months(D(2025, 11, 15, 12), D(2026, 2, 3))
    assert [label for label, unused, unused2 in windows] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert windows[0][1] == D(2025, 11, 15, 12) and windows[0][2] == D(2025, 12, 1)
    assert windows[-1][1] == D(2026, 2, 1) and windows[-1][2] == D(2026, 2, 3)
    assert all(a[2] == b[1] for a, b in zip(windows, windows[1:]))  # no gap, no overlap
    assert usage.months(D(2026, 3, 1), D(2026, 3, 1)) == []


def test_totals_are_summed_from_the_servers_and_checked():
    servers = [{"instance_id": "a", "hours": 2.5, "vcpus": 2, "memory_mb": 512, "local_gb": 1},
               {"instance_id": "b", "hours": 1.0, "vcpus": 1, "memory_mb": 256, "local_gb": 0}]
    whole = usage.summarize(servers, D(2026, 1, 1), D(2026, 3, 1))
    assert (whole["total_hours"], whole["total_vcpus_usage"], whole["total_memory_mb_usage"]) == (3.5, 6.0, 1536.0)
    parts = [usage.summarize(servers[:1], D(2026, 1, 1), D(2026, 2, 1)),
             usage.summarize(servers[1:], D(2026, 2, 1), D(2026, 3, 1))]
    assert usage.check_sums(whole, parts)["total_local_gb_usage"] == 2.5
    with pytest.raises(MigrateError, match="do not add up"):
        usage.check_sums(whole, parts[:1])


@pytest.mark.parametrize("text, expected", [("2026-11-01", D(2026, 11, 1)), ("2026-11", D(2026, 11, 1)),
                                            ("2026-11-01T10:20:30", D(2026, 11, 1, 10, 20, 30)),
                                            ("2026-11-01 10:20:30Z", D(2026, 11, 1, 10, 20, 30))])
def test_times_parse(text, expected):
    assert usage.parse_time(text, "start") == expected


def test_a_bad_time_is_refused():
    with pytest.raises(MigrateError, match="start: 'yesterday' is not a date"):
        usage.parse_time("yesterday", "start")


def test_a_file_with_the_same_report_is_left_alone(tmp_path):
    path = str(tmp_path / "u.json")
    assert usage.write_json(path, {"a": 1})
    assert not usage.write_json(path, {"a": 1})
    assert usage.write_json(path, {"a": 2}) and json.load(open(path)) == {"a": 2}
