# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waits for an async job on its host, showing the job's progress file as it goes.

On a local connection (the controller itself, or a ``server:NAME`` host of a fleet) the job's
status and progress files are read here, in the controller's process: asking a module for them
costs a Python process per look, which a fleet of jobs pays many times over. The job is then
looked at every second, and its progress shown every ``poll`` seconds.
"""

from __future__ import annotations

import json
import os
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

_JOB_KEYS = ("started", "finished", "results_file", "stdout", "stderr", "stdout_lines", "stderr_lines")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        spec = dict(
            jid=dict(type="str", required=True),
            progress_file=dict(type="str"),
            poll=dict(type="float", default=10),
            timeout=dict(type="int", default=86400),
            label=dict(type="str"),
        )
        params = self.validate_argument_spec(argument_spec=spec)[1]
        if params["poll"] <= 0 or params["timeout"] <= 0:
            raise AnsibleActionFail("poll and timeout must be above 0")
        self._local = getattr(self._connection, "transport", None) == "local" and not self._play_context.become
        async_dir = self.get_shell_option("async_dir", default="~/.ansible_async")
        async_dir = os.path.expanduser(async_dir) if self._local else self._remote_expand_user(async_dir)
        host = task_vars.get("inventory_hostname", "")
        label = params["label"] or params["jid"]
        deadline = time.time() + params["timeout"]
        last = None
        shown = 0.0
        while True:
            status = self._status(params["jid"], async_dir, task_vars)
            if status.get("finished") or status.get("failed") and not status.get("started"):
                break
            if time.time() > deadline:
                raise AnsibleActionFail("job %s still runs after %d s" % (params["jid"], params["timeout"]))
            if params["progress_file"] and time.time() - shown >= params["poll"]:
                shown = time.time()
                line = self._progress_line(params["progress_file"], task_vars)
                if line and line != last:
                    display.display("%s: %s: %s" % (host, label, line))
                    last = line
            time.sleep(min(params["poll"], 1.0) if self._local else params["poll"])
        self._remove_tmp_path(self._connection._shell.tmpdir)
        # The job's own result becomes this task's: changed, failed, msg and all the module returned.
        for key in _JOB_KEYS:
            status.pop(key, None)
        result.update(status)
        result["ansible_job_id"] = params["jid"]
        return result

    def _status(self, jid, async_dir, task_vars):
        """The job's status as async_status gives it; read here on a local connection."""
        if self._local:
            try:
                with open(os.path.join(async_dir, jid)) as handle:
                    text = handle.read()
            except FileNotFoundError:
                return {"failed": True, "msg": "could not find job", "ansible_job_id": jid, "started": True, "finished": True}
            except OSError:
                text = None  # not readable from here (another user's job): async_status reads it
            if text is not None:
                try:
                    data = json.loads(text)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    return {"started": True, "finished": False, "ansible_job_id": jid}  # being written
                if "started" not in data:
                    data.update(finished=True, ansible_job_id=jid)
                else:
                    data.setdefault("finished", False)
                return data
        return self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                    module_args={"jid": jid, "_async_dir": async_dir})

    def _progress_line(self, path, task_vars):
        if self._local:
            try:
                with open(os.path.expanduser(path)) as handle:
                    return progress_text(json.loads(handle.read()))
            except (OSError, KeyError, ValueError, TypeError):
                return None
        read = self._execute_module(module_name="ansible.legacy.slurp", module_args={"src": path},
                                    task_vars=task_vars)
        if read.get("failed"):
            return None
        try:
            import base64

            return progress_text(json.loads(base64.b64decode(read["content"])))
        except (KeyError, ValueError, TypeError):
            return None


def progress_text(state):
    """'streaming 42.0% (430.1 of 1024.0 MiB, 98.3 MiB/s, ETA 6s)' from a progress file's state."""
    done, total, rate = state["bytes_done"], state["bytes_total"], state["mib_per_s"]
    text = "%s %.1f%% (%.1f of %.1f MiB, %.1f MiB/s" % (
        state["phase"], state["percent"], done / 1048576.0, total / 1048576.0, rate)
    if rate > 0 and total > done:
        seconds = int(round((total - done) / 1048576.0 / rate))
        text += ", ETA %s" % ("%dh%02dm" % divmod(seconds // 60, 60) if seconds >= 3600 else
                              "%dm%02ds" % divmod(seconds, 60) if seconds >= 60 else "%ds" % seconds)
    return text + ")"
