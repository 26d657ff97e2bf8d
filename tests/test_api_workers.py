"""`serve --workers N`: API worker processes beside the main process on the same listeners.

Which process answered a request is read from the server's log (a worker's request lines
carry `worker=N`), by the request's X-Request-Id. A connection stays with the process that
accepted it, so a client is pinned to a worker or to the main process by opening connections
until one lands there."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import BACKENDS, Server, database_url, served
from .workload_helpers import Svc, cluster_env, until, web

WORKERS = 3  # processes: the main one and two API workers


def served_by(srv: Server, request_id: str) -> str:
    """'main', or 'worker=N': the process whose log line answered REQUEST_ID."""
    pattern = re.compile(rf"request_id={re.escape(request_id)} event=request .*")

    def find() -> str | None:
        for line in srv.log_path.read_text(errors="replace").splitlines():
            m = pattern.search(line)
            if m:
                w = re.search(r" (worker=\d+)", m.group(0))
                return w.group(1) if w else "main"
        return None

    return str(until(f"the log line of {request_id}", find, timeout=10, every=0.05))


class Pinned:
    """A keep-alive connection to the server, and the process holding it."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=1))
        self.process = self.served_by(self.post(srv.signed("DescribeCluster")))

    def post(self, params: dict[str, str]) -> httpx.Response:
        return self.http.post(f"{self.srv.http_url}/v2/index.php", data=params)

    def served_by(self, resp: httpx.Response) -> str:
        return served_by(self.srv, resp.headers["x-request-id"])

    def close(self) -> None:
        self.http.close()


def pinned(srv: Server, worker: bool, avoid: str = "") -> Pinned:
    """A connection held by an API worker (or by the main process), not by AVOID."""
    for _ in range(200):
        conn = Pinned(srv)
        if conn.process.startswith("worker") == worker and conn.process != avoid:
            return conn
        conn.close()
    raise AssertionError(f"no connection landed on a {'worker' if worker else 'main'} process")


def worker_pids(srv: Server) -> set[int]:
    assert srv.proc is not None
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == str(srv.proc.pid) and b"openccs.api.workers" in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module", params=BACKENDS)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("workers") / "data"
    server = Server(
        data_dir=data_dir,
        db_url=database_url(request.param, data_dir),
        extra_args=("--workers", str(WORKERS)),
    )
    with served(server):
        until("the API workers", lambda: len(worker_pids(server)) == WORKERS - 1, timeout=90)
        yield server


def test_a_nonce_used_on_one_process_is_refused_on_every_other(srv: Server) -> None:
    first = pinned(srv, worker=True)
    second = pinned(srv, worker=True, avoid=first.process)
    main = pinned(srv, worker=False)
    held = {"first": first, "second": second, "main": main}
    try:
        assert len({first.process, second.process, main.process}) == 3
        for x, y in (("first", "second"), ("second", "main"), ("main", "first")):
            # A connection idle past the server's keep-alive (a slow search for the others
            # on a loaded host) was closed, and its next request may land elsewhere: hold
            # each again on its process first.
            for name in (x, y):
                held[name] = still(srv, held[name], {c.process for c in held.values()})
            a, b = held[x], held[y]
            params = srv.signed("DescribeCluster")
            ok = a.post(params)
            assert ok.json()["code"] == 0 and a.served_by(ok) == a.process
            again = b.post(params)
            res = again.json()
            assert b.served_by(again) == b.process
            assert res["code"] == 4500 and "Nonce" in res["message"], res
            # And on the process that accepted it, from its memory.
            assert a.post(params).json()["code"] == 4500
    finally:
        for conn in held.values():
            conn.close()


def still(srv: Server, conn: Pinned, others: set[str]) -> Pinned:
    """`conn` if it is still held by its process, else a new connection held by that
    process (each process holds at most one of the test's connections)."""
    if conn.served_by(conn.post(srv.signed("DescribeCluster"))) == conn.process:
        return conn
    conn.close()
    want = conn.process
    for _ in range(200):
        again = Pinned(srv)
        if again.process == want:
            return again
        again.close()
    raise AssertionError(f"no connection landed on {want} again (others: {sorted(others)})")


