"""Clients that misbehave on the wire: requests that never complete, too many connections,
clients that go away mid-body. Each listener answers 408 or closes, and logs no error."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, unique_cluster_cidr

READ_TIMEOUT = "2"
PER_CLIENT = 16

SLOW_BODY = (
    b"POST /v2/index.php HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n\r\nAction=a"
)
SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("guarded")
    srv = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=(
            "--request-read-timeout",
            READ_TIMEOUT,
            "--max-connections-per-client",
            str(PER_CLIENT),
        ),
    )
    try:
        srv.start()
        yield srv
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


def _connect(port: int, ca: Path | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if ca is None:
        return sock
    return ssl.create_default_context(cafile=str(ca)).wrap_socket(sock, server_hostname="localhost")


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while chunk := sock.recv(4096):
        out += chunk
    return out


def _log_lines(srv: Server, event: str) -> list[str]:
    return [line for line in srv.log_path.read_text().splitlines() if f'event="{event}"' in line]


@pytest.mark.parametrize("listener", ["http", "https"])
@pytest.mark.parametrize("sent", [SLOW_BODY, SLOW_HEADERS], ids=["body", "headers"])
def test_a_request_that_never_completes_gets_408(
    guarded: Server, listener: str, sent: bytes
) -> None:
    port, ca = (guarded.http_port, None) if listener == "http" else (guarded.https_port, guarded.ca)
    with _connect(port, ca) as sock:
        sock.sendall(sent)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    # The listener still serves everyone else.
    assert guarded.client().call("DescribeCluster")["code"] == 0


def test_a_keep_alive_connection_gets_the_deadline_for_each_request(guarded: Server) -> None:
    with _connect(guarded.http_port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 "), first
        sock.sendall(SLOW_BODY)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_client_going_away_mid_body_is_logged_as_info_without_traceback(
    guarded: Server,
) -> None:
    before = len(_log_lines(guarded, "client disconnected"))
    with _connect(guarded.http_port) as sock:
        sock.sendall(SLOW_BODY)
    # A request after it: once it is answered, the disconnect was handled.
    for _ in range(50):
        guarded.client().call("DescribeCluster")
        lines = _log_lines(guarded, "client disconnected")
        if len(lines) > before:
            break
    assert len(lines) > before
    assert all("level=info" in line and "exc=" not in line for line in lines)
    assert not _log_lines(guarded, "unhandled error")
    assert "Traceback" not in guarded.log_path.read_text()


def test_one_address_holds_a_bounded_number_of_connections(guarded: Server) -> None:
    held = [_connect(guarded.http_port) for _ in range(PER_CLIENT)]
    try:
        with _connect(guarded.http_port) as extra:
            answer = _answer(extra)  # at once, before any request
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"too many connections" in answer
    finally:
        for sock in held:
            sock.close()
    # Closed connections no longer count.
    for _ in range(50):
        with _connect(guarded.http_port) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if sock.recv(4096).startswith(b"HTTP/1.1 200 "):
                break
    else:
        raise AssertionError("connections stayed refused after the others closed")


def test_the_clusters_kubernetes_endpoints_have_the_deadline_too(guarded: Server) -> None:
    c = guarded.client()
    vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    made = c.call(
        "CreateEmptyCluster",
        {"clusterName": "slow", "vpcId": vpc, "clusterCIDR": unique_cluster_cidr()},
    )
    assert made["code"] == 0, made
    cluster = made["data"]["clusterId"]
    try:
        assert guarded.wait_task(made["data"]["requestId"])["status"] == "succ"
        res = c.call("OperateClusterVip", {"clusterId": cluster, "operation": "Create"})
        assert res["code"] == 0, res
        assert guarded.wait_task(res["data"]["requestId"])["status"] == "succ"
        info = c.call("DescribeClusterSecurityInfo", {"clusterId": cluster})["data"]
        host, port = info["clusterExternalEndpoint"].removeprefix("https://").rsplit(":", 1)
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cadata=info["certificationAuthority"])
        raw = socket.create_connection((host, int(port)), timeout=30)
        with ctx.wrap_socket(raw, server_hostname=host) as sock:
            sock.sendall(
                b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                + f"Authorization: Bearer {info['password']}\r\n\r\n{{".encode()
            )
            answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
    finally:
        res = c.call("DeleteCluster", {"clusterId": cluster})
        if res["code"] == 0:
            guarded.wait_task(res["data"]["requestId"])
