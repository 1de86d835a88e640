# -*- coding: utf-8 -*-
"""The AWX/AAP objects as code (awx/cloudshift-migrate.json): what AWX checks when it imports them,
that every survey answer is a valid plan, and a job template launched the way AWX launches it."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import ansible_runner
import jinja2
import jsonschema
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMPORT_FILE = os.path.join(ROOT, "awx", "cloudshift-migrate.json")
PROJECT = os.path.join(ROOT, "awx", "project")

# AWX's survey question types and the Python type of their defaults (its survey_spec endpoint).
SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "integer": int, "float": (float, int),
                "multiplechoice": str, "multiselect": str}


@pytest.fixture(scope="module")
def assets():
    with open(IMPORT_FILE) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def schema():
    with open(os.path.join(ROOT, "schemas", "plan.schema.json")) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def plan_check():
    """The coercion plan_check applies to strings (a survey's answers are strings, like -e key=value)."""
    spec = importlib.util.spec_from_file_location("plan_check", os.path.join(ROOT, "plugins", "action", "plan_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def survey_errors(survey):
    """AWX's checks of a survey spec (POST .../survey_spec/), as its API makes them."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append("survey %s must be %s" % (field, kind.__name__))
    if errors or not survey["spec"]:
        return errors or ["spec has no questions"]
    seen = set()
    for index, item in enumerate(survey["spec"]):
        for field in ("type", "question_name", "variable", "required"):
            if field not in item:
                errors.append("%d: %s missing" % (index, field))
            elif not isinstance(item[field], bool if field == "required" else str):
                errors.append("%d: %s has the wrong type" % (index, field))
        if item.get("variable") in seen:
            errors.append("%d: variable %s twice" % (index, item["variable"]))
        seen.add(item.get("variable"))
        kind = item.get("type")
        if kind not in SURVEY_TYPES:
            errors.append("%d: type %s" % (index, kind))
            continue
        if item.get("default", "") != "" and not isinstance(item["default"], SURVEY_TYPES[kind]):
            errors.append("%d: default of the wrong type" % index)
        for bound in ("min", "max"):
            if item.get(bound) is not None and not isinstance(item[bound], int):
                errors.append("%d: %s is not an integer" % (index, bound))
        if kind in ("multiplechoice", "multiselect"):
            if not item.get("choices"):
                errors.append("%d: no choices" % index)
            elif "default" in item and item["default"] not in item["choices"]:
                errors.append("%d: default not a choice" % index)
        if isinstance(item.get("default"), str) and item["default"].startswith("$encrypted$"):
            errors.append("%d: $encrypted$ default" % index)
    return errors


def launch_vars(template, answers, credential_extra_vars=None):
    """The extra variables of a job AWX launches from this template: its extra_vars, the survey's
    defaults for unanswered questions, the answers (typed as AWX types them) and the credential's."""
    result = yaml.safe_load(template["extra_vars"]) or {}
    for item in template["related"]["survey_spec"]["spec"]:
        name = item["variable"]
        if name in answers:
            result[name] = answers[name]
        elif "default" in item:
            result[name] = item["default"]
    result.update(credential_extra_vars or {})
    return result


def render(text, context):
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(context)


def inject(credential_type, inputs, folder):
    """What AWX does with a credential of this type: its files written, its env and extra_vars rendered."""
    injectors = credential_type["injectors"]
    context = dict((field["id"], "") for field in credential_type["inputs"]["fields"])
    context.update(inputs)
    filenames = {}
    for key, template in injectors.get("file", {}).items():
        name = key.split(".", 1)[1]
        path = os.path.join(folder, "credential-" + name)
        with open(path, "w") as handle:
            handle.write(render(template, context))
        os.chmod(path, 0o600)
        filenames[name] = path
    context["tower"] = {"filename": filenames}
    env = dict((key, render(value, context)) for key, value in injectors.get("env", {}).items())
    extra_vars = dict((key, render(value, context)) for key, value in injectors.get("extra_vars", {}).items())
    return env, extra_vars


def by_name(assets, kind, name):
    return [item for item in assets[kind] if item["name"] == name][0]


def test_import_file_is_written_by_its_generator():
    """awx/cloudshift-migrate.json is hack/awx-assets' output for the current schema."""
    subprocess.run([os.path.join(ROOT, "hack", "awx-assets"), "--check"], check=True)


def test_import_file_is_what_awx_import_reads(assets):
    assert sorted(assets) == ["credential_types", "execution_environments", "inventory", "job_templates", "projects"]
    types = {"credential_types": "credential_type", "execution_environments": "execution_environment",
             "inventory": "inventory", "job_templates": "job_template", "projects": "project"}
    for kind, items in assets.items():
        for item in items:
            assert item["natural_key"]["type"] == types[kind] and item["natural_key"]["name"] == item["name"]
    project = assets["projects"][0]
    templates = assets["job_templates"]
    # One job template per scenario, each running its playbook in the project.
    scenarios = json.load(open(os.path.join(ROOT, "schemas", "plan.schema.json")))["properties"]["scenario"]["enum"]
    assert sorted(t["playbook"] for t in templates) == sorted("%s.yml" % name for name in scenarios)
    for template in templates:
        assert template["project"] == project["natural_key"]
        assert template["inventory"] == assets["inventory"][0]["natural_key"]
        assert template["execution_environment"] == assets["execution_environments"][0]["natural_key"]
        assert os.path.exists(os.path.join(PROJECT, template["playbook"]))
        playbook = yaml.safe_load(open(os.path.join(PROJECT, template["playbook"])))
        assert playbook[0]["ansible.builtin.import_playbook"] == "cloudshift.migrate." + template["playbook"][:-4]
        assert survey_errors(template["related"]["survey_spec"]) == [], template["name"]
        assert template["survey_enabled"] and template["ask_variables_on_launch"]
    # No secret in the file: the credentials are picked at launch.
    text = json.dumps(assets)
    assert "password" not in text.replace('"type": "password"', "")


def test_cleanup_runs_only_when_asked_for_by_name(assets):
    """A template launched without tags runs every phase but cleanup (it skips the tag; the operator clears it)."""
    for template in assets["job_templates"]:
        assert template["skip_tags"] == "cleanup" and template["ask_skip_tags_on_launch"], template["name"]
        assert "job tags cleanup" in template["description"]


def test_credential_types_keep_secrets_out_of_the_environment(assets):
    for credential_type in assets["credential_types"]:
        fields = credential_type["inputs"]["fields"]
        ids = [field["id"] for field in fields]
        assert credential_type["kind"] in ("cloud", "net")
        assert set(credential_type["inputs"]["required"]) <= set(ids)
        assert all(field["type"] in ("string", "boolean") for field in fields)
        secrets = [field["id"] for field in fields if field.get("secret")]
        assert secrets, credential_type["name"]
        injectors = credential_type["injectors"]
        # A secret reaches the job only through a file: the environment and extra variables (which
        # ansible-runner and AWX record) hold paths.
        for value in list(injectors.get("env", {}).values()) + list(injectors.get("extra_vars", {}).values()):
            assert value.startswith("{{ tower.filename."), (credential_type["name"], value)
            assert not [secret for secret in secrets if secret in value]
        referenced = set(value.split("tower.filename.")[1].split()[0] for value in
                         list(injectors.get("env", {}).values()) + list(injectors.get("extra_vars", {}).values()))
        assert referenced == set(key.split(".", 1)[1] for key in injectors["file"]), credential_type["name"]


def test_every_survey_answer_is_a_valid_plan(assets, schema, plan_check, tmp_path):
    """Each template launched with its defaults, and with every choice of every question, is a plan
    plan_check accepts: a survey cannot start a job that the playbook's first task refuses."""
    examples = {"source": "old-cloud", "destination": "new-cloud", "instance": "web01, web02", "archive_dir": "/srv/a",
                "source_region": "us-east-1", "destination_region": "eu-west-1", "instances": "i-1,i-2",
                "migration_id": "move-1", "project": "shop", "volumes": "data1,data2", "usage_start": "2026-01",
                "usage_end": "2026-06", "stack_name": "shop-move", "kms_key_id": "alias/shop",
                "target": "web01", "compare_host": "web01-old", "phase": "prepare"}
    site = by_name(assets, "credential_types", "cloudshift site definition")
    for template in assets["job_templates"]:
        scenario = template["playbook"][:-4]
        strict = schema["$defs"][scenario]
        properties = strict["properties"]
        survey = template["related"]["survey_spec"]["spec"]
        extra = {}
        if scenario == "migrate_site":
            unused, extra = inject(site, {"site_yaml": "database: {}\n"}, str(tmp_path))
        required = dict((q["variable"], examples[q["variable"]]) for q in survey if q["required"])
        # "One of these" (the project's volumes, volume_metadata or all_volumes) a survey cannot
        # require: the operator answers one; here the first the survey asks.
        choices = strict.get("anyOf", []) + strict.get("oneOf", [])
        for alternatives in choices[:1]:
            asked = [name for name in alternatives["required"] if name in examples and
                     name in [q["variable"] for q in survey]]
            required.update((name, examples[name]) for name in asked[:1])

        def answered(name, value):
            """The required answers and this one; answering one of the alternatives replaces the others."""
            others = set(key for alternatives in choices for key in alternatives["required"]) - {name}
            if value != "false" and any(name in alternatives["required"] for alternatives in choices):
                return dict(dict((k, v) for k, v in required.items() if k not in others), **{name: value})
            return dict(required, **{name: value})

        launches = [launch_vars(template, required, extra)]
        for item in survey:
            for choice in item.get("choices", []):
                answer = item["choices"] if item["type"] == "multiselect" else choice
                launches.append(launch_vars(template, answered(item["variable"], answer), extra))
            if item["type"] in ("text", "integer", "float") and not item["required"]:
                value = examples.get(item["variable"], item.get("min", 2) if item["type"] != "text" else "/srv/x")
                launches.append(launch_vars(template, answered(item["variable"], value), extra))
        for extra_vars in launches:
            plan = dict((name, plan_check.coerce(value, properties.get(name))) for name, value in extra_vars.items())
            plan.update(plan_version=1, scenario=scenario)
            errors = [error.message for error in jsonschema.Draft202012Validator(
                dict(strict, **{"$defs": schema["$defs"]})).iter_errors(plan)]
            assert errors == [], (template["name"], extra_vars)
        # Every survey variable is one the scenario knows, typed as its schema says.
        assert set(q["variable"] for q in survey) <= set(properties)


def test_scan_job_template_launched_as_awx_launches_it(assets, collection, tmp_path):
    """The scan_host template through ansible-runner: its project's playbook, its inventory, the
    survey's answers on top of its defaults; twice, the second run comparing with the first."""
    template = [t for t in assets["job_templates"] if t["playbook"] == "scan_host.yml"][0]
    private = tmp_path / "job"
    shutil.copytree(PROJECT, str(private / "project"))
    (private / "inventory").mkdir(parents=True)
    host = assets["inventory"][0]["related"]["hosts"][0]
    (private / "inventory" / "hosts.json").write_text(json.dumps(
        {"all": {"hosts": {host["name"]: json.loads(host["variables"])}}}))
    (private / "env").mkdir()
    (private / "env" / "envvars").write_text(json.dumps({
        "ANSIBLE_COLLECTIONS_PATH": collection,
        "CLOUDSHIFT_LEDGER_DIR": str(tmp_path / "ledgers"),
    }))
    # The survey offers a scan directory on a volume every job mounts; here, a directory of the test's.
    assert launch_vars(template, {})["scan_dir"] == "/var/lib/cloudshift/scans"
    scans = tmp_path / "scans"
    answers = {"target": "localhost", "scan_categories": ["packages", "users", "groups"], "scan_dir": str(scans),
               "scan_package_verify": "none", "rebuild": "false", "migration_id": "awx-scan"}
    extravars = launch_vars(template, answers)
    assert extravars["rebuild"] == "false"  # as AWX sends a multiple choice
    for number in (1, 2):
        run = ansible_runner.run(private_data_dir=str(private), playbook=template["playbook"], quiet=True,
                                 extravars=copy.deepcopy(extravars))
        assert run.status == "successful", run.stdout.read()
        tasks = [event["event_data"].get("task") for event in run.events if event["event"] == "runner_on_ok"]
        assert "Check the plan against the collection's schema" in tasks and "Scan the host" in tasks
        scan = json.loads((scans / "localhost" / ("scan-%d.json" % number)).read_text())
        assert scan["packages"] and scan["users"] and "unowned_files" not in scan
    assert (scans / "localhost" / "compare-1-2.md").exists()
    ledger = json.loads((tmp_path / "ledgers" / "awx-scan.json").read_text())
    assert set(entry["type"] for entry in ledger["entries"].values()) == {"host_scan"}
    # A survey answer the schema refuses stops the job at its first task, naming the question.
    bad = ansible_runner.run(private_data_dir=str(private), playbook=template["playbook"], quiet=True,
                             extravars=launch_vars(template, dict(answers, scan_package_verify="most")))
    assert bad.status == "failed"
    assert "scan_package_verify" in bad.stdout.read()


def test_openstack_credential_type_gives_a_clouds_file(assets, lab, tmp_path):
    """The OpenStack credential type, injected as AWX injects it, gives openstacksdk both clouds."""
    credential_type = by_name(assets, "credential_types", "cloudshift OpenStack clouds")
    env, extra = inject(credential_type, {"clouds_yaml": open(lab).read()}, str(tmp_path))
    assert extra == {} and list(env) == ["OS_CLIENT_CONFIG_FILE"]
    listed = subprocess.run(
        [sys.executable, "-c", "import openstack; print(sorted(c.name for c in openstack.config.OpenStackConfig()"
                               ".get_all() if c.name.startswith('lab-')))"],
        env=dict(os.environ, **env), check=True, capture_output=True, text=True).stdout
    assert "lab-destination" in listed and "lab-source" in listed
    assert oct(os.stat(env["OS_CLIENT_CONFIG_FILE"]).st_mode & 0o777) == "0o600"


def test_aws_credential_type_gives_a_credentials_file(assets, tmp_path):
    credential_type = by_name(assets, "credential_types", "cloudshift AWS credentials file")
    env, unused = inject(credential_type, {"access_key": "AKIAEXAMPLE", "secret_key": "s3cr3t-value"}, str(tmp_path))
    import configparser

    parser = configparser.ConfigParser()
    parser.read(env["AWS_SHARED_CREDENTIALS_FILE"])
    assert dict(parser["default"]) == {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "s3cr3t-value"}
    assert "s3cr3t-value" not in json.dumps(env)


def test_every_question_type_is_exercised(assets):
    kinds = set(item["type"] for template in assets["job_templates"]
                for item in template["related"]["survey_spec"]["spec"])
    assert {"text", "integer", "multiplechoice", "multiselect"} <= kinds
    for template in assets["job_templates"]:
        # A phase at a time, a check-mode plan first, the operator's inventory and credentials.
        assert all(template[ask] for ask in ("ask_tags_on_launch", "ask_job_type_on_launch",
                                             "ask_inventory_on_launch", "ask_credential_on_launch"))
        questions = [q["variable"] for q in template["related"]["survey_spec"]["spec"]]
        assert ("scan_dir" if template["playbook"] == "scan_host.yml" else "ledger_dir") in questions
