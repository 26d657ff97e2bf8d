"""Scale benchmark (issue 16): many pods on one cluster of several machines, through the API
as a user sees it, against the same cluster before it was filled.

On one `openccs serve` (SQLite) a cluster of `--machines` (10) machines (2 CPUs, 2 GiB each):

1. Empty cluster (the baseline of this run): `--new-pods` (3) single-pod services timed from
   CreateClusterService to Running, one at a time, then deleted (each split into openccs's
   part before the first container, dockerd's two containers, and the status write and
   poll; and followed, on the same machine, by the same pod's two containers straight on its
   dockerd in the node agent's order, and a `docker run -d`: dockerd's floor there); a
   `web` service of `--roll` (10) replicas (busybox httpd, RollingUpdate maxSurge 1 /
   maxUnavailable 0) rolled to a new text and timed as bench/workloads.py does; the
   machines' memory.
   Docker alone (the baseline of the fill): as many pods' containers as the fill makes (a
   pause container, then the app container in its network namespace), created and started
   straight on the machines' dockerds through the Engine API, `--alone-per-machine` pods
   at a time on each machine (the node agent's POD_STARTS by default), timed, the
   machines' memory measured, then removed.
2. Fill: `--pods` (1,000) pods of busybox `sleep` in `--services` (10) services over
   `--namespaces` (3) namespaces (default and more), all CreateClusterService calls made one
   after another, then DescribeServiceInstance polled until every pod is Running: the time
   from the first call.
3. Idle, nobody calling the API, after `--settle` s: the server's CPU over `--idle-seconds`
   (utime+stime of its process) and its RSS. With `--profile FILE`, then the same idle
   server sampled by py-spy (bench extra) for as long, its top functions printed.
4. Reads on the full cluster: DescribeClusterService (all namespaces) and
   DescribeServiceInstance (one service of pods/services pods) `--samples` (50) times each,
   one after another; `kubectl get pods -A` (a process per run, through the cluster's
   endpoint, `--kubectl` runs after one that fills kubectl's discovery cache).
5. On the full cluster: the same new pods and the same rolling update as in 1.
6. The machines' memory per pod: each machine cgroup's memory.usage_in_bytes and its
   dockerd + containerd + shims' RSS, full minus empty, over the pods.

`--parts` runs a subset (e.g. `alone,fill` for the fill against docker alone only).
The host is shared: the benchmark reports the CPU other processes used while it measured.
`--pods` and `--machines` set the scale (the whole run needs about 16 MB of host memory
per pod; the benchmark refuses a scale that would leave less than `--keep-free-gb` GiB
available). Everything it made is removed at the end, also on failure. Run as root:
`.venv/bin/python bench/scale.py --pods 300` (replaces its section of bench/RESULTS.md
unless `--no-write`). The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
import httpx
from common import afterwards, git_commit, intro, publish, stop_and_sweep
from workloads import (
    MB,
    Cpu,
    CpuMeter,
    Env,
    PodStart,
    Rolling,
    baseline_once,
    comm,
    measure_rolling,
    med,
    ok,
    pct,
    pss_kb,
    sleep_service,
    start_one,
    status_kb,
    wait_task,
)

from openccs.cloud import naming
from openccs.cloud.dockerapi import API_BASE
from openccs.engine.agent import PAUSE_IMAGE, POD_STARTS
from tests.conftest import Server
from tests.workload_helpers import BUSYBOX, Svc, create, web

TITLE = "## Scale: many pods on one cluster"
PARTS = ("empty", "alone", "fill", "idle", "reads", "loaded")
TARGET_RUNNING_S = 60.0  # 1,000 pods all Running from the create calls
TARGET_CPU = 0.1  # idle server, cores
TARGET_RSS_MB = 300.0
TARGET_API_P99_MS = 50.0
TARGET_KUBECTL_S = 1.0
TARGET_NEW_POD_S = 1.0
HOST_MB_PER_POD = 16.0  # what a pod costs the host, measured (shims, dockerd, containers)


@dataclass
class MachinesMem:
    cgroup_mb: float = 0.0  # sum of the machine cgroups' memory.usage_in_bytes
    system_rss_mb: float = 0.0  # dockerd, containerd, shims of every machine
    system_pss_mb: float = 0.0
    shims: int = 0


@dataclass
class PodAlone:
    """A pod's two containers made straight on the machine's dockerd, the agent's way."""

    seconds: float  # first create call sent -> the app container's start returned
    docker_run: float  # `docker run -d` of one container on the same machine, to running


