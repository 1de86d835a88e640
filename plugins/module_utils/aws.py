# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS connection and error handling for cloudshift.migrate modules.

Options follow amazon.aws's names (``access_key``, ``secret_key``, ``session_token``,
``profile``, ``endpoint_url``, ``region``, ...) so that one
``module_defaults: group/cloudshift.migrate.aws`` block serves both collections.
Retries live here, not in modules: botocore's standard mode retries throttling
and transient errors with jittered backoff; ``jittered_backoff`` serves the
errors botocore does not retry (``ResourceLimitExceeded``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import re

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError, MigrateModule

try:
    import boto3
    import botocore
    import botocore.config
    import botocore.exceptions
    import botocore.session

    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")
# Errors AWS answers while it is busy; retried, never reported as failures until the timeout.
BUSY_CODES = frozenset([
    "ResourceLimitExceeded", "RequestLimitExceeded", "Throttling", "ThrottlingException",
    "SnapshotCreationPerVolumeRateExceeded", "ConcurrentSnapshotLimitExceeded",
    "InternalError", "ServiceUnavailable", "Unavailable",
])


def aws_argument_spec():
    return dict(
        access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key", "ec2_access_key"],
                        fallback=(env_fallback, ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "EC2_ACCESS_KEY"]),
                        no_log=False),
        secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key", "ec2_secret_key"],
                        fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "EC2_SECRET_KEY"]),
                        no_log=True),
        session_token=dict(type="str", aliases=["aws_session_token", "security_token"],
                           fallback=(env_fallback, ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"]), no_log=True),
        profile=dict(type="str", aliases=["aws_profile"], fallback=(env_fallback, ["AWS_PROFILE"])),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url", "ec2_url"],
                          fallback=(env_fallback, ["AWS_ENDPOINT_URL", "AWS_URL", "EC2_URL"])),
        validate_certs=dict(type="bool", default=True),
        aws_ca_bundle=dict(type="path", fallback=(env_fallback, ["AWS_CA_BUNDLE"])),
        # amazon.aws's shared options: a play's module_defaults for group/cloudshift.migrate.aws (which extends
        # amazon.aws's group) sets them for both collections
        aws_config=dict(type="dict"),
        debug_botocore_endpoint_logs=dict(type="bool", default=False,
                                          fallback=(env_fallback, ["ANSIBLE_DEBUG_BOTOCORE_LOGS"])),
    )


def error_code(exc):
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def jittered_backoff(attempt, base=1.0, cap=30.0):
    """Seconds to wait before retry number ``attempt`` (0-based): full jitter, capped."""
    return random.uniform(0, min(cap, base * (2 ** attempt)))


def known_regions():
    """The regions botocore knows for EC2 (offline: from its bundled endpoint data)."""
    if not HAS_BOTO3:
        return []
    session = botocore.session.get_session()
    regions = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return sorted(regions)


def check_region(name, option):
    """Refuse a region name AWS does not have, before any call (a typo otherwise times out)."""
    regions = known_regions()
    if not name or (regions and name not in regions) or (not regions and not REGION_RE.match(name)):
        raise MigrateError("%s: unknown AWS region %r; one of: %s" % (option, name, ", ".join(regions)))


def describe_error(exc):
    """A one-line message for a boto3/botocore error, with AWS's own words; None if not one."""
    if not HAS_BOTO3:
        return None
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        details = {"error_code": error.get("Code")}
        request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
        if request_id:
            details["request_id"] = request_id
        return "%s (%s, in %s)" % (error.get("Message") or exc, error.get("Code"), exc.operation_name), details
    if isinstance(exc, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)):
        return ("no AWS credentials: give access_key and secret_key (or profile), or set AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY"), {}
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return "AWS profile not found: %s" % exc, {}
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return "cannot reach AWS: %s" % exc, {}
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return str(exc), {}
    return None


class AWSMigrateModule(MigrateModule):
    """Base for modules that talk to AWS through boto3: clients per region, counted calls."""

    def __init__(self):
        spec = aws_argument_spec()
        spec.update(self.argument_spec)
        self.argument_spec = spec
        super(AWSMigrateModule, self).__init__()
        if not HAS_BOTO3:
            self.module.fail_json(msg=missing_required_lib("boto3"))
        self._session = None
        self._clients = {}
        self.api_calls = 0

    @property
    def session(self):
        if self._session is None:
            p = self.params
            access_key, secret_key = p.get("access_key") or None, p.get("secret_key") or None
            if bool(access_key) != bool(secret_key):
                raise MigrateError("incomplete AWS credentials: give access_key and secret_key together "
                                   "(or neither, for a profile or an instance role)")
            self._session = boto3.session.Session(
                aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                aws_session_token=p.get("session_token") or None, profile_name=p.get("profile") or None)
        return self._session

    def client(self, service, region):
        """A boto3 client; every API call it makes is counted in ``api_calls``."""
        key = (service, region)
        if key not in self._clients:
            config = botocore.config.Config(retries=dict(mode="standard", max_attempts=8),
                                            max_pool_connections=50, user_agent_extra="cloudshift.migrate")
            if self.params.get("aws_config"):
                # the operator's botocore settings (timeouts, retries, proxies) win over the defaults above
                config = config.merge(botocore.config.Config(**self.params["aws_config"]))
            verify = self.params.get("aws_ca_bundle") or self.params.get("validate_certs")
            client = self.session.client(service, region_name=region, endpoint_url=self.params.get("endpoint_url"),
                                         verify=verify, config=config)
            client.meta.events.register("before-call", self._count_call)
            self._clients[key] = client
        return self._clients[key]

    def _count_call(self, **kwargs):
        self.api_calls += 1

    def check_credentials(self):
        """Fail clearly, before anything changes, when there are no credentials."""
        if self.session.get_credentials() is None:
            raise MigrateError(describe_error(botocore.exceptions.NoCredentialsError())[0])

    def translate_error(self, exc):
        translated = describe_error(exc)
        if translated is None:
            return None
        msg, details = translated
        return "AWS: %s" % msg, details
