"""Cluster benchmark through the API: time from CreateCluster to Running for 1, 3 and 5
machines, and DeleteCluster time, on one `openccs serve` with SQLite.

Each size is measured `--repeat` times; a run creates a cluster with the official action
parameters, polls DescribeClusterTaskResult every 50 ms until `succ`, checks DescribeCluster
says Running/AllNormal with every node, then deletes it the same way. The server's site is
swept at the end, also on failure. Idle memory per machine is `bench/cloud.py`'s figure.

Targets: 3 machines Running within 20 s, deleted within 10 s.
Run as root: `.venv/bin/python bench/cluster.py` (replaces its section of bench/RESULTS.md
unless `--no-write`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from openccs.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, git_commit, intro, publish

TITLE = "## Clusters through the API: create and delete"
TARGET_CREATE_S, TARGET_DELETE_S, TARGET_SIZE = 20.0, 10.0, 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(c: Client, request_id: int, timeout: float = 300) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        res = c.call("DescribeClusterTaskResult", {"requestId": request_id})
        status = res["data"]["status"]
        if status == "succ":
            return time.perf_counter() - started
        if status == "fail":
            raise RuntimeError(f"task {request_id} failed: {res['data']['reason']}")
        time.sleep(0.05)
    raise RuntimeError(f"task {request_id} did not finish in {timeout} s")


def one_run(c: Client, size: int, vpc: str, subnet: str, cidr: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    res = c.call(
        "CreateCluster",
        {
            "clusterName": f"bench{size}",
            "clusterCIDR": cidr,
            "vpcId": vpc,
            "osName": "ubuntu16.04.1 LTSx86_64",
            "zoneId": "ap-guangzhou-3",
            "goodsNum": size,
            "cpu": 1,
            "mem": 1,
            "bandwidthType": "PayByHour",
            "bandwidth": 0,
            "subnetId": subnet,
            "isVpcGateway": 0,
            "rootSize": 50,
            "storageSize": 0,
        },
    )
    assert res["code"] == 0, res
    wait(c, res["data"]["requestId"])
    created = time.perf_counter() - t0
    cluster_id = res["data"]["clusterId"]
    info = c.call("DescribeCluster", {"clusterIds": [cluster_id]})["data"]["clusters"][0]
    assert (info["status"], info["nodeStatus"], info["nodeNum"]) == ("Running", "AllNormal", size)
    t1 = time.perf_counter()
    res = c.call("DeleteCluster", {"clusterId": cluster_id})
    assert res["code"] == 0, res
    wait(c, res["data"]["requestId"])
    return created, time.perf_counter() - t1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,3,5")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cidr", default="172.31.0.0/16", help="cluster CIDR to use")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    started = datetime.datetime.now(datetime.UTC)
    tmp = Path(tempfile.mkdtemp(prefix="openccs-bench-"))
    port = free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115
    cmd = [str(REPO / ".venv/bin/openccs"), "--data-dir", str(tmp / "data"), "serve",
           "--http", f"127.0.0.1:{port}", "--https", ""]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    results: dict[int, list[tuple[float, float]]] = {}
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        creds = json.loads((tmp / "data" / "credentials.json").read_text())
        c = Client(f"http://127.0.0.1:{port}", creds["secretId"], creds["secretKey"])
        vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
        subnet = c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100003]})["data"][0]
        for size in sizes:
            results[size] = [
                one_run(c, size, vpc, subnet["unSubnetId"], args.cidr) for _ in range(args.repeat)
            ]
            print(f"bench: {size} machine(s): {results[size]}", file=sys.stderr)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        subprocess.run(
            [str(REPO / ".venv/bin/openccs"), "--data-dir", str(tmp / "data"), "sweep"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        *intro(TITLE, "cluster.py", started, git_commit(), argv),
        "- measured through the API (HTTP, signed), SQLite store: CreateCluster until"
        " DescribeClusterTaskResult says succ; DeleteCluster likewise",
        "",
        "| machines | runs | create to Running, median (s) | max (s) | delete, median (s) |"
        " max (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, runs in results.items():
        creates, deletes = [r[0] for r in runs], [r[1] for r in runs]
        lines.append(
            f"| {size} | {len(runs)} | {statistics.median(creates):.2f} | {max(creates):.2f}"
            f" | {statistics.median(deletes):.2f} | {max(deletes):.2f} |"
        )
    ref = results.get(TARGET_SIZE)
    if ref:
        worst_c, worst_d = max(r[0] for r in ref), max(r[1] for r in ref)
        lines += [
            "",
            "| target | result | figure (worst run) |",
            "| --- | --- | --- |",
            f"| {TARGET_SIZE} machines Running within {TARGET_CREATE_S:g} s |"
            f" {'PASS' if worst_c < TARGET_CREATE_S else 'FAIL'} | {worst_c:.2f} s |",
            f"| {TARGET_SIZE} machines deleted within {TARGET_DELETE_S:g} s |"
            f" {'PASS' if worst_d < TARGET_DELETE_S else 'FAIL'} | {worst_d:.2f} s |",
        ]
    return publish(TITLE, lines, not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
