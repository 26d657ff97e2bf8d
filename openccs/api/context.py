"""What a handler gets: the caller, the request's transaction, and the server's services.

Read, work, write: a handler that must talk to the network, docker or a subprocess (copy an
image's blobs, delete manifests, pick a free port) does it inside `ctx.outside()` (the request's
`Work.outside()`), between a short reading transaction and a short writing one, never while
a transaction is open.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from openccs.backends import Work
from openccs.domain.accounts import Caller

if TYPE_CHECKING:
    from openccs.server import Services
    from openccs.subsystems import Subsystems


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

    def outside(self) -> AbstractContextManager[None]:
        """Leave the request's transaction for slow I/O: `Work.outside()` (the one way)."""
        return self.work().outside()
