"""Clients that misbehave on the wire: requests that never complete, too many connections,
clients that go away mid-body. Each listener answers 408 or closes, and logs no error.
And secrets that age: registry password hashes and the server certificate."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from openccs.domain.accounts import create_account
from openccs.registry.models import CcrUser
from openccs.registry.token import Authenticator, check_password, hash_password
from openccs.store.db import Store
from openccs.tls import issue_certificate
from tests.conftest import Server, served, unique_cluster_cidr

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
    with served(srv):
        yield srv


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


def test_a_connection_that_never_sends_a_byte_is_closed_without_an_answer(
    guarded: Server,
) -> None:
    # A browser opens connections ahead of its requests; a 408 written to one could be taken
    # for the answer to a request sent at that moment, so an idle one is only closed.
    with _connect(guarded.http_port) as sock:
        assert _answer(sock) == b""
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
        # The cluster's API saw a client that went away: a line at info, no traceback.
        for _ in range(50):
            if _log_lines(guarded, "kube client disconnected"):
                break
            time.sleep(0.1)
        assert all("level=info" in x for x in _log_lines(guarded, "kube client disconnected"))
        assert _log_lines(guarded, "kube client disconnected")
        assert not _log_lines(guarded, "kube api error")
        assert "Traceback" not in guarded.log_path.read_text()
    finally:
        res = c.call("DeleteCluster", {"clusterId": cluster})
        if res["code"] == 0:
            guarded.wait_task(res["data"]["requestId"])


def test_a_server_certificate_near_its_end_is_renewed_at_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("renew")
    srv = Server(data_dir=base / "data", db_url=None)
    try:
        srv.start()
        srv.stop()
        tls = srv.data_dir / "tls"
        names = (tls / "server.names").read_text().split(",")
        ips = [n for n in names if n[0].isdigit() or ":" in n]
        dns = ["localhost", *[n for n in names if n not in ips and n != "localhost"]]
        issue_certificate(tls, "server", dns, ips, days=10)
        assert _days_left(tls / "server.pem") < 11
        srv.start()
        served = ssl.get_server_certificate(("127.0.0.1", srv.https_port))
        ends = x509.load_pem_x509_certificate(served.encode()).not_valid_after_utc
        assert (ends - datetime.now(UTC)).days > 800
        renewed = _log_lines(srv, "server certificate renewed")
        assert len(renewed) == 1 and "reason=expires" in renewed[0]
        # The API still answers over HTTPS with the local CA.
        assert srv.client().call("DescribeCluster")["code"] == 0
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


def _days_left(path: Path) -> int:
    ends = x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
    return (ends - datetime.now(UTC)).days


def _old_cost_hash(password: str) -> str:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    encoded = [base64.b64encode(v).decode() for v in (salt, digest)]
    return "$".join(["scrypt", "16384", "8", "1", *encoded])


def test_a_registry_password_of_a_lower_cost_is_rehashed_at_the_next_login(store: Store) -> None:
    with store.session() as s:
        account = create_account(s, name="rehash")
        uin, account_id = account.uin, account.id
        s.add(CcrUser(uin=uin, account_id=account_id, password_hash=_old_cost_hash("Pw-12345")))
    auth = Authenticator()
    with store.session() as s:
        assert auth.authenticate(s, uin, "Pw-wrong1") is None
    with store.session() as s:
        assert s.get(CcrUser, uin).password_hash.startswith("scrypt$16384$")
    with store.session() as s:
        principal = auth.authenticate(s, uin, "Pw-12345")
        assert principal is not None and principal.account_id == account_id
    with store.session() as s:
        stored = s.get(CcrUser, uin).password_hash
    assert stored.startswith("scrypt$131072$8$1$")
    assert check_password("Pw-12345", stored) and not check_password("Pw-wrong1", stored)
    # New passwords get the current cost too.
    assert hash_password("Pw-12345").startswith("scrypt$131072$8$1$")


def test_a_failure_logs_its_traceback_once_per_place_then_one_line_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from openccs.log import get_logger, log_failure

    log = get_logger("openccs.test.failure")

    def fail(n: int) -> None:
        raise RecursionError(f"deep {n}")

    with caplog.at_level("ERROR", logger="openccs.test.failure"):
        for n in range(3):
            try:
                fail(n)
            except RecursionError:
                log_failure(log, "unhandled error", action="X")
    records = [r for r in caplog.records if r.name == "openccs.test.failure"]
    assert len(records) == 3
    assert records[0].exc_info is not None
    assert all(r.exc_info is None for r in records[1:])
    assert [r.fields["seen"] for r in records[1:]] == [2, 3]  # type: ignore[attr-defined]
    assert records[2].fields["error"] == "RecursionError: deep 2"  # type: ignore[attr-defined]
