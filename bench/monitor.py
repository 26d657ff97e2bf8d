"""Monitor benchmark (issue 7): what sampling costs openccs, with `--pods` (200) busybox
`sleep` pods (4 services) on `--machines` (4) machines of 2 CPUs / 2 GiB, sampled every
`--interval` (10) seconds, on one `openccs serve` (SQLite).

Once every pod is Running and after a settle time, two windows of `--seconds` (120) each:

* sampler on: the server runs with `--sample-interval INTERVAL`; the sampler thread's own
  CPU time (its `openccs_monitor_sampler_cpu_seconds_total` on `/metrics`, from
  `time.thread_time`) and passes, the wall time of a pass, and the whole server process's
  CPU (utime+stime from /proc/PID/stat); the rows and bytes the database grew by;
* baseline: the same server restarted (the machines and pods keep running) with
  `--sample-interval 0`, its process CPU over the same window.

Target: the sampler under 10 % of one core. The host has 2 cores shared with whatever else
runs (test suites): before each window the benchmark waits (at most `--wait-idle` s) until
other processes use under 0.3 cores, and reports what they used.

Everything (the cluster, server, host objects via `openccs sweep`) is removed at the end,
also on failure. Run as root: `.venv/bin/python bench/monitor.py` (replaces its section of
bench/RESULTS.md unless `--no-write`); `--pods 20 --machines 1 --seconds 40` is a quick run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import REPO, git_commit, machine_facts, update_results
from workloads import CpuMeter, ok, sleep_service, wait_task

from openccs.client import Client
from tests.conftest import Server
from tests.workload_helpers import Svc, create, make_cluster

TITLE = "## Monitor: sampler cost"
TARGET_CORES = 0.10
IDLE_CORES = 0.3


@dataclass
class Window:
    seconds: float = 0.0
    server_cores: float = 0.0
    other_cores: float = 0.0
    machines_cores: float = 0.0
    sampler_cpu: float = 0.0  # seconds of the sampler thread
    passes: int = 0
    pass_wall_ms: list[float] = field(default_factory=list)
    objects: int = 0
    db_rows: int = 0
    db_bytes: int = 0

    @property
    def sampler_cores(self) -> float:
        return self.sampler_cpu / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    pods: int
    machines: int
    interval: float
    running: int = 0
    to_running: float = 0.0
    on: Window | None = None
    off: Window | None = None
    waited: float = 0.0
    note: str = ""


def scrape(url: str, token: str) -> dict[str, float]:
    text = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("openccs_monitor_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def db_size(data_dir: Path) -> tuple[int, int]:
    """(monitor rows, bytes the database's pages hold, WAL included, free pages not)."""
    with sqlite3.connect(data_dir / "openccs.db", timeout=30) as conn:
        rows = sum(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("monitor_rollups", "monitor_samples")
        )
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return rows, (pages - free) * size


def wait_idle(meter: CpuMeter, limit: float) -> float:
    return meter.wait_idle(limit, 5.0)


def measure(
    server: Server, meter: CpuMeter, token: str, seconds: float, sampling: bool, every: float
) -> Window:
    """One window; while sampling, `/metrics` is scraped once per `every` s (as Prometheus
    would), which also gives each pass's wall time."""
    assert server.proc is not None
    url = f"{server.http_url}/metrics"
    w = Window()
    m0 = scrape(url, token) if sampling else {}
    rows0, bytes0 = db_size(server.data_dir)
    before = meter.snap()
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        time.sleep(min(every, max(0.0, t_end - time.monotonic())))
        if sampling:
            ms = scrape(url, token).get("openccs_monitor_sampler_last_pass_seconds", 0) * 1000
            if not w.pass_wall_ms or ms != w.pass_wall_ms[-1]:
                w.pass_wall_ms.append(ms)
    cpu = meter.since(before)
    w.seconds = cpu.seconds
    w.server_cores = cpu.server
    w.machines_cores = cpu.machines
    w.other_cores = cpu.other
    if sampling:
        m1 = scrape(url, token)
        w.sampler_cpu = (
            m1["openccs_monitor_sampler_cpu_seconds_total"]
            - m0["openccs_monitor_sampler_cpu_seconds_total"]
        )
        w.passes = int(
            m1["openccs_monitor_sampler_passes_total"] - m0["openccs_monitor_sampler_passes_total"]
        )
        w.objects = int(m1["openccs_monitor_objects"])
    rows1, bytes1 = db_size(server.data_dir)
    w.db_rows, w.db_bytes = rows1 - rows0, bytes1 - bytes0
    return w


def start_pods(c: Client, cluster: str, n: int) -> tuple[int, float]:
    services = 4 if n >= 4 else 1
    sizes = [n // services + (1 if i < n % services else 0) for i in range(services)]
    t0 = time.perf_counter()
    svcs: list[Svc] = [
        create(c, cluster, sleep_service(f"mon{i}", k, 10**8)) for i, k in enumerate(sizes)
    ]
    best, stalled = -1, time.perf_counter()
    while True:
        running = sum(len(s.running()) for s in svcs)
        if running > best:
            best, stalled = running, time.perf_counter()
        if running == n or time.perf_counter() - stalled > 180:
            return running, time.perf_counter() - t0
        time.sleep(2)


def run(args: argparse.Namespace) -> Result:
    out = Result(args.pods, args.machines, args.interval)
    tmp = Path(tempfile.mkdtemp(prefix="openccs-bench-monitor-"))
    server = Server(data_dir=tmp / "data", db_url=None,
                    extra_args=("--sample-interval", str(args.interval)))  # fmt: skip
    cluster = ""
    try:
        server.start()
        assert server.proc is not None
        c = server.client()
        cluster = make_cluster(server, args.machines)
        out.running, out.to_running = start_pods(c, cluster, args.pods)
        if out.running < args.pods:
            out.note = f"only {out.running} of {args.pods} pods Running"
        print(f"monitor: {out.running} pods Running after {out.to_running:.0f} s", file=sys.stderr)
        token = (
            server.cli("metrics-token", "create", "--note", "bench").stdout.split('"token": "')[1]
        ).split('"')[0]
        site = (server.data_dir / "site-id").read_text().strip()
        time.sleep(args.settle)
        meter = CpuMeter(server.proc.pid, site)
        out.waited += wait_idle(meter, args.wait_idle)
        out.on = measure(server, meter, token, args.seconds, True, args.interval)
        print(f"sampler on: {out.on}", file=sys.stderr)
        # The baseline: the same server and pods, nothing sampled.
        server.stop(timeout=60)
        server.extra_args = ("--sample-interval", "0")
        server.start()
        assert server.proc is not None
        meter = CpuMeter(server.proc.pid, site)
        time.sleep(args.settle)
        out.waited += wait_idle(meter, args.wait_idle)
        out.off = measure(server, meter, token, args.seconds, False, args.interval)
        print(f"sampler off: {out.off}", file=sys.stderr)
    finally:
        try:
            if cluster and server.proc is not None and server.proc.poll() is None:
                c = server.client()
                res = ok(c.call("DeleteCluster", {"clusterId": cluster}), "DeleteCluster")
                wait_task(c, res["requestId"])
        except Exception:
            traceback.print_exc()
        if server.proc is not None:
            server.stop(timeout=60)
        subprocess.run([sys.executable, "-m", "openccs.cli.main", "--data-dir",
                        str(server.data_dir), "sweep"], capture_output=True, check=False,
                       cwd=REPO)  # fmt: skip
    return out


def render(r: Result, argv: Sequence[str], started: datetime.datetime, commit: str) -> str:
    facts = machine_facts()
    lines = [
        TITLE,
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; commit {commit}",
        "- machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
        f"- command: `{' '.join(['.venv/bin/python', 'bench/monitor.py', *argv])}`",
        "",
        f"{r.running} pods Running (of {r.pods} asked; 4 services, busybox `sleep`) on"
        f" {r.machines} machines of 2 CPUs / 2 GiB, {r.to_running:.0f} s after the"
        f" CreateClusterService calls; sampled every {r.interval:g} s. {r.note}".rstrip(),
        f"Before the windows the benchmark waited {r.waited:.0f} s in all for other processes"
        f" to leave the host idle (< {IDLE_CORES} cores).",
        "",
    ]
    if r.on is None or r.off is None:
        return "\n".join([*lines, "The run did not finish: no figures.", ""])
    on, off = r.on, r.off
    per_pass = on.sampler_cpu / on.passes if on.passes else float("nan")
    at_interval = per_pass / r.interval
    per_pod_ms = per_pass / max(1, r.running) * 1000
    walls = sorted(on.pass_wall_ms) or [float("nan")]
    ratio = on.server_cores / off.server_cores if off.server_cores else float("nan")
    hour_rows = on.db_rows / on.seconds * 3600
    hour_mb = on.db_bytes / on.seconds * 3600 / 1e6
    lines += [
        "| figure | sampler on | baseline (sampler off) |",
        "| --- | ---: | ---: |",
        f"| window | {on.seconds:.0f} s | {off.seconds:.0f} s |",
        f"| openccs server CPU (utime+stime; with a /metrics scrape per pass) |"
        f" {on.server_cores:.3f} cores |"
        f" {off.server_cores:.3f} cores |",
        f"| of which the sampler thread | {on.sampler_cores:.3f} cores | - |",
        f"| machines (dockerds, containers) | {on.machines_cores:.3f} cores |"
        f" {off.machines_cores:.3f} cores |",
        f"| other processes on the host | {on.other_cores:.2f} cores |"
        f" {off.other_cores:.2f} cores |",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| sampling passes in the window | {on.passes} |",
        f"| objects per pass (nodes, clusters, services, pods, containers) | {on.objects} |",
        f"| sampler CPU per pass | {per_pass * 1000:.1f} ms ({per_pod_ms:.3f} ms per pod) |",
        f"| pass wall time (median, max) | {walls[len(walls) // 2]:.0f} ms, {walls[-1]:.0f} ms |",
        f"| server CPU, on minus off | {on.server_cores - off.server_cores:+.3f} cores"
        f" (ratio on/off {ratio:.2f}) |",
        f"| database growth while sampling | {hour_rows:,.0f} rows/h (a rollup counts once"
        f" per bucket), {hour_mb:.1f} MB/h of pages (before retention) |",
        "",
        "| target | result | figure |",
        "| --- | --- | --- |",
        f"| sampler under {TARGET_CORES * 100:.0f} % of one core at {r.interval:g} s |"
        f" {'PASS' if at_interval < TARGET_CORES else 'FAIL'} |"
        f" {at_interval * 100:.2f} % (sampler thread CPU per pass / interval) |",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--pods", type=int, default=200)
    p.add_argument("--machines", type=int, default=4)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=120.0, help="each window")
    p.add_argument("--settle", type=float, default=20.0)
    p.add_argument("--wait-idle", type=float, default=300.0)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root (machines are network namespaces and cgroups)", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    commit = git_commit()
    result = run(args)
    shown = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--no-write"]
    text = render(result, shown, started, commit)
    print(text)
    if not args.no_write:
        update_results(TITLE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
