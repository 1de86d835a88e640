"""A local stand-in for the part of Fastly's API that traffic_switch uses (lab only).

    FASTLY_STANDIN_TOKEN=TOKEN python standin.py --port 13580 --state FILE

It is not Fastly: it keeps services, versions and backends in memory (saved to FILE), checks
the Fastly-Key header, follows Fastly's documented rules for what the module relies on -
an active or locked version cannot be changed, a clone is a new, editable version, only a
validated draft... - and records every request, so tests assert on the sequence
(GET /cloudshift-lab/requests, DELETE to clear, POST /cloudshift-lab/reset).

Endpoints: GET /service/{id}/details, PUT /service/{id}/version/{n}/clone,
GET /service/{id}/version/{n}/backend, PUT /service/{id}/version/{n}/backend/{name},
GET /service/{id}/version/{n}/validate, PUT /service/{id}/version/{n}/activate.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

LOCK = threading.Lock()
REQUESTS: list[dict] = []


def initial_state() -> dict:
    backends = [{"name": "origin", "address": "127.0.0.1", "port": 13481},
                {"name": "static", "address": "127.0.0.1", "port": 13481}]
    return {"services": {"site": {"id": "site", "name": "site", "versions": [
        {"number": 1, "active": True, "locked": True, "backends": backends}]}}}


class Handler(BaseHTTPRequestHandler):
    server_version = "cloudshift-fastly-standin"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def form(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw or "{}")
        return dict(parse_qsl(raw))

    def handle_any(self, method):
        app = self.server.app
        path = self.path.split("?")[0]
        if path.startswith("/cloudshift-lab/"):
            what = path[len("/cloudshift-lab/"):]
            if what == "requests":
                if method == "DELETE":
                    del REQUESTS[:]
                return self.reply(200, REQUESTS)
            if what == "reset" and method == "POST":
                with LOCK:
                    app.state = initial_state()
                    del REQUESTS[:]
                    app.save()
                return self.reply(200, {"reset": True})
            return self.reply(404, {"msg": "not found"})
        data = self.form() if method in ("PUT", "POST") else {}
        REQUESTS.append({"time": time.time(), "method": method, "path": path, "data": data})
        if self.headers.get("Fastly-Key") != app.token:
            return self.reply(401, {"msg": "Provided credentials are missing or invalid"})
        with LOCK:
            status, payload = app.route(method, path, data)
            if method != "GET" and status < 300:
                app.save()
        return self.reply(status, payload)

    def do_GET(self):
        self.handle_any("GET")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")


class App:
    def __init__(self, token, state_path):
        self.token = token
        self.state_path = state_path
        self.state = json.loads(state_path.read_text()) if state_path.exists() else initial_state()

    def save(self):
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.state_path)

    def route(self, method, path, data):
        match = re.match(r"^/service/([^/]+)(/.*)?$", path)
        if not match or match.group(1) not in self.state["services"]:
            return 404, {"msg": "Record not found", "detail": "Cannot find service"}
        service = self.state["services"][match.group(1)]
        rest = match.group(2) or ""
        if method == "GET" and rest == "/details":
            active = [v["number"] for v in service["versions"] if v["active"]]
            return 200, {"id": service["id"], "name": service["name"], "active_version": active[0] if active else None,
                         "versions": [dict((k, v[k]) for k in ("number", "active", "locked")) for v in service["versions"]]}
        match = re.match(r"^/version/(\d+)(/.*)?$", rest)
        if not match:
            return 404, {"msg": "Record not found"}
        number = int(match.group(1))
        found = [v for v in service["versions"] if v["number"] == number]
        if not found:
            return 404, {"msg": "Record not found", "detail": "Cannot find service version %d" % number}
        version, rest = found[0], match.group(2) or ""
        if method == "PUT" and rest == "/clone":
            clone = copy.deepcopy(version)
            clone.update(number=max(v["number"] for v in service["versions"]) + 1, active=False, locked=False,
                         validated=False)
            service["versions"].append(clone)
            return 200, {"number": clone["number"], "active": False, "locked": False, "service_id": service["id"]}
        if method == "GET" and rest == "/backend":
            return 200, [dict(b, version=number, service_id=service["id"]) for b in version["backends"]]
        match = re.match(r"^/backend/([^/]+)$", rest)
        if method == "PUT" and match:
            if version["locked"] or version["active"]:
                return 400, {"msg": "Version locked", "detail": "Version %d is locked and cannot be modified" % number}
            backend = [b for b in version["backends"] if b["name"] == match.group(1)]
            if not backend:
                return 404, {"msg": "Record not found", "detail": "Couldn't find Backend '%s'" % match.group(1)}
            for key in ("address", "port"):
                if key in data:
                    backend[0][key] = int(data[key]) if key == "port" else data[key]
            version["validated"] = False
            return 200, dict(backend[0], version=number)
        if method == "GET" and rest == "/validate":
            ok = all(b.get("address") for b in version["backends"])
            version["validated"] = ok
            return 200, {"status": "ok" if ok else "error", "errors": [] if ok else ["a backend has no address"]}
        if method == "PUT" and rest == "/activate":
            for other in service["versions"]:
                other["active"] = False
            version["active"] = version["locked"] = True
            return 200, {"number": number, "active": True, "locked": True, "service_id": service["id"]}
        return 404, {"msg": "Record not found"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    import os

    server.app = App(os.environ["FASTLY_STANDIN_TOKEN"], Path(args.state))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
