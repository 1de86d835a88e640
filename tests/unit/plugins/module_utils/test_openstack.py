# -*- coding: utf-8 -*-
"""Unit tests of the OpenStack boundary; the real wire is crossed in tests/pytest and integration."""
from __future__ import annotations

import json

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import openstack as os_utils
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

openstack = pytest.importorskip("openstack")
from keystoneauth1 import exceptions as ksa_exceptions  # noqa: E402


def params(**overrides):
    values = dict((name, None) for name in os_utils.openstack_argument_spec())
    values["interface"] = "public"
    values.update(overrides)
    return values


def test_cloud_name_and_options():
    kwargs = os_utils.connection_kwargs(params(cloud="lab-destination", region_name="RegionOne",
                                               validate_certs=False, ca_cert="/ca.pem", api_timeout=30))
    assert kwargs == {"cloud": "lab-destination", "region_name": "RegionOne", "interface": "public",
                      "api_timeout": 30, "verify": False, "cacert": "/ca.pem"}


def test_cloud_dict_with_auth_override():
    cloud = {"auth": {"auth_url": "http://127.0.0.1:5000/v3", "username": "u", "password": "p"}}
    kwargs = os_utils.connection_kwargs(params(cloud=cloud, auth={"password": "q"}))
    assert kwargs["auth"] == {"auth_url": "http://127.0.0.1:5000/v3", "username": "u", "password": "q"}
    assert cloud["auth"]["password"] == "p"  # the caller's dict is not modified


def test_cloud_of_wrong_type():
    with pytest.raises(MigrateError, match="cloud must be"):
        os_utils.connection_kwargs(params(cloud=["a"]))


def test_secret_values_found_in_cloud_dict():
    cloud = {"auth": {"username": "ops", "password": "pw1", "application_credential_secret": "acs"}, "name": "x"}
    assert os_utils.secret_values(cloud) == {"pw1", "acs"}
    assert os_utils.secret_values({"auth": {"password": 123456}}) == {"123456"}  # YAML made it a number


def test_describe_http_error_keeps_api_message():
    exc = openstack.exceptions.ConflictException(message="Conflict", details="Image name already in use",
                                                 http_status=409, request_id="req-1")
    msg, details = os_utils.describe_error(exc)
    assert "Image name already in use" in msg
    assert details["status_code"] == 409 and details["request_id"] == "req-1"


def test_describe_auth_and_connection_errors():
    msg, details = os_utils.describe_error(ksa_exceptions.Unauthorized(message="The request you have made requires authentication."))
    assert msg.startswith("authentication failed") and details["status_code"] == 401
    msg = os_utils.describe_error(ksa_exceptions.ConnectFailure("Unable to establish connection to http://127.0.0.1:1"))[0]
    assert msg.startswith("cannot reach the cloud")
    msg = os_utils.describe_error(openstack.exceptions.ConfigException("Cloud nope was not found."))[0]
    assert "nope was not found" in msg
    assert os_utils.describe_error(ValueError("x")) is None


class Probe(os_utils.OpenStackMigrateModule):
    argument_spec = dict(name=dict(type="str"))

    def connect(self, params):
        raise openstack.exceptions.ConfigException("Cloud %s was not found." % params["cloud"])

    def run(self):
        return dict(cloud=self.conn.name)


def test_module_error_names_the_cloud_and_hides_dict_secrets(run_module):
    result = run_module(Probe.main, dict(cloud="nope"))
    assert result["failed"] and result["msg"] == "OpenStack (nope): Cloud nope was not found."
    result = run_module(Probe.main, dict(cloud={"auth": {"password": "hunter2-secret"}, "name": "x"}))
    assert "hunter2-secret" not in json.dumps(result)


def test_cloud_dict_secrets_masked_before_the_invocation_is_logged(run_module, monkeypatch):
    """AnsibleModule logs its invocation (syslog) inside __init__: the secrets of a cloud dict must be known then."""
    from ansible.module_utils.basic import AnsibleModule

    logged = []
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: logged.append((msg, log_args)))
    run_module(Probe.main, dict(cloud={"auth": {"password": "hunter2-secret", "username": "u"}, "name": "x"}))
    assert logged and "hunter2-secret" not in json.dumps(logged, default=str)
