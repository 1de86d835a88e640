#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: project_volume_info
short_description: List an OpenStack project's volumes and select those to migrate, with a plan
version_added: 0.1.0
description:
  - The gather step of a project's volume migration. Lists the projects the credentials can see (every project
    for an admin, else the user's own), scopes to O(project), reads its volumes (size, status, attachments, type,
    bootable, metadata) and selects them - by id or name (O(volumes)), by metadata (O(volume_metadata)), or all
    (O(all_volumes)).
  - Refuses, listing every problem - an unknown project (or one the credentials hold no role in), unknown or
    ambiguous volume names, selected volumes that are not C(available) or C(in-use) (in C(error), being created,
    ...). Volumes that a migration made itself (metadata C(cloudshift_migration_id)) are never selected.
  - Returns the plan - how many volumes, their total bytes and a time estimate at O(rate_mib_s).
  - Changes nothing; check mode does the same.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  project:
    description: The project, by name or id. Default - the project the credentials are scoped to.
    type: str
  volumes:
    description: The volumes to select, by id or name.
    type: list
    elements: str
  volume_metadata:
    description: Select the volumes whose metadata holds every one of these keys with these values.
    type: dict
  all_volumes:
    description: Select every volume of the project.
    type: bool
    default: false
  rate_mib_s:
    description: The transfer rate (MiB/s) for the time estimate - measure it with C(make bench-stream).
    type: float
    default: 100
  archive_dir:
    description:
      - A directory (on the host the module runs on) that will receive a raw copy of every selected volume. Refused
        when it cannot be written or has less room than the volumes' total size (they may be full).
    type: path
extends_documentation_fragment:
  - cloudshift.migrate.openstack_auth
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: What would move - the project's volumes labelled for the move
  cloudshift.migrate.project_volume_info:
    cloud: old-cloud
    project: shop
    volume_metadata: {move: "yes"}
  register: selection

- name: Show the plan
  ansible.builtin.debug:
    msg: "{{ selection.plan.count }} volumes, {{ selection.plan.total_bytes | human_readable }}"
"""

RETURN = r"""
actions:
  description: Always empty; the module changes nothing.
  returned: always
  type: list
  elements: str
project:
  description: The project - C(id), C(name), C(domain_id).
  returned: success
  type: dict
projects_seen:
  description: Names of the projects the credentials can see.
  returned: success
  type: list
  elements: str
volumes:
  description:
    - The selected volumes - C(id), C(name), C(size) (GiB), C(status), C(volume_type), C(bootable), C(attachments)
      (server ids), C(metadata), C(availability_zone), C(encrypted).
  returned: success
  type: list
  elements: dict
plan:
  description: C(count), C(total_bytes), C(estimate_seconds).
  returned: success
  type: dict
ledger_entries:
  description: Always empty; the module records nothing.
  returned: always
  type: list
  elements: dict
problems:
  description: Why the selection was refused.
  returned: failure
  type: list
  elements: str
"""

from ansible_collections.cloudshift.migrate.plugins.module_utils import archive
from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.openstack import OpenStackMigrateModule, describe_error
from ansible_collections.cloudshift.migrate.plugins.module_utils import project as selection


class ProjectVolumeInfo(OpenStackMigrateModule):
    argument_spec = dict(
        project=dict(type="str"),
        volumes=dict(type="list", elements="str"),
        volume_metadata=dict(type="dict"),
        all_volumes=dict(type="bool", default=False),
        rate_mib_s=dict(type="float", default=100),
        archive_dir=dict(type="path"),
    )

    def projects_seen(self):
        try:
            return [(p.id, p.name, p.domain_id) for p in self.conn.identity.projects()]
        except Exception:  # pylint: disable=broad-except
            pass  # not an admin: the user's own projects
        try:
            user = self.conn.current_user_id
            return [(p.id, p.name, p.domain_id) for p in self.conn.identity.user_projects(user)]
        except Exception:  # pylint: disable=broad-except
            return [(self.conn.current_project_id, self.conn.auth.get("project_name"), None)]

    def scoped(self, wanted, seen):
        """A connection scoped to ``wanted`` (name or id), authorized now."""
        current = self.conn.current_project_id
        if not wanted or wanted in (current, self.conn.auth.get("project_name")):
            return self.conn, next(((i, n, d) for i, n, d in seen if i == current),
                                   (current, self.conn.auth.get("project_name"), None))
        matches = [(i, n, d) for i, n, d in seen if wanted in (i, n)]
        if len(matches) > 1:
            raise MigrateError("%d projects are called %s: give its id" % (len(matches), wanted))
        target = dict(id=matches[0][0], name=matches[0][1], domain_id=matches[0][2]) if matches else None
        try:
            conn = self.conn.connect_as_project(target or wanted)
            conn.authorize()
        except Exception as exc:  # pylint: disable=broad-except
            translated = describe_error(exc)
            raise MigrateError("cannot work in project %s with these credentials (it does not exist, or they hold "
                               "no role in it): %s" % (wanted, translated[0] if translated else exc))
        project = (conn.current_project_id, target["name"] if target else wanted, target and target["domain_id"])
        return conn, project

    def run(self):
        p = self.params
        selection.check_selection_args(p.get("volumes"), p.get("volume_metadata"), p["all_volumes"])
        if p["rate_mib_s"] <= 0:
            raise MigrateError("rate_mib_s must be > 0")
        seen = self.projects_seen()
        conn, (project_id, project_name, domain_id) = self.scoped(p.get("project"), seen)
        volumes = [selection.describe(v) for v in conn.block_storage.volumes(details=True)]
        chosen, problems = selection.select(volumes, p.get("volumes"), p.get("volume_metadata"), p["all_volumes"])
        plan = selection.plan(chosen, p["rate_mib_s"])
        if p.get("archive_dir"):
            try:
                archive.check_room(p["archive_dir"], plan["total_bytes"])
            except MigrateError as exc:
                problems.append(exc.msg)
        if problems:
            raise MigrateError("cannot migrate the selection from project %s: %s" % (project_name, "; ".join(problems)),
                               problems=problems)
        return dict(project=dict(id=project_id, name=project_name, domain_id=domain_id),
                    projects_seen=sorted(n for unused, n, unused2 in seen if n),
                    volumes=chosen, plan=plan)


def main():
    ProjectVolumeInfo.main()


if __name__ == "__main__":
    main()
