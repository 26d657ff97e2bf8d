"""What a handler gets: the caller, the request's transaction, and the server's services.

Read, work, write: a handler that must talk to the network, docker or a subprocess (copy an
image's blobs, delete manifests, pick a free port) does it inside `ctx.outside()`, between a
short reading transaction and a short writing one, never while a transaction is open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from openccs.backends import Work
from openccs.domain.accounts import Caller

if TYPE_CHECKING:
    from openccs.server import Services
    from openccs.subsystems import Subsystems

# Set on a session by its first write (a flush, an insert/update/delete statement): a
# transaction that wrote may not be left for work.
_WROTE = "openccs.request.wrote"
_OUTSIDE = "openccs.request.outside"


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
            "a handler used the database inside ctx.outside(): read before it, write after it"
        )


@dataclass
class RequestContext:
    request_id: str
    action: str
    region: str
    caller: Caller
    db: Session
    services: Services
    # Run after the request's transaction commits (e.g. hand a new task to the runner).
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    _work: Work | None = field(default=None, repr=False)

    @property
    def account_id(self) -> int:
        return self.caller.account_id

    def on_commit(self, fn: Callable[[], None]) -> None:
        self.after_commit.append(fn)

    @property
    def subsystems(self) -> Subsystems:
        return self.services.subsystems

    def work(self) -> Work:
        """The request's unit of work for a backend call; its effects run after commit."""
        if self._work is None:
            work = self._work = Work(self.db, self.account_id, self.services)
            self.on_commit(lambda: work.effects.run(self.services))
        return self._work

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Leave the request's transaction for slow I/O; a new one starts after the block.

        The reading half must not have written (it is a programming error, raised at once):
        everything the request changes is written after the work, in one short transaction,
        so a failed request leaves nothing half-made. Rows read before are detached: their
        loaded values stay readable, but the work cannot reach the database through them,
        and the writing half reads again what it changes (the state may have moved)."""
        s = self.db
        if s.new or s.dirty or s.deleted or s.info.get(_WROTE):
            raise RuntimeError("ctx.outside() after a write: read, work, then write")
        s.commit()  # nothing was written: this only ends the reading transaction
        s.expunge_all()
        s.info[_OUTSIDE] = True
        try:
            yield
        finally:
            s.info.pop(_OUTSIDE, None)