@dataclass
class Phase:
    """What was measured on the cluster, empty or full."""

    new_pods: list[PodStart] = field(default_factory=list)
    # The same machine as each new pod, right after it: docker alone (the dockerd floor).
    alone: list[PodAlone] = field(default_factory=list)
    rolling: Rolling | None = None
    mem: MachinesMem | None = None


@dataclass
class Full:
    pods: int
    running: int = 0
    to_running: float = 0.0
    note: str = ""
    cpu: Cpu | None = None
    rss_mb: float = 0.0
    hwm_mb: float = 0.0
    list_ms: list[float] = field(default_factory=list)  # DescribeClusterService
    instances_ms: list[float] = field(default_factory=list)  # DescribeServiceInstance
    instances_rows: int = 0
    kubectl_s: list[float] = field(default_factory=list)
    per_node: list[int] = field(default_factory=list)
    poll_errors: list[str] = field(default_factory=list)  # DescribeServiceInstance failures
    mem: MachinesMem | None = None  # right after all pods were Running
    fill_cpu: Cpu | None = None  # from the first create call to all Running


def machines_mem(env: Env, cluster: str) -> MachinesMem:
    from openccs.cloud import cgroups

    site, out = env.site, MachinesMem()
    for ins in env.nodes[cluster].values():
        usage = cgroups.driver().path("memory", naming.cgroup(site, ins)) / "memory.usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            out.cgroup_mb += int(usage.read_text()) / MB
        for pid in cgroups.driver().pids_in(naming.cgroup_system(site, ins)):
            with contextlib.suppress(OSError):
                out.system_rss_mb += status_kb(pid, "VmRSS") / 1024
                out.system_pss_mb += pss_kb(pid) / 1024
                out.shims += comm(pid).startswith("containerd-shim")
    return out


@dataclass
class Alone:
    """The docker-alone baseline: as many pods' containers (a pause container, then the app
    container in its network namespace, as the node agent makes them), created and started
    straight on the machines' dockerds, `per_machine` pods at a time on each machine."""

    pods: int
    per_machine: int
    seconds: float = 0.0
    started: int = 0
    mem: MachinesMem | None = None  # the machines with these containers running
    errors: list[str] = field(default_factory=list)
    cpu: Cpu | None = None


def engine_api(sock: Path) -> httpx.Client:
    """A client of a machine's dockerd (Engine API over its socket), as the agent has."""
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(sock), verify=False),
                        base_url=API_BASE, timeout=120.0)  # fmt: skip


def engine_call(api: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
    r = api.request(method, path, **kw)
    if r.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:200]}")
    return r


ALONE_LABEL = "openccs.bench.alone"  # not the pods' label: the node agents leave them be


def pause_body(name: str) -> dict[str, Any]:
    """A pod's pause container as the node agent creates it (its network and DNS)."""
    return {"Image": PAUSE_IMAGE, "Hostname": name, "Labels": {ALONE_LABEL: "pause"},
            "HostConfig": {"NetworkMode": "bridge", "Dns": ["10.255.255.10"],
                           "DnsSearch": ["default.svc.cluster.local"], "DnsOptions": ["ndots:5"]},
            "StopSignal": "SIGKILL"}  # fmt: skip


def app_body(pause: str) -> dict[str, Any]:
    """A pod's app container (busybox `sleep`) in the network namespace of `pause`."""
    return {"Image": BUSYBOX, "Cmd": ["sleep", str(10**8)], "Labels": {ALONE_LABEL: "app"},
            "HostConfig": {"NetworkMode": f"container:{pause}"}}  # fmt: skip


