# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a server is made of, read through openstacksdk, as one plain document.

The document (a "manifest") is what the other phases work from: it names every
resource the destination needs and says what cannot be migrated, before
anything changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

MIGRATABLE_STATUSES = ("ACTIVE", "SHUTOFF", "STOPPED", "PAUSED", "SUSPENDED")
ROOT_DEVICES = ("/dev/vda", "/dev/sda", "/dev/xvda", "/dev/hda")
# connection_info keys that locate a volume's bytes; anything else (CHAP
# passwords, keyring secrets, ...) is never returned.
CONNECTION_KEYS = ("driver_volume_type", "format", "export", "name", "mount_point_base",
                   "volume_id", "target_iqn", "target_portal", "target_lun", "hosts", "ports",
                   "cluster_name", "device_path")
RULE_KEYS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
             "remote_ip_prefix", "description")


def find_server(conn, name_or_id):
    """The one server with this id or name; a clear error otherwise."""
    server = None
    try:
        server = conn.compute.get_server(name_or_id)
    except Exception:  # pylint: disable=broad-except
        server = None
    if server is None or getattr(server, "id", None) != name_or_id:
        matches = [s for s in conn.compute.servers(name="^%s$" % _regex_escape(name_or_id))
                   if s.name == name_or_id]
        if not matches:
            raise MigrateError("no server %r in the source cloud's project" % name_or_id)
        if len(matches) > 1:
            raise MigrateError("%d servers are named %r; give the id (%s)" % (
                len(matches), name_or_id, ", ".join(sorted(s.id for s in matches))))
        server = conn.compute.get_server(matches[0].id)
    return server


def _regex_escape(text):
    special = set(".^$*+?{}[]\\|()")
    return "".join("\\" + c if c in special else c for c in text)


def gather(conn, name_or_id, allow_status=MIGRATABLE_STATUSES):
    server = find_server(conn, name_or_id)
    problems = []
    status = server.status
    if status not in allow_status:
        problems.append("server %s is %s (can migrate: %s)" % (server.name, status, ", ".join(allow_status)))
    if server.task_state:
        problems.append("server %s is busy (task %s)" % (server.name, server.task_state))

    image_id = (server.image or {}).get("id") if isinstance(server.image, dict) else None
    flavor = dict(server.flavor or {})
    manifest = {
        "id": server.id,
        "name": server.name,
        "status": status,
        "availability_zone": server.availability_zone,
        "metadata": dict(server.metadata or {}),
        "key_name": server.key_name,
        "boot_from_volume": not image_id,
        "flavor": {
            "name": flavor.get("original_name") or flavor.get("name"),
            "vcpus": flavor.get("vcpus"),
            "ram": flavor.get("ram"),
            "disk": flavor.get("disk"),
            "ephemeral": flavor.get("ephemeral", 0),
            "swap": flavor.get("swap") or 0,
            "extra_specs": dict(flavor.get("extra_specs") or {}),
        },
        "image": None,
    }
    if image_id:
        image = conn.image.find_image(image_id, ignore_missing=True)
        manifest["image"] = {
            "id": image_id,
            "name": image.name if image else None,
            "disk_format": image.disk_format if image else None,
            "min_disk": image.min_disk if image else None,
            "size": image.size if image else None,
        }

    manifest["keypair"] = None
    if server.key_name:
        keypair = conn.compute.find_keypair(server.key_name, ignore_missing=True)
        if keypair is None:
            problems.append("keypair %s of server %s is not visible to this user; it cannot be "
                            "recreated (give keypair_map or import it)" % (server.key_name, server.name))
        else:
            manifest["keypair"] = {"name": keypair.name, "public_key": keypair.public_key,
                                   "type": keypair.type or "ssh"}

    manifest["volumes"] = _volumes(conn, server, manifest["boot_from_volume"], problems)
    manifest["ports"], group_ids = _ports(conn, server)
    manifest["security_groups"] = _security_groups(conn, group_ids)
    manifest["addresses"] = sorted(set(
        ip["ip_address"] for port in manifest["ports"] for ip in port["fixed_ips"]
    ) | set(fip for port in manifest["ports"] for fip in port["floating_ips"]))
    manifest["problems"] = problems
    return manifest


