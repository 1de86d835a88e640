# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    # How a module reaches AWS. Names (and environment variables) match amazon.aws's, so that
    # module_defaults for group/cloudshift.migrate.aws serves both collections.
    DOCUMENTATION = r"""
options:
  access_key:
    description:
      - AWS access key id. Default from E(AWS_ACCESS_KEY_ID), then boto3's usual sources
        (profile, instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key, ec2_access_key]
  secret_key:
    description:
      - AWS secret access key. Default from E(AWS_SECRET_ACCESS_KEY). Never shown in output.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key, ec2_secret_key]
  session_token:
    description:
      - AWS session token for temporary credentials. Default from E(AWS_SESSION_TOKEN).
    type: str
    aliases: [aws_session_token, security_token]
  profile:
    description:
      - A named profile of the AWS configuration files. Default from E(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
  endpoint_url:
    description:
      - Another endpoint for the AWS APIs (a test server such as the lab's moto). Default from
        E(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url, ec2_url]
  validate_certs:
    description:
      - Verify TLS certificates of the endpoints.
    type: bool
    default: true
  aws_ca_bundle:
    description:
      - A CA bundle to verify the endpoints with. Default from E(AWS_CA_BUNDLE).
    type: path
  aws_config:
    description:
      - botocore configuration (as amazon.aws's option), for example C(connect_timeout), C(read_timeout), C(retries),
        C(proxies); it wins over the module's own defaults (standard retries, 8 attempts).
    type: dict
  debug_botocore_endpoint_logs:
    description:
      - Shared with amazon.aws, so that a play's C(module_defaults) for C(group/cloudshift.migrate.aws) serves both
        collections. This collection's modules report the number of API calls they made instead.
    type: bool
    default: false
requirements:
  - boto3 >= 1.34.0
  - botocore >= 1.34.0
"""