def test_a_worker_hands_writes_to_the_main_process(srv: Server) -> None:
    """OpenccsRunTestTask is not a plain read: the main process runs it (its task runner),
    and the worker answers with the main process's answer."""
    conn = pinned(srv, worker=True)
    try:
        resp = conn.post(srv.signed("OpenccsRunTestTask", {"stepSeconds": "0"}))
        res = resp.json()
        assert res["code"] == 0, res
        assert conn.served_by(resp) == conn.process
        request_id = str(res["data"]["requestId"])

        def finished() -> bool:
            answer = conn.post(srv.signed("DescribeClusterTaskResult", {"requestId": request_id}))
            return bool(answer.json()["data"]["status"] == "succ")

        until("the task run by the main process", finished, timeout=60)
        # Errors of actions run by the main process come back as they are.
        bad = conn.post(srv.signed("OpenccsRunTestTask", {"stepSeconds": "-1"})).json()
        assert bad["code"] == 4000 and bad["codeDesc"] == "InvalidParameter", bad
        unknown = conn.post(srv.signed("NoSuchAction")).json()
        assert unknown["code"] == 4000 and unknown["codeDesc"] == "InvalidAction", unknown
    finally:
        conn.close()


def test_a_worker_relays_other_paths_to_the_main_process(srv: Server) -> None:
    token = json.loads(srv.cli("metrics-token", "create", "--note", "workers").stdout)
    conn = pinned(srv, worker=True)
    try:
        # The main process's /metrics counts the requests its workers answered.
        resp = conn.post(srv.signed("DescribeClusterNameSpaces", {"clusterId": "cls-nothere"}))
        assert conn.served_by(resp) == conn.process
        code = resp.json()["code"]
        wanted = f'openccs_api_requests_total{{action="DescribeClusterNameSpaces",code="{code}"}}'

        def counted() -> bool:
            page = conn.http.get(
                f"{srv.http_url}/metrics", headers={"Authorization": f"Bearer {token['token']}"}
            )
            assert page.status_code == 200
            return wanted in page.text

        until("the worker's request in /metrics", counted, timeout=10)
        page = conn.http.get(f"{srv.http_url}/console/login")
        assert page.status_code == 200 and "<form" in page.text
        assert conn.http.get(f"{srv.http_url}/metrics").status_code == 401
        assert conn.http.get(f"{srv.http_url}/no/such/path").status_code == 404
        assert conn.http.get(f"{srv.http_url}/healthz").json() == {"status": "ok"}
    finally:
        conn.close()
        srv.cli("metrics-token", "revoke", token["id"])


def test_a_worker_that_dies_is_replaced(srv: Server) -> None:
    (victim, *_) = sorted(worker_pids(srv))
    os.kill(victim, signal.SIGKILL)
    until("a new API worker", lambda: victim not in worker_pids(srv), timeout=30)
    until("a new API worker", lambda: len(worker_pids(srv)) == WORKERS - 1, timeout=90)
    conn = pinned(srv, worker=True)
    conn.close()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_worker_outlives_the_server(tmp_path: Path, how: str) -> None:
    server = Server(data_dir=tmp_path / "data", db_url=None, extra_args=("--workers", "3"))
    with served(server):
        until("the API workers", lambda: len(worker_pids(server)) == 2, timeout=90)
        pids = worker_pids(server)
        code = server.stop(getattr(signal, how))
        if how == "SIGTERM":
            assert code == 0
            assert "event=stopped" in server.log_path.read_text()
        until("the workers gone", lambda: not any(alive(p) for p in pids), timeout=20)


def test_bad_workers_option_is_refused(tmp_path: Path) -> None:
    server = Server(data_dir=tmp_path / "data", db_url=None, extra_args=("--workers", "0"))
    r = server.cli("serve", "--workers", "0", check=False)
    assert r.returncode == 2 and "--workers" in r.stderr


@pytest.mark.xdist_group("workloads")
def test_a_service_created_through_a_worker_gets_its_pods_running(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """CreateClusterService through a worker runs in the main process, whose controllers
    react to it as to any change: the pods come up."""
    base = tmp_path_factory.mktemp("workers-pods")
    server = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=("--workers", "2", "--health-interval", "1"),
    )
    with cluster_env(server, machines=1) as (srv, _, cluster):
        until("the API worker", lambda: len(worker_pids(srv)) == 1, timeout=90)
        conn = pinned(srv, worker=True)
        try:
            spec = web("via-worker", replicas=2)
            params = {"clusterId": cluster, "namespace": "default", **spec}
            resp = conn.post(srv.signed("CreateClusterService", params))
            assert resp.json()["code"] == 0, resp.json()
            assert conn.served_by(resp) == conn.process
        finally:
            conn.close()
        svc = Svc(srv.client(), cluster, "via-worker")

        def running() -> bool:
            pods = svc.call("DescribeServiceInstance")["instances"]
            return len(pods) == 2 and all(p["status"] == "Running" for p in pods)

        until("the pods Running", running, timeout=120)