def docker_alone(env: Env, cluster: str, pods: int, per_machine: int) -> Alone:
    """Create and start `pods` pods' containers directly against the machines' dockerds
    (Engine API over their sockets, one pooled client per machine, as the agent has),
    spread evenly as the scheduler spreads them, timed from the first call to the last
    start; then measure the machines' memory and remove everything."""
    out = Alone(pods, per_machine)
    socks = [env.sock(cluster, ip) for ip in sorted(env.nodes[cluster])]
    plan: list[list[int]] = [[] for _ in socks]
    for k in range(pods):
        plan[k % len(socks)].append(k)
    done: list[int] = []

    def one(api: httpx.Client, i: int, k: int) -> None:
        name = f"alone-{k}"
        pause = engine_call(api, "POST", "/containers/create", params={"name": f"{name}-pause"},
                            json=pause_body(name)).json()["Id"]  # fmt: skip
        engine_call(api, "POST", f"/containers/{pause}/start")
        app = engine_call(api, "POST", "/containers/create", params={"name": f"{name}-main"},
                          json=app_body(pause)).json()["Id"]  # fmt: skip
        engine_call(api, "POST", f"/containers/{app}/start")
        done.append(k)

    def machine(i: int) -> None:
        with engine_api(socks[i]) as api, ThreadPoolExecutor(per_machine) as pool:
            for f in [pool.submit(one, api, i, k) for k in plan[i]]:
                try:
                    f.result()
                except Exception as exc:
                    out.errors.append(str(exc)[:300])

    def clean(i: int) -> None:
        with engine_api(socks[i]) as api, ThreadPoolExecutor(per_machine) as pool:
            listed = engine_call(api, "GET", "/containers/json", params={
                "all": "1", "filters": json.dumps({"label": [ALONE_LABEL]})}).json()  # fmt: skip
            list(pool.map(lambda c: api.delete(f"/containers/{c['Id']}",
                                               params={"force": "1", "v": "1"}),
                          sorted(listed, key=lambda c: c["Labels"][ALONE_LABEL])))  # fmt: skip

    env.quiet("alone", 5)
    try:
        before, t0 = env.meter.snap(), time.perf_counter()
        with ThreadPoolExecutor(len(socks)) as machines:
            list(machines.map(machine, range(len(socks))))
        out.seconds, out.started = time.perf_counter() - t0, len(done)
        out.cpu = env.meter.since(before)
        out.mem = machines_mem(env, cluster)
    finally:
        with ThreadPoolExecutor(len(socks)) as machines:
            list(machines.map(clean, range(len(socks))))
    print(f"docker alone: {out.started} of {pods} pods ({2 * pods} containers) started in"
          f" {out.seconds:.1f} s, {per_machine} at a time per machine"
          f" ({len(out.errors)} errors); {out.cpu.line() if out.cpu else ''}",
          file=sys.stderr)  # fmt: skip
    return out


def pod_alone(sock: Path, name: str) -> float:
    """One pod's containers straight on a machine's dockerd in the node agent's order (pause
    and app created at once, pause started, then the app in its network namespace): the
    seconds from the first call until the app's start returned. Removed afterwards."""
    api = engine_api(sock)
    call = functools.partial(engine_call, api)
    create = functools.partial(call, "POST", "/containers/create")
    ids: list[str] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            t0 = time.perf_counter()
            pause_f = pool.submit(create, params={"name": f"{name}-pause"}, json=pause_body(name))
            app_f = pool.submit(create, params={"name": f"{name}-main"},
                                json=app_body(f"{name}-pause"))  # fmt: skip
            pause = pause_f.result().json()["Id"]
            ids.append(pause)
            call("POST", f"/containers/{pause}/start")
            app = app_f.result().json()["Id"]
            ids.append(app)
            call("POST", f"/containers/{app}/start")
            return time.perf_counter() - t0
    finally:
        for cid in reversed(ids):
            api.delete(f"/containers/{cid}", params={"force": "1", "v": "1"})
        api.close()


def new_pods(env: Env, cluster: str, n: int, tag: str) -> tuple[list[PodStart], list[PodAlone]]:
    """`n` single-pod services, one at a time, each timed to Running, then deleted; after
    each, on the same machine, a pod's containers and one `docker run` straight on its
    dockerd (what dockerd alone takes there)."""
    out, alone = [], []
    for i in range(n):
        env.quiet(tag, 3)
        name = f"{tag}{i}"
        timing, sock = start_one(env, cluster, name)
        out.append(timing)
        ok(env.c.call("DeleteClusterService", {"clusterId": cluster, "serviceName": name}),
           "DeleteClusterService")  # fmt: skip
        env.quiet(tag, 3)
        pod_s = pod_alone(sock, f"bench-alone-{tag}{i}")
        run_s = baseline_once(sock, f"bench-run-{tag}{i}").total
        alone.append(PodAlone(pod_s, run_s))
        print(f"  {tag}{i} docker alone on {timing.node}: a pod's containers {pod_s:.3f} s,"
              f" docker run {run_s:.3f} s", file=sys.stderr)  # fmt: skip
    return out, alone


def roll(env: Env, svc: Svc, replicas: int, text: str, tag: str) -> Rolling:
    env.quiet(tag, 5)
    r = measure_rolling(env, svc, replicas, text)
    print(f"{tag}: rollout done {r.complete:.1f} s, old pods gone {r.duration:.1f} s",
          file=sys.stderr)  # fmt: skip
    return r


