"""The controllers' part of a cluster pass, at the cost of what changed.

The deployment and replica set controllers decide a service's next step from the service's
own rows alone (the service, its revisions, its pods) and the clock (minReadySeconds). So a
pass reconciles only the services whose rows a committed transaction touched since the
last pass, those whose own due time has come, and every service in a full pass (the
engine's periodic resync, a cluster's first pass, an UPDATE or DELETE statement whose rows
are not known, a pass whose transaction failed). Which services a transaction touched
comes from the note of `engine/changes.py` (the engine's one set of session listeners,
shared with its generations), handed over on commit (`committed`). Still level-triggered:
a service's step is computed from the database, never from the change noted; the note only
says which services to look at, and the full pass repairs whatever a note missed.

The scheduler reads the placed pods as columns, with their requests kept between passes
(a pod's template never changes), and only when a pod is pending. The node lifecycle
controller is cheap (the cluster's machines) and runs in every pass.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from openccs.engine import deployment, scheduler
from openccs.engine.changes import Changes, changes_of, note_flush, note_statement, take

T = TypeVar("T")


def _call(_name: str, fn: Callable[[], T]) -> T:
    return fn()


class Controllers:
    """Per cluster: the services noted since its last pass, each service's due time, the
    scheduler's memory of placed pods. Commits note from any thread; a cluster's passes
    run one at a time (its loop's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._noted: dict[str, set[int]] = {}
        # Bumped by a commit that touched services it cannot name: every cluster's next
        # pass is a full one.
        self._unknown = 0
        self._unknown_seen: dict[str, int] = {}
        self._due: dict[str, dict[int, float]] = {}  # cluster -> service id -> monotonic
        self._placed: dict[str, dict[str, scheduler.Requests]] = {}

    def listen(self, sessions: sessionmaker[Session]) -> None:
        """Follow the commits of `sessions` on their own (without an engine, whose
        listeners hand the controllers their part of each commit's note)."""
        event.listen(sessions, "after_flush", note_flush)
        event.listen(sessions, "do_orm_execute", note_statement)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_rollback", self._after_rollback)

    def remove(self, sessions: sessionmaker[Session]) -> None:
        event.remove(sessions, "after_flush", note_flush)
        event.remove(sessions, "do_orm_execute", note_statement)
        event.remove(sessions, "after_commit", self._after_commit)
        event.remove(sessions, "after_rollback", self._after_rollback)

    def forget(self, cluster_id: str) -> None:
        """A cluster whose loop ended."""
        with self._lock:
            self._noted.pop(cluster_id, None)
            self._unknown_seen.pop(cluster_id, None)
        self._due.pop(cluster_id, None)
        self._placed.pop(cluster_id, None)

    def committed(self, note: Changes) -> None:
        """A committed transaction's note: the services it touched are looked at in their
        cluster's next pass (all of them after one it could not name)."""
        if not note.services and not note.services_unknown:
            return
        with self._lock:
            if note.services_unknown:
                self._unknown += 1
            for cluster_id, ids in note.services.items():
                self._noted.setdefault(cluster_id, set()).update(ids)

    def rolled_back(self, note: Changes) -> None:
        """A rolled-back transaction's note: if it was a pass's, its work is undone, and
        its cluster's next pass does it all."""
        if note.taken is not None:
            with self._lock:
                self._unknown_seen[note.taken] = -1

    def _after_commit(self, session: Session) -> None:
        note = take(session)
        if note is not None:
            self.committed(note)

    def _after_rollback(self, session: Session) -> None:
        note = take(session)
        if note is not None:
            self.rolled_back(note)

    def run(
        self,
        s: Session,
        cluster_id: str,
        full: bool,
        node_lifecycle: Callable[[], float],
        timed: Callable[[str, Callable[[], Any]], Any] = _call,
        placed: set[str] | None = None,
    ) -> float:
        """The controllers of one cluster in `s` (before anything else reads in it, so it
        sees every change noted); seconds until their next pass is due. The machines the
        scheduler gave pods to are added to `placed`."""
        now = time.monotonic()
        with self._lock:
            noted = self._noted.pop(cluster_id, set())
            everything = full or self._unknown_seen.get(cluster_id) != self._unknown
            self._unknown_seen[cluster_id] = self._unknown
        changes_of(s).taken = cluster_id
        try:
            due = timed("lifecycle", node_lifecycle)
            dues = self._due.setdefault(cluster_id, {})
            only = None if everything else noted | {i for i, at in dues.items() if at <= now}
            got: dict[int, float] = timed(
                "reconcile", lambda: deployment.reconcile_services(s, cluster_id, only)
            )
            placed_on: set[str] = timed(
                "schedule",
                lambda: scheduler.schedule_cluster(
                    s, cluster_id, self._placed.setdefault(cluster_id, {})
                ),
            )
            if placed is not None:
                placed.update(placed_on)
        except BaseException:
            with self._lock:
                self._unknown_seen[cluster_id] = -1
            raise
        if only is None:
            dues.clear()
        for service_id in only or ():
            dues.pop(service_id, None)
        dues.update((i, now + d) for i, d in got.items() if d != math.inf)
        return min(due, *(at - now for at in dues.values()), math.inf)
