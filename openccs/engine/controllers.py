"""The controllers' part of a cluster pass, at the cost of what changed.

The deployment and replica set controllers decide a service's next step from the service's
own rows alone (the service, its revisions, its pods) and the clock (minReadySeconds). So a
pass reconciles only the services whose rows a committed transaction touched since the
last pass, those whose own due time has come, and every service in a full pass (the
engine's periodic resync, a cluster's first pass, an UPDATE or DELETE statement whose rows
are not known, a pass whose transaction failed). Still level-triggered: a service's step
is computed from the database, never from the change noted; the note only says which
services to look at, and the full pass repairs whatever a note missed.

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

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.orm.util import identity_key

from openccs.engine import deployment, scheduler
from openccs.store.models import Pod, ReplicaSet, Service

T = TypeVar("T")

# Session.info keys: the services a transaction touched (cluster -> service ids); whether
# it touched some it cannot name; what a controllers' pass took (put back on rollback).
_NOTED, _UNKNOWN, _TAKEN = "controllers_noted", "controllers_unknown", "controllers_taken"


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
        event.listen(sessions, "after_flush", _note_flush)
        event.listen(sessions, "do_orm_execute", _note_statement)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_rollback", self._after_rollback)

    def remove(self, sessions: sessionmaker[Session]) -> None:
        event.remove(sessions, "after_flush", _note_flush)
        event.remove(sessions, "do_orm_execute", _note_statement)
        event.remove(sessions, "after_commit", self._after_commit)
        event.remove(sessions, "after_rollback", self._after_rollback)

    def forget(self, cluster_id: str) -> None:
        """A cluster whose loop ended."""
        with self._lock:
            self._noted.pop(cluster_id, None)
            self._unknown_seen.pop(cluster_id, None)
        self._due.pop(cluster_id, None)
        self._placed.pop(cluster_id, None)

    def _after_commit(self, session: Session) -> None:
        noted: dict[str, set[int]] = session.info.pop(_NOTED, {})
        session.info.pop(_TAKEN, None)
        with self._lock:
            if session.info.pop(_UNKNOWN, False):
                self._unknown += 1
            for cluster_id, ids in noted.items():
                self._noted.setdefault(cluster_id, set()).update(ids)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_NOTED, None)
        session.info.pop(_UNKNOWN, None)
        taken = session.info.pop(_TAKEN, None)
        if taken is not None:  # the pass's work is undone: its next pass does it all
            with self._lock:
                self._unknown_seen[taken] = -1

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
        s.info[_TAKEN] = cluster_id
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


def _note(session: Session, cluster_id: str | None, service_id: int | None) -> None:
    if cluster_id is None or service_id is None:
        session.info[_UNKNOWN] = True
    else:
        session.info.setdefault(_NOTED, {}).setdefault(cluster_id, set()).add(service_id)


def _note_flush(session: Session, _context: Any) -> None:
    """After each flush (ids given, the flushed objects' history still there): the
    services whose rows it wrote (the service, a pod of it, a revision of it). Values are
    read from what the objects hold, never loaded (a deleted row is gone)."""
    dirty = [o for o in session.dirty if session.is_modified(o)]
    for obj in (*session.new, *dirty, *session.deleted):
        if isinstance(obj, Service):
            have = inspect(obj).dict
            _note(session, have.get("cluster_id"), have.get("id"))
        elif isinstance(obj, Pod):
            have = inspect(obj).dict
            if "service_id" not in have:
                session.info[_UNKNOWN] = True
            elif have["service_id"] is not None:
                _note(session, have.get("cluster_id"), have["service_id"])
        elif isinstance(obj, ReplicaSet):
            service_id = inspect(obj).dict.get("service_id")
            svc = session.identity_map.get(identity_key(Service, service_id))
            cluster_id = inspect(svc).dict.get("cluster_id") if svc is not None else None
            _note(session, cluster_id, service_id)


def _note_statement(state: ORMExecuteState) -> None:
    """An UPDATE or DELETE statement (not a flush): the services it touches are not
    known, so every cluster's next pass is a full one."""
    if (state.is_update or state.is_delete) and any(
        m.class_ in (Service, Pod, ReplicaSet) for m in state.all_mappers
    ):
        state.session.info[_UNKNOWN] = True
