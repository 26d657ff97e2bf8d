"""Nothing lost: tasks resume after kill -9, nonces are remembered, shutdown is clean."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, text

from .conftest import Server


def db_engine(server: Server):
    return create_engine(server.db_url or f"sqlite:///{server.data_dir / 'openccs.db'}")


def test_task_resumes_after_kill_9_and_the_database_is_intact(own_server: Server) -> None:
    srv = own_server
    creds_before = srv.default
    res = srv.client().call("OpenccsRunTestTask", {"stepSeconds": "1"})
    request_id = res["data"]["requestId"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = srv.client().call("DescribeClusterTaskResult", {"requestId": request_id})["data"]
        if data["steps"][0]["status"] == "done":
            break
        time.sleep(0.05)
    assert data["status"] == "running" and data["steps"][-1]["status"] == "pending"
    srv.kill9()

    engine = db_engine(srv)
    with engine.connect() as conn:
        if srv.backend == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        status, step = conn.execute(
            text("SELECT status, step FROM tasks WHERE id = :i"), {"i": request_id}
        ).one()
    assert status == "running" and 1 <= step < 5

    srv.start()
    assert srv.default == creds_before  # the default account is not made again
    data = srv.wait_task(request_id)
    assert data["status"] == "succ"
    with engine.connect() as conn:
        state = conn.execute(
            text("SELECT state FROM tasks WHERE id = :i"), {"i": request_id}
        ).scalar()
    engine.dispose()
    runs = state if isinstance(state, dict) else __import__("json").loads(state)
    # Steps finished before the kill are not run again; every step ran.
    assert runs["runs"]["0"] == 1
    assert sorted(runs["runs"]) == ["0", "1", "2", "3", "4"]


def test_nonces_are_remembered_across_a_kill_9(own_server: Server) -> None:
    srv = own_server
    params = srv.signed("DescribeClusterTaskResult", {"requestId": 10**9})
    assert srv.raw(params)["code"] == 5000
    srv.kill9()
    srv.start()
    assert srv.raw(params)["code"] == 4500


def test_sigterm_stops_cleanly_and_a_restart_keeps_everything(own_server: Server) -> None:
    srv = own_server
    acct = srv.new_account()
    res = srv.client(acct).call("OpenccsRunTestTask", {"stepSeconds": "0"})
    request_id = res["data"]["requestId"]
    srv.wait_task(request_id, acct)
    assert srv.stop() == 0
    assert "event=stopped" in srv.log_path.read_text()
    srv.start()
    res = srv.client(acct).call("DescribeClusterTaskResult", {"requestId": request_id})
    assert res["code"] == 0 and res["data"]["status"] == "succ"


def test_nonces_of_concurrent_requests_are_remembered_across_a_kill_9(own_server: Server) -> None:
    """Many requests at once share group commits: each answered request's nonce is durable."""
    srv = own_server
    requests = [srv.signed("DescribeCluster", {}) for _ in range(64)]

    def send(params: dict[str, str]) -> int:
        code: int = srv.raw(params)["code"]
        return code

    with ThreadPoolExecutor(max_workers=32) as pool:
        assert list(pool.map(send, requests)) == [0] * len(requests)
    engine = db_engine(srv)
    with engine.connect() as conn:
        stored = set(conn.execute(text("SELECT nonce FROM nonces")).scalars())
    engine.dispose()
    assert {p["Nonce"] for p in requests} <= stored
    srv.kill9()
    srv.start()
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(srv.raw, requests))
    assert [a["code"] for a in answers] == [4500] * len(requests)
    assert all("Nonce" in a["message"] for a in answers)
