"""The controllers' share of a cluster pass, in process and without machines: how its cost
grows with the pods of the cluster.

A SQLite store holds one cluster with 10 Running machines and 10 services whose pods are
all Running (100, 1,000 and 3,000 pods). Then, as during a fill or a rollout, something
small changes and the controllers (node lifecycle, deployment and replica set controllers,
scheduler) run as the engine runs them after that commit:

- `status`: one pod's status is written (what a node agent does for every pod it starts);
- `new service`: a 1-replica service is created: the pass that makes its pod, then the
  pass that places it (the scheduler's turn).

Each figure is the median of `--reps` passes, in ms of the process's CPU time (not wall
time, which a loaded host stretches several times over), per part and in all.

    .venv/bin/python bench/controllers.py [--pods 100,1000,3000] [--reps 15] [--profile N]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openccs.engine import deployment, lifecycle, scheduler
from openccs.store.db import Store
from openccs.store.models import (
    Account,
    Cluster,
    Instance,
    K8sNamespace,
    Pod,
    Service,
    Subnet,
    Vpc,
)
from openccs.timeutil import utcnow

try:  # the controllers as the engine runs them, when this version has them
    Controllers: Any = importlib.import_module("openccs.engine.controllers").Controllers
except ImportError:  # an older version: the three controllers over the whole cluster
    Controllers = None

CLUSTER = "cls-bench001"
MACHINES, SERVICES = 10, 10


def build(store: Store, pods: int) -> None:
    """One cluster, its machines, and SERVICES services of pods/SERVICES Running pods."""
    with store.session() as s:
        for row in (
            Account(id=1, app_id=1251000000, uin="100000000001"),
            Vpc(id="vpc-bench001", num_id=1, account_id=1, cidr="10.0.0.0/16"),
            Subnet(id="subnet-bench001", num_id=1, vpc_id="vpc-bench001", account_id=1,
                   cidr="10.0.1.0/24", zone="ap-guangzhou-3"),
            Cluster(id=CLUSTER, account_id=1, name="bench", vpc_id="vpc-bench001",
                    cidr="172.16.0.0/16", service_cidr="172.16.255.0/24", status="Running",
                    master_subnet_id=None),
            K8sNamespace(account_id=1, cluster_id=CLUSTER, name="default"),
        ):  # fmt: skip
            s.add(row)
            s.flush()
        for i in range(MACHINES):
            s.add(
                Instance(id=f"ins-bench{i:03d}", account_id=1, vpc_id="vpc-bench001",
                         subnet_id="subnet-bench001", zone="ap-guangzhou-3",
                         lan_ip=f"10.0.1.{10 + i}", cluster_id=CLUSTER,
                         instance_type="S2.4XLARGE64", cpu=64, mem=256, state="Running",
                         is_normal=True, labels={})
            )  # fmt: skip
        for i in range(SERVICES):
            add_service(s, f"svc{i}", pods // SERVICES)
    # The controllers make the replica sets and pods, the scheduler places them; then
    # every pod is Running and ready as an agent would write it. Two pods given the same
    # random name undo their pass: the next one (new names) goes on, as in the engine.
    for _ in range(10):
        try:
            with store.session() as s:
                deployment.reconcile_cluster(s, CLUSTER)
                s.flush()
                scheduler.schedule_cluster(s, CLUSTER)
        except IntegrityError:
            continue
        with store.session() as s:
            if s.scalars(select(Pod.id).where(Pod.node_id.is_(None))).first() is None:
                break
    with store.session() as s:
        for pod in s.scalars(select(Pod)):
            pod.status = {"reason": "Running", "ready": True, "ip": f"172.16.{pod.id // 250}."
                          f"{pod.id % 250 + 2}", "containers": [{"name": "app", "ready": True,
                          "status": "Running", "restartCount": 0}]}  # fmt: skip
            pod.ready_since = utcnow()
        assert len([p for p in s.scalars(select(Pod)) if p.node_id]) == pods


def add_service(s: Session, name: str, replicas: int) -> None:
    container = {"containerName": "app", "image": "nginx:1", "cpu": 10, "memory": 16}
    s.add(
        Service(account_id=1, cluster_id=CLUSTER, namespace="default", name=name,
                spec={"containers": [container]}, labels={"qcloud-app": name},
                replicas=replicas, cluster_ip=None)
    )  # fmt: skip
    s.flush()


class Pass:
    """The controllers' part of an engine pass, timed per part."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.not_ready: dict[str, float] = {}
        self.ctl = Controllers() if Controllers is not None else None
        if self.ctl is not None:
            self.ctl.listen(store.sessions)
            self.run(full=True)  # the first pass of a cluster is a full one

    def _lifecycle(self, s: Session) -> float:
        return lifecycle.node_lifecycle(s, CLUSTER, self.not_ready, 30.0, time.monotonic())

    def run(self, full: bool = False) -> dict[str, float]:
        parts: dict[str, float] = {}

        def timed(name: str, fn: Callable[[], Any]) -> Any:
            t0 = time.process_time()
            out = fn()
            parts[name] = parts.get(name, 0.0) + (time.process_time() - t0) * 1000
            return out

        t0 = time.process_time()
        with self.store.session() as s:
            if self.ctl is not None:
                self.ctl.run(s, CLUSTER, full, lambda: self._lifecycle(s), timed=timed)
            else:
                timed("lifecycle", lambda: self._lifecycle(s))
                timed("reconcile", lambda: deployment.reconcile_cluster(s, CLUSTER))
                timed("schedule", lambda: scheduler.schedule_cluster(s, CLUSTER))
        parts["pass"] = (time.process_time() - t0) * 1000  # with its commit
        return parts


