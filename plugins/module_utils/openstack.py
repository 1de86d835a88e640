# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStack connection and error handling for cloudshift.migrate modules.

Options follow openstack.cloud's names (``cloud``, ``auth``, ``region_name``,
...) so one ``module_defaults: group/cloudshift.migrate.openstack`` block can
serve both collections.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError, MigrateModule
from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import find_secrets

try:
    from importlib.util import find_spec

    HAS_OPENSTACKSDK = find_spec("openstack") is not None and find_spec("keystoneauth1") is not None
except ImportError:  # pragma: no cover - Python 2 is not supported
    HAS_OPENSTACKSDK = False


def sdk():
    """openstacksdk, imported on first use.

    Its import costs about half a second; a module may spend that time on its own
    work first (volume_stream_to_image maps and hashes the disk meanwhile).
    """
    import openstack
    import openstack.exceptions

    return openstack


def _loaded_exceptions():
    """The SDK's and keystoneauth's exception modules, if imported (else nothing raised them)."""
    return sys.modules.get("openstack.exceptions"), sys.modules.get("keystoneauth1.exceptions")


def openstack_argument_spec():
    return dict(
        cloud=dict(type="raw"),
        auth=dict(type="dict", no_log=True),
        auth_type=dict(type="str"),
        region_name=dict(type="str"),
        interface=dict(type="str", default="public", choices=["admin", "internal", "public"],
                       aliases=["endpoint_type"]),
        validate_certs=dict(type="bool", aliases=["verify"]),
        ca_cert=dict(type="path", aliases=["cacert"]),
        client_cert=dict(type="path", aliases=["cert"]),
        client_key=dict(type="path", no_log=False, aliases=["key"]),
        api_timeout=dict(type="int"),
        # openstack.cloud's shared options: a play's module_defaults for group/cloudshift.migrate.openstack (which
        # extends openstack.cloud's group) sets them for both collections, so every module here accepts them
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=180),
        sdk_log_path=dict(type="path"),
        sdk_log_level=dict(type="str", default="INFO", choices=["INFO", "DEBUG"]),
    )


def connection_kwargs(params):
    """Turn module parameters into ``openstack.connect()`` arguments."""
    kwargs = {}
    for name in ("auth_type", "region_name", "interface", "api_timeout"):
        if params.get(name) is not None:
            kwargs[name] = params[name]
    if params.get("validate_certs") is not None:
        kwargs["verify"] = params["validate_certs"]
    for name, key in (("ca_cert", "cacert"), ("client_cert", "cert"), ("client_key", "key")):
        if params.get(name):
            kwargs[key] = params[name]
    cloud = params.get("cloud")
    if isinstance(cloud, dict):
        config = dict(cloud)
        config.update(kwargs)
        if params.get("auth"):
            config["auth"] = dict(config.get("auth") or {}, **params["auth"])
        return config
    if cloud is not None and not isinstance(cloud, str):
        raise MigrateError("cloud must be a clouds.yaml cloud name or a dict, not %s" % type(cloud).__name__)
    if cloud:
        kwargs["cloud"] = cloud
    if params.get("auth"):
        kwargs["auth"] = params["auth"]
    return kwargs


def secret_values(value):
    """Every string under a credential-like key of ``value`` (to hide from output)."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if find_secrets({key: item}) and isinstance(item, (str, int, float)) and not isinstance(item, bool):
                found.add(str(item))
            else:
                found |= secret_values(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= secret_values(item)
    return found


def _keystoneauth_cause(exc, ksa_exceptions):
    """The keystoneauth error an SDK exception wraps (authorize() wraps them), if any."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ksa_exceptions.ClientException):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def describe_error(exc):
    """A one-line message for an SDK or keystoneauth error, with the API's own words."""
    sdk_exceptions, ksa_exceptions = _loaded_exceptions()
    if ksa_exceptions is not None and not (sdk_exceptions and isinstance(exc, sdk_exceptions.HttpException)):
        exc = _keystoneauth_cause(exc, ksa_exceptions) or exc
    if sdk_exceptions is not None and isinstance(exc, sdk_exceptions.HttpException):
        parts = [str(exc.message or exc.__class__.__name__).strip()]
        if exc.details and exc.details not in parts[0]:
            parts.append(str(exc.details).strip())
        details = {"status_code": exc.status_code}
        if getattr(exc, "request_id", None):
            details["request_id"] = exc.request_id
        return ": ".join(parts), details
    if ksa_exceptions is not None:
        if isinstance(exc, ksa_exceptions.Unauthorized):
            return "authentication failed: %s" % (exc.message or exc), {"status_code": 401}
        if isinstance(exc, ksa_exceptions.http.HttpError):
            return "%s" % (exc.message or exc), {"status_code": exc.http_status}
        if isinstance(exc, ksa_exceptions.ClientException):
            return "cannot reach the cloud: %s" % exc, {}
    if sdk_exceptions is not None and isinstance(exc, sdk_exceptions.SDKException):
        return str(exc), {}
    return None


class OpenStackMigrateModule(MigrateModule):
    """Base for modules that talk to an OpenStack cloud through openstacksdk."""

    nested_secrets = ("cloud",)
    find_nested = staticmethod(secret_values)

    def __init__(self):
        spec = openstack_argument_spec()
        spec.update(self.argument_spec)
        self.argument_spec = spec
        super(OpenStackMigrateModule, self).__init__()
        if not HAS_OPENSTACKSDK:
            self.module.fail_json(msg=missing_required_lib("openstacksdk"))
        if self.params.get("sdk_log_path") or self.params.get("sdk_log_level") == "DEBUG":
            import openstack

            openstack.enable_logging(debug=self.params.get("sdk_log_level") == "DEBUG",
                                     path=self.params.get("sdk_log_path"))
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self.connect(self.params)
        return self._conn

    def connect(self, params):
        """Connect and authenticate now, so bad credentials fail before any change."""
        conn = sdk().connect(**connection_kwargs(params))
        conn.authorize()
        return conn

    def translate_error(self, exc):
        translated = describe_error(exc)
        if translated is None:
            return None
        msg, details = translated
        return "%s: %s" % (self.error_context(), msg), details

    def error_context(self):
        cloud = self.params.get("cloud")
        name = cloud if isinstance(cloud, str) else (cloud or {}).get("name", "the cloud")
        return "OpenStack (%s)" % (name or "environment")
