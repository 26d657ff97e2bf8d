"""Workloads benchmark (issues 5 and 16): pod startup latency against plain `docker run`, a
rolling update of 10 replicas, how fast a readiness change reaches the service's endpoints,
and the idle cost of 200 pods on 4 machines, on one `openccs serve` (SQLite) with real
machines, measured through the API as a user sees it.

* Startup: `--sizes` first figure (50) single-replica services (busybox `sleep 1000`, the
  builtin image, so nothing is pulled) are created one after another, one every `--pace`
  seconds at most (the next one only once the previous one is Running), on a fresh cluster
  of `--startup-machines` machines (2 CPUs, 2 GiB). Per pod: from the CreateClusterService
  call to the first DescribeServiceInstance (polled every 50 ms) saying Running, the figure
  the targets are checked on, as in earlier runs; beside it a second poller, on a connection
  of its own, asks every 10 ms, which takes the poll's bias (half its period on average) from
  25 ms down to 5 ms: that figure is openccs's without the measurement's delay. The
  docker timestamps of its pause and app containers split that into the engine's reaction
  (call to pause container created), dockerd's work (pause created to app started) and the
  report (app started to Running seen). After each pod, on the same machine, the baseline:
  `docker -H unix://SOCK run -d openccs/busybox:latest sleep 1000`, timed until it returns
  with the container running, then removed. Targets: p99 <= 5 s (the Kubernetes SLO);
  p50 and p99 <= 1.5x the baseline's.
* Rolling update: a `--sizes` second figure (10) replica busybox httpd service (readiness =
  running) on a fresh 2-machine cluster; ModifyClusterService changes the text it serves;
  DescribeServiceInstance and DescribeClusterServiceInfo are sampled every 50 ms until all
  pods are new and Running and the service is Normal: duration, most pods at once, fewest
  Running (must never be below the replicas). Target: <= 8 s; beside it, the baseline of
  the same run: as many `docker run`s one after another (the startup part's p50 each).
* Readiness: a 2-replica busybox httpd service with an HTTP readiness probe on /ready
  (every `intervalTime` 2 s, the smallest the API takes; one failure or success flips it)
  on a fresh 1-machine cluster; `--flips` (10) times, at a random moment of the probe
  period, the file is removed from (or put back into) one pod's root file system, and the
  host's iptables chain of the service port is read every 10 ms until that pod's address
  left (or came back to) its endpoints. Target: every flip within one probe period plus
  100 ms.
* Idle: `--sizes` third figure (200) pods (4 services, busybox `sleep`, no requests) on a
  fresh cluster of `--idle-machines` (4) machines; once all are Running and after a settle
  time, the server process's CPU (utime+stime from /proc/PID/stat) over `--idle-seconds`
  (60) and its RSS; the machines' dockerd + containerd + shims memory and CPU for context;
  then `--probes` (5) more single-pod services, timed as above, on that full cluster.

The host has 2 cores shared with whatever else runs (test suites): before each measurement
the benchmark waits (at most `--wait-idle` s per part) until other processes use under 0.3
cores, and it reports the CPU of the server, its machines, itself and everything else.

Everything (clusters, server, host objects via `openccs sweep`) is removed at the end, also
on failure. Run as root: `.venv/bin/python bench/workloads.py` (replaces its section of
bench/RESULTS.md unless `--no-write`); `--sizes 10,4,20 --idle-seconds 10` is a quick run.
The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import git_commit, intro, publish, stop_and_sweep

from openccs.client import Client
from openccs.cloud import naming
from openccs.engine.proxy import port_chain
from tests.conftest import Server
from tests.workload_helpers import (
    BUSYBOX,
    Svc,
    create,
    http_get,
    make_cluster,
    ready_while_file,
    socket_of,
    until,
    web,
)

TITLE = "## Workloads: pod startup, rolling update, idle cost"
TARGET_P99_S = 5.0
TARGET_STARTUP_RATIO = 1.5  # openccs p50 and p99 against `docker run`'s
TARGET_ROLLING_S = 8.0
PROBE_PERIOD_S = 2  # the readiness part's intervalTime (the API's smallest)
TARGET_READY_SLACK_S = 0.1  # a readiness change in the endpoints within a period + this
POLL_S = 0.05
# Pod startup is also watched by a second poller every 10 ms (its own connection): the 50 ms
# poll adds 25 ms on average to what it sees, a bias `docker run`'s figure does not have.
FINE_POLL_S = 0.01
IDLE_CORES = 0.3  # other processes' CPU under which the host counts as idle
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024


# -- small helpers -----------------------------------------------------------------------


def ok(res: dict[str, Any], what: str) -> dict[str, Any]:
    if res.get("code") != 0:
        raise RuntimeError(f"{what}: {res}")
    return dict(res.get("data") or {})


def wait_task(c: Client, request_id: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = ok(c.call("DescribeClusterTaskResult", {"requestId": request_id}), "task")
        if data["status"] == "succ":
            return
        if data["status"] == "fail":
            raise RuntimeError(f"task {request_id} failed: {data.get('reason')}")
        time.sleep(0.2)
    raise RuntimeError(f"task {request_id} did not finish within {timeout} s")


def docker(sock: Path, *args: str, timeout: float = 60) -> str:
    r = subprocess.run(["docker", "-H", f"unix://{sock}", *args], capture_output=True,
                       text=True, timeout=timeout, check=False)  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {r.stderr.strip()[-500:]}")
    return r.stdout


def docker_time(value: str | None) -> float | None:
    """Docker's RFC 3339 UTC timestamp (nanoseconds) as a Unix time."""
    if not value or value.startswith("0001-"):
        return None
    main, _, frac = value.rstrip("Z").partition(".")
    base = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    return base.timestamp() + (float("0." + frac) if frac else 0.0)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (as Kubernetes' perf tests): p99 of 50 samples is the max."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime+stime, cutime+cstime) of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def host_busy_ticks() -> int:
    """Busy clock ticks of all CPUs (everything but idle and iowait) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4]


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class Cpu:
    """Cores in use on average over a window: this run's server (and the commands it ran),
    this benchmark (and its docker CLIs), this run's machines (daemons and containers, from
    the site's cpuacct cgroup), and every other process on the host."""

    seconds: float
    host: float
    server: float
    server_children: float
    bench: float
    machines: float

    @property
    def other(self) -> float:
        return max(0.0, self.host - self.server - self.server_children - self.bench
                   - self.machines)  # fmt: skip

    def line(self) -> str:
        return (
            f"CPU over the {self.seconds:.0f} s, in cores of {os.cpu_count()}: openccs server"
            f" {self.server:.2f} (+ {self.server_children:.2f} in its helper processes),"
            f" this benchmark {self.bench:.2f}, the run's machines {self.machines:.2f},"
            f" other processes {self.other:.2f}"
        )


@dataclass
class Snap:
    t: float
    host: int  # busy ticks, all CPUs
    server: int
    server_waited: int  # its children's ticks, once waited for (iptables, ip...)
    helpers: dict[int, int]  # its live descendants outside the machines (docker-registry...)
    bench: int  # this process and the children it waited for (docker CLI)
    machines_ns: int


class CpuMeter:
    def __init__(self, server_pid: int, site: str) -> None:
        self.pid = server_pid
        self.site_cgroup = naming.cgroup_site(site)
        self.cpuacct = Path("/sys/fs/cgroup/cpuacct") / self.site_cgroup.lstrip("/")

    def _helpers(self) -> dict[int, int]:
        parents: dict[int, int] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    parents[int(d.name)] = int(
                        (d / "stat").read_text().rsplit(")", 1)[1].split()[1]
                    )
        ours, todo = set(), [self.pid]
        while todo:
            parent = todo.pop()
            for pid, ppid in parents.items():
                if ppid == parent and pid not in ours:
                    ours.add(pid)
                    todo.append(pid)
        ticks = {}
        for pid in ours:
            with contextlib.suppress(OSError):
                if self.site_cgroup + "/" not in Path(f"/proc/{pid}/cgroup").read_text():
                    ticks[pid] = cpu_ticks(pid)[0]
        return ticks

    def snap(self) -> Snap:
        own, kids = cpu_ticks(self.pid)
        me, my_kids = cpu_ticks(os.getpid())
        try:
            machines_ns = int((self.cpuacct / "cpuacct.usage").read_text())
        except OSError:
            machines_ns = 0
        return Snap(time.monotonic(), host_busy_ticks(), own, kids, self._helpers(), me + my_kids,
                    machines_ns)  # fmt: skip

    def since(self, a: Snap) -> Cpu:
        b = self.snap()
        secs = b.t - a.t
        helpers = sum(b.helpers[p] - a.helpers[p] for p in a.helpers if p in b.helpers)
        return Cpu(
            seconds=secs,
            host=(b.host - a.host) / CLK_TCK / secs,
            server=(b.server - a.server) / CLK_TCK / secs,
            server_children=(b.server_waited - a.server_waited + helpers) / CLK_TCK / secs,
            bench=(b.bench - a.bench) / CLK_TCK / secs,
            machines=max(0.0, (b.machines_ns - a.machines_ns) / 1e9 / secs),
        )

    def wait_idle(self, limit: float, window: float) -> float:
        """Wait (up to `limit` s) until other processes use under IDLE_CORES over `window`
        seconds; the seconds waited."""
        started = time.monotonic()
        while True:
            before = self.snap()
            time.sleep(window)
            other = self.since(before).other
            waited = time.monotonic() - started
            if other < IDLE_CORES or waited >= limit:
                return waited
            print(f"waiting for an idle host: other processes use {other:.2f} cores",
                  file=sys.stderr)  # fmt: skip


@dataclass
class Env:
    """The server and the clusters of this run (for cleanup)."""

    server: Server
    c: Client
    meter: CpuMeter
    clusters: list[str] = field(default_factory=list)
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # cluster -> lanIp -> id
    budget: float = 0.0  # seconds each part may wait for an idle host, in all
    waited: dict[str, float] = field(default_factory=dict)  # part -> seconds waited
    rss_log: list[tuple[str, float]] = field(default_factory=list)  # server RSS MB over time

    def rss(self, when: str) -> None:
        assert self.server.proc is not None
        self.rss_log.append((when, status_kb(self.server.proc.pid, "VmRSS") / 1024))

    def quiet(self, part: str, window: float = 2.0) -> None:
        """Before a measurement: wait for other processes to leave the host idle."""
        spent = self.waited.get(part, 0.0)
        self.waited[part] = spent + self.meter.wait_idle(max(0.0, self.budget - spent), window)

    @property
    def site(self) -> str:
        return (self.server.data_dir / "site-id").read_text().strip()

    def new_cluster(self, machines: int) -> str:
        cluster = make_cluster(self.server, machines)
        self.clusters.append(cluster)
        nodes = ok(self.c.call("DescribeClusterInstances", {"clusterId": cluster}), "nodes")
        self.nodes[cluster] = {n["lanIp"]: n["instanceId"] for n in nodes["nodes"]}
        return cluster

    def delete_cluster(self, cluster: str) -> None:
        res = ok(self.c.call("DeleteCluster", {"clusterId": cluster}), "DeleteCluster")
        wait_task(self.c, res["requestId"])
        self.clusters.remove(cluster)

    def sock(self, cluster: str, lan_ip: str) -> Path:
        return socket_of(self.server, self.nodes[cluster][lan_ip])


def sleep_service(name: str, replicas: int, seconds: int) -> dict[str, Any]:
    return {
        "serviceName": name,
        "replicas": replicas,
        "accessType": "None",
        "containers": [
            {
                "containerName": "main",
                "image": BUSYBOX,
                "command": "sleep",
                "arguments": [str(seconds)],
            }
        ],
    }


# -- startup latency -----------------------------------------------------------------------


@dataclass
class PodStart:
    node: str
    api: float  # seconds after the call: the API answered
    running: float  # DescribeServiceInstance said Running (polled every 50 ms)
    running_fine: float  # first seen Running by either poller (one polls every 10 ms)
    pause_created: float
    app_started: float
    pause_docker: float  # pause container Created -> StartedAt
    app_docker: float  # app container Created -> StartedAt
    other: float = 0.0  # other processes' CPU (cores) while it was measured


@dataclass
class BaseStart:
    total: float  # docker run -d until it returned with the container running
    docker: float  # Created -> StartedAt


@dataclass
class Startup:
    machines: int
    pace: float
    pods: list[PodStart] = field(default_factory=list)
    base: list[BaseStart] = field(default_factory=list)
    cpu: Cpu | None = None


def inspect_pod(sock: Path, pod: str) -> dict[str, dict[str, Any]]:
    """The pod's containers by role (pause, app), from `docker inspect`."""
    ids = docker(sock, "ps", "-aq", "--filter", f"label=openccs.pod={pod}").split()
    infos = json.loads(docker(sock, "inspect", *ids)) if ids else []
    return {i["Config"]["Labels"].get("openccs.role", ""): i for i in infos}


def baseline_once(sock: Path, name: str) -> BaseStart:
    t0 = time.perf_counter()
    cid = docker(sock, "run", "-d", "--name", name, BUSYBOX, "sleep", "1000").strip()
    api = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock), verify=False),
                       base_url="http://docker")  # fmt: skip
    try:
        while True:
            info = api.get(f"/containers/{cid}/json").json()
            if info["State"]["Running"]:
                break
            time.sleep(POLL_S)
        total = time.perf_counter() - t0
    finally:
        api.close()
    created, started = docker_time(info["Created"]), docker_time(info["State"]["StartedAt"])
    docker(sock, "rm", "-f", cid)
    return BaseStart(total, (started or 0) - (created or 0))


