"""moto server with what the lab needs of AWS that moto leaves out.

    python motolab.py --port 14566 --state-dir DIR

moto completes every snapshot at once, copies anything, any number of times,
and forgets everything when it stops. Real EBS does not, and the code under
test must cope with that, so this wrapper (lab only, moto pinned in
lab/requirements-aws.txt) adds:

* pending states: a snapshot is "pending" for `snapshot_seconds`, a copy for
  `copy_seconds` (wall clock, so that a restart keeps the timers), with
  progress in percent;
* AWS's limits: a copy of a snapshot that is not completed is refused
  (IncorrectState); at most `copy_limit` copies are pending per destination
  region (ResourceLimitExceeded, AWS's default 20); at most
  `pending_per_volume` snapshots pending per volume
  (SnapshotCreationPerVolumeRateExceeded, AWS's 5); `throttle_every`: every
  Nth CopySnapshot answers RequestLimitExceeded (throttling), 0 = never;
* a request log: every AWS call with its region, action and parameters, so
  that tests assert on what was asked where moto is a stub (RegisterImage);
* a state that survives a restart: the EC2, KMS and CloudFormation backends
  are saved on SIGTERM (and on `POST /cloudshift-lab/save`) and loaded at start.

Control endpoints (JSON): GET/POST /cloudshift-lab/config, GET/DELETE
/cloudshift-lab/requests, POST /cloudshift-lab/reset (moto's reset, default
config, empty log, no saved state), POST /cloudshift-lab/save.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import re
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from moto.ec2.exceptions import EC2ClientError  # noqa: E402
from moto.ec2.models import elastic_block_store as ebs  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple  # noqa: E402

DEFAULTS = {
    "snapshot_seconds": 0.0,
    "copy_seconds": 0.0,
    "copy_limit": 20,
    "pending_per_volume": 5,
    "throttle_every": 0,
}
CONFIG = dict(DEFAULTS)
REQUESTS: list[dict] = []
LOCK = threading.RLock()
COUNTERS = {"copy_calls": 0}
SECRET_PARAM = re.compile(r"secret|password|token|private|presigned|signature", re.I)
CREDENTIAL = re.compile(r"Credential=[^/]+/\d+/([a-z0-9-]+)/([a-z0-9-]+)/")


# -- EBS: pending states and limits ---------------------------------------------

def _status(snapshot) -> str:
    ready_at = snapshot.__dict__.get("_lab_ready_at")
    if ready_at is not None and time.time() < ready_at:
        return "pending"
    return snapshot.__dict__.get("_lab_status", "completed")


def _set_status(snapshot, value) -> None:
    snapshot.__dict__["_lab_status"] = value


def _progress(snapshot) -> str:
    ready_at = snapshot.__dict__.get("_lab_ready_at")
    took = snapshot.__dict__.get("_lab_seconds") or 0
    if ready_at is None or not took or time.time() >= ready_at:
        return "100%"
    done = 1 - (ready_at - time.time()) / took
    return f"{max(0, min(99, int(done * 100)))}%"


ebs.Snapshot.status = property(_status, _set_status)
ebs.Snapshot.progress = property(_progress)

_create_snapshot = ebs.EBSBackend.create_snapshot
_copy_snapshot = ebs.EBSBackend.copy_snapshot


def _pending(backend, predicate) -> int:
    return sum(1 for snap in list(backend.snapshots.values()) if snap.status == "pending" and predicate(snap))


def create_snapshot(self, volume_id, description, owner_id=None, from_ami=None):
    with LOCK:
        limit = int(CONFIG["pending_per_volume"])
        if limit and _pending(self, lambda snap: not snap.__dict__.get("_lab_copy")
                              and snap.volume.id == volume_id) >= limit:
            raise EC2ClientError(
                "SnapshotCreationPerVolumeRateExceeded",
                f"The maximum per volume CreateSnapshot request rate has been exceeded for {volume_id}.")
        snapshot = _create_snapshot(self, volume_id, description, owner_id=owner_id, from_ami=from_ami)
        _start_timer(snapshot, float(CONFIG["snapshot_seconds"]))
        return snapshot


def copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id):
    from moto.ec2.models import ec2_backends

    with LOCK:
        COUNTERS["copy_calls"] += 1
        every = int(CONFIG["throttle_every"])
        if every and COUNTERS["copy_calls"] % every == 0:
            raise EC2ClientError("RequestLimitExceeded", "Request limit exceeded.")
        source = ec2_backends[self.account_id][source_region].describe_snapshots(
            snapshot_ids=[source_snapshot_id])[0]
        if source.status != "completed":
            raise EC2ClientError(
                "IncorrectState", f"Snapshot {source_snapshot_id} is in an invalid state - {source.status}")
        limit = int(CONFIG["copy_limit"])
        if limit and _pending(self, lambda snap: snap.__dict__.get("_lab_copy")) >= limit:
            raise EC2ClientError(
                "ResourceLimitExceeded",
                f"Too many snapshot copies in progress. The limit is {limit} for this destination region.")
        snapshot = _copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id)
        snapshot.__dict__["_lab_copy"] = True
        _start_timer(snapshot, float(CONFIG["copy_seconds"]))
        return snapshot


def _start_timer(snapshot, seconds: float) -> None:
    if seconds > 0:
        snapshot.__dict__["_lab_ready_at"] = time.time() + seconds
        snapshot.__dict__["_lab_seconds"] = seconds


ebs.EBSBackend.create_snapshot = create_snapshot
ebs.EBSBackend.copy_snapshot = copy_snapshot


# -- state that survives a restart ----------------------------------------------

def _backends():
    from moto.cloudformation.models import cloudformation_backends
    from moto.ec2.models import ec2_backends
    from moto.kms.models import kms_backends

    return {"ec2": ec2_backends, "kms": kms_backends, "cloudformation": cloudformation_backends}


def save(path: Path) -> None:
    with LOCK:
        data = {name: dict(backend) for name, backend in _backends().items()}
        data["config"] = dict(CONFIG)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(data))
        tmp.replace(path)


def load(path: Path) -> None:
    if not path.exists():
        return
    data = pickle.loads(path.read_bytes())
    CONFIG.update(data.pop("config", {}))
    for name, backend in _backends().items():
        for account, regions in data.get(name, {}).items():
            backend[account] = regions


# -- HTTP: control endpoints and the request log --------------------------------

def _json(start_response, payload, status="200 OK"):
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class LabApp:
    def __init__(self, moto_app, state_path: Path):
        self.moto_app = moto_app
        self.state_path = state_path

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/cloudshift-lab/"):
            return self.control(path[len("/cloudshift-lab/"):], environ, start_response)
        self.log_request(environ)
        return self.moto_app(environ, start_response)

    def control(self, what, environ, start_response):
        method = environ["REQUEST_METHOD"]
        if what == "config":
            if method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                update = json.loads(environ["wsgi.input"].read(length) or b"{}")
                unknown = set(update) - set(DEFAULTS)
                if unknown:
                    return _json(start_response, {"error": f"unknown settings {sorted(unknown)}"}, "400 Bad Request")
                CONFIG.update(update)
            return _json(start_response, CONFIG)
        if what == "requests":
            if method == "DELETE":
                del REQUESTS[:]
            return _json(start_response, REQUESTS)
        if what == "reset" and method == "POST":
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
            CONFIG.clear()
            CONFIG.update(DEFAULTS)
            del REQUESTS[:]
            COUNTERS["copy_calls"] = 0
            if self.state_path.exists():
                self.state_path.unlink()
            return _json(start_response, {"reset": True})
        if what == "save" and method == "POST":
            save(self.state_path)
            return _json(start_response, {"saved": str(self.state_path)})
        return _json(start_response, {"error": "not found"}, "404 Not Found")

    def log_request(self, environ):
        params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            params.update(parse_qsl(body.decode("utf-8", "replace")))
        action = params.pop("Action", None) or environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        REQUESTS.append({
            "time": time.time(),
            "region": match.group(1) if match else None,
            "service": match.group(2) if match else None,
            "action": action or None,
            "params": {key: value for key, value in params.items()
                       if key != "Version" and not SECRET_PARAM.search(key)},
        })


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="moto server for the cloudshift lab")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_path = state_dir / "state.pickle"
    load(state_path)

    def stop(signum, frame):
        save(state_path)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # moto builds its EC2 backend lazily (~7 s on the first call): do it now.
    from moto.ec2.models import ec2_backends

    ec2_backends["123456789012"]["us-east-1"].describe_regions()
    moto_app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, LabApp(moto_app, state_path), threaded=True,
               request_handler=MotoRequestHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
