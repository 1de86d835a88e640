#!/usr/bin/env python3
"""Benchmark: three volumes into the lab's destination Glance and into an archive, two ways, in one run.

  (a) one after the other - what operators do by hand: the volume into Glance
      (cloudshift.migrate.volume_stream_to_image), then a sparse copy to the archive
      (cp --sparse=always) and its checksum (sha256sum);
  (b) together - the module with archive_dir: one read of the volume feeds the upload and the
      archive, the archive file is read back and hashed (sha256 and sha512) before it is named.

Both ways do the three volumes one at a time and start with the page cache dropped (when this
runs as root), so that each reads the disks from storage. Prints seconds per way, MiB/s of the
volumes' size, and the ratio (a)/(b). Needs the lab up (make bench-project does that).

    python3 bench/project_export.py [--size-mib 512] [--volumes 3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stream_to_glance as common  # noqa: E402  (the lab's environment, the module runner)

MIB = common.MIB


def half_full_disk(path, size_mib):
    """Every other 4 MiB block random, the rest zeros (a volume half used)."""
    with open(path, "wb") as handle:
        handle.truncate(size_mib * MIB)
        for offset in range(0, size_mib * MIB, 8 * MIB):
            handle.seek(offset)
            handle.write(os.urandom(4 * MIB))
    return path


def drop_caches():
    try:
        subprocess.run(["sync"], check=False)
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
        return True
    except OSError:
        return False


def one_after_the_other(conn, disks, archive, images):
    started = time.monotonic()
    for disk in disks:
        name = "bench-project-%s" % uuid.uuid4().hex[:8]
        unused, unused2, result = common.module_way(conn, disk, name)
        images.append(result["image"]["id"])
        target = os.path.join(archive, os.path.basename(disk))
        subprocess.run(["cp", "--sparse=always", disk, target], check=True)
        subprocess.run(["sha256sum", target], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def together(conn, disks, archive, images):
    started, waited = time.monotonic(), 0.0
    for disk in disks:
        name = "bench-project-%s" % uuid.uuid4().hex[:8]
        unused, unused2, result = common.module_way(conn, disk, name, {"archive_dir": archive,
                                                                       "archive_name": os.path.basename(disk)})
        images.append(result["image"]["id"])
        waited += result["archive"]["reader_waited_seconds"]
    return time.monotonic() - started, waited


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--volumes", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    conn = common.openstack.connect(cloud=common.CLOUD)
    folder = tempfile.mkdtemp(prefix="bench-project-")
    images = []
    try:
        disks = [half_full_disk(os.path.join(folder, "vol%d.raw" % n), args.size_mib) for n in range(args.volumes)]
        total_mib = args.size_mib * args.volumes
        cold = drop_caches()
        print("%d volumes of %d MiB (half data), page cache %s before each way"
              % (args.volumes, args.size_mib, "dropped" if cold else "NOT dropped (not root)"))
        for round_number in range(args.repeat):
            archive_a, archive_b = os.path.join(folder, "archive-a%d" % round_number), os.path.join(
                folder, "archive-b%d" % round_number)
            os.makedirs(archive_a)
            drop_caches()
            serial = one_after_the_other(conn, disks, archive_a, images)
            drop_caches()
            both, waited = together(conn, disks, archive_b, images)
            for disk in disks:  # the two archives hold the same bytes
                if subprocess.run(["cmp", "-s", os.path.join(archive_a, os.path.basename(disk)),
                                   os.path.join(archive_b, os.path.basename(disk))], check=False).returncode:
                    raise SystemExit("the archives differ for %s" % disk)
            print("(a) import, then archive: %7.1f s  %6.1f MiB/s" % (serial, total_mib / serial))
            print("(b) import + archive, one read: %7.1f s  %6.1f MiB/s  (the reader waited %.2f s for the archive)"
                  % (both, total_mib / both, waited))
            print("ratio (a)/(b): %.2fx" % (serial / both))
            for image_id in images:
                conn.image.delete_image(image_id, ignore_missing=True)
            images.clear()
            shutil.rmtree(archive_a)
            shutil.rmtree(archive_b)
    finally:
        for image_id in images:
            conn.image.delete_image(image_id, ignore_missing=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
