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


@pytest.fixture(scope="session")
def lab():
    """The lab's clouds, up for the whole session."""
    started = subprocess.run(LAB + ["status"], stdout=subprocess.DEVNULL, check=False).returncode != 0
    if started:
        subprocess.run(LAB + ["up"], check=True)
    yield CLOUDS_YAML
    if started:
        subprocess.run(LAB + ["down"], check=True)


@pytest.fixture(scope="session")
def collection():
    """The collection synced where Ansible finds it."""
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
