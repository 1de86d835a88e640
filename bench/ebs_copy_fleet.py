#!/usr/bin/env python3
"""Benchmark: 50 EBS volumes copied to another region, on the lab's moto server.

Copies take a fixed time T in the lab's extended moto (snapshots complete at once,
at most 20 copies in flight per destination region, as AWS). Three figures, one run:

  (a) the module:        cloudshift.migrate.ebs_cross_region_copy, max_concurrent 20
  (b) the ideal:         ceil(volumes / 20) x T
  (c) the usual script:  one volume after another - create_snapshot, boto3's
                         snapshot_completed waiter, copy_snapshot, the waiter again
                         (measured on --serial-volumes of them, scaled to all)

then a re-run of the module: copies made (goal 0) and API calls. Prints the ratios
(a)/(b) (goal <= 1.2) and (c)/(a). Needs moto up (make bench-aws does that).

    python3 bench/ebs_copy_fleet.py [--volumes 50] [--copy-seconds 10] [--serial-volumes 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
SRC, DST = "us-east-1", "ap-southeast-2"


def lab_env():
    with open(os.path.join(ROOT, ".lab", "aws.env")) as handle:
        env = dict(line.strip().split("=", 1) for line in handle if "=" in line)
    os.environ.update(env)
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
    os.environ.setdefault("ANSIBLE_PYTHON_INTERPRETER", os.path.join(VENV_BIN, "python"))
    os.environ["PATH"] = VENV_BIN + os.pathsep + os.environ["PATH"]
    return env["AWS_ENDPOINT_URL"]


def control(url, path, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url + "/cloudshift-lab/" + path, data=data, method="POST" if data or
                                     path == "reset" else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def run_module(volumes, migration_id, ledger_dir):
    args = dict(region=SRC, destination_region=DST, volumes=volumes, migration_id=migration_id,
                max_concurrent=20, wait_timeout=3600)
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               CLOUDSHIFT_LEDGER_DIR=ledger_dir)
    started = time.monotonic()
    out = subprocess.run(["ansible", "localhost", "-m", "cloudshift.migrate.ebs_cross_region_copy",
                          "-a", json.dumps(args)], env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    document = json.loads(out.stdout[out.stdout.index("{"):])
    result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if result.get("failed"):
        raise SystemExit("module failed: %s" % result.get("msg"))
    return took, result


def usual_script(volumes):
    """One volume after another, as the guides script it; returns (seconds, API calls)."""
    import boto3

    calls = [0]

    def count(**kwargs):
        calls[0] += 1

    src, dst = boto3.client("ec2", region_name=SRC), boto3.client("ec2", region_name=DST)
    for client in (src, dst):
        client.meta.events.register("before-call", count)
    started = time.monotonic()
    for volume in volumes:
        snapshot = src.create_snapshot(VolumeId=volume)["SnapshotId"]
        src.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot])
        copy = dst.copy_snapshot(SourceSnapshotId=snapshot, SourceRegion=SRC)["SnapshotId"]
        dst.get_waiter("snapshot_completed").wait(SnapshotIds=[copy])
    return time.monotonic() - started, calls[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--copy-seconds", type=float, default=10.0)
    parser.add_argument("--serial-volumes", type=int, default=5,
                        help="volumes the usual script copies (it is scaled to --volumes); 0 skips it")
    args = parser.parse_args()
    url = lab_env()
    import boto3

    control(url, "reset")
    control(url, "config", {"copy_seconds": args.copy_seconds, "snapshot_seconds": 0, "copy_limit": 20})
    ec2 = boto3.client("ec2", region_name=SRC)
    volumes = [ec2.create_volume(Size=8, AvailabilityZone=SRC + "a")["VolumeId"] for _ in range(args.volumes)]
    ideal = math.ceil(args.volumes / 20.0) * args.copy_seconds
    with tempfile.TemporaryDirectory() as ledger_dir:
        took, result = run_module(volumes, "bench-fleet", ledger_dir)
        again_took, again = run_module(volumes, "bench-fleet", ledger_dir)
    print("volumes %d, copy time T %.1f s, cap 20 copies in flight" % (args.volumes, args.copy_seconds))
    print("(b) ideal ceil(%d/20) x T                %7.1f s" % (args.volumes, ideal))
    print("(a) module, ansible task wall time       %7.1f s   (a)/(b) %.2f" % (took, took / ideal))
    print("    module call itself                   %7.1f s   ratio   %.2f" % (result["seconds"], result["seconds"] / ideal))
    print("    copies %d, snapshots %d, API calls %d, retries %d" % (
        result["copies_made"], result["snapshots_made"], result["api_calls"], result["retries"]))
    print("    re-run: copies %d, API calls %d, changed %s, %.1f s" % (
        again["copies_made"], again["api_calls"], again["changed"], again_took))
    if args.serial_volumes:
        serial, calls = usual_script(volumes[:args.serial_volumes])
        scale = args.volumes / float(args.serial_volumes)
        print("(c) usual script, %d volumes             %7.1f s   (%d API calls)" % (args.serial_volumes, serial, calls))
        print("    scaled to %d volumes                 %7.1f s   (c)/(a) %.1fx" % (
            args.volumes, serial * scale, serial * scale / took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
