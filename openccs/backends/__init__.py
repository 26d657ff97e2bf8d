"""Backends: each resource group's rules under every front end (the v2 actions, the
Kubernetes API, the console), like moto's models: typed inputs, typed results, and the
effects a change leaves to do once its transaction commits, declared on one `Work`.

A front end decodes its wire into a backend call and encodes the result; it holds no rule
and calls no other front end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

if TYPE_CHECKING:
    from openccs.server import Services


# Set on a session by its first write (a flush, an insert/update/delete statement): a
# transaction that wrote may not be left for work.
_WROTE = "openccs.work.wrote"
_OUTSIDE = "openccs.work.outside"


@event.listens_for(Session, "after_flush")
def _mark_written(session: Session, _ctx: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _mark_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_begin")
def _refuse_outside(session: Session, _tx: Any, _conn: Any) -> None:
    if session.info.get(_OUTSIDE):
        raise RuntimeError(
            "the database was used inside Work.outside(): read before it, write after it"
        )


@dataclass
class Effects:
    """What a change leaves to do after its transaction commits (never before: a task or a
    controller must see the committed state). The workload engine needs no entry: it is
    woken by the commit itself (it notes the clusters whose rows a transaction changed)."""

    tasks: list[int] = field(default_factory=list)  # task ids to hand to the runner
    wake_traffic: bool = False  # load balancers, node ports, ingresses changed
    wake_autoscaler: bool = False  # autoscaling groups or the autoscaler's settings changed
    wake_logs: bool = False  # log collection rules changed (shippers start or stop)

    def run(self, services: Services) -> None:
        for task_id in self.tasks:
            services.tasks.submit(task_id)
        subsystems = services.subsystems
        if self.wake_traffic and subsystems.traffic is not None:
            subsystems.traffic.wake()
        if self.wake_autoscaler and subsystems.autoscaler is not None:
            subsystems.autoscaler.wake()
        if self.wake_logs and subsystems.logs is not None:
            subsystems.logs.wake()


@dataclass
class Work:
    """One backend call's unit of work: its transaction, the account it acts for, the
    server's services, and the effects it declares. The front end runs `effects` once the
    transaction has committed (and drops them when it rolls back, e.g. a dry run)."""

    db: Session
    account_id: int
    services: Services
    effects: Effects = field(default_factory=Effects)

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Leave the transaction for slow I/O (docker, network, a subprocess, binding a
        socket); a new one starts on the database's next use after the block. The one way
        out of a transaction for work, on every front end: read, work, write.

        The reading half must not have written (a programming error, raised at once):
        everything the call changes is written after the work, in one short transaction,
        so a failed call leaves nothing half-made. Rows read before are detached: their
        loaded values stay readable, but the work cannot reach the database through them,
        and the writing half reads again what it changes (the state may have moved)."""
        s = self.db
        if s.new or s.dirty or s.deleted or s.info.get(_WROTE):
            raise RuntimeError("Work.outside() after a write: read, work, then write")
        s.commit()  # nothing was written: this only ends the reading transaction
        s.expunge_all()
        s.info[_OUTSIDE] = True
        try:
            yield
        finally:
            s.info.pop(_OUTSIDE, None)
