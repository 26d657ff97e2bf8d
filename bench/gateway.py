"""Gateway benchmark: signed API requests against the unsigned health endpoint, and moto (the
usual local stand-in for a cloud API) as the peer.

What it measures, in one invocation against one `openccs serve` child process (plain HTTP on
loopback, SQLite in a temporary data directory, default INFO logging to a file; `--workers N`
is passed to it, and the server's CPU counts its API workers too):

* `DescribeCluster` (the clusters of an account that has none; `--action
  DescribeClusterTaskResult` reads a task created first with `OpenccsRunTestTask` instead)
  sent as signed GET requests (HmacSHA256, every request with its own Nonce),
* `GET /healthz` (unsigned, no database) as the baseline, and
* the peer: moto's server (`moto_server`, Werkzeug with a thread per connection, state in
  memory) as a second child process on a free loopback port, answering EC2
  `DescribeInstances` (the instances of an account that has none) sent as GET requests with
  an AWS Signature Version 4 `Authorization` header. moto verifies neither signatures nor
  replays, so one request signed at the start is sent every time, and moto does less per
  request than openccs's signed path (which checks the signature, makes the nonce durable
  before the action and reads its database). moto is the pinned `moto[server]` of
  pyproject.toml's `bench` extra (a benchmark-only dependency, not needed by the tests),
  installed with pip beside this interpreter when its `moto_server` is missing; `--no-moto`
  leaves the peer out. moto is stopped at exit, also on failure or SIGTERM, and dies with
  the benchmark if that is killed,

at 1, 8 and 32 concurrent keep-alive connections, each after a short warm-up, for a fixed
duration, all three endpoints at one concurrency before the next. The load generator is
`wrk` (installed with apt-get when missing) driven by `bench/wrk_paths.lua`, which replays
pre-signed request paths (no openccs path is sent twice) and counts answers that are not
HTTP 200 with `{"code":0` (or `{"status":"ok"` for the health check, or moto's
`DescribeInstancesResponse` XML). A few requests like the run's own are checked with httpx
before each measured run.

It reports requests per second, p50 and p99 latency, errors, the CPU use of the server
measured (openccs's, or moto's on moto's rows), the ratio signed/baseline throughput and
openccs/moto (throughput, p99, server CPU per request) at each concurrency, and PASS/FAIL for
the targets (at 32 clients: >= 3,000 signed req/s with p99 <= 25 ms, and signed >= 0.7 x
baseline). The exit code does not depend on the figures. Unless `--no-write` is given it
replaces its own section of `bench/RESULTS.md` (other sections are kept).

The machine may be shared: before each row it waits (`--quiet-wait`) for other processes to
go idle, and it reports the CPU they used meanwhile. `--ref REV` benchmarks a commit exported
with `git archive` instead of the working tree; `--profile FILE` records the server with
py-spy during the signed run at the most clients. `--compare REF` is an A/B run: REF and
the working tree served side by side, the signed read measured on both in interleaved
rounds, reported as ratios (its own section of RESULTS.md), for a machine that is not idle;
moto does not take part in it.

Run: `.venv/bin/python bench/gateway.py` (see `--help`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import functools
import hashlib
import hmac
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
from common import export_source, update_results  # noqa: E402

LUA_SCRIPT = BENCH_DIR / "wrk_paths.lua"
RESULTS_FILE = BENCH_DIR / "RESULTS.md"
SECTION_TITLE = "## Gateway: signed requests vs unsigned health endpoint, moto as the peer"
OPENCCS = REPO / ".venv" / "bin" / "openccs"

API_PATH = "/v2/index.php"
HEALTH_PATH = "/healthz"
SIGNED_ACTION = "DescribeCluster"
# DescribeCluster: the account's clusters (none in the benchmark's fresh data directory);
# DescribeClusterTaskResult: a finished OpenccsRunTestTask created first.
SIGNED_ACTIONS = ("DescribeCluster", "DescribeClusterTaskResult")
SIGNED_OK = '{"code":0'
HEALTH_OK = '{"status":"ok"'

# The peer: moto's EC2 DescribeInstances, a GET of the query API (EC2's API version).
MOTO_QUERY = {"Action": "DescribeInstances", "Version": "2016-11-15"}
MOTO_OK = '<?xml version="1.0" encoding="utf-8"?>\n<DescribeInstancesResponse'
MOTO_REGION = "us-east-1"
# An access key moto does not know maps to its default account; the secret signs only.
MOTO_ACCESS_KEY = "AKIAOPENCCSBENCH0001"
MOTO_SECRET_KEY = "openccs-bench-secret-not-checked-by-moto"

# Targets, at the highest concurrency.
TARGET_CLIENTS = 32
TARGET_RPS = 3000.0
TARGET_P99_MS = 25.0
TARGET_RATIO = 0.7

# The server remembers this many nonces per SecretId; past it, the oldest timestamps become a
# floor that would refuse the benchmark's own pre-signed requests.
SERVER_NONCE_MEMORY = 500_000

# Cores used on average by processes other than the server and wrk that mark a run disturbed.
DISTURBED_CPU = 0.15


@dataclass
class RunResult:
    endpoint: str  # "signed", "baseline" or "moto"
    clients: int
    threads: int
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    status_errors: int
    bad_answers: int
    exhausted: int
    precheck_failures: int
    cpu: CpuUse
    first_bad: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def errors(self) -> int:
        return (
            self.socket_errors
            + self.status_errors
            + self.bad_answers
            + self.exhausted
            + self.precheck_failures
        )


# ---------------------------------------------------------------------------------------------
# Environment


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk not found, installing it with apt-get", file=sys.stderr)
    install = ["apt-get", "install", "-y", "wrk"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is still missing after apt-get install")
    return found


def moto_requirement() -> str:
    """The pinned `moto[server]` of pyproject.toml's `bench` extra."""
    with (REPO / "pyproject.toml").open("rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    for requirement in extras.get("bench", []):
        if re.match(r"moto\[server\]==", requirement):
            return str(requirement)
    raise SystemExit("bench: pyproject.toml's bench extra pins no moto[server]==VERSION")


def ensure_moto() -> tuple[str, str]:
    """moto's `moto_server` beside this interpreter, installed with pip (the pinned version of
    the `bench` extra) when missing; and the installed moto's version."""
    requirement = moto_requirement()
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        print(
            f"bench: {binary} not found, installing {requirement} (pyproject.toml's bench"
            " extra) with pip",
            file=sys.stderr,
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", requirement],
            check=True,
        )
        importlib.invalidate_caches()
        if not binary.exists():
            raise SystemExit(f"bench: {binary} is still missing after pip install {requirement}")
    try:
        version = importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    pinned = requirement.split("==", 1)[1]
    if version != pinned:
        print(
            f"bench: warning: moto {version} is installed, the bench extra pins {pinned}",
            file=sys.stderr,
        )
    return str(binary), version


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info(wrk: str) -> dict[str, str]:
    cpuinfo = _read_text("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = _read_text("/proc/meminfo")
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M)
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    version_line = (wrk_version.stdout or wrk_version.stderr).strip().splitlines()
    return {
        "cpus": str(os.cpu_count()),
        "cpu model": model.group(1).strip() if model else "unknown",
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "wrk": version_line[0].split(" [")[0] if version_line else "unknown",
    }


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def git_commit(ref: str | None) -> str:
    """The commit measured: REF's, or HEAD's plus a note when the working tree differs."""
    if ref is not None:
        return (_git("rev-parse", "--short", ref) or ref) + " (exported with git archive)"
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--", "openccs"):
        commit += " (with uncommitted changes in openccs/)"
    return commit


# ---------------------------------------------------------------------------------------------
# The server


class Server:
    """`openccs serve` as a child process on a free loopback port, in a temporary data dir."""

    def __init__(
        self,
        workdir: Path,
        log_level: str,
        source: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        # Where the server imports openccs from: an exported commit, or the working tree.
        self.source = source
        self.data_dir = workdir / "data"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{self.host}"
        self.log_path = workdir / "server.log"
        self.command = [
            str(OPENCCS),
            "--data-dir",
            str(self.data_dir),
            "serve",
            "--http",
            self.host,
            "--https",
            "",
            "--enable-test-actions",
            "--log-level",
            log_level,
            *extra_args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.credentials: dict[str, str] = {}

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ)
        # openccs from the exported commit, or from this working tree (not whatever checkout
        # the virtualenv's `openccs` script was installed from).
        env["PYTHONPATH"] = str(self.source if self.source is not None else REPO)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + HEALTH_PATH, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after {timeout} s: {self.log_tail()}")
            time.sleep(0.1)
        creds = json.loads((self.data_dir / "credentials.json").read_text())
        self.credentials = {k: str(v) for k, v in creds.items()}

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads) and of its API
        workers (`serve --workers`)."""
        assert self.proc is not None
        pids = [self.proc.pid, *self.worker_pids()]
        return sum(_process_cpu(pid) for pid in pids)

    def worker_pids(self) -> list[int]:
        """The server's API worker processes now running."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            stat = _read_text(f"/proc/{entry.name}/stat")
            fields = stat.rsplit(")", 1)[1].split() if ")" in stat else []
            if len(fields) > 1 and fields[1] == str(self.proc.pid):
                cmdline = _read_text(f"/proc/{entry.name}/cmdline")
                if "openccs.api.workers" in cmdline:
                    found.append(int(entry.name))
        return found

    def stop(self) -> None:
        _terminate(self.proc, 30, "server")


def _terminate(proc: subprocess.Popen[bytes] | None, grace: float, what: str) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(f"bench: {what} ignored SIGTERM for {grace:g} s, killing it", file=sys.stderr)
        proc.kill()
        proc.wait()


def _process_cpu(pid: int) -> float:
    stat = _read_text(f"/proc/{pid}/stat")
    if ")" not in stat:
        return 0.0  # gone meanwhile
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running_server(
    log_level: str,
    ref: str | None = None,
    sign_with_ref: bool = True,
    extra_args: Sequence[str] = (),
) -> Iterator[Server]:
    """A started server (of the working tree, or of REF), stopped and cleaned up at exit."""
    workdir = Path(tempfile.mkdtemp(prefix="openccs-bench-"))
    try:
        source = export_source(ref, workdir / "src") if ref is not None else None
        if source is not None and sign_with_ref:
            # Sign with that commit's client code too.
            sys.path.insert(0, str(source))
        server = Server(workdir, log_level, source, extra_args)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        server.start()
        yield server
    finally:
        server.stop()
        # The server made its default VPC (a bridge, rules) at start: remove them.
        subprocess.run(
            [str(OPENCCS), "--data-dir", str(server.data_dir), "sweep"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)


class Measured(Protocol):
    """A server that wrk loads: where it listens, and the CPU time it has used."""

    @property
    def base_url(self) -> str: ...

    def cpu_seconds(self) -> float: ...


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """In the child before exec: SIGTERM when the benchmark ends, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the benchmark ended before prctl
        os._exit(1)


class MotoServer:
    """moto's `moto_server` as a child process on a free loopback port (state in memory)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{self.host}"
        self.log_path = workdir / "moto.log"
        self.command = [binary, "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, signer: AwsSigner, timeout: float = 60.0) -> None:
        """Start it and wait until it answers the signed read."""
        env = {**os.environ, "MOTO_PORT": str(self.port)}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
                preexec_fn=functools.partial(_die_with, os.getpid()),
            )
        deadline = time.monotonic() + timeout
        url = self.base_url + signer.path
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}: {self.log_tail()}")
            answer = None
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(url, headers=signer.headers, timeout=5)
            if answer is not None:
                if answer.status_code == 200 and answer.text.startswith(MOTO_OK):
                    return
                raise RuntimeError(
                    f"moto answered the signed read with {answer.status_code}: {answer.text[:300]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto not answering after {timeout} s: {self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU time of moto's process (all its threads)."""
        assert self.proc is not None
        return _process_cpu(self.proc.pid)

    def stop(self) -> None:
        _terminate(self.proc, 15, "moto")


@contextlib.contextmanager
def running_moto(binary: str) -> Iterator[tuple[MotoServer, AwsSigner]]:
    """A started moto and its signer, stopped (its directory removed) at exit."""
    workdir = Path(tempfile.mkdtemp(prefix="openccs-bench-moto-"))
    moto: MotoServer | None = None
    try:
        moto = MotoServer(binary, workdir)
        signer = AwsSigner(moto.host)
        moto.start(signer)
        yield moto, signer
    finally:
        if moto is not None:
            moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Signed requests


class Signer:
    """Pre-signed GET paths; nonces come from one counter, so no two paths share one."""

    def __init__(self, server: Server) -> None:
        # Imported here so that `--ref` can put an exported commit first on sys.path.
        from openccs.client import signed_params

        self._signed_params = signed_params
        self.secret_id = server.credentials["secretId"]
        self.secret_key = server.credentials["secretKey"]
        self.host = server.host
        self.action = SIGNED_ACTION
        self.params: dict[str, str] = {}
        self.next_nonce = int.from_bytes(os.urandom(4)) + 1
        self.issued = 0

    def path(self, action: str | None = None, params: dict[str, str] | None = None) -> str:
        signed = self._signed_params(
            action or self.action,
            self.params if params is None else params,
            self.secret_id,
            self.secret_key,
            self.host,
            method="GET",
            region="gz",
            signature_method="HmacSHA256",
            nonce=self.next_nonce,
        )
        self.next_nonce += 1
        self.issued += 1
        return API_PATH + "?" + urlencode(signed)

    def paths(self, count: int) -> list[str]:
        return [self.path() for _ in range(count)]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class AwsSigner:
    """moto's signed read: an EC2 DescribeInstances GET with an AWS Signature Version 4
    `Authorization` header (HMAC-SHA256 over the canonical request), signed once."""

    def __init__(self, host: str) -> None:
        self.host = host
        now = datetime.datetime.now(datetime.UTC)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        query = urlencode(sorted(MOTO_QUERY.items()), quote_via=quote)
        self.path = "/?" + query
        scope = f"{day}/{MOTO_REGION}/ec2/aws4_request"
        signed_headers = "host;x-amz-date"
        canonical = "\n".join(
            [
                "GET",
                "/",
                query,
                f"host:{self.host}\nx-amz-date:{amz_date}\n",
                signed_headers,
                hashlib.sha256(b"").hexdigest(),
            ]
        )
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = ("AWS4" + MOTO_SECRET_KEY).encode()
        for part in (day, MOTO_REGION, "ec2", "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        self.headers = {
            "X-Amz-Date": amz_date,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={MOTO_ACCESS_KEY}/{scope},"
            f" SignedHeaders={signed_headers}, Signature={signature}",
        }


def create_task(server: Server, signer: Signer) -> int:
    """The task DescribeClusterTaskResult will read."""
    url = server.base_url + signer.path("OpenccsRunTestTask", {"stepSeconds": "0"})
    answer = httpx.get(url, timeout=30).json()
    if answer.get("code") != 0:
        raise RuntimeError(f"OpenccsRunTestTask failed: {answer}")
    return int(answer["data"]["requestId"])


def precheck(
    client: httpx.Client,
    server: Measured,
    paths: Sequence[str],
    expect: str,
    headers: Mapping[str, str] | None = None,
) -> int:
    """Send a few requests like the run's own; the number that did not answer as expected."""
    failures = 0
    for path in paths:
        resp = client.get(server.base_url + path, headers=headers)
        if resp.status_code != 200 or not resp.text.startswith(expect):
            failures += 1
            print(f"bench: precheck failed: {resp.status_code} {resp.text[:300]}", file=sys.stderr)
    return failures


# ---------------------------------------------------------------------------------------------
# wrk


def write_path_files(prefix: Path, paths: Sequence[str], threads: int) -> None:
    """Thread i of wrk reads PREFIX.i: every thread gets its own disjoint slice."""
    for i in range(threads):
        chunk = paths[i::threads]
        if not chunk:
            raise ValueError(f"{len(paths)} paths cannot feed {threads} wrk threads")
        prefix.with_name(f"{prefix.name}.{i}").write_text("\n".join(chunk) + "\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_cpu() -> float:
    """CPU seconds all processors spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(v) for v in _read_text("/proc/stat").splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait: float, window: float = 3.0) -> float:
    """Wait (up to MAX_WAIT s) until other processes leave the machine idle; cores they used."""
    deadline = time.monotonic() + max_wait
    announced = False
    while True:
        busy0 = _machine_busy_cpu()
        time.sleep(window)
        busy = (_machine_busy_cpu() - busy0) / window
        if busy < DISTURBED_CPU or time.monotonic() >= deadline:
            return busy
        if not announced:
            print(
                f"bench: other processes use {busy:.2f} cores; waiting up to"
                f" {max_wait:g} s for a quiet machine",
                file=sys.stderr,
                flush=True,
            )
            announced = True


@dataclass
class CpuUse:
    """Cores in use on average during a run: the server, wrk, and everything else."""

    server: float
    wrk: float
    other: float


def run_wrk(
    wrk: str,
    server: Measured,
    prefix: Path,
    expect: str,
    cycle: bool,
    clients: int,
    duration: float,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> tuple[dict[str, float], str, CpuUse]:
    """One wrk run: its figures, the first bad answer, and the CPU used meanwhile (the
    server's: the one loaded)."""
    threads = min(2, clients)
    cmd = [
        wrk,
        f"--threads={threads}",
        f"--connections={clients}",
        f"--duration={max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        *(f"--header={name}: {value}" for name, value in (headers or {}).items()),
        f"--script={LUA_SCRIPT}",
        server.base_url + "/",
        "--",
        str(prefix),
        expect,
        "1" if cycle else "0",
    ]
    server0, wrk0, busy0 = server.cpu_seconds(), _children_cpu(), _machine_busy_cpu()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=duration + 120)
    elapsed = time.monotonic() - t0
    server_cpu = (server.cpu_seconds() - server0) / elapsed
    wrk_cpu = (_children_cpu() - wrk0) / elapsed
    busy = (_machine_busy_cpu() - busy0) / elapsed
    cpu = CpuUse(server_cpu, wrk_cpu, max(0.0, busy - server_cpu - wrk_cpu))
    result: dict[str, float] | None = None
    first_bad = ""
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
        elif line.startswith("BENCH_FIRST_BAD "):
            first_bad = line.removeprefix("BENCH_FIRST_BAD ")
    if proc.returncode != 0 or result is None:
        raise RuntimeError(
            f"wrk failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        )
    return result, first_bad, cpu


# ---------------------------------------------------------------------------------------------
# Profiling (optional)

PY_SPY_FORMATS = {".svg": "flamegraph", ".txt": "raw", ".json": "speedscope"}


def start_py_spy(
    py_spy: str, server: Server, out: Path | None, secs: float
) -> subprocess.Popen[bytes]:
    """py-spy on the server for one measured run: samples of the thread holding the GIL."""
    assert server.proc is not None and out is not None
    fmt = PY_SPY_FORMATS.get(out.suffix, "flamegraph")
    cmd = [py_spy, "record", "--pid", str(server.proc.pid), "--duration", str(round(secs))]
    cmd += ["--rate", "200", "--gil", "--threads", "--nonblocking", "--format", fmt]
    cmd += ["--subprocesses"]  # the API workers too
    cmd += ["--output", str(out)]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # let it attach
    return spy


def finish_py_spy(spy: subprocess.Popen[bytes], out: Path | None) -> None:
    try:
        _, err = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode != 0:
        print(f"bench: py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
    else:
        print(f"bench: profile written to {out}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Options:
    clients: list[int]
    duration: float
    warmup: float
    timeout: float
    log_level: str
    write: bool
    ref: str | None
    profile: Path | None
    py_spy: str
    quiet_wait: float
    action: str = SIGNED_ACTION
    compare: str | None = None
    rounds: int = 3
    workers: str | None = None
    moto: bool = True

    @property
    def server_args(self) -> list[str]:
        return ["--workers", self.workers] if self.workers else []


@dataclass
class Peer:
    """moto beside openccs: its server and its signed read."""

    server: MotoServer
    signer: AwsSigner
    version: str


class Bench:
    def __init__(
        self, wrk: str, server: Server, signer: Signer, opts: Options, peer: Peer | None = None
    ) -> None:
        self.wrk = wrk
        self.server = server
        self.signer = signer
        self.opts = opts
        self.peer = peer
        self.files = server.workdir / "paths"
        self.files.mkdir()
        self.http = httpx.Client(timeout=opts.timeout)
        # Signed requests the next warm-up may need: a generous guess, then measured rates.
        self.signed_rate_guess = 5000.0

    def close(self) -> None:
        self.http.close()

    def _wrk(
        self,
        name: str,
        paths: list[str],
        expect: str,
        cycle: bool,
        clients: int,
        secs: float,
        server: Measured | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, float], str, CpuUse]:
        prefix = self.files / name
        threads = min(2, clients)
        write_path_files(prefix, paths, threads)
        try:
            return run_wrk(
                self.wrk,
                server or self.server,
                prefix,
                expect,
                cycle,
                clients,
                secs,
                self.opts.timeout,
                headers,
            )
        finally:
            for i in range(threads):
                prefix.with_name(f"{prefix.name}.{i}").unlink(missing_ok=True)

    def _signed_count(self, rate: float, secs: float) -> int:
        return math.ceil(rate * secs * 1.5) + 2000

    def measure(self, endpoint: str, clients: int) -> RunResult:
        """One row: "signed" and "baseline" load openccs, "moto" the peer."""
        signed = endpoint == "signed"
        server: Measured = self.server
        headers: Mapping[str, str] | None = None
        if endpoint == "moto":
            assert self.peer is not None
            server, headers, expect = self.peer.server, self.peer.signer.headers, MOTO_OK
            fixed = [self.peer.signer.path] * min(2, clients)
        elif signed:
            expect, fixed = SIGNED_OK, []
        else:
            expect, fixed = HEALTH_OK, [HEALTH_PATH] * min(2, clients)
        tag = f"{endpoint}-c{clients}"
        if self.opts.quiet_wait > 0:
            wait_for_quiet(self.opts.quiet_wait)

        # Warm-up (its figures are discarded, except the signed rate, to size the next list).
        if signed:
            warm_paths = self.signer.paths(
                self._signed_count(self.signed_rate_guess, self.opts.warmup)
            )
        else:
            warm_paths = fixed
        warm, _, _ = self._wrk(
            tag + "-warmup",
            warm_paths,
            expect,
            not signed,
            clients,
            self.opts.warmup,
            server,
            headers,
        )
        warm_rate = warm["requests"] / (warm["duration_us"] / 1e6)

        if signed:
            # The fastest rate seen so far too: a warm-up slowed by other load must not leave
            # the run without paths.
            rate = max(warm_rate, self.signed_rate_guess / 2)
            paths = self.signer.paths(self._signed_count(rate, self.opts.duration))
            check = [self.signer.path() for _ in range(3)]
        else:
            paths = fixed
            check = fixed[:1] * 3
        failures = precheck(self.http, server, check, expect, headers)
        spy = None
        if signed and self.opts.profile is not None and clients == max(self.opts.clients):
            spy = start_py_spy(self.opts.py_spy, self.server, self.opts.profile, self.opts.duration)
        res, first_bad, cpu = self._wrk(
            tag, paths, expect, not signed, clients, self.opts.duration, server, headers
        )
        if spy is not None:
            finish_py_spy(spy, self.opts.profile)
        result = RunResult(
            endpoint=endpoint,
            clients=clients,
            threads=min(2, clients),
            requests=int(res["requests"]),
            duration_s=res["duration_us"] / 1e6,
            p50_ms=res["p50_us"] / 1000,
            p90_ms=res["p90_us"] / 1000,
            p99_ms=res["p99_us"] / 1000,
            max_ms=res["max_us"] / 1000,
            socket_errors=int(res["connect"] + res["read"] + res["write"] + res["timeout"]),
            status_errors=int(res["status"]),
            bad_answers=int(res["bad"]),
            exhausted=int(res["exhausted"]),
            precheck_failures=failures,
            cpu=cpu,
            first_bad=first_bad,
        )
        if signed:
            self.signed_rate_guess = max(result.rps, warm_rate) * 2
        print(
            f"bench: {endpoint:8} clients={clients:<3} {result.rps:9.1f} req/s"
            f"  p50={result.p50_ms:7.2f} ms  p99={result.p99_ms:7.2f} ms"
            f"  errors={result.errors}  cpu: server={cpu.server:.2f}"
            f" wrk={cpu.wrk:.2f} other={cpu.other:.2f}",
            file=sys.stderr,
            flush=True,
        )
        if first_bad:
            print(f"bench:   first bad answer: {first_bad}", file=sys.stderr)
        return result

    def run(self) -> list[RunResult]:
        results: list[RunResult] = []
        for clients in self.opts.clients:
            results.append(self.measure("baseline", clients))
            results.append(self.measure("signed", clients))
            if self.peer is not None:
                results.append(self.measure("moto", clients))
        return results


# ---------------------------------------------------------------------------------------------
# Report


def _find(results: Sequence[RunResult], endpoint: str, clients: int) -> RunResult | None:
    return next((r for r in results if r.endpoint == endpoint and r.clients == clients), None)


def targets(results: Sequence[RunResult]) -> list[tuple[str, bool | None, str]]:
    """(target, passed or None when not measured, the figures)."""
    signed = _find(results, "signed", TARGET_CLIENTS)
    base = _find(results, "baseline", TARGET_CLIENTS)
    out: list[tuple[str, bool | None, str]] = []
    name = f">= {TARGET_RPS:,.0f} signed req/s at {TARGET_CLIENTS} clients"
    if signed:
        out.append((name, signed.rps >= TARGET_RPS, f"{signed.rps:,.0f} req/s"))
    else:
        out.append((name, None, "not measured"))
    name = f"signed p99 <= {TARGET_P99_MS:.0f} ms at {TARGET_CLIENTS} clients"
    if signed:
        out.append((name, signed.p99_ms <= TARGET_P99_MS, f"p99 {signed.p99_ms:.1f} ms"))
    else:
        out.append((name, None, "not measured"))
    name = f"signed >= {TARGET_RATIO} x baseline throughput at {TARGET_CLIENTS} clients"
    if signed and base and base.rps > 0:
        ratio = signed.rps / base.rps
        out.append((name, ratio >= TARGET_RATIO, f"ratio {ratio:.2f}"))
    else:
        out.append((name, None, "not measured"))
    return out


def _us_per_request(r: RunResult) -> float:
    """Microseconds of the loaded server's CPU per request answered."""
    return r.cpu.server / r.rps * 1e6 if r.rps > 0 else 0.0


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "n/a"


def peer_table(results: Sequence[RunResult], clients_list: Sequence[int]) -> list[str]:
    """openccs's signed read against moto's at each concurrency."""
    lines = [
        "| clients | openccs signed req/s | moto req/s | openccs / moto req/s"
        " | openccs p99 ms | moto p99 ms | openccs µs CPU / request | moto µs CPU / request"
        " | openccs / moto CPU per request |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clients in clients_list:
        s, m = _find(results, "signed", clients), _find(results, "moto", clients)
        if s is None or m is None:
            continue
        lines.append(
            f"| {clients} | {s.rps:,.0f} | {m.rps:,.0f} | {_ratio(s.rps, m.rps)}"
            f" | {s.p99_ms:.2f} | {m.p99_ms:.2f} | {_us_per_request(s):,.0f}"
            f" | {_us_per_request(m):,.0f} | {_ratio(_us_per_request(s), _us_per_request(m))} |"
        )
    return lines


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def section_title(log_level: str) -> str:
    if log_level.upper() == "INFO":
        return SECTION_TITLE
    return f"{SECTION_TITLE} (server log level {log_level.upper()})"


def render(
    results: Sequence[RunResult],
    opts: Options,
    machine: dict[str, str],
    commit: str,
    server: Server,
    started: datetime.datetime,
    nonces: int,
    peer: Peer | None = None,
) -> str:
    invalid = [r for r in results if r.errors]
    server_cmd = shlex.join(
        [".venv/bin/openccs", "--data-dir", "TMPDIR", *server.command[3:]]
    ).replace(server.host, "127.0.0.1:PORT")
    lines = [
        section_title(opts.log_level),
        "",
        "Written by `bench/gateway.py`, which replaces this section on every run and keeps the"
        " other sections of this file.",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- openccs commit: {commit}",
        f"- machine: {machine['cpus']} CPUs ({machine['cpu model']}), {machine['memory']} RAM,"
        f" {machine['kernel']}, Python {machine['python']}, {machine['wrk']}",
        f"- command: `{shlex.join(['.venv/bin/python', 'bench/gateway.py', *sys.argv[1:]])}`",
        f"- server: `{server_cmd}` (started once for the whole run; SQLite; logs to a file"
        + (f"; openccs imported from `git archive {opts.ref}`)" if opts.ref else ")"),
        f"- load: wrk with keep-alive, threads = min(2, clients), {opts.warmup:g} s warm-up then"
        f" {opts.duration:g} s measured per row; every signed request a distinct pre-signed GET"
        f" ({nonces:,} signed in all, HmacSHA256); before each row it waited up to"
        f" {opts.quiet_wait:g} s for other processes to leave the machine idle",
        f"- signed: `{opts.action}`"
        + (
            " of a finished `OpenccsRunTestTask`"
            if opts.action == "DescribeClusterTaskResult"
            else " of an account without clusters"
        )
        + "; baseline: unsigned `GET /healthz`",
    ]
    if peer is not None:
        moto_cmd = shlex.join([".venv/bin/moto_server", *peer.server.command[1:]]).replace(
            str(peer.server.port), "PORT"
        )
        lines.append(
            f"- peer: moto {peer.version} (`{moto_cmd}`, started once beside openccs; Werkzeug,"
            " a thread per connection, state in memory, a log line per request on its"
            " output), EC2 `DescribeInstances` of an account without instances: the same GET"
            " (Action and Version in the query) every time, with an `AWS4-HMAC-SHA256`"
            " `Authorization` header signed once at the start; moto checks neither the"
            " signature nor replays, so it does less per request than openccs's signed path"
        )
    else:
        lines.append("- peer: none (`--no-moto`)")
    lines += [
        "",
        "| clients | endpoint | req/s | p50 ms | p99 ms | max ms | errors | CPU server"
        " | CPU wrk | CPU other |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.clients} | {r.endpoint} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f}"
            f" | {r.max_ms:.1f} | {r.errors} | {r.cpu.server:.2f} | {r.cpu.wrk:.2f}"
            f" | {r.cpu.other:.2f} |"
        )
    if peer is not None:
        measured = (
            "the server loaded (openccs's process, or moto's on the moto rows), wrk, and"
            " everything else on the machine (other processes: a disturbed measurement; the"
            " idle one of the two servers counts here)"
        )
        expected = (
            f"`{SIGNED_OK}` (signed), `{HEALTH_OK}` (baseline) or `<DescribeInstancesResponse`"
            " (moto)"
        )
    else:
        measured = (
            "the server process, wrk, and everything else on the machine (other processes: a"
            " disturbed measurement)"
        )
        expected = f"`{SIGNED_OK}` (signed) or `{HEALTH_OK}` (baseline)"
    lines += [
        "",
        f"CPU columns are cores in use on average (the machine has {machine['cpus']}):"
        f" {measured}. Errors count socket errors, non-200 statuses, answers without"
        f" {expected}, and failed pre-checks.",
        "",
        "| clients | signed req/s | baseline req/s | signed / baseline |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for clients in opts.clients:
        s, b = _find(results, "signed", clients), _find(results, "baseline", clients)
        if s and b and b.rps > 0:
            lines.append(f"| {clients} | {s.rps:,.0f} | {b.rps:,.0f} | {s.rps / b.rps:.2f} |")
    if peer is not None:
        lines += ["", *peer_table(results, opts.clients)]
    lines += ["", "| target | result | figure |", "| --- | --- | --- |"]
    for name, passed, figure in targets(results):
        lines.append(f"| {name} | {_verdict(passed)} | {figure} |")
    lines.append("")
    disturbed = [r for r in results if r.cpu.other > DISTURBED_CPU]
    if disturbed:
        worst = max(r.cpu.other for r in disturbed)
        lines += [
            f"**Disturbed: other processes used up to {worst:.2f} cores during"
            f" {len(disturbed)} of {len(results)} rows; the figures are lower than on an idle"
            " machine.**",
            "",
        ]
    if invalid:
        rows = ", ".join(f"{r.endpoint} at {r.clients}" for r in invalid)
        lines.append(f"**This run is invalid: requests failed ({rows}).**")
        firsts = {r.first_bad for r in invalid if r.first_bad}
        lines.extend(f"First bad answer: `{text}`" for text in sorted(firsts))
    else:
        lines.append("Valid run: every answer was HTTP 200 with the expected body.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--clients", default="1,8,32", help="concurrent connections, comma-separated (1,8,32)"
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per row (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per row (2)")
    p.add_argument("--timeout", type=float, default=10.0, help="request timeout in seconds (10)")
    p.add_argument(
        "--log-level",
        default="INFO",
        help="the server's log level (INFO, as users run it; another level gets its own section)",
    )
    p.add_argument(
        "--no-write", action="store_true", help="print the Markdown, do not update RESULTS.md"
    )
    p.add_argument(
        "--ref",
        help="benchmark this commit (exported with git archive) instead of the working tree",
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="record the server with py-spy during the signed run at the most clients into this"
        " file (.svg flame graph, .txt collapsed stacks, .json speedscope); implies --no-write",
    )
    p.add_argument("--py-spy", default="py-spy", help="the py-spy binary (default: on PATH)")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each row, wait up to this many seconds for other processes to leave the"
        " machine idle (60; 0 to not wait)",
    )
    p.add_argument(
        "--action",
        choices=SIGNED_ACTIONS,
        default=SIGNED_ACTION,
        help=f"the signed read ({SIGNED_ACTION})",
    )
    p.add_argument(
        "--compare",
        metavar="REF",
        help="A/B: the signed read on REF (exported with git archive) and on the working tree,"
        " two servers side by side, in interleaved rounds; writes its own section",
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds of --compare (3)")
    p.add_argument(
        "--workers",
        help="the server's --workers (N or auto; default: the server's default); with"
        " --compare, for the working tree only",
    )
    p.add_argument(
        "--no-moto",
        action="store_true",
        help="leave out the peer (moto's server, the bench extra of pyproject.toml, installed"
        " with pip when missing); --compare never runs it",
    )
    a = p.parse_args(argv)
    clients = [int(c) for c in a.clients.split(",") if c.strip()]
    if a.profile is not None and not shutil.which(a.py_spy):
        p.error(f"--profile needs py-spy ({a.py_spy!r} not found; pip install py-spy)")
    return Options(
        clients=clients,
        duration=a.duration,
        warmup=a.warmup,
        timeout=a.timeout,
        log_level=a.log_level.upper(),
        write=not a.no_write and a.profile is None,
        ref=a.ref,
        profile=a.profile.resolve() if a.profile is not None else None,
        py_spy=a.py_spy,
        quiet_wait=a.quiet_wait,
        action=a.action,
        compare=a.compare,
        rounds=a.rounds,
        workers=a.workers,
        moto=not a.no_moto,
    )


COMPARE_TITLE = "## Gateway: A/B of the signed read, a commit against the working tree"


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _cpu_per_request(r: RunResult) -> float:
    return r.cpu.server / r.rps if r.rps > 0 else 0.0


def _load_average() -> str:
    return " / ".join(_read_text("/proc/loadavg").split()[:3])


def compare(opts: Options, wrk: str, machine: dict[str, str]) -> int:
    """Both servers run at once; each round measures A and B at every concurrency, the order
    alternating, so that load from elsewhere on a shared machine falls on both alike."""
    assert opts.compare is not None
    started = datetime.datetime.now().astimezone()
    load_before = _load_average()
    names = {"A": git_commit(opts.compare), "B": git_commit(None)}
    rows: dict[tuple[str, int], list[RunResult]] = {}
    with (
        running_server(opts.log_level, opts.compare, sign_with_ref=False) as server_a,
        running_server(opts.log_level, extra_args=opts.server_args) as server_b,
    ):
        benches: dict[str, Bench] = {}
        for label, server in (("A", server_a), ("B", server_b)):
            signer = Signer(server)
            signer.action = opts.action
            if opts.action == "DescribeClusterTaskResult":
                signer.params = {"requestId": str(create_task(server, signer))}
            benches[label] = Bench(wrk, server, signer, opts)
        try:
            for rnd in range(opts.rounds):
                for clients in opts.clients:
                    order = ("A", "B") if (rnd + clients) % 2 == 0 else ("B", "A")
                    for label in order:
                        print(f"bench: round {rnd + 1} {label}", file=sys.stderr, flush=True)
                        result = benches[label].measure("signed", clients)
                        rows.setdefault((label, clients), []).append(result)
        finally:
            for bench in benches.values():
                bench.close()
    load_after = _load_average()
    lines = [
        COMPARE_TITLE,
        "",
        "Written by `bench/gateway.py --compare REF`, which replaces this section on every run.",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- A: {names['A']}; B: {names['B']}",
        f"- machine: {machine['cpus']} CPUs ({machine['cpu model']}), {machine['memory']} RAM,"
        f" {machine['kernel']}, Python {machine['python']}, {machine['wrk']}",
        f"- command: `{shlex.join(['.venv/bin/python', 'bench/gateway.py', *sys.argv[1:]])}`",
        f"- load average (1/5/15 min) before: {load_before}; after: {load_after}",
        f"- signed `{opts.action}` GETs (HmacSHA256, each its own nonce), both servers running"
        f" side by side (SQLite, INFO logs to a file); {opts.rounds} rounds, in each A and B at"
        f" every concurrency in alternating order; {opts.warmup:g} s warm-up then"
        f" {opts.duration:g} s measured per row",
        "",
        "| clients | A req/s (median) | B req/s (median) | B / A req/s (per round)"
        " | A p99 ms (median) | B p99 ms (median) | A / B server CPU per request (per round)"
        " | errors |",
        "| ---: | ---: | ---: | --- | ---: | ---: | --- | ---: |",
    ]
    for clients in opts.clients:
        a, b = rows[("A", clients)], rows[("B", clients)]
        ratios = ", ".join(
            f"{rb.rps / ra.rps:.2f}" if ra.rps > 0 else "n/a" for ra, rb in zip(a, b, strict=True)
        )
        cpu = ", ".join(
            f"{_cpu_per_request(ra) / _cpu_per_request(rb):.2f}"
            if _cpu_per_request(rb) > 0
            else "n/a"
            for ra, rb in zip(a, b, strict=True)
        )
        lines.append(
            f"| {clients} | {_median([r.rps for r in a]):,.0f} | {_median([r.rps for r in b]):,.0f}"
            f" | {ratios} | {_median([r.p99_ms for r in a]):.1f}"
            f" | {_median([r.p99_ms for r in b]):.1f} | {cpu} | {sum(r.errors for r in a + b)} |"
        )
    other = max(r.cpu.other for results in rows.values() for r in results)
    lines += [
        "",
        f"Other processes used up to {other:.2f} cores during a row (the machine has"
        f" {machine['cpus']}): absolute figures depend on that load, the ratios less so."
        " Server CPU per request (the server process's CPU time over the requests it"
        " answered) is the least disturbed measure when the server does not get a whole core.",
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if opts.write:
        update_results(COMPARE_TITLE, section, RESULTS_FILE)
        print(f"bench: updated {RESULTS_FILE.relative_to(REPO)}", file=sys.stderr)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds the `with` blocks: both servers are stopped and their files removed.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    wrk = ensure_wrk()
    machine = machine_info(wrk)
    if opts.compare is not None:
        return compare(opts, wrk, machine)
    moto_binary, moto_version = ensure_moto() if opts.moto else ("", "")
    commit_start = git_commit(opts.ref)
    started = datetime.datetime.now().astimezone()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            running_server(opts.log_level, opts.ref, extra_args=opts.server_args)
        )
        peer = None
        if opts.moto:
            moto, moto_signer = stack.enter_context(running_moto(moto_binary))
            peer = Peer(moto, moto_signer, moto_version)
        signer = Signer(server)
        signer.action = opts.action
        if opts.action == "DescribeClusterTaskResult":
            signer.params = {"requestId": str(create_task(server, signer))}
        bench = Bench(wrk, server, signer, opts, peer)
        try:
            results = bench.run()
        finally:
            bench.close()
        if signer.issued > SERVER_NONCE_MEMORY:
            print(
                f"bench: warning: {signer.issued} nonces exceed the server's memory of"
                f" {SERVER_NONCE_MEMORY} per key; late requests may be refused",
                file=sys.stderr,
            )
        commit_end = git_commit(opts.ref)
        commit = commit_start
        if commit_end != commit_start:
            commit = f"{commit_start} at the start, {commit_end} at the end"
        section = render(results, opts, machine, commit, server, started, signer.issued, peer)
    print(section)
    for name, passed, figure in targets(results):
        print(f"{_verdict(passed)}: {name} ({figure})")
    if any(r.errors for r in results):
        print("INVALID: some requests failed; see the errors column")
    if opts.write:
        update_results(section_title(opts.log_level), section, RESULTS_FILE)
        print(f"bench: updated {RESULTS_FILE.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