def watch_running(c: Client, svc: Svc, t0: float, deadline: float, stop: threading.Event,
                  out: list[float]) -> None:  # fmt: skip
    """The fine poller: every FINE_POLL_S, from a thread of its own (the client is shared:
    its connection pool gives the thread a connection of its own), until the pod is Running
    (its time after the call goes to `out`), `stop` is set or the deadline passes."""
    while time.perf_counter() < deadline and not stop.is_set():
        res = c.call("DescribeServiceInstance", svc.ref(limit=100))
        pods = (res.get("data") or {}).get("instances") or []
        if pods and pods[0]["status"] == "Running":
            out.append(time.perf_counter() - t0)
            return
        time.sleep(FINE_POLL_S)


def start_one(env: Env, cluster: str, name: str) -> tuple[PodStart, Path]:
    """Create a one-pod service and time it to Running (and its machine's socket)."""
    before = env.meter.snap()
    t0_wall, t0 = time.time(), time.perf_counter()
    svc = create(env.c, cluster, sleep_service(name, 1, 1000))
    api = time.perf_counter() - t0
    deadline = t0 + 120
    fine: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_running, args=(env.c, svc, t0, deadline, stop, fine), daemon=True
    )
    watcher.start()
    pod: dict[str, Any] | None = None
    while time.perf_counter() < deadline:
        pods = svc.pods()
        if pods and pods[0]["status"] == "Running":
            pod = pods[0]
            break
        time.sleep(POLL_S)
    running = time.perf_counter() - t0
    watcher.join(max(0.0, deadline - time.perf_counter()))
    stop.set()
    if pod is None or not fine:
        raise RuntimeError(f"{name} not Running within 120 s: {svc.pods()}")
    sock = env.sock(cluster, pod["nodeIp"])
    roles = inspect_pod(sock, pod["name"])
    pause, app = roles["pause"], roles["app"]

    def at(info: dict[str, Any], key: str) -> float:
        value = info["Created"] if key == "Created" else info["State"][key]
        return (docker_time(value) or t0_wall) - t0_wall

    cpu = env.meter.since(before)
    timing = PodStart(
        node=pod["nodeIp"],
        api=api,
        running=running,
        running_fine=min(fine[0], running),
        pause_created=at(pause, "Created"),
        app_started=at(app, "StartedAt"),
        pause_docker=at(pause, "StartedAt") - at(pause, "Created"),
        app_docker=at(app, "StartedAt") - at(app, "Created"),
        other=cpu.other,
    )
    print(f"{name}: Running after {running:.3f} s ({timing.running_fine:.3f} s by the 10 ms"
          f" poll; pause created {timing.pause_created:.3f}, app started"
          f" {timing.app_started:.3f}; openccs server CPU {1000 * cpu.server * cpu.seconds:.0f}"
          " ms)", file=sys.stderr)  # fmt: skip
    return timing, sock


