# -*- coding: utf-8 -*-
"""Helpers to run a module's main() in-process and capture its JSON result."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args


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
