# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    # How a module reaches an OpenStack cloud. Names match openstack.cloud's.
    DOCUMENTATION = r"""
options:
  cloud:
    description:
      - The name of a cloud in C(clouds.yaml) (found through E(OS_CLIENT_CONFIG_FILE) or the
        usual locations), or a dict with the same content as one cloud's entry there.
      - Secrets inside a dict are hidden from the output.
      - When neither O(cloud) nor O(auth) is given, the E(OS_*) environment variables are used.
    type: raw
  auth:
    description:
      - Authentication details, as in a C(clouds.yaml) C(auth) section (for example C(auth_url),
        C(username), C(password), C(project_name), C(user_domain_name), C(project_domain_name)).
      - Merged over the cloud's own C(auth) when O(cloud) is also given.
    type: dict
  auth_type:
    description:
      - The keystoneauth plugin, for example V(password), V(token) or V(v3applicationcredential).
    type: str
  region_name:
    description:
      - The region to use.
    type: str
  interface:
    description:
      - Which endpoint of the service catalog to talk to.
    type: str
    choices: [admin, internal, public]
    default: public
    aliases: [endpoint_type]
  validate_certs:
    description:
      - Whether to verify TLS certificates. Default is the cloud's setting, else V(true).
    type: bool
    aliases: [verify]
  ca_cert:
    description:
      - A CA bundle to verify the cloud's certificates with.
    type: path
    aliases: [cacert]
  client_cert:
    description:
      - A client certificate for TLS client authentication.
    type: path
    aliases: [cert]
  client_key:
    description:
      - The key of O(client_cert).
    type: path
    aliases: [key]
  api_timeout:
    description:
      - How many seconds a single API call may take.
    type: int
  wait:
    description:
      - Shared with openstack.cloud, so that a play's C(module_defaults) for C(group/cloudshift.migrate.openstack)
        serves both collections. This collection's modules always wait for their work (that is their point),
        bounded by their own O(timeout) where they have one.
    type: bool
    default: true
  timeout:
    description:
      - Shared with openstack.cloud - seconds a module may wait for its work. Modules that wait long (copies,
        streams, cleanups) set their own default.
    type: int
    default: 180
  sdk_log_path:
    description:
      - A file that openstacksdk logs to (as openstack.cloud's option).
    type: path
  sdk_log_level:
    description:
      - openstacksdk's log level (as openstack.cloud's option); V(DEBUG) logs every request.
    type: str
    default: INFO
    choices: [INFO, DEBUG]
requirements:
  - python >= 3.9
  - openstacksdk >= 1.0.0
"""
