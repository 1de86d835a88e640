# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database flip in one call: freeze -> final position -> wait -> promote -> switch traffic.

Engine-agnostic: the engine (db/mariadb.py, db/postgresql.py) runs the statements; this runs
the steps in order, times each, and does the slow parts - repointing the other replicas,
attaching the old primary to the new one - after traffic moved.

Any failure before the promotion (a freeze that waits too long for a lock, a candidate that does
not catch up, a lost connection, anything) aborts cleanly: the old primary is writable again, the
traffic and the maintenance page as they were, nothing else changed. A flip stopped anywhere (the
process killed) is recovered by the next call in either direction from what the servers say -
they are the journal that cannot disagree with itself; the ledger records the outcome.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import time

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError
from ansible_collections.cloudshift.migrate.plugins.module_utils.traffic import haproxy

# Tests only: the name of a step after which the module kills itself (SIGKILL), to prove that a flip
# stopped at that step boundary is recovered. Unset in any real run.
KILL_AFTER = "CLOUDSHIFT_TEST_KILL_FLIP_AFTER"


class Switchover:
    def __init__(self, module, engine, primary, candidate, others, traffic=None):
        self.module = module
        self.p = module.params
        self.engine = engine
        self.primary, self.candidate, self.others = primary, candidate, others
        self.traffic = traffic or {}
        self.proxy = haproxy.HAProxy(self.traffic["socket"]) if self.traffic.get("socket") else None
        self.timings = {}
        self.log = engine.log
        self.kill_after = os.environ.get(KILL_AFTER)
        engine.after_step = self.checkpoint

    def checkpoint(self, step):
        if self.kill_after == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def timed(self, step, function, *args):
        started = time.monotonic()
        try:
            return function(*args)
        finally:
            self.timings[step] = round((time.monotonic() - started) * 1000.0, 3)
            self.checkpoint(step)

    def connect_all(self):
        """Connect before anything changes. Where a frozen primary is a stopped one (PostgreSQL), the old
        primary may be down after a flip, and either side after an interrupted one: its status says so."""
        for node in self.others:
            node.connect()
        for node in (self.candidate, self.primary):
            try:
                node.connect()
            except MigrateError:
                if not self.engine.frozen_primary_is_down:
                    raise

    def already_done(self, facts):
        c, p = facts["candidate"], facts["primary"]
        return c["replica"] is None and not c["read_only"] and p["read_only"]

    def check_traffic(self):
        """The load balancer knows the backend, its servers and the ACL file (before anything changes)."""
        if not self.proxy:
            return []
        problems = []
        try:
            servers = self.proxy.servers(self.traffic["backend"])
            wanted = [self.traffic["activate"]] + list(self.traffic.get("deactivate") or [])
            missing = [name for name in wanted if name not in servers]
            if missing:
                problems.append("HAProxy backend %s has no server %s (it has %s)" % (
                    self.traffic["backend"], ", ".join(missing), ", ".join(sorted(servers))))
            if self.traffic.get("maintenance_acl"):
                self.proxy.acl_values(self.traffic["maintenance_acl"])
        except MigrateError as exc:
            problems.append(exc.msg)
        return problems

    def switch_traffic(self):
        if not self.proxy or not self.traffic.get("backend"):
            return False
        changed = haproxy.switch(self.proxy, self.traffic["backend"], self.traffic["activate"],
                                 self.traffic.get("deactivate") or [], self.log)
        if changed and self.traffic.get("state_file"):
            self.proxy.save_state(self.traffic["state_file"])
        return changed

    def traffic_differs(self):
        if not self.proxy or not self.traffic.get("backend"):
            return False
        servers = self.proxy.servers(self.traffic["backend"])
        return servers[self.traffic["activate"]]["state"] != "ready" or any(
            servers[name]["state"] != "maint" for name in self.traffic.get("deactivate") or [] if name in servers)

    def maintenance_shown(self):
        if not self.proxy or not self.traffic.get("maintenance_acl"):
            return False
        return (self.traffic.get("maintenance_value") or "/") in self.proxy.acl_values(self.traffic["maintenance_acl"])

    def maintenance(self, on):
        if not self.proxy or not self.traffic.get("maintenance_acl"):
            return False
        return haproxy.maintenance(self.proxy, self.traffic["maintenance_acl"],
                                   self.traffic.get("maintenance_value") or "/", on, self.log)

    def run(self):
        p = self.p
        self.timed("connect", self.connect_all)
        facts = dict(primary=self.engine.status(self.primary), candidate=self.engine.status(self.candidate))
        if self.already_done(facts):
            return self.finish(facts, flipped=False)
        if self.engine.interrupted_promotion(facts["primary"], facts["candidate"], self.primary, self.candidate):
            return self.complete_interrupted(facts)
        if self.engine.interrupted_freeze(facts["primary"], facts["candidate"], self.primary, self.candidate):
            # a flip the other way was stopped after its freeze: going back is undoing that freeze
            return self.undo_interrupted(facts)
        if facts["primary"].get("down") and self.engine.follows(facts["candidate"], self.primary):
            # this same flip was stopped after its freeze (a clean stop): start the primary, flip again
            if self.module.check_mode:
                self.module.plan("start %s again (stopped by an interrupted flip), then flip to %s" % (
                    self.primary.name, self.candidate.name))
                return dict(facts=facts, timings=self.timings, positions={}, outage_ms=None, flipped=False)
            facts = self.resume_frozen_primary()
        if self.engine.attach_first(facts["primary"], facts["candidate"], self.primary, self.candidate):
            if self.module.check_mode:
                self.module.plan("attach %s as a replica of %s first (a flip the other way was interrupted after its "
                                 "promotion), then flip to %s" % (self.candidate.name, self.primary.name,
                                                                  self.candidate.name))
                return dict(facts=facts, timings=self.timings, positions={}, outage_ms=None, flipped=False)
            self.module.changed = True
            self.timed("attach_candidate", self.engine.follow, self.candidate, self.primary, p["replication_user"],
                       p["replication_password"], True)
            if not self.engine.wait_streaming(self.candidate, max(p["wait_timeout"], 10)):
                raise MigrateError("%s was attached to %s but does not replicate: not flipping" % (
                    self.candidate.name, self.primary.name), timings=self.timings)
        facts, problems = self.timed("preflight", self.engine.preflight, self.primary, self.candidate, self.others,
                                     p["max_lag"], p["allowed_writers"], p["login_user"])
        problems += self.timed("preflight_traffic", self.check_traffic)
        if problems:
            raise MigrateError("preflight refused the switchover: " + "; ".join(problems), facts=facts)
        how = "clean stop" if self.engine.name == "postgresql" else "read_only"
        plan = []
        if self.engine.frozen_primary_is_down and self.traffic.get("backend"):
            plan.append("stop sending connections to %s (%s in maintenance)" % (
                self.primary.name, ", ".join(self.traffic.get("deactivate") or [])))
        plan += ["freeze %s (%s, at most %ss)" % (self.primary.name, how, p["freeze_timeout"]),
                 "read its final position",
                 "wait up to %ss for %s to apply it" % (p["wait_timeout"], self.candidate.name),
                 "promote %s (stop and reset replication, read_only off)" % self.candidate.name]
        if self.traffic.get("backend"):
            plan.append("switch %s to %s" % (self.traffic["backend"], self.traffic["activate"]))
        plan += ["repoint %s to %s" % (node.name, self.candidate.name) for node in self.others]
        if p["attach_old_primary"]:
            plan.append("attach %s as a replica of %s" % (self.primary.name, self.candidate.name))
        if self.module.check_mode:
            # the preflight passed: the plan is what a real run does
            for step in plan:
                self.module.plan(step)
            return dict(facts=facts, timings=self.timings, positions={}, outage_ms=None, flipped=False)
        self.module.changed = True  # from here on the statements themselves are the actions
        return self.flip(facts)

    def undo_interrupted(self, facts):
        """The old state back: the frozen server writable (and serving), its replica still following it."""
        result = dict(facts=facts, timings=self.timings, positions={}, outage_ms=None, flipped=False, recovered=True)
        if self.module.check_mode:
            self.module.plan("undo an interrupted flip: make %s writable again (%s still replicates from it)" % (
                self.candidate.name, self.primary.name))
            return result
        self.module.changed = True
        self.timed("unfreeze", self.engine.unfreeze, self.candidate)
        self.timed("switch", self.switch_traffic)
        self.timed("maintenance_off", self.maintenance, False)
        self.candidate.close()
        result["positions"] = dict(candidate=self.engine.status(self.candidate)["position"])
        return result

    def complete_interrupted(self, facts):
        """Both servers frozen, the candidate holding everything: it becomes the writable primary, the
        other its replica again (or for the first time) - a killed flip finished, or undone by the revert."""
        result = dict(facts=facts, timings=self.timings, positions={}, outage_ms=None, flipped=False, recovered=True)
        if self.module.check_mode:
            self.module.plan("complete an interrupted flip: make %s writable (it has every transaction of %s)" % (
                self.candidate.name, self.primary.name))
            return result
        self.module.changed = True
        self.timed("promote", self.engine.promote, self.candidate, facts["candidate"])
        self.timed("switch", self.switch_traffic)
        finished = self.finish(facts, flipped=False)
        result["positions"] = finished["positions"]
        return result

    def resume_frozen_primary(self):
        """Start the primary an interrupted flip stopped; once its candidate streams again, flip as usual."""
        self.module.changed = True
        self.timed("unfreeze", self.engine.unfreeze, self.primary)
        if self.proxy and self.traffic.get("backend"):
            # the interrupted flip drained the old servers and switched nothing: they serve until the new flip
            servers = self.proxy.servers(self.traffic["backend"])
            if servers[self.traffic["activate"]]["state"] != "ready":
                self.undrain([name for name in self.traffic.get("deactivate") or [] if servers[name]["state"] == "maint"])
        self.primary.close()
        self.primary.connect()
        if not self.engine.wait_streaming(self.candidate, max(self.p["wait_timeout"], 10)):
            raise MigrateError("%s started again but %s does not stream from it: not flipping" % (
                self.primary.name, self.candidate.name), timings=self.timings)
        return dict(primary=self.engine.status(self.primary), candidate=self.engine.status(self.candidate))

    def flip(self, facts):
        p = self.p
        positions = {}
        undo = dict(maintenance=False, drained=[])
        started = None
        try:
            undo["maintenance"] = self.timed("maintenance_on", self.maintenance, True)
            if self.engine.frozen_primary_is_down:
                # new connections would queue towards a server that is stopping: send them nowhere instead
                undo["drained"] = self.timed("drain", self.drain)
            started = time.monotonic()
            self.timed("freeze", self.engine.freeze, self.primary, p["freeze_timeout"])
            positions["primary_final"] = self.timed("position", self.engine.position, self.primary)
            caught_up = self.timed("wait", self.engine.wait, self.candidate, positions["primary_final"],
                                   p["wait_timeout"])
            if not caught_up:
                raise MigrateError("%s did not apply %s within %ss" % (
                    self.candidate.name, positions["primary_final"], p["wait_timeout"]))
        except Exception as exc:  # pylint: disable=broad-except
            # whatever failed before the promotion: the old primary writable again, the rest as it was
            self.abort(exc, positions, undo)
        self.timed("promote", self.engine.promote, self.candidate)
        self.timed("switch", self.switch_traffic)
        outage = round((time.monotonic() - started) * 1000.0, 3)
        if undo["maintenance"]:
            self.timed("maintenance_off", self.maintenance, False)
        result = self.finish(facts, flipped=True)
        result["positions"].update(positions)
        result["outage_ms"] = outage
        return result

    def abort(self, exc, positions, undo):
        reason = exc.msg if isinstance(exc, MigrateError) else "%s: %s" % (type(exc).__name__, exc)
        failures = []
        for step, function, args in (("abort", self.engine.unfreeze, (self.primary,)),
                                     ("undrain", self.undrain, (undo["drained"],)),
                                     ("maintenance_off", self.maintenance, (False,))):
            if step == "maintenance_off" and not undo["maintenance"]:
                continue
            try:
                self.timed(step, function, *args)
            except Exception as undo_exc:  # pylint: disable=broad-except
                failures.append(undo_exc.msg if isinstance(undo_exc, MigrateError) else str(undo_exc))
        if failures:
            raise MigrateError("%s: aborted, but undoing the freeze failed - %s may still be frozen: %s" % (
                reason, self.primary.name, "; ".join(failures)), positions=positions, timings=self.timings,
                aborted=True)
        raise MigrateError("%s: aborted - %s is writable again, nothing else changed" % (reason, self.primary.name),
                           positions=positions, timings=self.timings, aborted=True)

    def drain(self):
        """The servers to deactivate in maintenance, their sessions cut; the ones that were not already."""
        if not self.proxy or not self.traffic.get("backend"):
            return []
        servers = self.proxy.servers(self.traffic["backend"])
        drained = []
        for name in self.traffic.get("deactivate") or []:
            if servers[name]["state"] != "maint":
                self.log.append("haproxy: set server %s/%s state maint" % (self.traffic["backend"], name))
                self.proxy.set_state(self.traffic["backend"], name, "maint")
                self.proxy.shutdown_sessions(self.traffic["backend"], name)
                drained.append(name)
        return drained

    def undrain(self, drained):
        for name in drained:
            self.log.append("haproxy: set server %s/%s state ready" % (self.traffic["backend"], name))
            self.proxy.set_state(self.traffic["backend"], name, "ready")

    def finish(self, facts, flipped):
        """After the flip (or on a re-run): traffic, other replicas, the old primary - each only if needed."""
        p = self.p
        changed = flipped
        if not flipped and self.traffic_differs():
            if self.module.check_mode:
                self.module.plan("switch %s to %s" % (self.traffic["backend"], self.traffic["activate"]))
            else:
                self.switch_traffic()
            changed = True
        for node in self.others:
            status = self.engine.status(node)
            if not self.engine.follows(status, self.candidate):
                if self.module.plan("repoint %s to %s" % (node.name, self.candidate.name)):
                    self.timed("repoint_" + node.name, self.engine.follow, node, self.candidate,
                               p["replication_user"], p["replication_password"])
                changed = True
        if p["attach_old_primary"]:
            status = self.engine.status(self.primary)
            if not self.engine.follows(status, self.candidate):
                if self.module.plan("attach %s as a replica of %s" % (self.primary.name, self.candidate.name)):
                    self.timed("attach_old_primary", self.engine.follow, self.primary, self.candidate,
                               p["replication_user"], p["replication_password"], True)
                changed = True
        # a restart must not make the old primary writable again, nor keep the new one read-only
        fence = self.engine.fence_plan(self.primary)
        if fence and self.module.plan(fence):
            self.timed("fence", self.engine.fence, self.primary)
        unfence = self.engine.unfence_plan(self.candidate)
        if unfence and self.module.plan(unfence):
            self.timed("unfence", self.engine.unfence, self.candidate)
        # the flip is complete: no maintenance page, whoever (an interrupted run, an operator) put it up
        if self.maintenance_shown():
            if self.module.check_mode:
                self.module.plan("hide the maintenance page (%s)" % self.traffic["maintenance_acl"])
            else:
                self.timed("maintenance_off", self.maintenance, False)
            changed = True
        if changed:
            self.module.changed = True
        positions = dict(candidate=self.engine.status(self.candidate)["position"])
        return dict(facts=facts, timings=self.timings, positions=positions, outage_ms=None, flipped=flipped)
