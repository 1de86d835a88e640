# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MigrateModule: the one base every cloudshift.migrate module builds on.

A module subclasses it (or a cloud's subclass), declares ``argument_spec`` and
``module_kwargs`` and implements ``run()``, which returns the module's own
result fields. The base gives every module the same contract:

* ``changed`` and ``actions``: each change goes through ``self.plan(text)``,
  which records what is (or, in check mode, would be) done and says whether to
  do it. In check mode ``actions`` is the plan; otherwise it is the audit log.
* ``ledger_entries``: what ``self.record(...)`` collected. The collection's
  action plugin writes them into the controller's ledger after the module
  returns (modules may run on a copy host that cannot see the ledger).
* errors: ``MigrateError`` and whatever ``translate_error`` recognises (the
  cloud subclasses map SDK exceptions) become one ``fail_json`` carrying the
  underlying API message, the actions taken so far, and no traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys
import threading
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudshift.migrate.plugins.module_utils.ledger import (
    ENTRY_FIELDS,
    STATUSES,
    find_secrets,
    utc_now,
)


class MigrateError(Exception):
    """An error to report as the module's failure; ``details`` join the result."""

    def __init__(self, msg, **details):
        super(MigrateError, self).__init__(msg)
        self.msg = msg
        self.details = details


class BackgroundCall:
    """Run ``function`` in a thread; ``result()`` joins and returns (or re-raises) its outcome.

    For slow set-up (imports, authentication) that can overlap a module's own work.
    ``check()`` raises at once if the call already failed, so that work can stop early.
    """

    def __init__(self, function):
        self._value = None
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(function,), name="background-call")
        self._thread.daemon = True
        self._thread.start()

    def _run(self, function):
        try:
            self._value = function()
        except BaseException:  # pylint: disable=broad-except
            self._error = sys.exc_info()[1]

    def check(self):
        if self._error is not None:
            raise self._error

    def result(self):
        self._thread.join()
        self.check()
        return self._value


def ledger_argument_spec():
    return dict(
        migration_id=dict(type="str"),
        ledger_dir=dict(type="path"),
    )


class _AnsibleModule(AnsibleModule):
    """AnsibleModule that hides the secrets nested in free-form options (a ``cloud`` dict of clouds.yaml
    content) before it logs its invocation: added after ``__init__`` they reached syslog unmasked."""

    nested_secrets = ()
    find_nested = None

    def _log_invocation(self):
        for name in self.nested_secrets:
            self.no_log_values.update(self.find_nested(self.params.get(name)))
        super(_AnsibleModule, self)._log_invocation()


class MigrateModule:
    argument_spec = {}
    module_kwargs = {}
    # free-form options whose nested credential-like values are secrets, and the function that finds them
    nested_secrets = ()
    find_nested = None

    def __init__(self):
        spec = ledger_argument_spec()
        spec.update(self.argument_spec)
        module_class = AnsibleModule
        if self.nested_secrets:
            module_class = type("MigrateAnsibleModule", (_AnsibleModule,), dict(
                nested_secrets=tuple(self.nested_secrets), find_nested=staticmethod(type(self).find_nested)))
        self.module = module_class(argument_spec=spec, supports_check_mode=True, **self.module_kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.changed = False
        self.actions = []
        self.ledger_entries = []

    def plan(self, action):
        """Note a change; return True when it should really be made (not check mode)."""
        self.actions.append(action)
        self.changed = True
        return not self.check_mode

    def record(self, entry_type, source_id, **fields):
        """Queue a ledger entry for the controller (ignored in check mode)."""
        unknown = set(fields) - set(ENTRY_FIELDS) - set(["key"])
        if unknown:
            raise MigrateError("internal error: unknown ledger fields %s" % ", ".join(sorted(unknown)))
        if fields.get("status") not in (None,) + STATUSES:
            raise MigrateError("internal error: bad ledger status %r" % fields.get("status"))
        entry = dict(type=entry_type, source_id=str(source_id))
        entry.update((name, value) for name, value in fields.items() if value is not None)
        if entry.get("status") == "running" and "started" not in entry:
            entry["started"] = utc_now()  # the entries reach the ledger when the task ends: keep when it began
        secrets = find_secrets(entry)
        if secrets:
            raise MigrateError("internal error: refusing to send secrets to the ledger: %s" % ", ".join(secrets))
        if not self.check_mode:
            self.ledger_entries.append(entry)

    def warn(self, message):
        self.module.warn(message)

    def fail(self, msg, **details):
        self.module.fail_json(
            msg=msg, changed=self.changed, actions=self.actions, ledger_entries=self.ledger_entries, **details
        )

    def exit(self, **result):
        self.module.exit_json(
            changed=self.changed, actions=self.actions, ledger_entries=self.ledger_entries, **result
        )

    def translate_error(self, exc):
        """Return ``(msg, details)`` for an exception this module understands, else None."""
        return None

    def run(self):
        raise NotImplementedError

    def execute(self):
        try:
            result = self.run() or {}
        except MigrateError as exc:
            self.fail(exc.msg, **exc.details)
        except Exception as exc:  # pylint: disable=broad-except
            translated = self.translate_error(exc)
            if translated is None:
                # A bug or an unforeseen failure: say what it was, keep the traceback for -vvv.
                self.fail("unexpected error: %s: %s" % (type(exc).__name__, exc), exception=traceback.format_exc())
            msg, details = translated
            self.fail(msg, **details)
        self.exit(**result)

    @classmethod
    def main(cls):
        cls().execute()
