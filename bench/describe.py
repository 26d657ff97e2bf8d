"""The two reads of a cluster full of pods, DescribeClusterService (all namespaces) and
DescribeServiceInstance (a page of a large service), A/B against a baseline commit in the
same invocation:

    .venv/bin/python bench/describe.py --baseline REF [--services 100] [--pods 10]
        [--big 300] [--samples 200] [--rounds 2] [--no-write]

A store without machines (SQLite, as `openccs serve` makes it) is filled with the rows the
engine leaves: `--services` services of `--pods` pods each (most Running; every other
service with a crashing and an unscheduled pod, every fourth with a pod of its previous
revision and one being deleted), plus one service of `--big` pods. Each action is called through
`openccs.api.app.execute`, the path every front end takes after the signature (the
HTTP and signing cost, the same before and after, is left out). Each round runs the
baseline's code (`git archive REF openccs`, imported in a process of its own) and then the
working tree's, on stores filled alike; their answers must be the same, byte for byte.
Writes its section of bench/RESULTS.md unless `--no-write`.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TITLE = "## Service reads: DescribeClusterService and DescribeServiceInstance on a full cluster"
CLUSTER = "cls-bench001"
T0 = datetime.datetime(2026, 11, 1, 8, 0, 0)


def _container(status: str, reason: str = "") -> dict[str, Any]:
    return {"name": "app", "containerId": "c" * 12, "status": status, "reason": reason,
            "ready": status == "Running", "restartCount": 0, "image": "busybox:1.36"}  # fmt: skip


RUNNING = {"ip": "172.16.0.5", "ready": True, "reason": "", "containers": [_container("Running")]}
CRASHING = {"ip": "172.16.0.6", "ready": False, "reason": "CrashLoopBackOff",
            "containers": [_container("Waiting", "CrashLoopBackOff")]}  # fmt: skip
UNSCHEDULED = {"reason": "Unschedulable", "containers": []}


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Fill a store and time the reads with the openccs found on PYTHONPATH."""
    import openccs
    from openccs.api.app import execute
    from openccs.config import Settings
    from openccs.domain import accounts
    from openccs.domain import workloads as wl
    from openccs.domain.accounts import Caller
    from openccs.server import build_services
    from openccs.store.models import Cluster, Instance, Pod, ReplicaSet, Service, Subnet, Vpc

    data = Path(tempfile.mkdtemp(prefix="openccs-describe-"))
    services = build_services(Settings(data_dir=data, http=None, https=None))
    try:
        with services.store.session() as s:
            acct = accounts.create_account(s)
            s.add(Vpc(id="vpc-bench001", num_id=1, account_id=acct.id, cidr="10.0.0.0/16"))
            s.flush()
            s.add(Subnet(id="subnet-bench001", num_id=1, vpc_id="vpc-bench001",
                         account_id=acct.id, cidr="10.0.1.0/24", zone="zone-1"))  # fmt: skip
            s.flush()
            cluster = Cluster(id=CLUSTER, account_id=acct.id, name="bench",
                              vpc_id="vpc-bench001", cidr="172.16.0.0/16",
                              service_cidr="172.17.0.0/24", status="Running")  # fmt: skip
            s.add(cluster)
            s.flush()
            nodes = [f"ins-bench{i:03d}" for i in range(10)]
            for i, node in enumerate(nodes):
                s.add(Instance(id=node, account_id=acct.id, vpc_id="vpc-bench001",
                               subnet_id="subnet-bench001", zone="zone-1",
                               lan_ip=f"10.0.1.{10 + i}", cluster_id=CLUSTER,
                               instance_type="S1.SMALL1", cpu=2, mem=2,
                               state="Running"))  # fmt: skip
            wl.ensure_default_namespaces(s, cluster)
            caller = Caller(account_id=acct.id, app_id=acct.app_id, uin=acct.uin,
                            account_enabled=True, secret_id="", secret_key="",
                            key_enabled=True)  # fmt: skip
        made = 0
        sizes = [args.pods] * args.services + [args.big]
        for n, size in enumerate(sizes):
            name = "big" if n == args.services else f"svc-{n:04d}"
            spec = {"containers": [{"containerName": "app", "image": "busybox:1.36"}],
                    "accessType": "ClusterIP"}  # fmt: skip
            with services.store.session() as s:
                svc = Service(account_id=acct.id, cluster_id=CLUSTER, namespace="default",
                              name=name, spec=spec, labels={wl.APP_LABEL: name}, replicas=size,
                              created_at=T0 + datetime.timedelta(minutes=n))  # fmt: skip
                s.add(svc)
                s.flush()
                tmpl = wl.template_of(spec)
                old = ReplicaSet(service_id=svc.id, revision=1, template={},
                                 template_hash="0ld0ld0ld0")  # fmt: skip
                rs = ReplicaSet(service_id=svc.id, revision=2, template=tmpl,
                                template_hash=wl.template_hash(tmpl), replicas=size)  # fmt: skip
                s.add_all([old, rs])
                s.flush()
                for i in range(size):
                    # Even services have a crashing pod (Abnormal) and an unscheduled one;
                    # n % 4 == 1 a pod of the previous revision (Updating) and one going.
                    status: dict[str, Any] = RUNNING
                    if n % 2 == 0 and size > 2:
                        status = CRASHING if i == 1 else UNSCHEDULED if i == 2 else RUNNING
                    mine = old if n % 4 == 1 and i == 0 else rs
                    s.add(Pod(uid=str(uuid.uuid4()), account_id=acct.id, cluster_id=CLUSTER,
                              namespace="default", name=f"{name}-{i:05d}", service_id=svc.id,
                              replicaset_id=mine.id, template={},
                              deleting=n % 4 == 1 and i == size - 1,
                              node_id=None if status is UNSCHEDULED else nodes[made % 10],
                              status=status,
                              created_at=T0 + datetime.timedelta(seconds=made)))  # fmt: skip
                    made += 1
        registry = services.registry
        reads = {
            "list": ("DescribeClusterService", {"clusterId": CLUSTER, "allnamespace": "1"}),
            "instances": (
                "DescribeServiceInstance",
                {"clusterId": CLUSTER, "serviceName": "big", "offset": "0", "limit": "20"},
            ),
        }
        out: dict[str, Any] = {"openccs": openccs.__file__, "pods": made}
        for key, (action, params) in reads.items():
            entry = registry.lookup(action)
            answer = execute(services, "bench", caller, entry, params)
            out[f"{key}_digest"] = hashlib.sha256(
                json.dumps(answer, sort_keys=True).encode()
            ).hexdigest()
            out[f"{key}_size"] = len(answer.get("services") or answer.get("instances"))
            for _ in range(5):
                execute(services, "bench", caller, entry, params)
            times = []
            for _ in range(args.samples):
                started = time.perf_counter()
                execute(services, "bench", caller, entry, params)
                times.append((time.perf_counter() - started) * 1000)
            out[key] = times
        return out
    finally:
        services.store.dispose()
        shutil.rmtree(data, ignore_errors=True)


