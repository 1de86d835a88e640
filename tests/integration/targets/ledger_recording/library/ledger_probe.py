#!/usr/bin/python
# -*- coding: utf-8 -*-
# A test module on MigrateModule: "creates" named things and queues ledger entries.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ledger_probe
short_description: Test module for the ledger-recording action plugin
description: Test module for the ledger-recording action plugin.
author: cloudshift.migrate engineers (@cloudshift)
options:
  names:
    description: Things to pretend to create.
    type: list
    elements: str
    required: true
  fail:
    description: Fail after queueing the entries.
    type: bool
    default: false
extends_documentation_fragment:
  - cloudshift.migrate.ledger
"""

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError, MigrateModule


class LedgerProbe(MigrateModule):
    argument_spec = dict(names=dict(type="list", elements="str", required=True), fail=dict(type="bool", default=False))

    def run(self):
        for name in self.params["names"]:
            if self.plan("create %s" % name):
                self.record("thing", name, destination_id="new-" + name, phase="transfer", status="done")
        if self.params["fail"]:
            self.record("thing", "half-done", phase="transfer", status="failed")
            raise MigrateError("failed on purpose")
        return {}


if __name__ == "__main__":
    LedgerProbe.main()
