"""The state store on SQLite and PostgreSQL: accounts, keys, quotas, replay memory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from openccs.api.replay import ReplayGuard
from openccs.crypto import SecretBox
from openccs.domain import accounts as acc
from openccs.errors import ApiError
from openccs.store.db import Store
from openccs.store.models import ApiKey


def test_keys_are_encrypted_at_rest_and_at_most_two(store: Store, tmp_path: Path) -> None:
    box = SecretBox.from_data_dir(tmp_path)
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"
    with store.session() as s:
        a = acc.create_account(s)
        k1 = acc.create_key(s, box, a)
        acc.create_key(s, box, a)
        with pytest.raises(acc.AccountError):
            acc.create_key(s, box, a)
    with store.session() as s:
        row = s.get(ApiKey, k1.secret_id)
        assert row is not None and k1.secret_key not in row.secret_key_enc
        caller = acc.lookup_caller(s, box, k1.secret_id)
        assert caller is not None and caller.secret_key == k1.secret_key
        assert not caller.is_subuser


def test_accounts_get_distinct_app_ids_and_uins(store: Store) -> None:
    with store.session() as s:
        a, b = acc.create_account(s), acc.create_account(s)
        assert a.app_id != b.app_id and a.uin != b.uin
        assert acc.get_account(s, b.uin).id == b.id
        assert acc.get_account(s, str(a.app_id)).id == a.id


def test_quotas_default_to_the_document_and_can_be_changed(store: Store) -> None:
    with store.session() as s:
        a = acc.create_account(s)
        assert acc.quota(s, a.id, "clusters") == 5
        assert acc.quota(s, a.id, "nodesPerCluster") == 20
        assert acc.quota(s, a.id, "goodsNum") == 100
        acc.set_quota(s, a.id, "clusters", 7)
    with store.session() as s:
        assert acc.quota(s, a.id, "clusters") == 7
        with pytest.raises(acc.AccountError):
            acc.set_quota(s, a.id, "nonsense", 1)


def test_subuser_keys_carry_their_allow_lists(store: Store, tmp_path: Path) -> None:
    box = SecretBox.from_data_dir(tmp_path)
    with store.session() as s:
        a = acc.create_account(s)
        sub = acc.create_subuser(s, a, "ops", ["DescribeCluster"], ["cls-*"])
        k = acc.create_key(s, box, a, sub)
    with store.session() as s:
        caller = acc.lookup_caller(s, box, k.secret_id)
    assert caller is not None and caller.is_subuser and caller.account_id == a.id
    assert caller.allowed_actions == ["DescribeCluster"]
    assert caller.allowed_resources == ["cls-*"]


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as s:
        acc.create_account(s, name="half")
        raise RuntimeError("boom")
    with store.session() as s, pytest.raises(acc.AccountError):
        acc.get_account(s, "half")


def test_replay_memory_persists_and_stays_bounded(store: Store) -> None:
    now = int(time.time())
    guard = ReplayGuard(store, window=7200, per_key=3)
    for n in range(5):
        guard.check("AKID1", str(n), now - 10 + n)
    guard.flush()
    with pytest.raises(ApiError) as e:
        guard.check("AKID1", "4", now)
    assert e.value.code == 4500
    # Forgotten nonces (0, 1) cannot be replayed: their timestamps are below the floor.
    with pytest.raises(ApiError):
        guard.check("AKID1", "0", now - 10)
    # A new nonce with a current timestamp is fine; another SecretId is independent.
    guard.check("AKID1", "99", now)
    guard.check("AKID2", "0", now)
    guard.flush()

    again = ReplayGuard(store, window=7200, per_key=3)
    again.load()
    for nonce, ts in (("99", now), ("0", now - 10), ("3", now - 7)):
        with pytest.raises(ApiError):
            again.check("AKID1", nonce, ts)
    with pytest.raises(ApiError):
        again.check("AKID2", "0", now)
    again.check("AKID2", "1", now)


def test_replay_prune_forgets_only_what_the_window_refuses(store: Store) -> None:
    now = int(time.time())
    guard = ReplayGuard(store, window=100, per_key=1000)
    guard.check("K", "old", now - 90)
    guard.check("K", "new", now)
    guard.flush()
    with store.session() as s:
        from openccs.store.models import Nonce

        s.execute(Nonce.__table__.update().where(Nonce.nonce == "old").values(ts=now - 500))
    guard.prune()
    with store.session() as s:
        from openccs.store.models import Nonce

        assert list(s.scalars(select(Nonce.nonce))) == ["new"]


def test_replay_group_commit_writes_one_batch_for_a_turn_of_requests(store: Store) -> None:
    """Requests that check their nonce in the same turn of the event loop share one batch,
    and each is durable when `persisted` returns."""
    from openccs.store.models import Nonce

    now = int(time.time())
    guard = ReplayGuard(store, window=7200, per_key=1000)
    guard.start()
    batches: list[int] = []
    durable: list[bool] = []

    async def request(n: int) -> None:
        batch = guard.check("GROUP", f"n{n}", now)
        batches.append(batch)
        await guard.persisted(batch)
        with store.session() as s:
            found = s.get(Nonce, ("GROUP", f"n{n}"))
        durable.append(found is not None)

    async def main() -> None:
        await asyncio.gather(*(request(n) for n in range(100)))

    try:
        asyncio.run(main())
    finally:
        guard.stop()
    assert len(batches) == 100 and len(set(batches)) == 1
    assert durable == [True] * 100
    with pytest.raises(ApiError):
        guard.check("GROUP", "n7", now)


def test_replay_guards_of_two_processes_share_nonces_through_the_database(store: Store) -> None:
    """`serve --workers N`: each process has its own guard on one database. A nonce one of
    them accepted is refused by the other (4500) once its batch is written, however its
    memory looks; a row older than the window is taken over."""
    from openccs.store.models import Nonce

    now = int(time.time())
    first = ReplayGuard(store, window=100, per_key=1000)
    second = ReplayGuard(store, window=100, per_key=1000)

    async def request(guard: ReplayGuard, nonce: str) -> None:
        batch = guard.check("SHARED", nonce, now)
        await guard.persisted(batch, ("SHARED", nonce))

    asyncio.run(request(first, "1"))
    with pytest.raises(ApiError) as e:
        asyncio.run(request(second, "1"))
    assert e.value.code == 4500 and "already used" in e.value.message
    asyncio.run(request(second, "2"))
    with pytest.raises(ApiError):
        asyncio.run(request(first, "2"))

    # Several nonces in one batch: only the one taken elsewhere is refused.
    async def batch_of_three() -> list[str]:
        outcomes = await asyncio.gather(
            *(request(first, n) for n in ("3", "2", "4")), return_exceptions=True
        )
        return ["refused" if isinstance(o, ApiError) else "ok" for o in outcomes]

    assert asyncio.run(batch_of_three()) == ["ok", "refused", "ok"]

    # A row the window already refuses (not yet pruned) does not block a fresh request.
    with store.session() as s:
        s.execute(Nonce.__table__.update().where(Nonce.nonce == "4").values(ts=now - 500))
    asyncio.run(request(second, "4"))
    with store.session() as s:
        assert s.get(Nonce, ("SHARED", "4")).ts == now  # type: ignore[union-attr]


def test_replay_batch_waits_out_another_writer_on_sqlite(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that finds SQLite locked by another connection (another process's writer)
    is written as soon as that writer is done; one locked out past the guard's patience
    fails (its requests answer 6000) and writes nothing."""
    if not store.is_sqlite:
        pytest.skip("SQLite's lock")
    import threading

    from sqlalchemy.exc import OperationalError

    from openccs.api import replay as replay_mod
    from openccs.store.models import Nonce

    now = int(time.time())
    guard = ReplayGuard(store, window=100, per_key=1000)
    holder = store.engine.connect()
    holder.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, as another process holds it
    released = threading.Event()

    def release() -> None:
        time.sleep(0.3)
        released.set()
        holder.exec_driver_sql("COMMIT")

    threading.Thread(target=release).start()
    guard.check("LOCKED", "1", now)
    guard.flush()  # retried until the holder commits
    assert released.is_set()
    with store.session() as s:
        assert s.get(Nonce, ("LOCKED", "1")) is not None

    monkeypatch.setattr(replay_mod, "WRITE_PATIENCE", 0.2)
    holder.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        guard.check("LOCKED", "2", now)
        with pytest.raises(OperationalError, match="locked"):
            guard.flush()
    finally:
        holder.exec_driver_sql("ROLLBACK")
        holder.close()
        guard.stop()
    with store.session() as s:
        assert s.get(Nonce, ("LOCKED", "2")) is None
