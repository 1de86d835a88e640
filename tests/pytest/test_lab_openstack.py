# -*- coding: utf-8 -*-
"""The lab's two clouds are real Keystone + Glance, and the collection's OpenStack layer talks to them."""

from __future__ import annotations

import hashlib
import io
import json

import openstack
import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils import openstack as os_utils

pytestmark = pytest.mark.usefixtures("collection")


@pytest.mark.parametrize("cloud", ["lab-source", "lab-destination"])
def test_non_admin_user_round_trips_an_image(lab, cloud):
    conn = openstack.connect(cloud=cloud)
    data = b"cloudshift" * 100000
    image = conn.image.create_image(name="pytest-roundtrip", disk_format="raw", container_format="bare",
                                    data=data, validate_checksum=True)
    try:
        image = conn.image.wait_for_status(image, "active", wait=60)
        assert image.hash_algo == "sha512"
        assert image.hash_value == hashlib.sha512(data).hexdigest()
        assert conn.image.download_image(image).content == data
        # The user is a member, not an admin: admin-only calls are refused.
        with pytest.raises(openstack.exceptions.ForbiddenException):
            list(conn.identity.users())
    finally:
        conn.image.delete_image(image, ignore_missing=True)


def test_clouds_are_independent(lab):
    source = openstack.connect(cloud="lab-source")
    destination = openstack.connect(cloud="lab-destination")
    image = source.image.create_image(name="pytest-only-in-source", disk_format="raw", container_format="bare",
                                      data=io.BytesIO(b"x" * 4096))
    try:
        assert destination.image.find_image("pytest-only-in-source") is None
        assert source.auth["auth_url"] != destination.auth["auth_url"]
    finally:
        source.image.delete_image(image, ignore_missing=True)


def test_wrong_password_is_a_clear_error_without_the_password(lab):
    config = openstack.config.OpenStackConfig(config_files=[lab]).get_one("lab-destination").config
    params = dict((name, None) for name in os_utils.openstack_argument_spec())
    bad = dict(config["auth"], password="not-the-Password-42")
    params.update(cloud=None, auth=bad, interface="public")
    conn = openstack.connect(**os_utils.connection_kwargs(params))
    with pytest.raises(openstack.exceptions.SDKException) as caught:
        conn.authorize()
    msg, details = os_utils.describe_error(caught.value)
    assert msg.startswith("authentication failed") and details == {"status_code": 401}
    assert "not-the-Password-42" not in msg + json.dumps(details)


def test_unreachable_cloud_is_a_clear_error(lab):
    params = dict((name, None) for name in os_utils.openstack_argument_spec())
    params.update(interface="public", cloud={"auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "u",
                                                      "password": "p", "project_name": "p",
                                                      "user_domain_name": "Default",
                                                      "project_domain_name": "Default"}})
    conn = openstack.connect(**os_utils.connection_kwargs(params))
    with pytest.raises(Exception) as caught:
        conn.authorize()
    msg, unused = os_utils.describe_error(caught.value)
    assert msg.startswith("cannot reach the cloud")


def test_openstack_cli_lists_the_destination_images(lab):
    """What an operator types after `make lab-up` (the CLI is in .venv/bin)."""
    import os
    import subprocess
    import sys

    cli = os.path.join(os.path.dirname(sys.executable), "openstack")
    done = subprocess.run([cli, "--os-cloud", "lab-destination", "image", "list", "-f", "json"],
                          env=dict(os.environ, OS_CLIENT_CONFIG_FILE=lab), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
