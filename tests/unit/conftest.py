# -*- coding: utf-8 -*-
"""Helpers to run a module's main() in-process and capture its JSON result."""

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Undo pytest-ansible's change to ANSIBLE_COLLECTIONS_PATH (it appends ~/.ansible/collections when it
    starts in a collection): ansible-test's workers want the single path ansible-test set, and without it
    every worker fails to import this file and the controller tests silently do not run."""
    value = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "")
    if os.pathsep in value:
        os.environ["ANSIBLE_COLLECTIONS_PATH"] = value.split(os.pathsep)[0]


class ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg", "module exited"))
        self.result = result


@pytest.fixture
def run_module(monkeypatch, capsys):
    """run_module(main, args) -> the result dict the module printed (failed or not)."""

    def runner(main, args):
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                main()
        out = capsys.readouterr().out
        return json.loads(out)

    return runner
