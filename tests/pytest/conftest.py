# -*- coding: utf-8 -*-
"""Tests that cross real wires: the lab's clouds, ansible-runner, pytest-ansible.

`make test` starts the lab once for the whole session (hack/test); run alone, these
tests start it themselves when it is down and stop it again at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = [sys.executable, os.path.join(ROOT, "lab", "labctl.py")]
CLOUDS_YAML = os.path.join(ROOT, ".lab", "clouds.yaml")
COLLECTIONS = os.path.join(ROOT, ".build", "collections")


def pytest_configure(config):
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", CLOUDS_YAML)
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
    os.environ.setdefault("ANSIBLE_PYTHON_INTERPRETER", sys.executable)


def kill_tree(pid):
    """SIGKILL a process and everything below it (Ansible runs modules in sessions of their own)."""
    import signal

    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [pid], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    for each in found:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_module(host, module, args, inventory=None, check=False, env=None):
    """One module on one host through ``ansible`` (ad hoc); returns the host's result (a dict)."""
    import json

    command = ["ansible", host, "-m", module, "-a", json.dumps(args)]
    if inventory:
        command += ["-i", str(inventory)]
    full_env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    full_env.update(env or {})
    out = subprocess.run(command + (["--check"] if check else []), env=full_env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=False)
    try:
        return json.loads(out.stdout[out.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"][host]
    except (ValueError, KeyError):
        raise AssertionError(out.stdout[-3000:] + out.stderr[-3000:])


def _in_parallel():
    """hack/pytest-parallel runs two pytest processes on one lab: neither stops it."""
    return bool(os.environ.get("CLOUDSHIFT_PYTEST_PARALLEL"))


@pytest.fixture(scope="session")
def lab():
    """The lab's clouds, up for the whole session (left up at the end when two sessions share it)."""
    import fcntl

    os.makedirs(os.path.join(ROOT, ".lab"), exist_ok=True)
    with open(os.path.join(ROOT, ".lab", "pytest-lab.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one session starts it, the other waits
        started = subprocess.run(LAB + ["status"], stdout=subprocess.DEVNULL, check=False).returncode != 0
        if started:
            subprocess.run(LAB + ["up"], check=True)
    yield CLOUDS_YAML
    if started and not _in_parallel():
        subprocess.run(LAB + ["down"], check=True)


@pytest.fixture(scope="session")
def collection():
    """The collection synced where Ansible finds it (hack/test syncs it once, before the sessions start)."""
    if not os.environ.get("CLOUDSHIFT_COLLECTION_SYNCED"):
        subprocess.run([os.path.join(ROOT, "hack", "sync-collection")], check=True, stdout=subprocess.DEVNULL)
    return COLLECTIONS


@pytest.fixture(scope="session")
def lab_secrets(lab):
    """Every password the lab holds: tests assert none of them leaks."""
    import json

    with open(os.path.join(ROOT, ".lab", "secrets.json")) as handle:
        return [value for value in _strings(json.load(handle)) if len(value) >= 8]


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


@pytest.fixture(scope="session")
def aws_lab():
    """The lab's moto server (AWS), up for the session; its endpoint and keys in os.environ."""
    started = subprocess.run(LAB + ["status", "moto"], stdout=subprocess.DEVNULL, check=False).returncode != 0
    if started:
        subprocess.run(LAB + ["up", "moto"], check=True)
    with open(os.path.join(ROOT, ".lab", "aws.env")) as handle:
        env = dict(line.strip().split("=", 1) for line in handle if "=" in line)
    saved = dict((key, os.environ.get(key)) for key in env)
    os.environ.update(env)
    yield Moto(env["AWS_ENDPOINT_URL"])
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if started:
        subprocess.run(LAB + ["down", "moto"], check=True)


class Moto:
    """The lab extension's control endpoints (lab/aws/motolab.py)."""

    def __init__(self, url):
        self.url = url

    def _call(self, method, path, payload=None):
        import json
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + "/cloudshift-lab/" + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def reset(self, **config):
        self._call("POST", "reset")
        if config:
            self.configure(**config)

    def configure(self, **config):
        return self._call("POST", "config", config)

    def requests(self, action=None):
        found = self._call("GET", "requests")
        return [r for r in found if action is None or r["action"] == action]

    def clear_requests(self):
        self._call("DELETE", "requests")

    def client(self, service, region):
        import boto3

        return boto3.client(service, region_name=region)


@pytest.fixture(scope="session")
def site_lab():
    """The lab's site (three MariaDB servers, two web backends, HAProxy), up for the session."""
    started = subprocess.run(LAB + ["status", "site"], stdout=subprocess.DEVNULL, check=False).returncode != 0
    if started:
        subprocess.run(LAB + ["up", "site"], check=True)
    yield os.path.join(ROOT, ".lab", "site.json")
    if started:
        subprocess.run(LAB + ["down", "site"], check=True)