def timed_ms(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def kubeconfig(env: Env, cluster: str, base: Path) -> dict[str, str]:
    """The environment for a kubectl reaching the cluster's endpoint."""
    res = ok(env.c.call("OperateClusterVip", {"clusterId": cluster, "operation": "Create"}), "vip")
    wait_task(env.c, res["requestId"])
    info = ok(env.c.call("DescribeClusterSecurityInfo", {"clusterId": cluster}), "security")
    ca = base64.b64encode(info["certificationAuthority"].encode()).decode()
    path = base / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": info["clusterExternalEndpoint"],
                                               "certificate-authority-data": ca}}],
        "users": [{"name": "u", "user": {"token": info["password"]}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))  # fmt: skip
    return {**os.environ, "HOME": str(base), "KUBECONFIG": str(path)}


def fill(env: Env, cluster: str, args: argparse.Namespace) -> tuple[Full, list[Svc]]:
    out = Full(args.pods)
    namespaces = ["default"] + [f"team{i}" for i in range(1, args.namespaces)]
    for ns in namespaces[1:]:
        ok(env.c.call("CreateClusterNamespace", {"clusterId": cluster, "name": ns,
                                                 "description": ""}), "namespace")  # fmt: skip
    sizes = [args.pods // args.services + (i < args.pods % args.services)
             for i in range(args.services)]  # fmt: skip
    env.quiet("fill", 5)
    before, t0 = env.meter.snap(), time.perf_counter()
    svcs = [create(env.c, cluster, sleep_service(f"fill{i}", k, 10**8),
                   namespace=namespaces[i % len(namespaces)])
            for i, k in enumerate(sizes)]  # fmt: skip
    deadline, stalled_since, best, running = t0 + 1800, time.perf_counter(), -1, 0
    while True:
        try:
            running = sum(len(s.running()) for s in svcs)
        except AssertionError as exc:  # an API error: counted and reported, polled again
            out.poll_errors.append(str(exc)[:200])
            time.sleep(0.5)
            continue
        if running > best:
            best, stalled_since = running, time.perf_counter()
        if running == args.pods:
            out.to_running = time.perf_counter() - t0
            break
        if time.perf_counter() > deadline or time.perf_counter() - stalled_since > 180:
            out.to_running = time.perf_counter() - t0
            reasons = {x["reason"] for s in svcs for x in s.pods() if x["status"] != "Running"}
            out.note = f"only {running} of {args.pods} pods Running (others: {sorted(reasons)})"
            break
        time.sleep(0.5)
    out.running, out.fill_cpu = running, env.meter.since(before)
    nodes: dict[str, int] = {}
    for svc in svcs:
        for pod in svc.pods():
            nodes[pod["nodeIp"]] = nodes.get(pod["nodeIp"], 0) + 1
    out.per_node = sorted(nodes.values(), reverse=True)
    out.mem = machines_mem(env, cluster)
    server_s = out.fill_cpu.server * out.fill_cpu.seconds
    print(f"fill: {running} pods Running after {out.to_running:.1f} s ({out.per_node});"
          f" {out.fill_cpu.line()}; openccs server CPU {server_s:.2f} s,"
          f" {1000 * server_s / max(1, running):.1f} ms a pod", file=sys.stderr)  # fmt: skip
    return out, svcs


def idle(env: Env, full: Full, seconds: float, settle: float) -> None:
    assert env.server.proc is not None
    pid = env.server.proc.pid
    time.sleep(settle)
    for _ in range(3):  # a window disturbed by other processes is measured again
        env.quiet("idle", 5)
        before = env.meter.snap()
        time.sleep(seconds)
        cpu = env.meter.since(before)
        if full.cpu is None or cpu.other < full.cpu.other:
            full.cpu = cpu
        print(f"idle window: {cpu.line()}", file=sys.stderr)
        if cpu.other < 0.3:
            break
    full.rss_mb = status_kb(pid, "VmRSS") / 1024
    full.hwm_mb = status_kb(pid, "VmHWM") / 1024


def profile(env: Env, out: Path, seconds: float) -> None:
    """Sample the idle server's stacks (py-spy, not blocking it) into `out` (collapsed
    stacks, one line per stack with its count) and print where its time goes: the
    functions seen most at the top of a stack (self) and anywhere in it (inclusive)."""
    assert env.server.proc is not None
    spy = Path(sys.executable).parent / "py-spy"
    subprocess.run([str(spy) if spy.exists() else "py-spy", "record", "--nonblocking",
                    "-r", "50", "-d", str(int(seconds)), "-f", "raw", "-o", str(out),
                    "-p", str(env.server.proc.pid)],
                   check=True, capture_output=True, timeout=seconds + 60)  # fmt: skip
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, frames = int(count), stack.split(";")
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    print(f"profile of the idle server: {total} samples in {seconds:.0f} s at 50 Hz"
          f" ({total / 50 / seconds:.3f} threads busy on average), {out}",
          file=sys.stderr)  # fmt: skip
    for title, table in (("self", own), ("inclusive", inclusive)):
        print(f"  top {title}:", file=sys.stderr)
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:25]:
            print(f"    {100 * n / max(1, total):5.1f} %  {frame}", file=sys.stderr)


