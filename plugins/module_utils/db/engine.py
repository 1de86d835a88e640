# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the database engines of db_replica_promote share (db/mariadb.py, db/postgresql.py).

An engine gives: ``node(name, spec)``, ``status(node)`` (read_only, position, replica
{source_host, source_port, io_running, sql_running, lag, error} or None), ``preflight``,
``freeze``, ``unfreeze``, ``position``, ``wait``, ``promote``, ``follow`` and ``follows``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Engine:
    name = ""
    default_port = 0
    # how a frozen primary looks: PostgreSQL's is stopped (cannot be connected to), MariaDB's is read_only
    frozen_primary_is_down = False

    def __init__(self, log):
        self.log = log
        self.after_step = lambda name: None  # the switchover's checkpoint between two statements

    def fence_plan(self, old_primary):
        """What ``fence`` would do to keep a left-alone old primary from coming back writable, or None."""
        return None

    def fence(self, old_primary):
        pass

    def unfence_plan(self, new_primary):
        """What ``unfence`` would do to let the new primary come back writable after a restart, or None."""
        return None

    def unfence(self, new_primary):
        pass

    def attach_first(self, primary_status, candidate_status, primary, candidate):
        """The candidate must become a replica of the primary before this flip can run (an interrupted flip
        the other way passed its promotion)."""
        return False

    def interrupted_promotion(self, primary_status, candidate_status, primary, candidate):
        """A flip was stopped inside its promotion: completing it towards ``candidate`` loses nothing."""
        return False

    @classmethod
    def replicates_from(cls, status, node):
        """``status`` (of some server) says it replicates from ``node``."""
        replica = status.get("replica")
        return bool(replica) and replica["source_port"] == int(node.spec.get("port") or cls.default_port) and \
            replica["source_host"] in (node.spec.get("host"), node.spec.get("replication_host"))

    def interrupted_freeze(self, primary_status, candidate_status, primary, candidate):
        """The state a flip from ``candidate`` to ``primary`` leaves when it stopped (was killed)
        after its freeze and before its promote: ``candidate`` frozen and replicating from nobody,
        ``primary`` still its replica with nothing of its own. Going back is undoing the freeze."""
        raise NotImplementedError
