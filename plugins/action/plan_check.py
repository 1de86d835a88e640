# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plan_check: the play's plan variables (and, strictly, a plan file) against schemas/plan.schema.json."""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

SCENARIOS = ("migrate_instance", "migrate_project", "migrate_aws_region", "migrate_site", "scan_host")
SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "schemas",
                      "plan.schema.json")


def coerce(value, schema):
    """A key=value string from the command line as the type the schema wants (bool, int, number)."""
    if not isinstance(value, str) or not isinstance(schema, dict):
        return value
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
    if "string" in kinds:
        return value
    if "boolean" in kinds and value.strip().lower() in BOOLEANS:
        return BOOLEANS[value.strip().lower()]
    if "integer" in kinds and value.strip().lstrip("-").isdigit():
        return int(value)
    if "number" in kinds:
        try:
            return float(value)
        except ValueError:
            return value
    return value


BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def describe(error):
    """A message naming the key path and the rule - never the value (it may be a secret)."""
    path = "/".join(str(p) for p in error.absolute_path) or "(the plan)"
    rule, expected = error.validator, error.validator_value
    if rule in ("required", "additionalProperties", "dependentRequired"):
        return "%s: %s" % (path, error.message)  # names keys only
    if rule == "type":
        return "%s: must be of type %s" % (path, " or ".join(expected) if isinstance(expected, list) else expected)
    if rule in ("enum", "const"):
        return "%s: must be %s %s" % (path, "one of" if rule == "enum" else "", json.dumps(expected))
    if rule in ("oneOf", "anyOf"):
        return "%s: matches none of the allowed forms" % path
    return "%s: fails %s %s" % (path, rule, json.dumps(expected))


class ActionModule(ActionBase):
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(changed=False, actions=[])
        args = self._task.args
        scenario = args.get("scenario")
        if scenario not in SCENARIOS:
            return dict(result, failed=True, msg="scenario must be one of %s" % ", ".join(SCENARIOS))
        try:
            import jsonschema
        except ImportError:
            return dict(result, failed=True, msg="plan_check needs the jsonschema Python package on the controller")
        path = args.get("schema") or SCHEMA
        try:
            with open(os.path.expanduser(path)) as handle:
                schema = json.load(handle)
        except (OSError, ValueError) as exc:
            return dict(result, failed=True, msg="cannot read the plan schema %s: %s" % (path, exc))
        validator_class = jsonschema.validators.validator_for(schema)
        strict = schema.get("$defs", {}).get(scenario)
        if strict is None:
            return dict(result, failed=True, msg="the schema has no scenario %s" % scenario)
        errors = []
        task_vars = task_vars or {}
        planned_for = task_vars.get("scenario")
        if planned_for is not None and planned_for != scenario:
            errors.append("scenario: this plan is for %s, not %s" % (planned_for, scenario))
        if args.get("plan_file"):
            try:
                from ansible.parsing.utils.yaml import from_yaml

                plan_path = os.path.abspath(os.path.expanduser(args["plan_file"]))
                with open(plan_path) as handle:
                    document = from_yaml(handle.read(), file_name=plan_path, json_only=False)
            except (OSError, AnsibleError) as exc:
                return dict(result, failed=True, msg="cannot read the plan %s: %s" % (args["plan_file"], to_text(exc)))
            if not isinstance(document, dict):
                return dict(result, failed=True, msg="the plan %s is not a mapping" % args["plan_file"])
            document = json.loads(json.dumps(document, default=to_text))
            if document.get("scenario") not in (None, scenario, planned_for):
                errors.append("scenario: the plan file is for %s, not %s" % (document.get("scenario"), scenario))
            errors.extend("plan file: " + describe(e) for e in
                          sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.absolute_path)))
        # The play's variables the scenario knows (from -e, -e @plan.yml or the inventory), templated.
        known = strict.get("properties", {})
        present = dict((name, coerce(self._templar.template(task_vars[name]), known[name]))
                       for name in known if name in task_vars)
        present.setdefault("plan_version", 1)
        present.setdefault("scenario", scenario)
        loose = dict(strict, additionalProperties=True)
        for error in sorted(validator_class(dict(loose, **{"$defs": schema.get("$defs", {})})).iter_errors(
                json.loads(json.dumps(present, default=to_text))), key=lambda e: list(e.absolute_path)):
            message = describe(error)
            if message not in errors and "plan file: " + message not in errors:
                errors.append(message)
        if errors:
            return dict(result, failed=True, errors=errors,
                        msg="the %s plan is not valid: %s" % (scenario, "; ".join(errors)))
        return dict(result, checked=sorted(present), msg="the %s plan is valid (%d keys)" % (scenario, len(present)))
