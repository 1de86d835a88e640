# -*- coding: utf-8 -*-
"""Fastly's retries against a fake HTTP server (the lab's stand-in covers the documented sequence)."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.traffic.fastly import Fastly


def serve(answers):
    """A server answering each request with the next (status, body) of ``answers``; records the requests."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self):
            seen.append((self.command, self.path))
            status, body = answers.pop(0)
            data = json.dumps(body).encode()
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = answer

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % server.server_port, seen


def test_fastly_retries_429_and_5xx_then_succeeds():
    url, seen = serve([(429, {}), (503, {"msg": "busy"}), (200, {"active_version": 3})])
    waits = []
    api = Fastly(url, "token", "svc", sleep=waits.append)
    assert api.active_version() == 3 and len(seen) == 3 and waits[0] == 0


def test_fastly_clone_is_not_retried_after_a_5xx():
    url, seen = serve([(503, {"msg": "busy"}), (200, {"number": 4})])
    api = Fastly(url, "token", "svc", sleep=lambda s: None)
    with pytest.raises(MigrateError, match="answered 503"):
        api.clone(3)  # a retry could make a second version
    assert seen == [("PUT", "/service/svc/version/3/clone")]


def test_fastly_gives_up_after_its_attempts():
    url, seen = serve([(502, {})] * 4)
    api = Fastly(url, "token", "svc", sleep=lambda s: None)
    with pytest.raises(MigrateError, match="answered 502") as error:
        api.details()
    assert len(seen) == 4 and "retry_after" not in error.value.details