def reads(env: Env, cluster: str, full: Full, svcs: list[Svc], args: argparse.Namespace,
          base: Path) -> None:  # fmt: skip
    env.quiet("reads", 3)
    listed = {"clusterId": cluster, "allnamespace": 1}
    full.list_ms = timed_ms(lambda: ok(env.c.call("DescribeClusterService", listed), "list"),
                            args.samples)  # fmt: skip
    svc = svcs[0]
    full.instances_rows = len(svc.pods())
    full.instances_ms = timed_ms(svc.pods, args.samples)
    kenv = kubeconfig(env, cluster, base)
    for i in range(args.kubectl + 1):
        t0 = time.perf_counter()
        r = subprocess.run(["kubectl", "get", "pods", "-A"], capture_output=True, text=True,
                           env=kenv, timeout=120, check=False)  # fmt: skip
        took = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"kubectl: {r.stderr[-500:]}")
        if i:  # the first run fills kubectl's discovery cache
            full.kubectl_s.append(took)


def per_pod(
    empty: MachinesMem | None, after: MachinesMem | None, pods: int
) -> tuple[float, float, float]:
    if empty is None or after is None or not pods:
        return float("nan"), float("nan"), float("nan")
    return ((after.cgroup_mb - empty.cgroup_mb) / pods,
            (after.system_rss_mb - empty.system_rss_mb) / pods,
            (after.system_pss_mb - empty.system_pss_mb) / pods)  # fmt: skip


def render(args: argparse.Namespace, empty: Phase, full: Full | None, loaded: Phase,
           cpu_other: list[float]) -> list[str]:  # fmt: skip
    def starts(p: Phase) -> str:
        run = [x.running for x in p.new_pods]
        return f"{med(run):.2f} s, {max(run):.2f} s" if run else "-"

    def part(p: Phase, which: str) -> str:
        if not p.new_pods:
            return "-"
        got = {"pause_created": [x.pause_created for x in p.new_pods],
               "docker": [x.app_started - x.pause_created for x in p.new_pods],
               "after": [x.running - x.app_started for x in p.new_pods]}[which]  # fmt: skip
        return f"{med(got):.2f} s"

    def alone(p: Phase, attr: str) -> str:
        got = [getattr(x, attr) for x in p.alone]
        return f"{med(got):.2f} s, {max(got):.2f} s" if got else "-"

    def rolled(p: Phase, attr: str) -> str:
        return f"{getattr(p.rolling, attr):.1f} s" if p.rolling else "-"

    lines = [
        "| figure | empty cluster (baseline) | full cluster |",
        "| --- | ---: | ---: |",
        f"| a new single-pod service: create to Running (median, max of {args.new_pods}) |"
        f" {starts(empty)} | {starts(loaded)} |",
        f"| its parts (medians): call -> pause container created (openccs) |"
        f" {part(empty, 'pause_created')} | {part(loaded, 'pause_created')} |",
        f"| pause created -> app started (dockerd: two containers) |"
        f" {part(empty, 'docker')} | {part(loaded, 'docker')} |",
        f"| app started -> Running seen by the 50 ms poll (openccs's write, the poll) |"
        f" {part(empty, 'after')} | {part(loaded, 'after')} |",
        f"| docker alone on the same machine right after: a pod's two containers, the agent's"
        f" order (median, max) | {alone(empty, 'seconds')} | {alone(loaded, 'seconds')} |",
        f"| docker alone on the same machine: `docker run -d` to running (median, max) |"
        f" {alone(empty, 'docker_run')} | {alone(loaded, 'docker_run')} |",
        f"| rolling update of {args.roll} replicas: rollout done (all new Running, Normal) |"
        f" {rolled(empty, 'complete')} | {rolled(loaded, 'complete')} |",
        f"| same, until the old pods are gone (their 5 s grace period: httpd under `sh`"
        f" ignores SIGTERM) | {rolled(empty, 'duration')} | {rolled(loaded, 'duration')} |",
        f"| same: between one new pod Running and the next (median) |"
        f" {_gap(empty.rolling)} | {_gap(loaded.rolling)} |",
        f"| same: fewest Running pods | {empty.rolling.min_running if empty.rolling else '-'} |"
        f" {loaded.rolling.min_running if loaded.rolling else '-'} |",
        "",
    ]
    if empty.rolling is None and not empty.new_pods:  # the empty cluster's part not run
        lines = []
    if full is None:
        return lines
    cg, rss, pss = per_pod(empty.mem, loaded.mem, full.running)
    cpu = full.cpu
    lines += [
        "| figure (full cluster) | value |",
        "| --- | ---: |",
        f"| {full.pods} pods ({args.services} services, {args.namespaces} namespaces):"
        f" first CreateClusterService to all Running | {full.to_running:.1f} s"
        + (f" ({full.note})" if full.note else "")
        + " |",
        f"| pods per machine | {', '.join(map(str, full.per_node))} |",
        f"| DescribeServiceInstance calls that failed while the pods started |"
        f" {len(full.poll_errors)}"
        + (f" (`{full.poll_errors[0]}`)" if full.poll_errors else "")
        + " |",
    ]
    if cpu is not None:
        lines += [
            f"| idle: openccs server CPU over {cpu.seconds:.0f} s | {cpu.server:.3f} cores"
            f" (+ {cpu.server_children:.3f} in its helper processes) |",
            f"| idle: the machines' CPU (dockerds, containerds, shims, containers) |"
            f" {cpu.machines:.2f} cores |",
            f"| idle: other processes on the host meanwhile | {cpu.other:.2f} cores |",
        ]
    if full.rss_mb:
        lines.append(
            f"| idle: openccs server RSS | {full.rss_mb:.0f} MB (peak {full.hwm_mb:.0f} MB) |"
        )
    if full.list_ms:
        lines += [
            f"| DescribeClusterService, all namespaces (p50 / p99 of"
            f" {len(full.list_ms)}) | {_ms(full.list_ms)} |",
            f"| DescribeServiceInstance of a {full.instances_rows}-pod service (p50 / p99 of"
            f" {len(full.instances_ms)}) | {_ms(full.instances_ms)} |",
            f"| `kubectl get pods -A` ({full.running} rows; p50 / max of"
            f" {len(full.kubectl_s)}) | {_s(full.kubectl_s)} |",
        ]
    lines += [
        f"| machines' memory per pod: machine cgroups (containers, shims' page cache...) |"
        f" {cg:.1f} MB |",
        f"| machines' memory per pod: dockerd + containerd + shims, RSS (shared pages counted"
        f" in each) / PSS | {rss:.1f} MB / {pss:.1f} MB |",
    ]
    if empty.mem and loaded.mem:
        lines.append(
            f"| containerd shims on the machines, empty / full | {empty.mem.shims} /"
            f" {loaded.mem.shims} |"
        )
    lines.append("")
    if cpu_other:
        lines.append(
            f"Other processes used {min(cpu_other):.2f} to {max(cpu_other):.2f} cores"
            " (of 2) during the measured parts."
        )
        lines.append("")
    return lines


