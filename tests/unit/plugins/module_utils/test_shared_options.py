# -*- coding: utf-8 -*-
"""module_defaults for the collection's groups (which extend openstack.cloud's and amazon.aws's) may set
those collections' shared options: every module here accepts them."""
from __future__ import annotations

from ansible_collections.cloudshift.migrate.plugins.modules import ebs_cross_region_copy, quota_check


def test_openstack_group_accepts_openstack_cloud_shared_options(run_module):
    result = run_module(quota_check.main, dict(cloud="nope", wait=True, timeout=300, sdk_log_level="INFO",
                                               need={"volumes": "x"}))
    assert result["failed"] and "need.volumes must be a number" in result["msg"], result
    assert "Unsupported parameters" not in result.get("msg", ""), result


def test_aws_group_accepts_amazon_aws_shared_options(run_module, monkeypatch):
    args = dict(region="us-east-1", destination_region="eu-west-1", volumes=["vol-1"], migration_id="m1",
                aws_config={"connect_timeout": 5}, debug_botocore_endpoint_logs=False, max_concurrent=500)
    result = run_module(ebs_cross_region_copy.main, args)
    assert "Unsupported parameters" not in result["msg"] and "above the account's" in result["msg"], result