def write_status(store: Store, n: int) -> None:
    with store.session() as s:
        pod = s.scalars(select(Pod).order_by(Pod.id).offset(n % 50)).first()
        assert pod is not None
        pod.status = {**pod.status, "containers": [{**pod.status["containers"][0],
                                                     "restartCount": n}]}  # fmt: skip


def measure(pods: int, reps: int, profile: bool) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/state.db")
        store.migrate()
        build(store, pods)
        runner = Pass(store)
        out: dict[str, list[dict[str, float]]] = {"status": [], "new service: pod": [],
                                                  "new service: place": []}  # fmt: skip
        prof = cProfile.Profile() if profile else None
        for n in range(reps):
            write_status(store, n)
            if prof:
                prof.enable()
            out["status"].append(runner.run())
            if prof:
                prof.disable()
            with store.session() as s:
                add_service(s, f"new{n}", 1)
            out["new service: pod"].append(runner.run())
            out["new service: place"].append(runner.run())
            with store.session() as s:
                placed = s.scalars(select(Pod).join(Service).where(Service.name == f"new{n}")).one()
                assert placed.node_id is not None, "the new pod was not placed"
        if prof:
            print(f"--- profile of the `status` passes, {pods} pods")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        store.dispose()
    return {
        case: {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}
        for case, runs in out.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", default="100,1000,3000")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--profile", type=int, default=0, help="profile the passes at N pods")
    args = ap.parse_args()
    print(f"controllers: {'noted changes' if Controllers is not None else 'whole cluster'}")
    print(f"{'pods':>6} {'case':<20} {'lifecycle':>9} {'reconcile':>9} {'schedule':>9} "
          f"{'pass':>8}  (CPU ms, median of {args.reps})")  # fmt: skip
    for pods in (int(x) for x in args.pods.split(",")):
        for case, parts in measure(pods, args.reps, pods == args.profile).items():
            print(f"{pods:>6} {case:<20} {parts.get('lifecycle', 0):>9.2f} "
                  f"{parts.get('reconcile', 0):>9.2f} {parts.get('schedule', 0):>9.2f} "
                  f"{parts['pass']:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
