# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``cloudshift.migrate.ledger`` module's argument spec, shared with its action plugin."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import STATUSES


def argument_spec():
    return dict(
        migration_id=dict(type="str", required=True),
        ledger_dir=dict(type="path"),
        operation=dict(type="str", default="record", choices=["record", "get", "list", "mark_cleaned"]),
        key=dict(type="str", no_log=False),
        type=dict(type="str"),
        source_id=dict(type="str"),
        destination_id=dict(type="str"),
        phase=dict(type="str"),
        status=dict(type="list", elements="str", choices=list(STATUSES)),
        checksum=dict(type="str"),
        bytes=dict(type="int"),
        seconds=dict(type="float"),
        started=dict(type="str"),
        data=dict(type="dict"),
        entries=dict(type="list", elements="dict"),
    )


def module_kwargs():
    return dict(
        mutually_exclusive=[("entries", "key"), ("entries", "type"), ("entries", "source_id")],
    )