def part_startup(env: Env, n: int, machines: int, pace: float) -> Startup:
    out = Startup(machines, pace)
    cluster = env.new_cluster(machines)
    before = env.meter.snap()
    last_create = 0.0
    for i in range(n):
        time.sleep(max(0.0, last_create + pace - time.monotonic()))
        env.quiet("startup")
        last_create = time.monotonic()
        timing, sock = start_one(env, cluster, f"start{i:03d}")
        out.pods.append(timing)
        out.base.append(baseline_once(sock, f"bench-baseline-{i}"))
        print(f"  baseline {i + 1}/{n}: docker run {out.base[-1].total:.3f} s", file=sys.stderr)
    out.cpu = env.meter.since(before)
    env.delete_cluster(cluster)
    return out


# -- rolling update ------------------------------------------------------------------------


@dataclass
class Rolling:
    replicas: int
    duration: float = 0.0
    max_pods: int = 0  # every pod DescribeServiceInstance listed, Terminating ones included
    max_live: int = 0  # pods not Terminating
    min_running: int = 0
    samples: int = 0
    served: str = ""  # what the pods answer after the update
    first_new_running: float = 0.0
    # All new pods Running and the service Normal, old ones possibly still Terminating
    # (their grace period): when `kubectl rollout status` says the rollout is done.
    complete: float = 0.0
    last_old_gone: float = 0.0
    terminating: list[float] = field(default_factory=list)  # per old pod: Terminating -> gone
    new_running: list[float] = field(default_factory=list)  # per new pod: Running, after Modify
    cpu: Cpu | None = None


