# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fastly's API, the part a backend switch needs: clone the active version, change backends,
validate, activate; a rollback activates the previous version. A switch can be staged ahead
(a validated draft version, not activated), so that the flip itself is one activation.

Built on Fastly's documented API (service details, version clone/validate/activate, backends).
Tested against the lab's local stand-in (lab/fastly/standin.py), not against Fastly itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError


# Answers worth another try: rate limited (429, the request was not processed), or the service busy (5xx).
RETRY_STATUS = (429, 500, 502, 503, 504)


class Fastly:
    def __init__(self, api_url, token, service_id, timeout=30, attempts=4, sleep=time.sleep):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.service_id = service_id
        self.timeout = timeout
        self.attempts = attempts
        self.sleep = sleep

    def call(self, method, path, data=None, idempotent=True):
        """One API call, retried with jittered backoff (Retry-After honoured) on 429 and 5xx; a call that is not
        idempotent (a clone: a retry after a 5xx could make a second version) only on 429."""
        for attempt in range(self.attempts):
            try:
                return self._call(method, path, data)
            except MigrateError as exc:
                status = exc.details.get("status_code")
                wait = exc.details.pop("retry_after", None)
                retry = status == 429 or (idempotent and status in RETRY_STATUS)
                if not retry or attempt == self.attempts - 1:
                    raise
                self.sleep(wait if wait is not None else random.uniform(0, min(8.0, 0.5 * 2 ** attempt)))
        raise MigrateError("Fastly: no attempt left")  # not reached

    def _call(self, method, path, data=None):
        url = "%s/service/%s%s" % (self.api_url, quote(self.service_id, safe=""), path)
        headers = {"Fastly-Key": self.token, "Accept": "application/json"}
        body = None
        if data is not None:
            body = urlencode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            response = open_url(url, method=method, data=body, headers=headers, timeout=self.timeout)
            return json.loads(response.read() or b"null")
        except HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
                detail = "%s %s" % (detail.get("msg", ""), detail.get("detail", ""))
            except ValueError:
                detail = ""
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            raise MigrateError("Fastly: %s %s answered %s: %s" % (method, path or "/", exc.code, detail.strip()),
                               status_code=exc.code,
                               retry_after=min(60.0, float(retry_after)) if retry_after and retry_after.isdigit()
                               else None)
        except (URLError, OSError) as exc:
            raise MigrateError("cannot reach Fastly's API at %s: %s" % (self.api_url, exc))

    def details(self):
        details = self.call("GET", "/details")
        if not details.get("active_version"):
            raise MigrateError("Fastly service %s has no active version" % self.service_id)
        return details

    def active_version(self):
        return int(self.details()["active_version"])

    @staticmethod
    def draft(details):
        """The newest version after the active one that is neither active nor locked (editable), or None."""
        active = int(details["active_version"])
        drafts = [int(v["number"]) for v in details.get("versions") or []
                  if int(v["number"]) > active and not v.get("active") and not v.get("locked")]
        return max(drafts) if drafts else None

    def backends(self, version):
        return dict((b["name"], b) for b in self.call("GET", "/version/%d/backend" % version))

    def clone(self, version):
        return int(self.call("PUT", "/version/%d/clone" % version, idempotent=False)["number"])

    def set_backend(self, version, name, address, port=None):
        data = {"address": address}
        if port:
            data["port"] = int(port)
        return self.call("PUT", "/version/%d/backend/%s" % (version, quote(name, safe="")), data)

    def validate(self, version):
        result = self.call("GET", "/version/%d/validate" % version)
        if result.get("status") != "ok":
            raise MigrateError("Fastly rejected version %d: %s" % (version, "; ".join(
                str(e) for e in result.get("errors") or []) or result.get("msg") or result))

    def activate(self, version):
        return self.call("PUT", "/version/%d/activate" % version)
