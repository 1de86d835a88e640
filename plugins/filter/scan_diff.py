# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudshift.migrate.plugins.module_utils import scan_diff as scans

DOCUMENTATION = r"""
name: scan_diff
short_description: Compare two host scans - what was added, removed and changed, by category
version_added: 0.1.0
description:
  - Takes two reports of M(cloudshift.migrate.host_scan) (RV(cloudshift.migrate.host_scan#module:scan)), the older
    first, and returns per category the entries added, removed and changed (with the fields that changed), a
    summary line per category that differs, and C(equal).
  - Entries are matched by what identifies them - packages by name and architecture (a new version is a change),
    services and users by name, files by path (sha256, mode, owner, group, type or link target changed), ports by
    protocol, address and port. Volatile fields (file sizes of mounts, scan times) are not compared.
  - A category that only one of the scans holds is listed in C(not_compared), not reported as removed.
author:
  - cloudshift.migrate engineers (@cloudshift)
positional: new
options:
  _input:
    description: The older scan.
    type: dict
    required: true
  new:
    description: The newer scan.
    type: dict
    required: true
  categories:
    description: The categories to compare (default every one).
    type: list
    elements: str
  exclude_paths:
    description: Shell patterns of file paths to leave out of the file categories.
    type: list
    elements: str
    default: []
  only_paths:
    description: Shell patterns; when given, only the files that match are compared.
    type: list
    elements: str
  old_label:
    description: How the summary names the older scan.
    type: str
    default: "Scan #1"
  new_label:
    description: How the summary names the newer scan.
    type: str
    default: "Scan #2"
"""

EXAMPLES = r"""
- name: What the move changed on the host
  ansible.builtin.debug:
    msg: "{{ (before.scan | cloudshift.migrate.scan_diff(after.scan, exclude_paths=['/etc/hostname'])).text }}"

- name: The migrated host has the same packages, services and configuration
  ansible.builtin.assert:
    that: comparison.equal
    fail_msg: "{{ comparison.summary }}"
  vars:
    comparison: "{{ before.scan | cloudshift.migrate.scan_diff(after.scan, categories=['packages', 'services']) }}"
"""

RETURN = r"""
_value:
  description:
    - C(equal) (bool), C(text) (one line), C(summary) (a line per category that differs), C(counts) (added,
      removed, changed per category), C(not_compared), C(old) and C(new) (the labels), and C(categories) -
      per category C(added) and C(removed) (the entries) and C(changed) (C(key), C(fields), C(old), C(new)).
  type: dict
"""


def scan_diff(old, new, categories=None, exclude_paths=None, only_paths=None, old_label="Scan #1",
              new_label="Scan #2"):
    try:
        return scans.diff(old, new, categories=categories, exclude_paths=exclude_paths or (), only_paths=only_paths,
                          old_label=old_label, new_label=new_label)
    except scans.ScanDiffError as exc:
        raise AnsibleFilterError("scan_diff: %s" % exc)


class FilterModule:
    def filters(self):
        return {"scan_diff": scan_diff}
