# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudshift.migrate.plugins.module_utils import scan_diff as scans

DOCUMENTATION = r"""
name: scan_rebuild
short_description: From a host scan, what a rebuild installs, enables and copies
version_added: 0.1.0
description:
  - Takes a report of M(cloudshift.migrate.host_scan) and returns the input of the C(host_rebuild) entry point of
    the C(cloudshift.migrate.transfer) role - the way to rebuild a host on a fresh image when its disk cannot be
    copied.
  - C(packages) - every dpkg package as C(name=version). C(services) - the enabled systemd units with the targets
    that want them. C(files) - the package files edited on the host (changed conffiles) and the files and links no
    package owns, with mode, owner, group and sha256; less what identifies the old host or what the new cloud
    sets up itself (C(/etc/hostname), C(/etc/machine-id), accounts, SSH host keys, apt sources, network
    configuration, fstab - see O(exclude)). Files the scan could not hash are listed in C(unhashed), not copied.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  _input:
    description: The scan.
    type: dict
    required: true
  exclude:
    description: Shell patterns of paths not to copy, replacing the built-in list (give C([]) to copy everything).
    type: list
    elements: str
  extra_exclude:
    description: Shell patterns of paths not to copy, added to O(exclude).
    type: list
    elements: str
    default: []
  include:
    description: Shell patterns; when given, only the files that match are copied.
    type: list
    elements: str
  include_secrets:
    description:
      - Copy keys and credentials too - paths such as C(/etc/ssl/private/*), C(*.key), C(/etc/security/opasswd),
        C(~/.ssh/*), C(.pgpass), C(.my.cnf), and files whose content the scan found credential-like (a private key,
        C(password=...)). By default they are left out and listed in C(secrets); with this set they are copied and
        C(warnings) names each one.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Plan the rebuild of the scanned host
  ansible.builtin.set_fact:
    transfer_rebuild_plan: "{{ scanned.scan | cloudshift.migrate.scan_rebuild(extra_exclude=['/etc/app/cache/*']) }}"
"""

RETURN = r"""
_value:
  description: C(host), C(scanned_at), C(packages), C(services) (C(name), C(wanted_by), C(unit_path)), C(files)
    (C(path), C(type), C(mode), C(owner), C(group), C(sha256), C(target)), C(unhashed), C(exclude), C(secrets)
    (left out), C(warnings).
  type: dict
"""


def scan_rebuild(scan, exclude=None, extra_exclude=None, include=None, include_secrets=False):
    try:
        return scans.rebuild_plan(scan, exclude=scans.REBUILD_EXCLUDE if exclude is None else exclude,
                                  extra_exclude=extra_exclude or (), include=include,
                                  include_secrets=bool(include_secrets))
    except scans.ScanDiffError as exc:
        raise AnsibleFilterError("scan_rebuild: %s" % exc)


class FilterModule:
    def filters(self):
        return {"scan_rebuild": scan_rebuild}