def _volumes(conn, server, boot_from_volume, problems):
    volumes = []
    for attachment in conn.compute.volume_attachments(server):
        volume = conn.block_storage.get_volume(attachment.volume_id)
        others = [a for a in (volume.attachments or []) if a.get("server_id") != server.id]
        if others:
            problems.append("volume %s is also attached to server(s) %s" % (
                volume.id, ", ".join(sorted(a.get("server_id") for a in others))))
        connection = {}
        mine = [a for a in (volume.attachments or []) if a.get("server_id") == server.id]
        attachment_id = mine[0].get("attachment_id") if mine else None
        if attachment_id:
            connection = attachment_connection(conn, attachment_id)
        volumes.append({
            "id": volume.id,
            "name": volume.name,
            "size": volume.size,
            "volume_type": volume.volume_type,
            "bootable": str(volume.is_bootable).lower() in ("true", "1"),
            "device": attachment.device,
            "delete_on_termination": bool(getattr(attachment, "delete_on_termination", False)),
            "status": volume.status,
            "attachment_id": attachment_id,
            "connection": connection,
            "image_metadata": dict(volume.volume_image_metadata or {}),
            "boot": False,
        })
    volumes.sort(key=lambda v: v["device"] or "")
    if boot_from_volume and volumes:
        roots = [v for v in volumes if v["device"] in ROOT_DEVICES] or \
            [v for v in volumes if v["bootable"]] or volumes
        roots[0]["boot"] = True
    elif boot_from_volume:
        problems.append("server %s has no image and no volume: nothing to migrate" % server.name)
    return volumes


def attachment_connection(conn, attachment_id):
    """The parts of a Cinder attachment's connection_info that locate the bytes (never secrets)."""
    response = conn.block_storage.get("/attachments/%s" % attachment_id,
                                      microversion="3.27")
    if response.status_code != 200:
        return {}
    info = (response.json().get("attachment") or {}).get("connection_info") or {}
    data = info.get("data", info)
    found = dict((key, data[key]) for key in CONNECTION_KEYS if data.get(key) not in (None, ""))
    if "driver_volume_type" not in found and info.get("driver_volume_type"):
        found["driver_volume_type"] = info["driver_volume_type"]
    return found


def _ports(conn, server):
    ports, group_ids = [], []
    networks, subnets = {}, {}
    for port in conn.network.ports(device_id=server.id):
        if port.network_id not in networks:
            network = conn.network.get_network(port.network_id)
            networks[port.network_id] = network.name
        fixed = []
        for ip in port.fixed_ips or []:
            subnet_id = ip.get("subnet_id")
            if subnet_id and subnet_id not in subnets:
                subnet = conn.network.get_subnet(subnet_id)
                subnets[subnet_id] = {"name": subnet.name, "cidr": subnet.cidr}
            fixed.append({"subnet_id": subnet_id, "ip_address": ip.get("ip_address"),
                          "subnet_name": subnets.get(subnet_id, {}).get("name"),
                          "cidr": subnets.get(subnet_id, {}).get("cidr")})
        floating = [fip.floating_ip_address for fip in conn.network.ips(port_id=port.id)]
        for group_id in port.security_group_ids or []:
            if group_id not in group_ids:
                group_ids.append(group_id)
        ports.append({
            "id": port.id,
            "network_id": port.network_id,
            "network_name": networks[port.network_id],
            "mac_address": port.mac_address,
            "fixed_ips": fixed,
            "floating_ips": floating,
            "security_group_ids": list(port.security_group_ids or []),
            "port_security_enabled": port.is_port_security_enabled,
        })
    ports.sort(key=lambda p: (p["network_name"] or "", p["id"]))
    return ports, group_ids


def _security_groups(conn, group_ids):
    groups = [conn.network.get_security_group(group_id) for group_id in group_ids]
    names = dict((g.id, g.name) for g in groups)
    result = []
    for group in groups:
        rules = []
        for rule in group.security_group_rules or []:
            item = dict((key, rule.get(key)) for key in RULE_KEYS)
            remote = rule.get("remote_group_id")
            if remote:
                item["remote_group"] = names.get(remote) or conn.network.get_security_group(remote).name
            rules.append(item)
        rules.sort(key=lambda r: tuple(str(r.get(k)) for k in RULE_KEYS + ("remote_group",)))
        result.append({"id": group.id, "name": group.name, "description": group.description or "",
                       "rules": rules})
    result.sort(key=lambda g: g["name"])
    return result