def _hash(pod_name: str) -> str:
    return pod_name.rsplit("-", 2)[1]


def part_rolling(env: Env, replicas: int) -> Rolling:
    cluster = env.new_cluster(2)
    svc = create(env.c, cluster, web("roll", replicas=replicas, text="v1"))
    svc.wait_normal(replicas, timeout=300)
    out = measure_rolling(env, svc, replicas, "v2")
    env.delete_cluster(cluster)
    return out


def measure_rolling(env: Env, svc: Svc, replicas: int, text: str) -> Rolling:
    """Roll `svc` (a `web` service Normal with `replicas` pods) to serve `text`, sampling."""
    out = Rolling(replicas)
    cluster = svc.cluster
    old = {_hash(p["name"]) for p in svc.pods()}
    running_min, pods_max, live_max = replicas, 0, 0
    term_since: dict[str, float] = {}
    running_at: dict[str, float] = {}
    gone: set[str] = set()
    env.quiet("rolling", 5)
    before = env.meter.snap()
    t0 = time.perf_counter()
    ok(env.c.call("ModifyClusterService", {"clusterId": cluster, "namespace": svc.namespace,
                                           **web(svc.name, replicas=replicas, text=text)}),
       "ModifyClusterService")  # fmt: skip
    deadline = t0 + 900
    while True:
        pods = svc.pods()
        status = svc.info()["status"]
        now = time.perf_counter() - t0
        out.samples += 1
        running = [p for p in pods if p["status"] == "Running"]
        live = [p for p in pods if p["status"] != "Terminating"]
        new_running = [p for p in running if _hash(p["name"]) not in old]
        names = {p["name"] for p in pods}
        for p in pods:
            if p["status"] == "Terminating":
                term_since.setdefault(p["name"], now)
        for name in [n for n in term_since if n not in names and n not in gone]:
            out.terminating.append(now - term_since[name])
            gone.add(name)
        for p in new_running:
            running_at.setdefault(p["name"], now)
        running_min = min(running_min, len(running))
        pods_max, live_max = max(pods_max, len(pods)), max(live_max, len(live))
        if new_running and not out.first_new_running:
            out.first_new_running = now
        if not any(_hash(p["name"]) in old for p in pods) and not out.last_old_gone:
            out.last_old_gone = now
        if len(new_running) == replicas and len(live) == replicas and status == "Normal":
            out.complete = out.complete or now
        if len(pods) == replicas and len(new_running) == replicas and status == "Normal":
            out.duration = now
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"rolling update not done in 900 s: {status} {pods}")
        time.sleep(POLL_S)
    out.cpu = env.meter.since(before)
    out.new_running = sorted(running_at.values())
    out.min_running, out.max_pods, out.max_live = running_min, pods_max, live_max
    out.served = ",".join(sorted({http_get(p["ip"]) for p in svc.pods()}))
    return out


# -- readiness reflection ------------------------------------------------------------------


@dataclass
class Readiness:
    period: float
    flips: list[tuple[bool, float]] = field(default_factory=list)  # (now failing, seconds)
    cpu: Cpu | None = None


def endpoints(chain: str) -> set[str]:
    """The pod addresses a service port's chain leads to, on the host."""
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S", chain], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return {
        line.split("--to-destination ", 1)[1].split()[0].rsplit(":", 1)[0]
        for line in out.splitlines()
        if "--to-destination " in line
    }


def part_readiness(env: Env, flips: int) -> Readiness:
    out = Readiness(PROBE_PERIOD_S)
    cluster = env.new_cluster(1)
    spec = ready_while_file(
        web("ready", replicas=2),
        {"checkMethod": "methodHttp", "port": 80, "path": "/ready", "protocol": "HTTP"},
        PROBE_PERIOD_S,
    )
    svc = create(env.c, cluster, spec)
    a, b = svc.wait_normal(2, timeout=300)
    chain = port_chain(env.site, f"{cluster}/default/ready/8080/TCP")
    until("both pods in the endpoints", lambda: endpoints(chain) == {a["ip"], b["ip"]}, 60)
    app = inspect_pod(env.sock(cluster, a["nodeIp"]), a["name"])["app"]
    # The pod's root file system as the host sees it: a flip costs no docker exec.
    ready = Path(app["GraphDriver"]["Data"]["MergedDir"]) / "ready"
    rng = random.Random(16)
    before = env.meter.snap()
    for i in range(flips):
        env.quiet("readiness", 1.0)
        time.sleep(rng.uniform(0, out.period))  # any moment of the probe period
        failing = i % 2 == 0
        want = {b["ip"]} if failing else {a["ip"], b["ip"]}
        t0 = time.perf_counter()
        if failing:
            ready.unlink()
        else:
            ready.touch()
        while endpoints(chain) != want:
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"endpoints not {want} within 60 s: {endpoints(chain)}")
            time.sleep(0.01)
        out.flips.append((failing, time.perf_counter() - t0))
        print(f"flip {i + 1}/{flips} ({'fail' if failing else 'pass'}):"
              f" {out.flips[-1][1]:.3f} s", file=sys.stderr)  # fmt: skip
    out.cpu = env.meter.since(before)
    env.delete_cluster(cluster)
    return out


def render_readiness(r: Readiness, waited: float | None) -> list[str]:
    fail = [s for failing, s in r.flips if failing]
    ok_ = [s for failing, s in r.flips if not failing]
    every = [s for _, s in r.flips]
    return [
        "### Readiness reflected in the endpoints",
        "",
        "A 2-replica busybox httpd service with an HTTP readiness probe on /ready (every"
        f" {r.period:g} s, one result flips it) on a fresh 1-machine cluster. {len(r.flips)}"
        " times, at a random moment of the probe period, /ready is removed from (or put"
        " back into) one pod's root file system from the host; then the host's iptables"
        " chain of the service port is read every 10 ms until the pod's address left (came"
        " back to) it. The time includes the wait for the probe's next run (up to one period).",
        "",
        *cpu_lines(r.cpu, waited),
        "| flip | n | median (s) | max (s) |",
        "| --- | ---: | ---: | ---: |",
        f"| probe starts failing -> out of the endpoints | {len(fail)} | {med(fail):.2f} |"
        f" {max(fail, default=float('nan')):.2f} |",
        f"| probe passes again -> back in the endpoints | {len(ok_)} | {med(ok_):.2f} |"
        f" {max(ok_, default=float('nan')):.2f} |",
        f"| all | {len(every)} | {med(every):.2f} | {max(every, default=float('nan')):.2f} |",
    ]


