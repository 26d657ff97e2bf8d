"""Tenants benchmark (issue 16): one tenant's churn must not slow the others down.

On one `openccs serve` (SQLite), `--clusters` (10) clusters of one machine (2 CPUs, 2 GiB)
each, every cluster of an account of its own. The first is the churning one: a service of
busybox `sleep` pods scaled to `--churn` (50), until all are Running, then to 0, until all
are gone, in a loop. On every other cluster a `web` service of `--roll` (5) replicas
(busybox httpd; RollingUpdate maxSurge 1, maxUnavailable 0).

Rounds alternate without and with the churn (`--rounds` (2) pairs, quiet first). In each
round, cluster after cluster: `--new-pods` (2) single-pod services timed from
CreateClusterService to Running (then deleted), and the web service rolled to a new text,
timed to rollout done (all new pods Running, service Normal) as bench/workloads.py does.
The figures with the churn are compared with those without it, measured in the same run.

The host is shared: the benchmark reports the CPU other processes used. Everything it made
is removed at the end, also on failure. Run as root: `.venv/bin/python bench/tenants.py`
(replaces its section of bench/RESULTS.md unless `--no-write`).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import afterwards, git_commit, intro, publish, stop_and_sweep
from workloads import (
    CpuMeter,
    Env,
    measure_rolling,
    med,
    ok,
    sleep_service,
    start_one,
    wait_task,
)

from openccs.client import Client
from tests.conftest import Server, unique_cluster_cidr, unique_vpc_cidr
from tests.workload_helpers import Svc, create, web

TITLE = "## Tenants: one cluster churning beside nine"
TOLERANCE = 1.25  # "unchanged": the churn round's median within 25 % of the quiet one's


def make_cluster_of(c: Client) -> str:
    vpc_id = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    subnet = c.call("DescribeSubnetEx", {"vpcId": vpc_id, "zoneIds": [100003]})["data"][0]
    data = ok(c.call("CreateCluster", {
        "clusterName": "tenant", "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc_id,
        "osName": "ubuntu16.04.1 LTSx86_64", "zoneId": "ap-guangzhou-3", "goodsNum": 1,
        "cpu": 2, "mem": 2, "bandwidthType": "PayByHour", "bandwidth": 0,
        "subnetId": subnet["unSubnetId"], "isVpcGateway": 0, "rootSize": 50,
        "storageSize": 0}), "CreateCluster")  # fmt: skip
    wait_task(c, data["requestId"])
    return str(data["clusterId"])


@dataclass
class Tenant:
    env: Env
    cluster: str
    web: Svc | None = None


@dataclass
class Round:
    churn: bool
    starts: list[float] = field(default_factory=list)  # create to Running, s
    reactions: list[float] = field(default_factory=list)  # create to pause created, s
    dockerd: list[float] = field(default_factory=list)  # pause created to app started, s
    rollouts: list[float] = field(default_factory=list)  # Modify to rollout done, s
    gaps: list[float] = field(default_factory=list)  # between new pods Running, s
    other: list[float] = field(default_factory=list)  # other processes' cores
    cycles: int = 0  # churn cycles (0 -> N -> 0) completed meanwhile


class Churn:
    """Scale a service between 0 and `n` in a loop, in a thread, until `stop()`."""

    def __init__(self, tenant: Tenant, n: int) -> None:
        self.t, self.n = tenant, n
        self.svc = create(tenant.env.c, tenant.cluster, sleep_service("churn", 0, 10**8))
        self.cycles = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(300)

    def _wait(self, done: object) -> None:
        deadline = time.monotonic() + 180
        while not self._stop.is_set() and time.monotonic() < deadline:
            pods = self.svc.pods()
            if done == "up" and sum(p["status"] == "Running" for p in pods) >= self.n:
                return
            if done == "down" and not pods:
                return
            time.sleep(0.5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.svc.call("ModifyServiceReplicas", scaleTo=self.n)
                self._wait("up")
                self.svc.call("ModifyServiceReplicas", scaleTo=0)
                self._wait("down")
                self.cycles += 1
            except Exception as exc:
                self.errors.append(str(exc)[:300])
                time.sleep(1)
        self.svc.call("ModifyServiceReplicas", scaleTo=0)


def measure(tenants: list[Tenant], r: Round, args: argparse.Namespace, text: str) -> None:
    for t in tenants:
        for i in range(args.new_pods):
            name = f"p{len(r.starts)}x{i}"
            timing = start_one(t.env, t.cluster, name)[0]
            r.starts.append(timing.running)
            r.reactions.append(timing.pause_created)
            r.dockerd.append(timing.app_started - timing.pause_created)
            r.other.append(timing.other)
            ok(t.env.c.call("DeleteClusterService", {"clusterId": t.cluster, "serviceName": name}),
               "DeleteClusterService")  # fmt: skip
        assert t.web is not None
        rolled = measure_rolling(t.env, t.web, args.roll, text)
        r.rollouts.append(rolled.complete)
        r.gaps += [b - a for a, b in zip(rolled.new_running, rolled.new_running[1:], strict=False)]
        if rolled.cpu is not None:
            r.other.append(rolled.cpu.other)
        print(f"{'churn' if r.churn else 'quiet'} {t.cluster}: rollout {rolled.complete:.1f} s",
              file=sys.stderr)  # fmt: skip


def render(rounds: list[Round], args: argparse.Namespace) -> list[str]:
    quiet = [r for r in rounds if not r.churn]
    churn = [r for r in rounds if r.churn]

    def pooled(rs: list[Round], attr: str) -> list[float]:
        return [x for r in rs for x in getattr(r, attr)]

    def fig(values: list[float]) -> str:
        return f"{med(values):.2f} s / {max(values):.2f} s" if values else "-"

    lines = [
        f"| figure (on the {args.clusters - 1} quiet clusters; median / max) | without churn |"
        " with churn | ratio of medians |",
        "| --- | ---: | ---: | ---: |",
    ]
    verdicts = []
    for what, attr in (("a new single-pod service: create to Running", "starts"),
                       ("same: create to its pause container created (the engine)",
                        "reactions"),
                       ("same: pause container created to app started (dockerd)", "dockerd"),
                       (f"rolling update of {args.roll} replicas: rollout done", "rollouts"),
                       ("same: between one new pod Running and the next", "gaps")):  # fmt: skip
        a, b = pooled(quiet, attr), pooled(churn, attr)
        ratio = med(b) / med(a) if a and b else float("nan")
        lines.append(f"| {what} | {fig(a)} | {fig(b)} | {ratio:.2f} |")
        if attr in ("starts", "rollouts"):
            verdicts.append((what, ratio))
    other = pooled(rounds, "other")
    lines += [
        "",
        f"Churn cycles (0 -> {args.churn} Running -> 0) completed during the churn rounds:"
        f" {sum(r.cycles for r in churn)}. Other processes used"
        + (f" {min(other):.2f} to {max(other):.2f} cores (of 2)" if other else " -")
        + " while the figures were taken. The machines of all clusters share this host's CPUs"
        " (in a cloud each has its own): the churning machine's dockerd and containers take"
        " CPU from the others' dockerds, and its passes take the openccs process's; the engine's"
        " own reaction is the row create -> pause container created.",
        "",
        "| target | result | figure |",
        "| --- | --- | --- |",
    ]
    for what, ratio in verdicts:
        good = ratio <= TOLERANCE
        lines.append(f"| {what}: unchanged by the churn (median within"
                     f" {(TOLERANCE - 1) * 100:.0f} %) | {'PASS' if good else 'FAIL'} |"
                     f" {ratio:.2f}x |")  # fmt: skip
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--clusters", type=int, default=10)
    p.add_argument("--churn", type=int, default=50)
    p.add_argument("--roll", type=int, default=5)
    p.add_argument("--new-pods", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="pairs of rounds (quiet, churn)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    commit = git_commit()
    tmp = Path(tempfile.mkdtemp(prefix="openccs-bench-tenants-"))
    server = Server(data_dir=tmp / "data", db_url=None)
    tenants: list[Tenant] = []
    rounds: list[Round] = []
    errors: list[str] = []
    site, left = "", []
    churn: Churn | None = None
    try:
        server.start(timeout=180)  # a loaded host imports slowly
        assert server.proc is not None
        site = (server.data_dir / "site-id").read_text().strip()
        meter = CpuMeter(server.proc.pid, site)
        clients = [server.client()]
        for _ in range(args.clusters - 1):
            account = server.new_account()
            # A VPC of its own with a subnet in the zone the clusters use.
            cidr = ipaddress.ip_network(unique_vpc_cidr())
            blocks = cidr.subnets(new_prefix=max(24, cidr.prefixlen + 2))
            next(blocks)  # the first block kept free, as in the default VPC
            subnet = next(blocks)
            server.cli("vpc", "create", account.uin, "--cidr", str(cidr), "--subnet",
                       f"ap-guangzhou-3={subnet}")  # fmt: skip
            clients.append(server.client(account))
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clusters) as pool:
            clusters = list(pool.map(make_cluster_of, clients))
        print(f"{args.clusters} clusters in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        for c, cluster in zip(clients, clusters, strict=True):
            env = Env(server, c, meter, budget=0)
            env.clusters.append(cluster)
            nodes = ok(c.call("DescribeClusterInstances", {"clusterId": cluster}), "nodes")
            env.nodes[cluster] = {n["lanIp"]: n["instanceId"] for n in nodes["nodes"]}
            tenants.append(Tenant(env, cluster))
        for t in tenants[1:]:
            t.web = create(t.env.c, t.cluster, web("roll", replicas=args.roll, text="v0"))
        for t in tenants[1:]:
            assert t.web is not None
            t.web.wait_normal(args.roll, timeout=300)
        churn = Churn(tenants[0], args.churn)
        version = 0
        for _ in range(args.rounds):
            for churning in (False, True):
                r = Round(churning)
                if churning:
                    churn.start()
                    time.sleep(5)  # the churn under way
                    before = churn.cycles
                version += 1
                measure(tenants[1:], r, args, f"v{version}")
                if churning:
                    r.cycles = churn.cycles - before
                    churn.stop()
                rounds.append(r)
        errors += churn.errors
    except Exception as exc:
        traceback.print_exc()
        errors.append(f"{exc}"[:500])
    finally:
        if churn is not None:
            churn.stop()
        for t in tenants:
            if server.proc is not None and server.proc.poll() is None:
                try:
                    res = ok(t.env.c.call("DeleteCluster", {"clusterId": t.cluster}), "delete")
                    wait_task(t.env.c, res["requestId"])
                except Exception as exc:
                    errors.append(f"cleanup of {t.cluster}: {exc}"[:300])
        left = stop_and_sweep(server, site, errors, tmp)

    lines = [
        *intro(TITLE, "tenants.py", started, commit, argv),
        f"- {args.clusters} clusters of 1 machine, each of its own account; the first scales a"
        f" service between 0 and {args.churn} in a loop during the churn rounds; {args.rounds}"
        " pairs of rounds (without, then with the churn), every quiet cluster measured in each",
        afterwards(site, left),
        "",
    ]
    if errors:
        lines += ["Errors:", "", *(f"- `{err}`" for err in errors), ""]
    if rounds:
        lines += render(rounds, args)
    return publish(TITLE, lines, not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
