"""Replay guard: a Timestamp window and per-SecretId Nonce memory (code 4500).

Checks happen in memory under a lock (check-and-add is atomic). Every accepted nonce is
in the database before its request takes effect: a writer thread commits the nonces of
all requests waiting at that moment in one transaction ("group commit"), so nonce memory
survives a restart without a commit per request. The event loop wakes the writer once per
turn, after every request of that turn has added its nonce, not once per request: under
load a batch holds the nonces of many requests, not one or two. Memory is bounded: when a
SecretId has more nonces than the cap, the oldest are forgotten and their timestamp becomes
a floor below which that SecretId's requests are refused, so nothing forgotten can be
replayed.

Several processes may serve the API on one database (`serve --workers N`): a nonce is
accepted only when its row is new (or one the window already refuses), so the database's
unique key refuses a nonce that another process accepted, and memory only refuses early.
Each process writes its own batches (SQLite serializes them as it does the writers of one
process).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from openccs.errors import replay
from openccs.log import get_logger, log_event
from openccs.store.db import Store, is_locked, make_engine
from openccs.store.models import Nonce

log = get_logger("openccs.replay")
PRUNE_EVERY = 60.0
# A batch that finds SQLite locked is tried again after RETRY_FIRST s, doubling up to
# RETRY_MAX (with jitter), for WRITE_PATIENCE s in all.
RETRY_FIRST, RETRY_MAX, WRITE_PATIENCE = 0.0002, 0.002, 10.0


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
        self._lock = threading.Lock()
        # Group commit: `_pending` waits for the writer; batches are numbered, and a
        # request waits until the batch holding its nonce is committed (or failed).
        self._cond = threading.Condition(self._lock)
        self._pending: list[tuple[str, str, int]] = []
        self._batch = 0  # the batch that `_pending` will become
        self._done = -1  # the last batch committed or failed
        self._failed: dict[int, Exception] = {}
        # Nonces of a committed batch whose row another process had written first.
        self._refused: dict[int, set[tuple[str, str]]] = {}
        self._async_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._kicks: set[asyncio.AbstractEventLoop] = set()  # loops with a wake-up due
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._dialect: Any = sqlite if store.is_sqlite else postgresql
        # On SQLite the batches go through a connection of their own that is told at once
        # when the database is locked (`_insert_sqlite`).
        self._writer: Any = (
            make_engine(store.url, pool_size=1, busy_timeout_ms=0) if store.is_sqlite else None
        )
        # Only the process that owns the background work prunes the table.
        self.prunes_database = True

    def load(self) -> None:
        """Read remembered nonces still inside the window (at start)."""
        cutoff = int(time.time()) - self.window
        with self.store.session() as s:
            rows = s.execute(
                select(Nonce.secret_id, Nonce.nonce, Nonce.ts)
                .where(Nonce.ts >= cutoff)
                .order_by(Nonce.ts)
            ).all()
        with self._lock:
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

    def check(self, secret_id: str, nonce: str, timestamp: int, now: float | None = None) -> int:
        """Raise 4500 for a stale timestamp or a reused nonce; otherwise remember the nonce
        and return the batch that will persist it (for `persisted`)."""
        now = time.time() if now is None else now
        # In integers: a float conversion of a huge timestamp would overflow.
        if abs(int(now) - timestamp) > self.window:
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
            # The writer is woken by `persisted` (or picks the nonce up after its batch).
            return self._batch

    async def persisted(self, batch: int, key: tuple[str, str] | None = None) -> None:
        """Wait on the event loop until `batch` is committed; raise if writing it failed, or
        4500 if KEY (secret_id, nonce) was in the database already (another process took
        that nonce)."""
        if self._thread is None:
            await asyncio.to_thread(self.flush)
        else:
            await self._committed(batch)
        if key is not None:
            with self._lock:
                refused = key in self._refused.get(batch, ())
            if refused:
                raise replay(f"Nonce {key[1]} was already used with this SecretId: use a new one")

    async def _committed(self, batch: int) -> None:
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._done >= batch:
                err = self._failed.get(batch)
                if err is not None:
                    raise err
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._async_waiters.append((batch, loop, fut))
            if loop not in self._kicks:
                # Wake the writer after the requests ready in this turn of the loop have
                # added their nonces too: one batch for all of them.
                self._kicks.add(loop)
                loop.call_soon(self._kick, loop)
        await fut

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._cond:
            self._kicks.discard(loop)
            self._cond.notify_all()

    def _wake_async(self) -> None:
        """Resolve the event-loop waiters whose batch is done (called with the lock held):
        one call into each loop for all of its waiters."""
        keep = []
        ready: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], Exception | None]]]
        ready = {}
        for batch, loop, fut in self._async_waiters:
            if batch > self._done:
                keep.append((batch, loop, fut))
                continue
            ready.setdefault(loop, []).append((fut, self._failed.get(batch)))
        self._async_waiters = keep
        for loop, futures in ready.items():
            # A loop closed meanwhile has nobody waiting any more; the writer carries on.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve_all, futures)

    def flush(self) -> None:
        """Write what is pending, in the calling thread."""
        with self._lock:
            rows, self._pending = self._pending, []
            batch = self._batch
            self._batch += 1
        refused: set[tuple[str, str]] = set()
        try:
            refused = self._write(rows)
        finally:
            with self._cond:
                self._note_refused(batch, refused)
                self._done = max(self._done, batch)
                self._wake_async()
                self._cond.notify_all()

    def _note_refused(self, batch: int, refused: set[tuple[str, str]]) -> None:
        # Called with the lock held; waiters read theirs as soon as the batch is done.
        if refused:
            self._refused[batch] = refused
        for old in [b for b in self._refused if b < batch - 1000]:
            del self._refused[old]

    def _write(self, rows: list[tuple[str, str, int]]) -> set[tuple[str, str]]:
        """Insert the nonces; those whose row exists (and is inside the window) are refused."""
        if not rows:
            return set()
        table = Nonce.__table__
        stmt = self._dialect.insert(table)
        # A row older than the window (not yet pruned) is taken over; a younger one means
        # the nonce was used: no row comes back for it.
        cutoff = int(time.time()) - self.window
        stmt = stmt.on_conflict_do_update(
            index_elements=["secret_id", "nonce"],
            set_={"ts": stmt.excluded.ts},
            where=table.c.ts < literal(cutoff),
        ).returning(table.c.secret_id, table.c.nonce)
        # (No nonce is twice in one batch: `check` refuses what memory holds.)
        params = [{"secret_id": a, "nonce": b, "ts": c} for a, b, c in rows]
        if self._writer is None:
            taken = self._insert(self.store.engine, stmt, params)
        else:
            taken = self._insert_sqlite(stmt, params)
        return {(a, b) for a, b, _ in rows} - taken

    @staticmethod
    def _insert(engine: Any, stmt: Any, params: list[dict[str, Any]]) -> set[tuple[str, str]]:
        with engine.begin() as conn:
            return {(a, b) for a, b in conn.execute(stmt, params)}

    def _insert_sqlite(self, stmt: Any, params: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """The batch on SQLite, where another process's writer (an API worker's nonces, the
        main process's engine) may hold the database: tried again after a fraction of a
        millisecond, not in SQLite's busy handler, whose sleeps grow to 25-100 ms and let
        the other process take the lock again meanwhile (a p99 of 200 ms with two workers
        under load); given up after `WRITE_PATIENCE` s as the busy handler would."""
        assert self._writer is not None
        deadline = time.monotonic() + WRITE_PATIENCE
        pause = RETRY_FIRST
        while True:
            try:
                return self._insert(self._writer, stmt, params)
            except OperationalError as exc:
                if not is_locked(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, RETRY_MAX)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nonce-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.flush()
        if self._writer is not None:
            self._writer.dispose()  # its connection closed (the engine opens one again if used)

    def _run(self) -> None:
        last_prune = time.monotonic()
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait(PRUNE_EVERY)
                    if time.monotonic() - last_prune > PRUNE_EVERY:
                        break
                if self._stopping and not self._pending:
                    return
                rows, self._pending = self._pending, []
                batch = self._batch
                self._batch += 1
            error: Exception | None = None
            refused: set[tuple[str, str]] = set()
            try:
                refused = self._write(rows)
            except Exception as exc:  # the requests of this batch answer 6000
                log.exception("writing nonces failed")
                error = exc
            with self._cond:
                if error is not None:
                    self._failed[batch] = error
                    # Keep only recent failures: waiters read theirs right away.
                    for old in [b for b in self._failed if b < batch - 1000]:
                        del self._failed[old]
                self._note_refused(batch, refused)
                self._done = batch
                self._wake_async()
                self._cond.notify_all()
            if time.monotonic() - last_prune > PRUNE_EVERY:
                last_prune = time.monotonic()
                try:
                    self.prune()
                except Exception:
                    log.exception("pruning nonces failed")

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
        if not self.prunes_database:
            return
        with self.store.engine.begin() as conn:
            conn.execute(delete(Nonce).where(Nonce.ts < cutoff))


def _resolve_all(futures: list[tuple[asyncio.Future[None], Exception | None]]) -> None:
    for fut, err in futures:
        if fut.done():
            continue
        if err is None:
            fut.set_result(None)
        else:
            fut.set_exception(err)