def storage_attach(conn, volume_id, host):
    """Attach a volume to this host through Cinder's attachment API, without Nova (read-only):
    ``(attachment id, connection)``. The backend's connection_info says where its bytes are."""
    connector = {"host": host, "platform": "x86_64", "os_type": "linux", "multipath": False,
                 "initiator": "iqn.2026-12.org.cloudshift:%s" % host, "ip": "127.0.0.1"}
    listed = conn.block_storage.get("/attachments?volume_id=%s" % volume_id, microversion="3.54")
    if listed.status_code == 200:
        for attachment in listed.json().get("attachments") or []:
            if not attachment.get("instance"):  # a storage-side attachment an interrupted run left: reuse it
                return attachment["id"], attachment_connection(conn, attachment["id"])
    body = {"attachment": {"volume_uuid": volume_id, "connector": connector, "mode": "ro"}}
    response = conn.block_storage.post("/attachments", json=body, microversion="3.54")
    if response.status_code not in (200, 202):
        raise MigrateError("Cinder refused a storage-side attachment of volume %s: %s %s" % (
            volume_id, response.status_code, response.text[:300]))
    attachment = response.json()["attachment"]
    return attachment["id"], attachment_connection(conn, attachment["id"])


def storage_release(conn, attachment_id):
    """Remove a storage-side attachment (True), or find it gone already (False)."""
    response = conn.block_storage.delete("/attachments/%s" % attachment_id, microversion="3.54")
    if response.status_code == 404:
        return False
    if response.status_code not in (200, 202, 204):
        raise MigrateError("Cinder refused to remove attachment %s: %s %s" % (
            attachment_id, response.status_code, response.text[:300]))
    return True


def file_path(volume_id, connection, export_map):
    """A file backend's volume (``export`` and ``name`` in connection_info): its file on this host."""
    import os

    export = connection["export"]
    base = (export_map or {}).get(export)
    if base is None:
        base = export.split(":", 1)[1] if ":" in export else export
    path = os.path.join(base, connection["name"])
    if connection.get("format", "raw") != "raw":
        raise MigrateError(
            "volume %s is stored as %s (%s): it has snapshots on this backend; read a copy "
            "made from a snapshot instead (volume_copy=snapshot)" % (volume_id, connection["format"], path))
    if not os.path.exists(path):
        raise MigrateError("volume %s should be at %s on this host (export %s) but is not; "
                           "mount the export there or give export_map" % (volume_id, path, export))
    return path


def locate_volume(conn, volume_id, server_id=None, export_map=None, by_id_dir="/dev/disk/by-id",
                  wait=0, sleep=None):
    """Where this host reads a volume's bytes: ``(path, how, connection)``.

    An NFS-like backend (``export`` and ``name`` in connection_info) gives a file
    under the export, mapped through ``export_map`` to where this host mounts it
    (default: the export's path). Any other backend gives the device of a copy
    host where it is attached, found by the volume id in /dev/disk/by-id (virtio
    and SCSI serials carry its first 20 characters).
    """
    import os
    import time

    volume = conn.block_storage.get_volume(volume_id)
    attachments = [a for a in (volume.attachments or [])
                   if server_id is None or a.get("server_id") == server_id]
    if not attachments:
        raise MigrateError("volume %s is not attached%s" % (
            volume_id, " to server %s" % server_id if server_id else ""))
    connection = attachment_connection(conn, attachments[0]["attachment_id"])
    if connection.get("export") and connection.get("name"):
        return file_path(volume_id, connection, export_map), "storage", connection
    serial = volume_id[:20]
    deadline = time.time() + max(wait, 0)
    while True:
        if os.path.isdir(by_id_dir):
            for name in sorted(os.listdir(by_id_dir)):
                if serial in name and "-part" not in name:
                    return os.path.join(by_id_dir, name), "device", connection
        if time.time() >= deadline:
            raise MigrateError("no device for volume %s in %s (serial %s) on this host; is it attached "
                               "to this copy host?" % (volume_id, by_id_dir, serial))
        (sleep or time.sleep)(1)
