#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: quota_check
short_description: Refuse a migration that would not fit in the destination project's quotas
version_added: 0.1.0
description:
  - Reads the project's absolute limits from Nova and Cinder (the C(/limits) APIs, readable by any
    project member) and fails, listing every shortage, when what a migration needs does not fit.
  - Run it before creating anything at the destination, so that a migration stops before it
    half-happens. Changes nothing; check mode does the same.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  need:
    description:
      - What the migration will create. Keys - C(instances), C(cores), C(ram) (MiB), C(volumes),
        C(gigabytes), C(snapshots); each a number >= 0.
    type: dict
    required: true
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Refuse when the destination project is too small
  cloudshift.migrate.quota_check:
    cloud: new-provider
    need:
      instances: 3
      cores: 6
      ram: 12288
      volumes: 5
      gigabytes: 120
"""

RETURN = r"""
actions:
  description: Always empty; the module changes nothing.
  returned: always
  type: list
  elements: str
ledger_entries:
  description: Always empty; the module records nothing.
  returned: always
  type: list
  elements: dict
free:
  description: Units free per quota asked about (null when unlimited).
  returned: success
  type: dict
  sample: {instances: 7, volumes: null}
shortages:
  description: What does not fit (on failure).
  returned: failure
  type: list
  elements: str
"""

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule
from ansible_collections.cloudshift.migrate.plugins.module_utils.quota import room


class QuotaCheck(OpenStackMigrateModule):
    argument_spec = dict(need=dict(type="dict", required=True))

    def run(self):
        need = {}
        for key, value in self.params["need"].items():
            try:
                need[key] = int(value)
            except (TypeError, ValueError):
                raise MigrateError("need.%s must be a number, not %r" % (key, value))
        free, shortages = room(self.conn, need)
        if shortages:
            raise MigrateError("the destination project is too small: %s" % "; ".join(shortages),
                               free=free, shortages=shortages)
        return dict(free=free)


def main():
    QuotaCheck.main()


if __name__ == "__main__":
    main()