def render_alone(alone: list[Alone], empty: Phase, full: Full | None) -> list[str]:
    """The docker-alone baseline beside openccs's fill, and the memory per pod of each."""
    if not alone:
        return []
    lines = [
        "Docker alone (the baseline of the fill, same run, same machines, before the fill):"
        " each pod's pause container created and started, then its app container (busybox"
        " `sleep`, in the pause container's network namespace), straight on the machines'"
        " dockerds through the Engine API, pods spread evenly, a few pods at a time per"
        " machine; the containers were removed before the fill.",
        "",
        "| way | pods (containers) | pods at once per machine | first call to all started |"
        " per pod | machines' memory per pod (cgroups / dockerd+containerd+shims PSS) |"
        " CPU meanwhile: openccs server / the machines / this benchmark / other processes"
        " (cores of 2) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for a in alone:
        cg, _, pss = per_pod(empty.mem, a.mem, a.started)
        lines.append(
            f"| docker alone | {a.started} of {a.pods} ({2 * a.started}) | {a.per_machine} |"
            f" {a.seconds:.1f} s | {a.seconds / max(1, a.started) * 1000:.0f} ms |"
            f" {cg:.1f} MB / {pss:.1f} MB | {_cores(a.cpu)} |"
            + (f" errors: {len(a.errors)} (`{a.errors[0][:120]}`)" if a.errors else "")
        )
    if full is not None:
        cg, _, pss = per_pod(empty.mem, full.mem, full.running)
        each = full.to_running / max(1, full.running) * 1000
        lines.append(
            f"| openccs (CreateClusterService calls to all Running) | {full.running} of"
            f" {full.pods} ({2 * full.running}) | {POD_STARTS} | {full.to_running:.1f} s |"
            f" {each:.0f} ms | {cg:.1f} MB / {pss:.1f} MB | {_cores(full.fill_cpu)} |"
        )
        same = [a for a in alone if a.per_machine == POD_STARTS and a.started]
        best = min((a for a in alone if a.started), key=lambda a: a.seconds, default=None)
        lines.append("")
        if same:
            lines.append(f"Ratio openccs / docker alone at the same concurrency:"
                         f" {full.to_running / same[0].seconds:.2f}x.")  # fmt: skip
        if best is not None:
            lines.append(f"Ratio openccs / the fastest docker-alone run ({best.per_machine} at"
                         f" once): {full.to_running / best.seconds:.2f}x.")  # fmt: skip
    lines.append("")
    return lines


def _cores(c: Cpu | None) -> str:
    if c is None:
        return "-"
    return f"{c.server:.2f} / {c.machines:.2f} / {c.bench:.2f} / {c.other:.2f}"


def _gap(r: Rolling | None) -> str:
    if r is None or len(r.new_running) < 2:
        return "-"
    gaps = [b - a for a, b in zip(r.new_running, r.new_running[1:], strict=False)]
    return f"{med(gaps):.2f} s"


def _ms(values: Sequence[float]) -> str:
    return f"{pct(values, 50):.0f} / {pct(values, 99):.0f} ms" if values else "-"


def _s(values: Sequence[float]) -> str:
    return f"{pct(values, 50):.2f} / {max(values):.2f} s" if values else "-"


def targets(args: argparse.Namespace, empty: Phase, full: Full | None, loaded: Phase) -> list[str]:
    def row(what: str, good: bool | None, figure: str) -> str:
        verdict = "not measured" if good is None else "PASS" if good else "FAIL"
        return f"| {what} | {verdict} | {figure} |"

    rows = ["| target | result | figure |", "| --- | --- | --- |"]
    if full is not None:
        scaled = "" if full.pods >= 1000 else f" (at {full.pods} pods, not 1,000)"
        rows.append(row(f"all Running <= {TARGET_RUNNING_S:g} s from the create calls{scaled}",
                        full.running == full.pods and full.to_running <= TARGET_RUNNING_S,
                        f"{full.to_running:.1f} s"))  # fmt: skip
        if full.cpu is not None:
            rows.append(row(f"idle server <= {TARGET_CPU:g} core", full.cpu.server <= TARGET_CPU,
                            f"{full.cpu.server:.3f}"))  # fmt: skip
        if full.rss_mb:
            rows.append(row(f"idle server RSS <= {TARGET_RSS_MB:g} MB",
                            full.rss_mb <= TARGET_RSS_MB, f"{full.rss_mb:.0f} MB"))  # fmt: skip
        for what, vals in (("DescribeClusterService", full.list_ms),
                           ("DescribeServiceInstance", full.instances_ms)):  # fmt: skip
            if vals:
                p99 = pct(vals, 99)
                rows.append(row(f"{what} p99 <= {TARGET_API_P99_MS:g} ms",
                                p99 <= TARGET_API_P99_MS, f"{p99:.0f} ms"))  # fmt: skip
        if full.kubectl_s:
            worst = max(full.kubectl_s)
            rows.append(row(f"`kubectl get pods -A` <= {TARGET_KUBECTL_S:g} s",
                            worst <= TARGET_KUBECTL_S, f"max {worst:.2f} s"))  # fmt: skip
    if loaded.new_pods:
        worst = max(p.running for p in loaded.new_pods)
        rows.append(row(f"a new pod on the full cluster Running <= {TARGET_NEW_POD_S:g} s",
                        worst <= TARGET_NEW_POD_S, f"max {worst:.2f} s"))  # fmt: skip
    if empty.rolling and loaded.rolling:
        a, b = empty.rolling.complete, loaded.rolling.complete
        rows.append(row("rolling update on the full cluster as fast as on the empty one"
                        " (within 20 %)", b <= a * 1.2, f"{b:.1f} s vs {a:.1f} s"))  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--pods", type=int, default=1000)
    p.add_argument("--machines", type=int, default=10)
    p.add_argument("--services", type=int, default=10)
    p.add_argument("--namespaces", type=int, default=3)
    p.add_argument("--roll", type=int, default=10, help="replicas of the rolled service")
    p.add_argument("--new-pods", type=int, default=3)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--kubectl", type=int, default=5)
    p.add_argument("--idle-seconds", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=15.0)
    p.add_argument("--keep-free-gb", type=float, default=6.0)
    p.add_argument("--wait-idle", type=float, default=300.0,
                   help="seconds each part may wait in all for other processes to leave the"
                   " host idle")  # fmt: skip
    p.add_argument("--alone-per-machine", default=str(POD_STARTS),
                   help="comma-separated pod starts at once per machine for the docker-alone"
                   f" baseline (the node agent's: {POD_STARTS})")  # fmt: skip
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"what to run, of {','.join(PARTS)} (loaded needs empty; idle, reads and"
                   " loaded need fill)")  # fmt: skip
    p.add_argument("--profile", metavar="FILE", default="",
                   help="after the idle window, sample the idle server with py-spy for"
                        " --idle-seconds into FILE (collapsed stacks) and print its top"
                        " functions")  # fmt: skip
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        p.error(f"unknown parts: {sorted(parts - set(PARTS))}")
    available_gb = int(
        next(x for x in Path("/proc/meminfo").read_text().splitlines()
             if x.startswith("MemAvailable:")).split()[1]
    ) / 1024 / 1024  # fmt: skip
    need_gb = (args.pods + args.roll) * HOST_MB_PER_POD / 1024
    if available_gb - need_gb < args.keep_free_gb:
        print(f"{args.pods} pods need about {need_gb:.1f} GiB; {available_gb:.1f} GiB available"
              f" would leave less than {args.keep_free_gb:g} GiB: choose fewer --pods",
              file=sys.stderr)  # fmt: skip
        return 2
    started = datetime.datetime.now(datetime.UTC)
    commit = git_commit()
    tmp = Path(tempfile.mkdtemp(prefix="openccs-bench-scale-"))
    server = Server(data_dir=tmp / "data", db_url=None)
    empty, loaded, full = Phase(), Phase(), None
    alone: list[Alone] = []
    errors: list[str] = []
    cpu_other: list[float] = []
    site, left = "", []
    env: Env | None = None
    try:
        server.start(timeout=180)  # a loaded host imports slowly
        assert server.proc is not None
        site = (server.data_dir / "site-id").read_text().strip()
        env = Env(server, server.client(), CpuMeter(server.proc.pid, site), budget=args.wait_idle)
        t0 = time.perf_counter()
        cluster = env.new_cluster(args.machines)
        print(f"cluster of {args.machines} machines in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)  # fmt: skip
        web_svc = None
        if "empty" in parts:
            web_svc = create(env.c, cluster, web("roll", replicas=args.roll, text="v1"))
            web_svc.wait_normal(args.roll, timeout=300)
        empty.mem = machines_mem(env, cluster)
        if web_svc is not None:
            empty.new_pods, empty.alone = new_pods(env, cluster, args.new_pods, "empty")
            empty.rolling = roll(env, web_svc, args.roll, "v2", "empty")
            cpu_other += [x.other for x in empty.new_pods]
        if "alone" in parts:
            for per_machine in map(int, args.alone_per_machine.split(",")):
                alone.append(docker_alone(env, cluster, args.pods, per_machine))
        if "fill" in parts:
            full, svcs = fill(env, cluster, args)
            if "idle" in parts:
                idle(env, full, args.idle_seconds, args.settle)
                if args.profile:
                    profile(env, Path(args.profile), args.idle_seconds)
                if full.cpu is not None:
                    cpu_other.append(full.cpu.other)
            loaded.mem = machines_mem(env, cluster)
            if "reads" in parts:
                reads(env, cluster, full, svcs, args, tmp)
            if "loaded" in parts and web_svc is not None:
                loaded.new_pods, loaded.alone = new_pods(env, cluster, args.new_pods, "full")
                cpu_other += [x.other for x in loaded.new_pods]
                loaded.rolling = roll(env, web_svc, args.roll, "v3", "full")
        for r in (empty.rolling, loaded.rolling):
            if r is not None and r.cpu is not None:
                cpu_other.append(r.cpu.other)
    except Exception as exc:
        traceback.print_exc()
        errors.append(f"{exc}"[:500])
    finally:
        if env is not None and server.proc is not None and server.proc.poll() is None:
            for cluster_id in list(env.clusters):
                try:
                    env.delete_cluster(cluster_id)
                except Exception as exc:
                    errors.append(f"cleanup of {cluster_id}: {exc}"[:300])
        left = stop_and_sweep(server, site, errors, tmp)

    lines = [
        *intro(
            TITLE,
            "scale.py",
            started,
            commit,
            argv,
            f"; memory available before the run: {available_gb:.1f} GiB",
        ),
        f"- one cluster of {args.machines} machines (2 CPUs, 2 GiB each); the baseline is the"
        " same cluster before it was filled, measured in the same run",
        afterwards(site, left),
        "",
    ]
    if errors:
        lines += ["Errors (what follows them was not measured):", ""]
        lines += [*(f"- `{err}`" for err in errors), ""]
    lines += render(args, empty, full, loaded, cpu_other)
    lines += render_alone(alone, empty, full)
    lines += targets(args, empty, full, loaded)
    return publish(TITLE, lines, not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
