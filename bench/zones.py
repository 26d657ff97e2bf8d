"""Zones benchmark (issue 20): what routing through the host (the VPC's router) costs a pod
reached in another subnet (zone), against one reached over the subnet's own link.

One `openccs serve` (SQLite); a cluster of 2 machines in the zone-3 subnet and 1 in the
zone-4 subnet of the default VPC; one busybox httpd pod pinned to each of the two others.
`wrk` runs in the first machine's network namespace (a process on that machine) against each
pod IP for `--seconds`, `--connections` connections, the two paths interleaved for
`--rounds` rounds; the figures are the medians of the rounds.

Target: across zones >= 80% of the same-subnet throughput.
Run as root: `.venv/bin/python bench/zones.py` (replaces its section of bench/RESULTS.md
unless `--no-write`). Everything is removed at the end, also on failure.
"""

from __future__ import annotations

import datetime
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import git_commit, machine_facts, publish
from traffic import rounds_line, wrk, wrk_options

from tests.conftest import Server
from tests.test_clusters import machine_params
from tests.test_zones import pinned
from tests.workload_helpers import create, machine_netns, make_cluster

TITLE = "## Zones: pod traffic across subnets (through the host) against within a subnet"
TARGET = 0.80


def main(argv: list[str] | None = None) -> int:
    args = wrk_options(argv, __doc__, seconds=5, connections=16)
    work = Path(tempfile.mkdtemp(prefix="openccs-bench-zones-"))
    srv = Server(data_dir=work / "data", db_url=None)
    results: dict[str, list[dict[str, float]]] = {"subnet": [], "zone": []}
    try:
        srv.start()
        c = srv.client()
        cluster = make_cluster(srv, machines=2)
        vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
        zone4 = c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100004]})["data"][0]
        res = c.call("AddClusterInstances", {"clusterId": cluster, **machine_params(
            zone4["unSubnetId"], zoneId="ap-guangzhou-4", cpu=2, mem=2)})  # fmt: skip
        assert res["code"] == 0, res
        assert srv.wait_task(res["data"]["requestId"])["status"] == "succ"
        nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
        client, same, other = sorted(nodes, key=lambda n: (n["zone"], n["lanIp"]))
        for name, node in (("same", same), ("other", other)):
            res = c.call("ModifyClusterNodeLabel", {"clusterId": cluster,
                         "instanceId": node["instanceId"],
                         "labels": [{"key": "zone-test", "value": name}]})  # fmt: skip
            assert res["code"] == 0, res
        pods = {}
        for path, label in (("subnet", "same"), ("zone", "other")):
            svc = create(c, cluster, pinned(f"to-{path}", label))
            (pods[path],) = svc.wait_normal(1)
        enter = ["nsenter", f"--net=/run/netns/{machine_netns(srv, client['instanceId'])}"]
        order = list(pods)
        for i in range(args.rounds):
            for path in order[i % 2 :] + order[: i % 2]:
                url = f"http://{pods[path]['ip']}/index.html"
                results[path].append(wrk(url, args.seconds, args.connections, prefix=enter))
                print(path, results[path][-1], file=sys.stderr)
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()
        shutil.rmtree(work, ignore_errors=True)

    def med(path: str, key: str) -> float:
        return statistics.median(r[key] for r in results[path])

    base = med("subnet", "rps")
    ratio = med("zone", "rps") / base if base else float("nan")
    lines = [
        TITLE,
        "",
        f"Run {datetime.datetime.now():%Y-%m-%d %H:%M}, commit {git_commit()}, "
        f"{args.rounds} rounds of {args.seconds} s per path, {args.connections} connections, "
        "wrk -t2 in a zone-3 machine's network namespace against a busybox httpd pod.",
        "",
        "| machine | " + " | ".join(f"{k}: {v}" for k, v in machine_facts().items()) + " |",
        "",
        "| path | req/s median | req/s best | p99 ms median | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    label = {"subnet": "pod on a machine of the same subnet (direct route)",
             "zone": "pod on a machine of the other zone (via the host)"}  # fmt: skip
    for path in results:
        errors = sum(r["bad"] + r["sock_errors"] for r in results[path])
        lines.append(
            f"| {label[path]} | {med(path, 'rps'):,.0f} | "
            f"{max(r['rps'] for r in results[path]):,.0f} | {med(path, 'p99_ms'):.1f} | "
            f"{errors:.0f} |"
        )
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    lines += [
        "",
        f"Across zones / within a subnet (medians): {ratio:.2f}; target {TARGET:.0%}: {verdict}.",
        "",
        "Reading it: across zones every packet crosses the bridge twice and is routed (and"
        " conntracked) by the host, the VPC's router, instead of crossing it once; busybox httpd"
        " forks per connection and the shared host's other work moves the figures a lot"
        " between rounds (hence the rotating order and medians).",
        "",
        rounds_line(results),
        "",
    ]
    return publish(TITLE, lines, not args.no_write)


if __name__ == "__main__":
    raise SystemExit(main())