# -- idle cost -----------------------------------------------------------------------------


@dataclass
class MachineMem:
    procs: int
    shims: int
    rss_mb: float
    pss_mb: float
    cpu: float  # cores, over the idle window
    cgroup_mb: float  # the machine cgroup's memory.usage_in_bytes (containers, cache...)


@dataclass
class Idle:
    machines: int
    asked: int
    running: int = 0
    to_running: float = 0.0
    per_node: list[int] = field(default_factory=list)  # pods per machine
    cpu: Cpu | None = None
    server_rss_mb: float = 0.0
    server_hwm_mb: float = 0.0
    server_rss_before_mb: float = 0.0
    per_machine: list[MachineMem] = field(default_factory=list)
    probes: list[PodStart] = field(default_factory=list)  # one more pod, on the full cluster
    windows: int = 0  # idle windows measured (a disturbed one is measured again)
    note: str = ""


def _system_pids(site: str, instance: str) -> set[int]:
    from openccs.cloud import cgroups

    return cgroups.driver().pids_in(naming.cgroup_system(site, instance))


def part_idle(
    env: Env, n: int, machines: int, seconds: float, settle: float, probes: int, pace: float
) -> Idle:
    from openccs.cloud import cgroups

    out = Idle(machines, n)
    assert env.server.proc is not None
    pid = env.server.proc.pid
    out.server_rss_before_mb = status_kb(pid, "VmRSS") / 1024
    cluster = env.new_cluster(machines)
    services = 4 if n >= 4 else 1
    sizes = [n // services + (1 if i < n % services else 0) for i in range(services)]
    t0 = time.perf_counter()
    svcs = [create(env.c, cluster, sleep_service(f"idle{i}", k, 10**8))
            for i, k in enumerate(sizes)]  # fmt: skip
    deadline, stalled_since, best = t0 + 900, time.perf_counter(), -1
    while True:
        running = sum(len(s.running()) for s in svcs)
        if running > best:
            best, stalled_since = running, time.perf_counter()
        if running == n:
            out.to_running = time.perf_counter() - t0
            break
        # Pods that do not fit (memory) stay Pending or fail: measure what runs.
        if time.perf_counter() > deadline or time.perf_counter() - stalled_since > 180:
            out.to_running = time.perf_counter() - t0
            reasons = {x["reason"] for s in svcs for x in s.pods() if x["status"] != "Running"}
            out.note = f"only {running} of {n} pods Running (others: {sorted(reasons)})"
            break
        time.sleep(1)
    out.running = running
    nodes: dict[str, int] = {}
    for svc in svcs:
        for pod in svc.pods():
            nodes[pod["nodeIp"]] = nodes.get(pod["nodeIp"], 0) + 1
    out.per_node = sorted(nodes.values(), reverse=True)
    print(f"idle: {running} pods Running after {out.to_running:.1f} s ({out.per_node});"
          f" settling {settle:g} s", file=sys.stderr)  # fmt: skip
    time.sleep(settle)
    site = env.site
    sys_pids = {ins: _system_pids(site, ins) for ins in env.nodes[cluster].values()}
    # A window disturbed by other processes is measured again (3 tries; the least disturbed).
    ticks0: dict[int, int] = {}
    ticks1: dict[int, int] = {}
    for _ in range(3):
        env.quiet("idle", 5)
        out.windows += 1
        t0s = {p: cpu_ticks(p)[0] for pids in sys_pids.values() for p in pids}
        before = env.meter.snap()
        time.sleep(seconds)
        cpu = env.meter.since(before)
        t1s = {}
        for pids in sys_pids.values():
            for p in pids:
                with contextlib.suppress(OSError):
                    t1s[p] = cpu_ticks(p)[0]
        if out.cpu is None or cpu.other < out.cpu.other:
            out.cpu, ticks0, ticks1 = cpu, t0s, t1s
        print(f"idle window {out.windows}: {cpu.line()}", file=sys.stderr)
        if cpu.other < IDLE_CORES:
            break
    window = out.cpu.seconds if out.cpu is not None else seconds
    out.server_rss_mb = status_kb(pid, "VmRSS") / 1024
    out.server_hwm_mb = status_kb(pid, "VmHWM") / 1024
    for ins, pids in sys_pids.items():
        alive = [p for p in pids if Path(f"/proc/{p}").exists()]
        usage = cgroups.driver().path("memory", naming.cgroup(site, ins)) / "memory.usage_in_bytes"
        out.per_machine.append(
            MachineMem(
                procs=len(alive),
                shims=sum(1 for p in alive if comm(p).startswith("containerd-shim")),
                rss_mb=sum(status_kb(p, "VmRSS") for p in alive) / 1024,
                pss_mb=sum(pss_kb(p) for p in alive) / 1024,
                cpu=sum(ticks1[p] - ticks0[p] for p in pids if p in ticks1 and p in ticks0)
                / CLK_TCK
                / window,
                cgroup_mb=int(usage.read_text()) / MB if usage.exists() else 0.0,
            )
        )
    # What a user deploying one more service on this cluster sees.
    last_create = 0.0
    for i in range(probes):
        time.sleep(max(0.0, last_create + pace - time.monotonic()))
        env.quiet("idle")
        last_create = time.monotonic()
        out.probes.append(start_one(env, cluster, f"probe{i}")[0])
    env.delete_cluster(cluster)
    return out


# -- the report ----------------------------------------------------------------------------


def cpu_lines(cpu: Cpu | None, waited: float | None, extra: str = "") -> list[str]:
    lines = []
    if waited is not None:
        lines.append(
            f"Before its measurements the benchmark waited {waited:.0f} s in all for other"
            f" processes (e.g. test runs) to leave the host idle (< {IDLE_CORES:g} cores)."
        )
    if cpu is not None:
        lines.append(cpu.line() + ".")
    if extra:
        lines.append(extra)
    return [" ".join(lines), ""] if lines else []


def render_startup(r: Startup, waited: float | None) -> list[str]:
    run, fine = [p.running for p in r.pods], [p.running_fine for p in r.pods]
    busy = [p.other for p in r.pods if p.other >= IDLE_CORES]
    disturbed = (
        f"Pods measured while other processes used >= {IDLE_CORES:g} cores: {len(busy)} of"
        f" {len(r.pods)}" + (f" (at most {max(busy):.2f} cores)." if busy else ".")
    )
    base = [b.total for b in r.base]
    p50, p99, b50, b99 = pct(run, 50), pct(run, 99), pct(base, 50), pct(base, 99)
    lines = [
        "### Pod startup latency",
        "",
        f"{len(r.pods)} single-replica services (busybox `sleep 1000`, image on the machine)"
        f" created one after another on a cluster of {r.machines} machines (2 CPUs, 2 GiB),"
        f" one every {r.pace:g} s at most and each once the previous one was Running: a user"
        " deploying at a modest pace, so the figure is one pod's latency, not a queue's. The"
        " pods stay, so the last ones start next to"
        f" {len(r.pods) // max(1, r.machines)} pods per machine. After each pod, the baseline"
        " ran on the pod's machine. Percentiles are nearest-rank (p99 of 50 is the slowest)."
        f" Running is seen by two pollers of DescribeServiceInstance: every {POLL_S * 1000:.0f}"
        " ms (the figure of earlier runs, with the target; it adds half its period on average)"
        f" and, on a connection of its own, every {FINE_POLL_S * 1000:.0f} ms (the first of the two"
        " to see it); `docker run` has no such bias (it returns once its container runs).",
        "",
        *cpu_lines(r.cpu, waited, disturbed),
        "| way | p50 (s) | p90 (s) | p99 (s) | max (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| openccs: CreateClusterService to Running (polled every {POLL_S * 1000:.0f} ms) |"
        f" {p50:.2f} | {pct(run, 90):.2f} | {p99:.2f} | {max(run):.2f} |",
        f"| openccs: the same, polled every {FINE_POLL_S * 1000:.0f} ms |"
        f" {pct(fine, 50):.3f} | {pct(fine, 90):.3f} | {pct(fine, 99):.3f} | {max(fine):.3f} |",
        f"| baseline: `docker run -d` to running | {b50:.2f} | {pct(base, 90):.2f} |"
        f" {b99:.2f} | {max(base):.2f} |",
        f"| overhead (openccs - baseline) | {p50 - b50:.2f} | {pct(run, 90) - pct(base, 90):.2f}"
        f" | {p99 - b99:.2f} | {max(run) - max(base):.2f} |",
        f"| ratio (openccs / baseline) | {p50 / b50:.2f}x | {pct(run, 90) / pct(base, 90):.2f}x"
        f" | {p99 / b99:.2f}x | {max(run) / max(base):.2f}x |",
        f"| ratio, {FINE_POLL_S * 1000:.0f} ms poll (openccs / baseline) |"
        f" {pct(fine, 50) / b50:.2f}x | {pct(fine, 90) / pct(base, 90):.2f}x |"
        f" {pct(fine, 99) / b99:.2f}x | {max(fine) / max(base):.2f}x |",
        "",
        "Where an openccs pod's time goes (seconds after the call; docker's timestamps):",
        "",
        "| step | p50 (s) | p99 (s) |",
        "| --- | ---: | ---: |",
    ]
    steps: list[tuple[str, list[float]]] = [
        ("API call answered", [p.api for p in r.pods]),
        ("call -> pause container created (the engine pass picks the pod up)",
         [p.pause_created for p in r.pods]),
        ("pause created -> app container started (agent: 2 containers)",
         [p.app_started - p.pause_created for p in r.pods]),
        ("  of which dockerd starting the pause container (Created -> StartedAt)",
         [p.pause_docker for p in r.pods]),
        ("  of which the app container Created -> StartedAt (created while the pause"
         " container starts, it starts once that one runs)",
         [p.app_docker for p in r.pods]),
        ("app started -> Running seen (rest of the agent pass, database write, poll)",
         [p.running - p.app_started for p in r.pods]),
        (f"app started -> Running seen by the {FINE_POLL_S * 1000:.0f} ms poll",
         [p.running_fine - p.app_started for p in r.pods]),
        ("baseline: dockerd starting its container (Created -> StartedAt)",
         [b.docker for b in r.base]),
    ]  # fmt: skip
    for label, values in steps:
        lines.append(f"| {label} | {pct(values, 50):.3f} | {pct(values, 99):.3f} |")
    lines += [
        "",
        "By order of creation (more pods already on the machines later on):",
        "",
        "| pods | openccs p50 (s) | openccs max (s) | call -> pause created p50 (s) |"
        " baseline p50 (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    step = max(1, len(r.pods) // 5)
    for i in range(0, len(r.pods), step):
        chunk, bchunk = r.pods[i : i + step], base[i : i + step]
        lines.append(
            f"| {i + 1}-{i + len(chunk)} | {med([p.running for p in chunk]):.2f} |"
            f" {max(p.running for p in chunk):.2f} | {med([p.pause_created for p in chunk]):.2f}"
            f" | {med(bchunk):.2f} |"
        )
    return lines


def render_rolling(r: Rolling, waited: float | None, docker_run: float | None) -> list[str]:
    gaps = [b - a for a, b in zip(r.new_running, r.new_running[1:], strict=False)]
    baseline = []
    if docker_run is not None:
        ideal = r.replicas * docker_run
        baseline = [
            f"| baseline: {r.replicas} `docker run`s one after another (startup part's p50,"
            f" {docker_run:.2f} s, each) | {ideal:.1f} s |",
            f"| ratio (rollout done / baseline) | {r.complete / ideal:.2f}x |",
        ]
    return [
        "### Rolling update",
        "",
        f"A {r.replicas}-replica busybox httpd service (ClusterIP, no probes: ready ="
        " running; RollingUpdate, maxSurge 1, maxUnavailable 0) on a fresh 2-machine"
        " cluster; ModifyClusterService changes the text it serves; DescribeServiceInstance"
        f" and DescribeClusterServiceInfo sampled every {POLL_S * 1000:.0f} ms"
        f" ({r.samples} samples).",
        "",
        *cpu_lines(r.cpu, waited),
        "| figure | value |",
        "| --- | ---: |",
        f"| Modify to all {r.replicas} pods new and Running, service Normal (old ones may"
        f" still be Terminating: `kubectl rollout status` done) | {r.complete:.1f} s |",
        f"| Modify to only the {r.replicas} new pods listed, Running, service Normal (the"
        f" last old pod's grace period included) | {r.duration:.1f} s |",
        f"| Modify to the first new pod Running | {r.first_new_running:.1f} s |",
        f"| Modify to the last new pod Running |"
        f" {max(r.new_running, default=float('nan')):.1f} s |",
        f"| between one new pod Running and the next (median, max) | {med(gaps):.1f} s,"
        f" {max(gaps, default=float('nan')):.1f} s |",
        f"| an old pod Terminating until gone (median, max) | {med(r.terminating):.1f} s,"
        f" {max(r.terminating, default=float('nan')):.1f} s |",
        f"| Modify to the last old pod gone from the list | {r.last_old_gone:.1f} s |",
        f"| most pods at once (Terminating ones included) | {r.max_pods} |",
        f"| most pods at once not Terminating | {r.max_live} |",
        f"| fewest Running pods | {r.min_running} |",
        f"| pods answer afterwards | `{r.served}` |",
        *baseline,
    ]


def render_idle(r: Idle, waited: float | None) -> list[str]:
    cpu = r.cpu
    lines = [
        "### Idle cost",
        "",
        f"{r.running} pods Running (of {r.asked} asked; 4 services, busybox `sleep`, no"
        f" requests) on {r.machines} machines of 2 CPUs / 2 GiB (pods per machine:"
        f" {', '.join(map(str, r.per_node))}), all Running {r.to_running:.0f} s after the"
        " CreateClusterService calls." + (f" {r.note}." if r.note else "") + " Measured"
        f" over {cpu.seconds if cpu else 0:.0f} s of idling, nobody calling the API.",
        "",
        *cpu_lines(
            None,
            waited,
            f"Idle windows measured: {r.windows} (one more when other"
            f" processes used >= {IDLE_CORES:g} cores; the least disturbed is shown).",
        ),
        "| figure | value |",
        "| --- | ---: |",
    ]
    if cpu is not None:
        lines += [
            f"| openccs server CPU (utime+stime) | {cpu.server:.2f} cores"
            f" ({cpu.server * 100:.0f} % of one) |",
            f"| its helper processes (docker-registry; iptables, ip...) | {cpu.server_children:.2f}"
            " cores |",
            f"| the machines (dockerds, containerds, shims, containers) | {cpu.machines:.2f}"
            " cores |",
            f"| other processes on the host | {cpu.other:.2f} cores |",
        ]
    lines += [
        f"| openccs server RSS | {r.server_rss_mb:.0f} MB (peak {r.server_hwm_mb:.0f} MB;"
        f" {r.server_rss_before_mb:.0f} MB before this cluster) |",
    ]
    if r.probes:
        run = [p.running for p in r.probes]
        lines.append(
            f"| then {len(r.probes)} more single-pod services, one at a time: create to"
            f" Running (median, max) | {med(run):.2f} s, {max(run):.2f} s (call -> pause"
            f" created: {med([p.pause_created for p in r.probes]):.2f} s median) |"
        )
    lines += [
        "",
        "Machines (context): dockerd + containerd + shims are the processes of each machine's"
        " `system` cgroup; cgroup MB = the machine cgroup's memory.usage_in_bytes (containers"
        " and page cache included).",
        "",
        "| machine | processes | shims | RSS MB | PSS MB | CPU (cores) | cgroup MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, m in enumerate(r.per_machine, 1):
        lines.append(f"| {i} | {m.procs} | {m.shims} | {m.rss_mb:.0f} | {m.pss_mb:.0f} |"
                     f" {m.cpu:.2f} | {m.cgroup_mb:.0f} |")  # fmt: skip
    return lines


# -- main ----------------------------------------------------------------------------------


def cleanup(env: Env | None, errors: list[str]) -> None:
    """Delete the clusters a part left (after a failure), each on its own; never raises
    (the sweep at the end removes whatever is left)."""
    try:
        if env is None or env.server.proc is None or env.server.proc.poll() is not None:
            return
        for cluster in list(env.clusters):
            try:
                env.delete_cluster(cluster)
            except Exception as exc:
                errors.append(f"cleanup of {cluster}: {exc}"[:300])
                env.clusters.remove(cluster)
    except Exception as exc:
        errors.append(f"cleanup: {exc}"[:300])


def main(argv: Sequence[str] | None = None) -> int:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument(
        "--sizes",
        default="50,10,200",
        help="startup pods, rolling-update replicas, idle pods (default 50,10,200)",
    )
    p.add_argument("--parts", default="startup,rolling,readiness,idle")
    p.add_argument("--flips", type=int, default=10, help="readiness changes measured")
    p.add_argument("--pace", type=float, default=2.0, help="seconds between startup creates")
    p.add_argument("--startup-machines", type=int, default=2)
    p.add_argument("--idle-machines", type=int, default=4)
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--settle", type=float, default=15.0, help="seconds before the idle window")
    p.add_argument(
        "--probes",
        type=int,
        default=5,
        help="single-pod services started on the full idle cluster afterwards",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=1200.0,
        help="seconds each part may wait in all, before its measurements, for other"
        " processes to leave the host idle",
    )
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)  # fmt: skip
    n_start, n_roll, n_idle = (int(x) for x in args.sizes.split(","))
    parts = set(args.parts.split(","))
    started = datetime.datetime.now(datetime.UTC)
    commit = git_commit()  # the code the server runs (others may commit during the run)
    tmp = Path(tempfile.mkdtemp(prefix="openccs-bench-workloads-"))
    server = Server(data_dir=tmp / "data", db_url=None)
    startup: Startup | None = None
    rolling: Rolling | None = None
    readiness: Readiness | None = None
    idle: Idle | None = None
    errors: list[str] = []
    site, left = "", []
    env: Env | None = None
    try:
        server.start()
        assert server.proc is not None
        site = (server.data_dir / "site-id").read_text().strip()
        meter = CpuMeter(server.proc.pid, site)
        e = env = Env(server, server.client(), meter, budget=args.wait_idle)
        e.rss("at start")

        def run(name: str, fn: Callable[[], Any]) -> Any:
            if name not in parts:
                return None
            try:
                result = fn()
                e.rss(f"after {name}")
                return result
            except Exception as exc:
                traceback.print_exc()
                errors.append(f"{name}: {exc}"[:500])
                return None
            finally:
                cleanup(env, errors)

        startup = run("startup", lambda: part_startup(e, n_start, args.startup_machines,
                                                      args.pace))  # fmt: skip
        rolling = run("rolling", lambda: part_rolling(e, n_roll))
        readiness = run("readiness", lambda: part_readiness(e, args.flips))
        idle = run("idle", lambda: part_idle(e, n_idle, args.idle_machines, args.idle_seconds,
                                             args.settle, args.probes, args.pace))  # fmt: skip
    except Exception as exc:
        traceback.print_exc()
        errors.append(f"run: {exc}"[:500])
    finally:
        cleanup(env, errors)
        left = stop_and_sweep(server, site, errors, tmp)

    lines = [
        *intro(TITLE, "workloads.py", started, commit, argv),
        "- server: `python -m openccs.cli.main --data-dir TMPDIR serve --http 127.0.0.1:PORT"
        " --https 127.0.0.1:PORT --enable-test-actions --default-vpc-cidr CIDR` (SQLite; one"
        " process for the whole run, as tests/conftest.py starts it); through the API (HTTP,"
        " signed) with `openccs.client.Client`; each part on a fresh cluster, deleted after",
        "- afterwards (DeleteCluster, server stopped, `openccs sweep`): "
        + ("nothing of the run left in `ip netns list` or `pgrep -a dockerd`" if site and not left
           else f"LEFT BEHIND: {left}" if left else "not checked (no site)"),
        "",
    ]  # fmt: skip
    if errors:
        lines += ["Errors (those parts have no figures):", ""]
        lines += [*(f"- `{err}`" for err in errors), ""]
    target = ratio = "not measured | -"
    waits = env.waited if env is not None else {}
    docker_run = None
    if startup is not None and startup.pods:
        run_s, base_s = [x.running for x in startup.pods], [b.total for b in startup.base]
        p99 = pct(run_s, 99)
        target = f"{'PASS' if p99 <= TARGET_P99_S else 'FAIL'} | p99 {p99:.2f} s"
        r50, r99 = pct(run_s, 50) / pct(base_s, 50), p99 / pct(base_s, 99)
        ratio = (f"{'PASS' if max(r50, r99) <= TARGET_STARTUP_RATIO else 'FAIL'} |"
                 f" p50 {r50:.2f}x, p99 {r99:.2f}x")  # fmt: skip
        fine_s = [x.running_fine for x in startup.pods]
        f50, f99 = pct(fine_s, 50) / pct(base_s, 50), pct(fine_s, 99) / pct(base_s, 99)
        ratio += f"; {FINE_POLL_S * 1000:.0f} ms poll: p50 {f50:.2f}x, p99 {f99:.2f}x"
        docker_run = pct(base_s, 50)
        lines += [*render_startup(startup, waits.get("startup")), ""]
    if rolling is not None:
        lines += [*render_rolling(rolling, waits.get("rolling"), docker_run), ""]
    if readiness is not None:
        lines += [*render_readiness(readiness, waits.get("readiness")), ""]
    if idle is not None:
        lines += [*render_idle(idle, waits.get("idle")), ""]
    roll_ok = roll_time = ready_ok = "not measured | -"
    if rolling is not None:
        roll_ok = (f"{'PASS' if rolling.min_running >= rolling.replicas else 'FAIL'} |"
                   f" fewest {rolling.min_running}")  # fmt: skip
        roll_time = (f"{'PASS' if rolling.complete <= TARGET_ROLLING_S else 'FAIL'} |"
                     f" {rolling.complete:.1f} s to rollout done ({rolling.duration:.1f} s until"
                     " the last old pod's grace period ended)")  # fmt: skip
    if readiness is not None and readiness.flips:
        worst = max(s for _, s in readiness.flips)
        limit = readiness.period + TARGET_READY_SLACK_S
        ready_ok = f"{'PASS' if worst <= limit else 'FAIL'} | max {worst:.2f} s"
    if env is not None and env.rss_log:
        lines += [
            "openccs server RSS over the run: "
            + ", ".join(f"{mb:.0f} MB {when}" for when, mb in env.rss_log)
            + " (each part's clusters deleted before the next part).",
            "",
        ]
    lines += [
        "| target | result | figure |",
        "| --- | --- | --- |",
        f"| pod startup p99 <= {TARGET_P99_S:g} s (create to Running, image present) | {target} |",
        f"| pod startup p50 and p99 <= {TARGET_STARTUP_RATIO:g}x `docker run`'s | {ratio} |",
        f"| rolling update of {n_roll} replicas <= {TARGET_ROLLING_S:g} s (all new pods"
        f" Running, service Normal) | {roll_time} |",
        f"| rolling update never below {n_roll} Running pods | {roll_ok} |",
        f"| readiness change in the endpoints within one probe period ({PROBE_PERIOD_S} s)"
        f" + {TARGET_READY_SLACK_S * 1000:.0f} ms | {ready_ok} |",
    ]
    return publish(TITLE, lines, not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