def run_child(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--services", str(args.services), "--pods",
           str(args.pods), "--big", str(args.big), "--samples", str(args.samples)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=root)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # The code measured must be the tree's, not an installed copy.
    assert Path(result["openccs"]).resolve().is_relative_to(root.resolve()), result["openccs"]
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", help="the commit to compare with (required but in --child)")
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--pods", type=int, default=10, help="pods of each service")
    ap.add_argument("--big", type=int, default=300, help="pods of the service paged through")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    if not args.baseline:
        ap.error("--baseline REF is required")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import git_commit, machine_facts, update_results

    base_commit = git("rev-parse", "--short", args.baseline)
    base_root = Path(tempfile.mkdtemp(prefix="openccs-describe-base-"))
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "tree": []}
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", args.baseline, "openccs"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base_root)], input=archive, check=True)
        for r in range(args.rounds):
            for name, root in (("base", base_root), ("tree", REPO)):
                res = run_child(root, args)
                runs[name].append(res)
                print(
                    f"round {r + 1} {name}: list p50 {pct(res['list'], 0.5):.1f} ms "
                    f"p99 {pct(res['list'], 0.99):.1f} ms; instances p50 "
                    f"{pct(res['instances'], 0.5):.1f} ms p99 {pct(res['instances'], 0.99):.1f} ms",
                    flush=True,
                )
    finally:
        shutil.rmtree(base_root, ignore_errors=True)
    load_after = os.getloadavg()
    first = runs["base"][0]
    same = all(
        res[f"{k}_digest"] == first[f"{k}_digest"]
        for res in runs["base"] + runs["tree"]
        for k in ("list", "instances")
    )
    print("answers identical:", same)

    def cell(name: str, key: str, q: float) -> str:
        return " / ".join(f"{pct(res[key], q):.1f}" for res in runs[name])

    def ratio(key: str, q: float) -> str:
        base = statistics.median(pct(res[key], q) for res in runs["base"])
        tree = statistics.median(pct(res[key], q) for res in runs["tree"])
        return f"{base / tree:.1f}x" if tree else "-"

    facts = machine_facts()
    rows = [
        (f"DescribeClusterService, all namespaces ({first['list_size']} services)", "list"),
        (f"DescribeServiceInstance, first 20 of a {args.big}-pod service", "instances"),
    ]
    table = [
        "| read (ms, one figure per round) | baseline p50 | tree p50 | baseline p99 | tree p99 "
        "| p99 faster by |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, key in rows:
        table.append(
            f"| {label} | {cell('base', key, 0.5)} | {cell('tree', key, 0.5)} "
            f"| {cell('base', key, 0.99)} | {cell('tree', key, 0.99)} | {ratio(key, 0.99)} |"
        )
    section = "\n".join(
        [
            TITLE,
            "",
            "Written by `bench/describe.py`, which replaces this section on every run.",
            "",
            f"- date: {started:%Y-%m-%d %H:%M} UTC",
            f"- baseline: {base_commit}; tree: {git_commit()}",
            f"- machine: {facts['cpus']} CPUs ({facts['cpu model']}), {facts['memory']} RAM, "
            f"{facts['kernel']}, Python {facts['python']}",
            f"- load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after: "
            "the host is shared, timings are noisy",
            f"- command: `.venv/bin/python bench/describe.py --baseline {args.baseline} "
            f"--services {args.services} --pods {args.pods} --big {args.big} "
            f"--samples {args.samples} --rounds {args.rounds}`",
            f"- store: SQLite, no machines, {first['pods']} pods in {args.services + 1} "
            "services; each read called through `api.app.execute` (no HTTP, no signature), "
            f"{args.samples} times per round after 5 warm-up calls",
            f"- answers of the baseline and the tree identical: {'yes' if same else 'NO'}",
            "",
            *table,
        ]
    )
    print(section)
    if not args.no_write:
        update_results(TITLE, section)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
