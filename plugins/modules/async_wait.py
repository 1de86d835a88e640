#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: async_wait
short_description: Wait for an async job, showing its progress as it goes
version_added: 0.1.0
description:
  - "Waits until an C(async) job (started with C(poll: 0)) on the task's host has ended, and
    returns that job's own result, so it can be registered and failed on like the module itself."
  - Every O(poll) seconds it reads O(progress_file) (as written by
    M(cloudshift.migrate.volume_stream_to_image)) and shows the phase, percent, MiB done and MiB/s
    in the play's output when they changed.
  - One task for the whole wait, where an C(until) loop on M(ansible.builtin.async_status) shows no
    progress and a recursive include would nest one level per look.
  - This is an action plugin; it runs M(ansible.builtin.async_status) and M(ansible.builtin.slurp) on
    the host.
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  jid:
    description:
      - The job id, C(ansible_job_id) of the registered async task.
    type: str
    required: true
  progress_file:
    description:
      - The job's progress file on the host (a JSON object with C(phase), C(percent), C(bytes_done),
        C(bytes_total), C(mib_per_s)).
    type: str
  poll:
    description:
      - Seconds between two looks.
    type: float
    default: 10
  timeout:
    description:
      - Seconds to wait at the most.
    type: int
    default: 86400
  label:
    description:
      - What to call the job in the progress lines. Default is O(jid).
    type: str
attributes:
  check_mode:
    description: Only waits and reads; in check mode there is usually no job to wait for.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
- name: Stream the root volume as a background job
  cloudshift.migrate.volume_stream_to_image:
    cloud: new-provider
    path: /dev/vdb
    name: web01-root
    progress_file: /tmp/web01-root.progress.json
  async: 86400
  poll: 0
  register: stream_job

- name: Wait for it, showing its progress
  cloudshift.migrate.async_wait:
    jid: "{{ stream_job.ansible_job_id }}"
    progress_file: /tmp/web01-root.progress.json
    label: web01-root
  register: stream_result
"""

RETURN = r"""
ansible_job_id:
  description: The job waited for.
  returned: always
  type: str
msg:
  description: The job's message, when it failed.
  returned: when the job failed
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # The work is in the action plugin of the same name; this file documents it.
    module = AnsibleModule(argument_spec=dict(
        jid=dict(type="str", required=True),
        progress_file=dict(type="str"),
        poll=dict(type="float", default=10),
        timeout=dict(type="int", default=86400),
        label=dict(type="str"),
    ), supports_check_mode=True)
    module.fail_json(msg="cloudshift.migrate.async_wait runs as an action plugin on the controller")


if __name__ == "__main__":
    main()
