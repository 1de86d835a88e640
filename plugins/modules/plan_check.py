#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: plan_check
short_description: Check a migration plan (the play's variables, or a plan file) against the collection's JSON Schema
version_added: 0.1.0
description:
  - A migration plan is a YAML file whose keys are a scenario playbook's variables, plus C(plan_version) and
    C(scenario) - so C(ansible-playbook cloudshift.migrate.<scenario> -e @plan.yml) runs it. Its JSON Schema is
    C(schemas/plan.schema.json) in the collection.
  - Every scenario playbook runs this first. It checks the variables of the play that the scenario knows
    (types, allowed values, required ones) and refuses a plan written for another scenario. With O(plan_file) it
    also checks the file itself, strictly - an unknown key (a typo such as C(flavour_map)) is refused.
  - Messages name the key and the rule, never the value (a plan may hold passwords).
  - Runs on the controller; changes nothing.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  scenario:
    description: The scenario the plan is for.
    type: str
    required: true
    choices: [migrate_instance, migrate_project, migrate_aws_region, migrate_site, scan_host]
  plan_file:
    description: A plan file on the controller to check strictly (its keys, and the variables it sets).
    type: path
  schema:
    description: Another JSON Schema file. Default - the collection's C(schemas/plan.schema.json).
    type: path
requirements:
  - jsonschema (Python, on the controller)
extends_documentation_fragment:
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Check the plan before anything else
  cloudshift.migrate.plan_check:
    scenario: migrate_instance
    plan_file: "{{ plan_file | default(omit) }}"
"""

RETURN = r"""
checked:
  description: The plan's keys that were checked (their values are not returned).
  returned: success
  type: list
  elements: str
errors:
  description: What is wrong - the key path and the rule it breaks.
  returned: failure
  type: list
  elements: str
actions:
  description: Always empty; nothing is changed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    scenarios = ["migrate_instance", "migrate_project", "migrate_aws_region", "migrate_site", "scan_host"]
    module = AnsibleModule(argument_spec=dict(scenario=dict(type="str", required=True, choices=scenarios),
                                              plan_file=dict(type="path"), schema=dict(type="path")),
                           supports_check_mode=True)
    module.fail_json(msg="cloudshift.migrate.plan_check runs on the controller as an action plugin", actions=[])


if __name__ == "__main__":
    main()
