"""Web console benchmark (issue 17): load time of the services page and of a service's pods
page with `--pods` real pods, signed in over HTTPS as a browser is (one kept-alive
connection, the session cookie; the page's HTML, not its static files, which are cached).

One `openccs serve` (SQLite) with a cluster of `--machines` real machines (2 CPUs, 2 GiB)
runs one service of `--pods` replicas (busybox `sleep`, the builtin image); once all are
Running, each page is fetched `--samples` times in turn after a warm-up. Pages:

* services: `/console/clusters/CLS/services?namespace=*` (every service's status, which
  reads all its pods);
* pods: `/console/clusters/CLS/services/default/big` (the service, its `--pods` pods, of
  which the first 100 are shown with a pager, and its events);
* overview: `/console/` (clusters, machines, services and pods by state, recent events).

Target: p95 < 300 ms for the services and pods pages. Everything (server, host objects via
`openccs sweep`) is removed at the end, also on failure. Run as root:
`.venv/bin/python bench/console.py` (replaces its section of bench/RESULTS.md unless
`--no-write`). The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import git_commit, machine_facts, update_results

from tests.conftest import Server
from tests.console_helpers import Browser, set_password
from tests.workload_helpers import BUSYBOX, make_cluster

TITLE = "## Web console: page load with 200 pods"
TARGET_P95_S = 0.300


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(value: float) -> str:
    return f"{value * 1000:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--machines", type=int, default=2)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="openccs-console-bench-"))
    srv = Server(data_dir=base / "data", db_url=None)
    rows: list[tuple[str, list[float], int]] = []
    try:
        srv.start()
        c = srv.client()
        t0 = time.monotonic()
        cluster = make_cluster(srv, machines=args.machines)
        res = c.call("CreateClusterService", {
            "clusterId": cluster, "serviceName": "big", "replicas": args.pods,
            "accessType": "None",
            "containers": [{"containerName": "c", "image": BUSYBOX, "command": "sleep",
                            "arguments": ["100000"]}]})  # fmt: skip
        assert res["code"] == 0, res
        ref = {"clusterId": cluster, "serviceName": "big", "namespace": "default"}
        deadline = time.monotonic() + 1800
        while True:
            running = 0
            for offset in range(0, args.pods, 100):
                data = c.call("DescribeServiceInstance", {**ref, "offset": offset, "limit": 100})
                running += sum(1 for p in data["data"]["instances"] if p["status"] == "Running")
            if running >= args.pods:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {running} of {args.pods} pods Running")
            time.sleep(5)
        setup_s = time.monotonic() - t0
        print(f"{args.pods} pods Running after {setup_s:.0f} s", flush=True)

        set_password(srv, srv.default.uin)
        b = Browser(srv, https=True)
        b.sign_in_ok(srv.default.uin)
        pages = {
            "services": f"/console/clusters/{cluster}/services?namespace=*",
            "pods": f"/console/clusters/{cluster}/services/default/big",
            "overview": "/console/",
        }
        for name, path in pages.items():
            for _ in range(5):
                b.get(path)
            times: list[float] = []
            size = 0
            for _ in range(args.samples):
                started = time.perf_counter()
                r = b.get(path)
                times.append(time.perf_counter() - started)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {r.status_code}")
                size = len(r.content)
            rows.append((name, times, size))
            print(name, ms(statistics.median(times)), ms(pct(times, 95)), flush=True)
    finally:
        if srv.proc is not None:
            srv.stop()
        # A sweep of many machines' pods can outlast the test helper's 60 s.
        subprocess.run([*srv._base_args(), "sweep"], capture_output=True, timeout=900, check=False)
    if args.no_write:
        return 0
    m = machine_facts()
    lines = [
        TITLE,
        "",
        "Written by `bench/console.py`, which replaces this section on every run and keeps"
        " the other sections of this file.",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- openccs commit: {git_commit()}",
        f"- machine: {m['cpus']} CPUs ({m['cpu model']}), {m['memory']} RAM, {m['kernel']},"
        f" Python {m['python']}; shared with other work while it ran",
        "- command: `.venv/bin/python bench/console.py`",
        f"- set-up: one cluster of {args.machines} machines, one service of {args.pods}"
        f" replicas (busybox sleep), all Running after {setup_s:.0f} s; signed in with a"
        " console password over HTTPS, one kept-alive connection",
        f"- {args.samples} sequential loads per page after 5 warm-up loads; time to the"
        " whole HTML answer",
        "",
        "| page | path | p50 ms | p95 ms | p99 ms | max ms | HTML bytes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    paths = {
        "services": "/console/clusters/CLS/services?namespace=*",
        "pods": "/console/clusters/CLS/services/default/big",
        "overview": "/console/",
    }
    for name, times, size in rows:
        lines.append(
            f"| {name} | `{paths[name]}` | {ms(statistics.median(times))} |"
            f" {ms(pct(times, 95))} | {ms(pct(times, 99))} | {ms(max(times))} | {size:,} |"
        )
    lines += ["", "| target | result | figure |", "| --- | --- | --- |"]
    for name, times, _ in rows:
        if name in ("services", "pods"):
            p95 = pct(times, 95)
            verdict = "PASS" if p95 < TARGET_P95_S else "FAIL"
            lines.append(f"| {name} page p95 < 300 ms | {verdict} | {ms(p95)} ms |")
    update_results(TITLE, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
