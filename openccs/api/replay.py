"""Replay guard: a Timestamp window and per-SecretId Nonce memory (code 4500).

Checks happen in memory under a lock (check-and-add is atomic); every accepted nonce
is written to the database before the request is answered, in batches ("group commit"),
so nonce memory survives a restart without a write per request. Memory is bounded: when
a SecretId has more nonces than the cap, the oldest are forgotten and their timestamp
becomes a floor below which that SecretId's requests are refused, so nothing forgotten can
be replayed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from openccs.log import get_logger, log_event
from openccs.store.db import Store
from openccs.store.models import Nonce

from .errors import replay

log = get_logger("openccs.replay")


@dataclass
class _KeyMemory:
    nonces: OrderedDict[str, int] = field(default_factory=OrderedDict)
    floor: int = -1


class ReplayGuard:
    def __init__(self, store: Store, window: int, per_key: int) -> None:
        self.store = store
        self.window = window
        self.per_key = per_key
        self._keys: dict[str, _KeyMemory] = {}
        self._pending: list[tuple[str, str, int]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read remembered nonces still inside the window (at start)."""
        cutoff = int(time.time()) - self.window
        with self.store.session() as s:
            rows = s.execute(
                select(Nonce.secret_id, Nonce.nonce, Nonce.ts)
                .where(Nonce.ts >= cutoff)
                .order_by(Nonce.ts)
            ).all()
        for secret_id, nonce, ts in rows:
            self._remember(secret_id, nonce, ts)
        log_event(log, "nonces loaded", count=len(rows))

    def _remember(self, secret_id: str, nonce: str, ts: int) -> None:
        mem = self._keys.get(secret_id)
        if mem is None:
            mem = self._keys[secret_id] = _KeyMemory()
        mem.nonces[nonce] = ts
        while len(mem.nonces) > self.per_key:
            _, old_ts = mem.nonces.popitem(last=False)
            mem.floor = max(mem.floor, old_ts)

    def check(self, secret_id: str, nonce: str, timestamp: int, now: float | None = None) -> None:
        """Raise 4500 for a stale timestamp or a reused nonce; otherwise remember the nonce."""
        now = time.time() if now is None else now
        if abs(now - timestamp) > self.window:
            raise replay(
                f"Timestamp {timestamp} is more than {self.window} s away from the server's"
                f" clock ({int(now)}): sign with the current time"
            )
        with self._lock:
            mem = self._keys.get(secret_id)
            if mem is not None:
                if nonce in mem.nonces:
                    raise replay(
                        f"Nonce {nonce} was already used with this SecretId: use a new one"
                    )
                if timestamp <= mem.floor:
                    raise replay(
                        f"Timestamp {timestamp} is older than this SecretId's replay memory"
                        f" ({mem.floor}): sign with the current time"
                    )
            self._remember(secret_id, nonce, timestamp)
            self._pending.append((secret_id, nonce, timestamp))

    async def persisted(self) -> None:
        """Wait until every nonce accepted so far is in the database."""
        if self._writer is None:
            await asyncio.to_thread(self._flush_now)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        assert self._wakeup is not None
        self._wakeup.set()
        await fut

    def _take(self) -> list[tuple[str, str, int]]:
        with self._lock:
            batch, self._pending = self._pending, []
        return batch

    def _flush_now(self) -> None:
        self._write(self._take())

    def _write(self, batch: list[tuple[str, str, int]]) -> None:
        if not batch:
            return
        rows = [{"secret_id": a, "nonce": b, "ts": c} for a, b, c in batch]
        # A row may remain from a nonce forgotten in memory (cap) but not yet pruned.
        dialect = sqlite if self.store.is_sqlite else postgresql
        stmt = dialect.insert(Nonce)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Nonce.secret_id, Nonce.nonce], set_={"ts": stmt.excluded.ts}
        )
        with self.store.session() as s:
            s.execute(stmt, rows)

    async def run_writer(self) -> None:
        """Group commit: one transaction for every nonce that arrived meanwhile."""
        self._wakeup = asyncio.Event()
        self._writer = asyncio.current_task()
        last_prune = time.monotonic()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                waiters, self._waiters = self._waiters, []
                batch = self._take()
                try:
                    await asyncio.to_thread(self._write, batch)
                except Exception as exc:  # the requests waiting on it answer 6000
                    for w in waiters:
                        if not w.done():
                            w.set_exception(exc)
                    continue
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
                if time.monotonic() - last_prune > 60:
                    last_prune = time.monotonic()
                    await asyncio.to_thread(self.prune)
        finally:
            self._writer = None

    def prune(self) -> None:
        """Forget what the window already refuses, in memory and in the database."""
        cutoff = int(time.time()) - self.window
        with self._lock:
            for mem in self._keys.values():
                while mem.nonces:
                    _, ts = next(iter(mem.nonces.items()))
                    if ts >= cutoff:
                        break
                    mem.nonces.popitem(last=False)
        with self.store.session() as s:
            s.execute(delete(Nonce).where(Nonce.ts < cutoff))
