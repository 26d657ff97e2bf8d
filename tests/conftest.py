"""Shared fixtures: real openccs servers (SQLite and PostgreSQL) started as child processes."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from openccs.client import Client, signed_params
from openccs.store.db import Store

ROOT = Path(__file__).resolve().parent.parent
OPENCCS = [sys.executable, "-m", "openccs.cli.main"]
BACKENDS = ["sqlite", "postgresql"]


CLAIMS = Path("/tmp/openccs-test-networks.json")


def _host_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        dest = line.split()[0]
        if dest != "default":
            nets.append(ipaddress.IPv4Network(dest if "/" in dest else dest + "/32", strict=False))
    return nets


def _claim(candidates: Iterator[ipaddress.IPv4Network]) -> str:
    """The first candidate network that no route on this host and no live test process uses.

    Test runs (parallel workers, or several runs at once) share the host's routing table,
    so networks are claimed in a file under a lock; claims of dead processes lapse.
    """
    import fcntl

    with open(str(CLAIMS) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        claims: dict[str, int] = json.loads(CLAIMS.read_text()) if CLAIMS.exists() else {}
        claims = {net: pid for net, pid in claims.items() if Path(f"/proc/{pid}").exists()}
        taken = _host_networks() + [ipaddress.IPv4Network(n) for n in claims]
        for net in candidates:
            if not any(net.overlaps(t) for t in taken):
                claims[str(net)] = os.getpid()
                CLAIMS.write_text(json.dumps(claims))
                return str(net)
    raise RuntimeError("no free test network left")


def unique_vpc_cidr() -> str:
    """A /20 for one VPC of a test, used by nothing else on this host."""
    return _claim(ipaddress.IPv4Network("10.96.0.0/11").subnets(new_prefix=20))


def unique_cluster_cidr(prefix: int = 20) -> str:
    """A cluster CIDR inside 172.16.0.0/12 used by nothing else on this host."""
    return _claim(ipaddress.IPv4Network("172.16.0.0/12").subnets(new_prefix=prefix))


def unique_lb_pool() -> str:
    """A /27 of public load balancer VIPs (198.18.0.0/15) used by no other server here."""
    return _claim(ipaddress.IPv4Network("198.18.0.0/15").subnets(new_prefix=27))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_url_or_skip() -> str:
    url = os.environ.get("OPENCCS_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("OPENCCS_TEST_PG_URL is not set: CI must run the PostgreSQL tests")
        pytest.skip("no PostgreSQL (set OPENCCS_TEST_PG_URL; scripts/dev test does)")
    return url


def new_pg_database() -> str:
    """A fresh, empty database on the test PostgreSQL server."""
    base = pg_url_or_skip()
    name = "openccs_t_" + uuid.uuid4().hex[:12]
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


def database_url(backend: str, data_dir: Path) -> str | None:
    return new_pg_database() if backend == "postgresql" else None


@dataclass
class Account:
    app_id: int
    uin: str
    secret_id: str
    secret_key: str


@dataclass
class Server:
    """A real `openccs serve` process with its own data directory."""

    data_dir: Path
    db_url: str | None
    http_port: int = field(default_factory=free_port)
    vpc_cidr: str = field(default_factory=unique_vpc_cidr)
    extra_args: tuple[str, ...] = ()
    https_port: int = field(default_factory=free_port)
    lb_pool: str = field(default_factory=unique_lb_pool)
    env: dict[str, str] = field(default_factory=dict)  # added to the server's and the CLI's
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def backend(self) -> str:
        return "postgresql" if self.db_url else "sqlite"

    def _base_args(self) -> list[str]:
        args = [*OPENCCS, "--data-dir", str(self.data_dir)]
        if self.db_url:
            args += ["--database-url", self.db_url]
        return args

    def start(self, timeout: float = 90) -> None:
        # Ports come from free_port(), which another process of a parallel run may take
        # before the server binds them: then the server exits, and starts again on others.
        for _ in range(3):
            seen = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start_once(timeout)
            except RuntimeError:
                if b"address already in use" not in self.log_path.read_bytes()[seen:]:
                    raise
                if self.proc is not None and self.proc.poll() is None:
                    self.stop()
                self.http_port, self.https_port = free_port(), free_port()
        self._start_once(timeout)

    def _start_once(self, timeout: float) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open by the child)
        self.proc = subprocess.Popen(
            [
                *self._base_args(),
                "serve",
                "--http",
                f"127.0.0.1:{self.http_port}",
                "--https",
                f"127.0.0.1:{self.https_port}",
                "--enable-test-actions",
                "--default-vpc-cidr",
                self.vpc_cidr,
                "--lb-pool",
                self.lb_pool,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **self.env},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"openccs exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.http_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"openccs did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def sweep(self) -> None:
        """Remove every host object of this server's site (machines, bridges, rules)."""
        self.cli("sweep", check=False)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def default(self) -> Account:
        c = json.loads((self.data_dir / "credentials.json").read_text())
        return Account(c["appId"], c["uin"], c["secretId"], c["secretKey"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [*self._base_args(), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, **self.env},
        )
        if check and r.returncode != 0:
            raise AssertionError(f"openccs {' '.join(args)} failed: {r.stderr}")
        return r

    def cli_popen(self, *args: str) -> subprocess.Popen[str]:
        """The CLI started in the background (its output piped): for a command that waits."""
        return subprocess.Popen(
            [*self._base_args(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **self.env},
        )

    def new_account(self) -> Account:
        out = json.loads(self.cli("account", "create").stdout)
        return Account(out["appId"], out["uin"], out["secretId"], out["secretKey"])

    def client(self, account: Account | None = None, **kw: Any) -> Client:
        a = account or self.default
        return Client(self.http_url, a.secret_id, a.secret_key, **kw)

    def raw(
        self,
        params: dict[str, str],
        method: str = "POST",
        host: str | None = None,
    ) -> dict[str, Any]:
        """Send already-built parameters (signed or not) and return the JSON answer."""
        url = f"{self.http_url}/v2/index.php"
        headers = {"Host": host} if host else {}
        if method == "GET":
            r = httpx.get(url, params=params, headers=headers, timeout=30)
        else:
            r = httpx.post(url, data=params, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def signed(
        self,
        action: str,
        params: dict[str, Any] | None = None,
        account: Account | None = None,
        **kw: Any,
    ) -> dict[str, str]:
        a = account or self.default
        return signed_params(
            action, params or {}, a.secret_id, a.secret_key, f"127.0.0.1:{self.http_port}", **kw
        )

    def wait_task(self, request_id: int, account: Account | None = None, timeout: float = 60):
        c = self.client(account)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = c.call("DescribeClusterTaskResult", {"requestId": request_id})
            assert res["code"] == 0, res
            if res["data"]["status"] != "running":
                return res["data"]
            time.sleep(0.2)
        raise AssertionError(f"task {request_id} still running after {timeout} s")


@contextlib.contextmanager
def served(srv: Server) -> Iterator[Server]:
    """`srv` started; stopped and swept at the end, also on failure."""
    try:
        srv.start()
        yield srv
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


def _make_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Server:
    base = tmp_path_factory.mktemp("openccs")
    data_dir = base / "data"
    return Server(data_dir=data_dir, db_url=database_url(backend, data_dir))


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Any]:
    """openccs's services on a SQLite store in tmp_path, never started: no listener, no
    machine, for tests of rules and queries on real rows."""
    from openccs.config import Settings
    from openccs.server import build_services

    built = build_services(Settings(data_dir=tmp_path, http=None, https=None))
    yield built
    built.store.dispose()


UNIT_CLUSTER = "cls-unit0001"
UNIT_SUBNET = "subnet-unit0001"


def unit_account(services: Any, n: int = 1) -> int:
    """A new account on `services`' store with a VPC, a subnet and a Running cluster
    `cls-unit000n` (with its default namespaces), no machine: its id. n=1 is UNIT_CLUSTER
    in UNIT_SUBNET; another n makes another account's, for tests of who sees what."""
    from openccs.domain import accounts
    from openccs.domain import workloads as wl
    from openccs.store.models import Cluster, Subnet, Vpc

    with services.store.session() as s:
        acct = accounts.create_account(s)
        vpc = f"vpc-unit{n:04d}"
        s.add(Vpc(id=vpc, num_id=n, account_id=acct.id, cidr="10.0.0.0/16"))
        s.flush()
        s.add(Subnet(id=f"subnet-unit{n:04d}", num_id=n, vpc_id=vpc, account_id=acct.id,
                     cidr="10.0.1.0/24", zone="ap-guangzhou-3"))  # fmt: skip
        cluster = Cluster(
            id=f"cls-unit{n:04d}",
            account_id=acct.id,
            name="unit",
            vpc_id=vpc,
            cidr="172.16.0.0/16",
            service_cidr="172.17.0.0/24",
            status="Running",
        )
        s.add(cluster)
        s.flush()
        wl.ensure_default_namespaces(s, cluster)
        return int(acct.id)


@pytest.fixture
def account(services: Any) -> int:
    """An account on `services`' store with a VPC, a subnet and a Running cluster
    UNIT_CLUSTER (with its default namespaces), no machine: its id."""
    return unit_account(services)


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One running server per backend, shared by the tests that do not restart it."""
    with served(_make_server(tmp_path_factory, request.param)) as srv:
        yield srv


@pytest.fixture(params=BACKENDS)
def own_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of the test's own, for tests that stop, kill or restart it."""
    srv = _make_server(tmp_path_factory, request.param)
    try:
        srv.start()
        yield srv
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
        srv.sweep()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty state store on each backend."""
    url = new_pg_database() if request.param == "postgresql" else f"sqlite:///{tmp_path}/t.db"
    st = Store(url)
    st.migrate()
    yield st
    st.dispose()
