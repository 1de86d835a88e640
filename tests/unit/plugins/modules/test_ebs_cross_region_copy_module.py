# -*- coding: utf-8 -*-
"""ebs_cross_region_copy's input checks, before any AWS client is made (moto covers the wire)."""
from __future__ import annotations

import pytest

from ansible_collections.cloudshift.migrate.plugins.modules import ebs_cross_region_copy


@pytest.mark.parametrize("extra,allowed", [({"max_concurrent": 200}, False), ({"max_concurrent": 20}, True),
                                           ({"max_concurrent": 50, "copy_quota": 50}, True)])
def test_max_concurrent_above_the_copy_quota_is_refused(run_module, monkeypatch, extra, allowed):
    def no_aws(*args, **kwargs):
        raise AssertionError("an AWS client was made")

    monkeypatch.setattr(ebs_cross_region_copy.EbsCrossRegionCopy, "client", no_aws, raising=False)
    args = dict(region="us-east-1", destination_region="eu-west-1", volumes=["vol-1"], migration_id="m1", **extra)
    result = run_module(ebs_cross_region_copy.main, args)
    refused = "above the account's" in result.get("msg", "")
    assert refused != allowed, result
    if not allowed:
        assert result["failed"] and result["actions"] == [] and not result["changed"]
