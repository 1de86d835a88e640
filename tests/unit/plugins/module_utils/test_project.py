# -*- coding: utf-8 -*-
"""Unit tests of migrate_project's volume selection (the lab's Cinder covers the wire)."""
from __future__ import annotations

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import project
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError


def vol(vid, name, status="available", size=1, **metadata):
    return dict(id=vid, name=name, status=status, size=size, metadata=metadata)


VOLUMES = [vol("1", "db"), vol("2", "logs", move="yes"), vol("3", "web", "in-use", 2, move="yes"),
           vol("4", "twin"), vol("5", "twin"), vol("6", "tmp-copy", cloudshift_migration_id="m"),
           vol("7", "broken", "error", move="yes")]


def test_by_name_or_id_in_the_order_asked():
    chosen, problems = project.select(VOLUMES, names=["web", "1", "web"])
    assert [v["id"] for v in chosen] == ["3", "1"] and problems == []


def test_unknown_and_ambiguous_names_and_bad_states_are_problems():
    unused, problems = project.select(VOLUMES, names=["nope", "twin", "broken", "tmp-copy"])
    assert problems == ["no volume nope in the project", "2 volumes are called twin: give their ids (4, 5)",
                        "no volume tmp-copy in the project",
                        "volume broken (7) is error: only available or in-use volumes can be moved"]


def test_by_metadata_and_all():
    chosen, problems = project.select(VOLUMES, metadata={"move": "yes"})
    assert [v["id"] for v in chosen] == ["2", "3", "7"] and len(problems) == 1
    chosen, unused = project.select(VOLUMES, everything=True)
    assert "6" not in [v["id"] for v in chosen]  # a migration's own temporary volume


def test_plan_and_arguments():
    plan = project.plan([vol("1", "a", size=2), vol("2", "b", size=1)], rate_mib_s=1024)
    assert plan == {"count": 2, "total_bytes": 3 * 1024 ** 3, "estimate_seconds": 3.0}
    with pytest.raises(MigrateError, match="one way"):
        project.check_selection_args(["a"], {"k": "v"}, False)
    with pytest.raises(MigrateError, match="one way"):
        project.check_selection_args(None, None, False)
