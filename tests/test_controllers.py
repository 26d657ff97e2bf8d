"""The controllers' decisions on a database state, without machines: the deployment and
replica set controllers (rolling update steps, Recreate, scale down), the scheduler (fit,
spread, cordon, not ready, affinity), the node lifecycle controller (NotReady after the
grace period), the cluster autoscaler (which group grows, when a machine goes) and which
commits move which machines' generations (what makes a node agent work). The
end-to-end tests (test_workloads.py, test_asg.py and friends) run the same controllers
against real machines; these pin the rules down one pass at a time.

What a machine would do (start a scheduled pod, remove a deleted one) is played by
`kubelet()` below: it writes what the node agent writes, nothing more.
"""

from __future__ import annotations

import itertools
import math
import random
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from openccs.api.registry import Registry
from openccs.api.replay import ReplayGuard
from openccs.autoscaler import domain as asg_domain
from openccs.autoscaler import tasks as _asg_tasks  # noqa: F401  (registers the task types)
from openccs.autoscaler.controller import Autoscaler
from openccs.autoscaler.models import ClusterAsg
from openccs.config import Settings
from openccs.crypto import SecretBox
from openccs.domain import cluster_tasks as _cluster_tasks  # noqa: F401  (task types)
from openccs.domain import workloads as wl
from openccs.engine import deployment, lifecycle, scheduler
from openccs.engine.component import Engine
from openccs.engine.controllers import Controllers
from openccs.server import Services
from openccs.store.db import Store
from openccs.store.models import (
    Account,
    Cluster,
    Event,
    Instance,
    K8sNamespace,
    Pod,
    ReplicaSet,
    Service,
    Subnet,
    Vpc,
)
from openccs.tasks.runner import TaskRunner
from openccs.timeutil import utcnow

CLUSTER = "cls-unit0001"
_ips = itertools.count(10)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database, made once: each test starts from a copy."""
    path = tmp_path_factory.mktemp("controllers") / "template.db"
    st = Store(f"sqlite:///{path}")
    st.migrate()
    st.dispose()
    return path


@pytest.fixture
def store(migrated: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "state.db"
    shutil.copyfile(migrated, path)
    st = Store(f"sqlite:///{path}")
    with st.session() as s:
        for row in (
            Account(id=1, app_id=1251000000, uin="100000000001"),
            Vpc(id="vpc-unit0001", num_id=1, account_id=1, cidr="10.0.0.0/16"),
            Subnet(
                id="subnet-unit0001",
                num_id=1,
                vpc_id="vpc-unit0001",
                account_id=1,
                cidr="10.0.1.0/24",
                zone="ap-guangzhou-3",
            ),
            Cluster(
                id=CLUSTER,
                account_id=1,
                name="unit",
                vpc_id="vpc-unit0001",
                cidr="172.16.0.0/16",
                service_cidr="172.16.255.0/24",
                status="Running",
                master_subnet_id=None,
            ),
            K8sNamespace(account_id=1, cluster_id=CLUSTER, name="default"),
        ):
            s.add(row)
            s.flush()  # no relationships to order the inserts by: one at a time
    yield st
    st.dispose()


def add_node(s: Session, name: str, cpu: int = 2, mem: int = 4, **extra: Any) -> Instance:
    node = Instance(
        id=f"ins-{name}",
        account_id=1,
        vpc_id="vpc-unit0001",
        subnet_id="subnet-unit0001",
        zone="ap-guangzhou-3",
        lan_ip=f"10.0.1.{next(_ips)}",
        cluster_id=CLUSTER,
        instance_type=f"S2.X{cpu}",
        cpu=cpu,
        mem=mem,
        state="Running",
        is_normal=True,
        pod_cidr=None,
        **{"labels": {}, **extra},
    )
    s.add(node)
    s.flush()
    return node


def container(image: str = "nginx:1", cpu: int = 100, memory: int = 64) -> dict[str, Any]:
    return {"containerName": "app", "image": image, "cpu": cpu, "memory": memory}


def add_service(
    s: Session, name: str, replicas: int, image: str = "nginx:1", **spec: Any
) -> Service:
    svc = Service(
        account_id=1,
        cluster_id=CLUSTER,
        namespace="default",
        name=name,
        spec={"containers": [container(image, **spec.pop("resources", {}))], **spec},
        labels={"qcloud-app": name},
        replicas=replicas,
        cluster_ip=None,
    )
    s.add(svc)
    s.flush()
    return svc


def set_image(svc: Service, image: str) -> None:
    svc.spec = {**svc.spec, "containers": [{**svc.spec["containers"][0], "image": image}]}


def kubelet(s: Session, healthy: bool = True) -> None:
    """The node agents' half: deleted pods go, scheduled pods run (ready at once, or never
    for a broken image), as the agents write it."""
    for pod in list(s.scalars(select(Pod).where(Pod.cluster_id == CLUSTER))):
        if pod.deleting:
            s.delete(pod)
        elif pod.node_id is not None and not pod.status.get("ready"):
            image = pod.template["containers"][0]["image"]
            if healthy and "broken" not in image:
                pod.status = {"reason": "Running", "ready": True, "containers": []}
                pod.ready_since = utcnow() - timedelta(hours=1)
            else:
                pod.status = {"reason": "CrashLoopBackOff", "containers": []}
    s.flush()


def controllers(s: Session) -> None:
    """One engine pass's controllers, in the engine's order."""
    deployment.reconcile_cluster(s, CLUSTER)
    s.flush()
    scheduler.schedule_cluster(s, CLUSTER)
    s.flush()


def live(s: Session, svc: Service) -> list[Pod]:
    return [p for p in wl.service_pods(s, svc) if not p.deleting]


def by_revision(s: Session, svc: Service) -> dict[int, int]:
    """Live pods per revision number."""
    numbers = {rs.id: rs.revision for rs in wl.revisions(s, svc)}
    out: dict[int, int] = {}
    for p in live(s, svc):
        key = numbers[p.replicaset_id or 0]
        out[key] = out.get(key, 0) + 1
    return out


def events(s: Session, reason: str) -> list[Event]:
    return list(s.scalars(select(Event).where(Event.reason == reason).order_by(Event.id)))


def settle(s: Session, passes: int = 20) -> None:
    for _ in range(passes):
        controllers(s)
        kubelet(s)


# --- deployment rollouts -------------------------------------------------------------------
def test_rolling_update_surges_one_and_never_drops_below_the_desired_ready_pods(
    store: Store,
) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        add_node(s, "b", cpu=8, mem=16)
        svc = add_service(s, "web", 3)
        settle(s)
        assert by_revision(s, svc) == {1: 3}
        set_image(svc, "nginx:2")
        steps = []
        for _ in range(30):
            controllers(s)
            pods = live(s, svc)
            ready = [p for p in pods if wl.pod_is_ready(p)]
            # maxSurge 1: never more than one pod above the desired count...
            assert len(pods) <= 4, by_revision(s, svc)
            # ...and maxUnavailable 0: never fewer ready pods than desired.
            assert len(ready) >= 3, by_revision(s, svc)
            steps.append(by_revision(s, svc))
            kubelet(s)
            if by_revision(s, svc) == {2: 3}:
                break
        assert by_revision(s, svc) == {2: 3}, steps
        # One pod at a time: the old revision went 3 -> 2 -> 1 -> 0, the new one 0 -> 3.
        olds = [step.get(1, 0) for step in steps]
        news = [step.get(2, 0) for step in steps]
        assert olds[0] == 3 and olds[-1] == 0
        assert all(0 <= a - b <= 1 for a, b in itertools.pairwise(olds)), steps
        assert all(0 <= b - a <= 1 for a, b in itertools.pairwise(news)), steps
        assert wl.rollout_done(s, svc)
        scaled = [e.message for e in events(s, "ScalingReplicaSet")]
        assert any("to 0" in m for m in scaled)


def test_a_broken_revision_stalls_with_every_old_pod_serving(store: Store) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        svc = add_service(s, "web", 3)
        settle(s)
        set_image(svc, "nginx:broken")
        settle(s, passes=10)
        # The surge pod never becomes ready: no old pod is taken away, no second new pod.
        assert by_revision(s, svc) == {1: 3, 2: 1}
        assert sum(wl.pod_is_ready(p) for p in live(s, svc)) == 3
        assert not wl.rollout_done(s, svc)
        # Fixing the image rolls on, and replaces the broken pod first.
        set_image(svc, "nginx:3")
        settle(s)
        assert by_revision(s, svc) == {3: 3}


def test_min_ready_seconds_holds_old_pods_until_new_ones_are_available(store: Store) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        svc = add_service(s, "web", 2, minReadySeconds=600)
        settle(s)
        set_image(svc, "nginx:2")
        for _ in range(5):
            due = deployment.reconcile_cluster(s, CLUSTER)
            scheduler.schedule_cluster(s, CLUSTER)
            s.flush()
            for pod in live(s, svc):
                if pod.node_id and not pod.status.get("ready"):
                    # Ready just now: available only after minReadySeconds.
                    pod.status = {"reason": "Running", "ready": True, "containers": []}
                    pod.ready_since = utcnow()
            s.flush()
        # The new pod is ready but not yet available: both old pods stay.
        assert by_revision(s, svc) == {1: 2, 2: 1}
        due = deployment.reconcile_cluster(s, CLUSTER)
        assert 0 < due <= 600


def test_recreate_removes_every_old_pod_before_a_new_one_starts(store: Store) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        svc = add_service(s, "web", 3, strategy="Recreate")
        settle(s)
        set_image(svc, "nginx:2")
        controllers(s)
        # The first pass deletes the old pods and starts no new one.
        assert by_revision(s, svc) == {}
        assert all(p.deleting for p in wl.service_pods(s, svc))
        kubelet(s)
        settle(s)
        assert by_revision(s, svc) == {2: 3}


def test_scale_down_removes_unscheduled_then_not_ready_then_newest(store: Store) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        svc = add_service(s, "web", 3)
        settle(s)
        pods = live(s, svc)
        # One pod not ready (its container crashed), then ask for one pod.
        crashed = pods[0]
        crashed.status = {"reason": "CrashLoopBackOff", "containers": []}
        svc.replicas = 1
        controllers(s)
        doomed = {p.name for p in wl.service_pods(s, svc) if p.deleting}
        kept = [p for p in live(s, svc)]
        assert crashed.name in doomed and len(kept) == 1
        # Of the two ready pods the newest went: the oldest is kept.
        assert kept[0].name == pods[1].name
        kubelet(s)
        assert len(wl.service_pods(s, svc)) == 1


def test_a_paused_service_neither_rolls_out_nor_scales(store: Store) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        svc = add_service(s, "web", 2)
        settle(s)
        svc.paused = True
        set_image(svc, "nginx:2")
        svc.replicas = 4
        settle(s, passes=5)
        assert by_revision(s, svc) == {1: 2}
        svc.paused = False
        settle(s)
        assert by_revision(s, svc) == {2: 4}


# --- scheduling ----------------------------------------------------------------------------
def pending(s: Session) -> list[Pod]:
    return [p for p in s.scalars(select(Pod)) if p.node_id is None and not p.deleting]


def test_pods_spread_over_nodes_and_fill_by_requests(store: Store) -> None:
    with store.session() as s:
        a, b = add_node(s, "a"), add_node(s, "b")
        svc = add_service(s, "web", 4)
        settle(s)
        per_node = sorted(sum(1 for p in live(s, svc) if p.node_id == n.id) for n in (a, b))
        assert per_node == [2, 2]
        ok = events(s, "Scheduled")
        assert len(ok) == 4 and all("Successfully assigned default/" in e.message for e in ok)


def test_a_pod_too_big_for_every_node_stays_pending_saying_why(store: Store) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=2, mem=4)
        add_node(s, "b", cpu=2, mem=4)
        add_service(s, "big", 1, resources={"cpu": 4000, "memory": 64})
        # 2 cores keep 100 m for the machine: 1900 m is what fits.
        add_service(s, "fits", 1, resources={"cpu": 1900, "memory": 64})
        settle(s, passes=3)
        left = pending(s)
        assert [p.name.split("-")[0] for p in left] == ["big"]
        assert left[0].status["reason"] == "Unschedulable"
        failed = events(s, "FailedScheduling")
        assert failed[-1].message == "0/2 nodes are available: 2 Insufficient cpu."
        assert failed[-1].level == "Warning"


def test_cordoned_and_not_ready_nodes_take_no_pods(store: Store) -> None:
    with store.session() as s:
        add_node(s, "cordoned", unschedulable=True)
        sick = add_node(s, "sick")
        sick.is_normal = False
        svc = add_service(s, "web", 2)
        settle(s, passes=3)
        assert len(pending(s)) == 2
        message = events(s, "FailedScheduling")[-1].message
        assert message == (
            "0/2 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable."
        )
        # Uncordoned: the pods go there.
        s.get(Instance, "ins-cordoned").unschedulable = False  # type: ignore[union-attr]
        settle(s, passes=3)
        assert {p.node_id for p in live(s, svc)} == {"ins-cordoned"}


def test_node_affinity_picks_the_labelled_node(store: Store) -> None:
    with store.session() as s:
        add_node(s, "plain")
        add_node(s, "gpu", labels={"gpu": "yes"})
        svc = add_service(
            s, "web", 3, nodeAffinity=[{"key": "gpu", "operator": "In", "values": ["yes"]}]
        )
        settle(s)
        assert {p.node_id for p in live(s, svc)} == {"ins-gpu"}


# --- node lifecycle ------------------------------------------------------------------------
def test_pods_of_a_not_ready_node_are_evicted_after_the_grace_period(store: Store) -> None:
    memory: dict[str, float] = {}
    with store.session() as s:
        a = add_node(s, "a")
        b = add_node(s, "b")
        svc = add_service(s, "web", 4)
        settle(s)
        assert {p.node_id for p in live(s, svc)} == {a.id, b.id}
        on_a = {p.name for p in live(s, svc) if p.node_id == a.id}
        # Node a stops answering at t=1000.
        a.state, a.is_normal = "Failed", False
        assert lifecycle.node_lifecycle(s, CLUSTER, memory, grace=40, now=1000) == 40
        assert lifecycle.node_lifecycle(s, CLUSTER, memory, grace=40, now=1030) == 10
        assert on_a <= {p.name for p in live(s, svc)}, "evicted before the grace period"
        lifecycle.node_lifecycle(s, CLUSTER, memory, grace=40, now=1040)
        s.flush()
        assert not on_a & {p.name for p in wl.service_pods(s, svc)}
        evicted = events(s, "NodeNotReady")
        assert {e.obj_name for e in evicted} == on_a
        assert all(f"Node {a.lan_ip} is not ready" in e.message for e in evicted)
        # The deployment replaces them, on the node that is ready.
        settle(s)
        assert len(live(s, svc)) == 4 and {p.node_id for p in live(s, svc)} == {b.id}


def test_a_node_that_recovers_within_the_grace_period_keeps_its_pods(store: Store) -> None:
    memory: dict[str, float] = {}
    with store.session() as s:
        a = add_node(s, "a")
        svc = add_service(s, "web", 2)
        settle(s)
        a.is_normal = False
        lifecycle.node_lifecycle(s, CLUSTER, memory, grace=40, now=0)
        a.is_normal = True
        assert lifecycle.node_lifecycle(s, CLUSTER, memory, grace=40, now=30) == float("inf")
        assert memory == {}
        # A new outage starts a new grace period.
        a.is_normal = False
        assert lifecycle.node_lifecycle(s, CLUSTER, memory, grace=40, now=100) == 40
        assert len(live(s, svc)) == 2 and not events(s, "NodeNotReady")


def test_replica_sets_keep_one_row_per_template(store: Store) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        svc = add_service(s, "web", 1)
        settle(s)
        set_image(svc, "nginx:2")
        settle(s)
        set_image(svc, "nginx:1")  # back to the first template: its revision is reused
        settle(s)
        revs = list(s.scalars(select(ReplicaSet).where(ReplicaSet.service_id == svc.id)))
        assert [r.revision for r in revs] == [1, 2]
        assert by_revision(s, svc) == {1: 1}


def test_a_pod_name_drawn_twice_is_drawn_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The random part of a pod's name can repeat: a name taken in the namespace (by a live
    or a terminating pod) is never given twice, so the pass does not fail on it. The random
    draws are scripted here (a stand-in for chance), the rest is the real controller."""
    with store.session() as s:
        add_node(s, "a", cpu=8, mem=16)
        svc = add_service(s, "web", 1)
        settle(s)
        (first,) = live(s, svc)
        suffix = first.name.rsplit("-", 1)[1]
        draws = iter([suffix, suffix, "zzzzz", suffix, "yyyyy"])
        real = wl.pod_name
        monkeypatch.setattr(
            wl,
            "pod_name",
            lambda service, h: real(service, h).rsplit("-", 1)[0] + "-" + next(draws),
        )
        svc.replicas = 3
        settle(s)
        names = sorted(p.name for p in live(s, svc))
        assert len(set(names)) == 3, names
        assert {n.rsplit("-", 1)[1] for n in names} == {suffix, "zzzzz", "yyyyy"}, names


# --- passes at the cost of what changed ----------------------------------------------------
# The engine's controllers (engine/controllers.py) reconcile only the services whose rows
# a commit touched, those due, and all of them in a full pass. Each step below is its own
# transaction, as the API's and the agents' are, so the notes are those of real commits.
@pytest.fixture
def noted(store: Store) -> Iterator[Controllers]:
    ctl = Controllers()
    ctl.listen(store.sessions)
    yield ctl
    ctl.remove(store.sessions)


def engine_pass(store: Store, ctl: Controllers, full: bool = False) -> float:
    with store.session() as s:
        return ctl.run(s, CLUSTER, full, lambda: math.inf)


def agents(store: Store) -> None:
    with store.session() as s:
        kubelet(s)


def settle_noted(store: Store, ctl: Controllers, passes: int = 20) -> None:
    for _ in range(passes):
        engine_pass(store, ctl)
        agents(store)


def pods_of(store: Store, name: str) -> dict[int, int]:
    with store.session() as s:
        svc = s.scalars(select(Service).where(Service.name == name)).one()
        return by_revision(s, svc)


def test_a_pass_reconciles_the_service_changed_among_many(store: Store, noted: Controllers) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=16, mem=32)
        add_node(s, "b", cpu=16, mem=32)
        for i in range(12):
            add_service(s, f"svc{i}", 3)
    engine_pass(store, noted, full=True)  # a cluster's first pass
    settle_noted(store, noted, passes=5)
    assert all(pods_of(store, f"svc{i}") == {1: 3} for i in range(12))
    # One service scales, another rolls out, a third loses a pod: each its own commit.
    with store.session() as s:
        s.scalars(select(Service).where(Service.name == "svc3")).one().replicas = 5
    with store.session() as s:
        set_image(s.scalars(select(Service).where(Service.name == "svc7")).one(), "nginx:2")
    with store.session() as s:
        svc = s.scalars(select(Service).where(Service.name == "svc9")).one()
        s.delete(live(s, svc)[0])
    settle_noted(store, noted)
    assert pods_of(store, "svc3") == {1: 5}
    assert pods_of(store, "svc7") == {2: 3}
    assert pods_of(store, "svc9") == {1: 3}
    assert all(pods_of(store, f"svc{i}") == {1: 3} for i in (0, 1, 2, 4, 5, 6, 8, 10, 11))
    # A service deleted among many goes, its pods first.
    with store.session() as s:
        s.scalars(select(Service).where(Service.name == "svc5")).one().deleting = True
    settle_noted(store, noted, passes=4)
    with store.session() as s:
        assert s.scalars(select(Service).where(Service.name == "svc5")).first() is None
        assert len(list(s.scalars(select(Service)))) == 11


def test_a_full_pass_repairs_a_change_no_commit_noted(
    store: Store, noted: Controllers, tmp_path: Path
) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=16, mem=32)
        for i in range(5):
            add_service(s, f"svc{i}", 2)
    engine_pass(store, noted, full=True)
    settle_noted(store, noted, passes=5)
    # Another process (no listener of this engine) scales svc2 and removes a pod of svc4.
    other = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with other.session() as s:
            s.scalars(select(Service).where(Service.name == "svc2")).one().replicas = 4
            svc4 = s.scalars(select(Service).where(Service.name == "svc4")).one()
            s.delete(live(s, svc4)[0])
    finally:
        other.dispose()
    # Passes of noted changes do not see it (nothing was noted)...
    settle_noted(store, noted, passes=3)
    assert pods_of(store, "svc2") == {1: 2} and pods_of(store, "svc4") == {1: 1}
    # ...the full pass (the engine's periodic resync) does.
    engine_pass(store, noted, full=True)
    settle_noted(store, noted)
    assert pods_of(store, "svc2") == {1: 4} and pods_of(store, "svc4") == {1: 2}


def test_a_service_due_is_reconciled_without_a_change(store: Store, noted: Controllers) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=16, mem=32)
        add_service(s, "web", 1, minReadySeconds=1)
        add_service(s, "other", 1)
    engine_pass(store, noted, full=True)
    settle_noted(store, noted, passes=3)
    with store.session() as s:
        set_image(s.scalars(select(Service).where(Service.name == "web")).one(), "nginx:2")
    engine_pass(store, noted)  # the surge pod
    with store.session() as s:
        for pod in s.scalars(select(Pod).where(Pod.node_id.is_not(None))):
            if not pod.status.get("ready"):  # ready now: available in a second
                pod.status = {"reason": "Running", "ready": True, "containers": []}
                pod.ready_since = utcnow()
    due = engine_pass(store, noted)
    assert 0 < due <= 1 and pods_of(store, "web") == {1: 1, 2: 1}
    time.sleep(due + 0.05)
    # Nothing changed since: the pass reconciles the service because it is due.
    engine_pass(store, noted)
    agents(store)
    assert pods_of(store, "web") == {2: 1}


def test_a_failed_pass_leaves_its_work_to_a_full_one(store: Store, noted: Controllers) -> None:
    with store.session() as s:
        add_node(s, "a", cpu=16, mem=32)
        add_service(s, "web", 1)
    engine_pass(store, noted, full=True)
    settle_noted(store, noted, passes=3)
    with store.session() as s:
        s.scalars(select(Service).where(Service.name == "web")).one().replicas = 3
    with pytest.raises(RuntimeError), store.session() as s:
        noted.run(s, CLUSTER, False, lambda: math.inf)
        raise RuntimeError("the pass's commit fails")
    engine_pass(store, noted)
    assert pods_of(store, "web") == {1: 3}


# --- autoscaler ----------------------------------------------------------------------------
def unit_services(store: Store, settings: Settings) -> Services:
    """The services a component needs, on the test's database, with nothing started."""
    return Services(
        settings=settings,
        store=store,
        box=SecretBox.from_data_dir(settings.data_dir),
        registry=Registry(),
        replay=ReplayGuard(store, settings.timestamp_window, settings.nonce_memory_per_key),
        tasks=TaskRunner(store),
    )


@pytest.fixture
def autoscaler(store: Store, tmp_path: Path) -> Iterator[Autoscaler]:
    """The cluster autoscaler on the test's database; a document minute is no time at all,
    so the delays under test are the rules, not the clock. Tasks are made, never run."""
    settings = Settings(data_dir=tmp_path / "data", asg_minute_seconds=0.0)
    services = unit_services(store, settings)
    yield Autoscaler(services, rng=random.Random(7))


def add_group(s: Session, gid: str, min_size: int = 0, max_size: int = 3, cpu: int = 2) -> None:
    s.add(
        ClusterAsg(
            id=gid,
            account_id=1,
            cluster_id=CLUSTER,
            name=gid,
            launch_config_id=f"asc-{gid[4:]}",
            launch_config_name=gid,
            status="enabled",
            min_size=min_size,
            max_size=max_size,
            desired_capacity=min_size,
            labels={"pool": gid},
            launch={
                "zone": "ap-guangzhou-3",
                "subnet_id": "subnet-unit0001",
                "instance_type": f"S2.X{cpu}",
                "cpu": cpu,
                "mem": 4,
            },
        )
    )
    s.flush()


def add_pod(s: Session, name: str, cpu: int, node: str | None = None) -> Pod:
    pod = Pod(
        uid=name,
        account_id=1,
        cluster_id=CLUSTER,
        namespace="default",
        name=name,
        service_id=None,
        template={"containers": [container(cpu=cpu)]},
        node_id=node,
        status={"reason": "Running" if node else "Unschedulable", "ready": bool(node)},
    )
    s.add(pod)
    s.flush()
    return pod


def group_nodes(s: Session, gid: str) -> list[Instance]:
    return list(s.scalars(select(Instance).where(Instance.autoscaling_group_id == gid)))


def test_a_pod_no_node_can_take_scales_a_group_up_once(
    store: Store, autoscaler: Autoscaler
) -> None:
    with store.session() as s:
        add_node(s, "a")
        add_pod(s, "busy", 1800, node="ins-a")
        add_group(s, "asg-small001")
        waiting = add_pod(s, "waiting", 1500)
        tasks = autoscaler._cluster_pass(s, CLUSTER, set())
        assert len(tasks) == 1
        new = group_nodes(s, "asg-small001")
        assert [(n.state, n.task_id, n.labels.get("pool")) for n in new] == [
            ("Creating", tasks[0], "asg-small001")
        ]
        assert s.get(ClusterAsg, "asg-small001").desired_capacity == 1  # type: ignore[union-attr]
        triggered = events(s, "TriggeredScaleUp")
        assert [e.obj_name for e in triggered] == [waiting.name]
        assert "{asg-small001 0->1 (max: 3)}" in triggered[0].message
        # The machine being made will take the pod: the next pass asks for no other.
        assert autoscaler._cluster_pass(s, CLUSTER, set()) == []
        assert len(group_nodes(s, "asg-small001")) == 1


def test_a_pod_too_big_for_every_group_triggers_nothing_and_says_why(
    store: Store, autoscaler: Autoscaler
) -> None:
    with store.session() as s:
        add_node(s, "a")
        add_group(s, "asg-small001", cpu=2)
        huge = add_pod(s, "huge", 6000)
        assert autoscaler._cluster_pass(s, CLUSTER, set()) == []
        assert group_nodes(s, "asg-small001") == []
        [why] = events(s, "NotTriggerScaleUp")
        assert why.obj_name == huge.name
        assert why.message.startswith(
            "pod didn't trigger scale-up (it wouldn't fit if a new node is added):"
        )
        assert "Insufficient cpu" in why.message


def test_a_group_at_its_maximum_does_not_grow(store: Store, autoscaler: Autoscaler) -> None:
    with store.session() as s:
        add_group(s, "asg-small001", max_size=1)
        add_node(s, "g1", autoscaling_group_id="asg-small001")
        add_pod(s, "busy", 1800, node="ins-g1")
        add_pod(s, "waiting", 1500)
        assert autoscaler._cluster_pass(s, CLUSTER, set()) == []
        [why] = events(s, "NotTriggerScaleUp")
        assert "max node group size reached" in why.message


def test_an_empty_group_node_goes_once_unneeded_but_not_below_min_size(
    store: Store, autoscaler: Autoscaler
) -> None:
    with store.session() as s:
        add_node(s, "a")
        add_group(s, "asg-small001", min_size=1, max_size=3)
        add_node(s, "g1", autoscaling_group_id="asg-small001")
        add_node(s, "g2", autoscaling_group_id="asg-small001")
        add_pod(s, "busy", 1500, node="ins-g1")
        st = asg_domain.settings_of(s, CLUSTER)
        # Scale-down off (the default): nothing goes.
        assert not st.scale_down_enabled
        assert autoscaler._cluster_pass(s, CLUSTER, set()) == []
        st.scale_down_enabled = True
        tasks = autoscaler._cluster_pass(s, CLUSTER, set())
        assert len(tasks) == 1
        [empty] = [e.message for e in events(s, "ScaleDownEmpty")]
        assert "(ins-g2, empty)" in empty
        g2 = s.get(Instance, "ins-g2")
        assert g2 is not None and [e.obj_name for e in events(s, "ScaleDown")] == [g2.lan_ip]
        # g1 is busy and the group is at its minimum once g2 goes: the next pass waits for
        # the scale-in to finish, and then keeps g1.
        assert autoscaler._cluster_pass(s, CLUSTER, set()) == []


# --- which commits wake which machines' agents (engine generations) ------------------------
@pytest.fixture
def engine(store: Store, tmp_path: Path) -> Iterator[Engine]:
    """The engine following the test database's commits, its passes not started."""
    settings = Settings(data_dir=tmp_path / "data")
    services = unit_services(store, settings)
    eng = Engine(services)
    eng.follow_commits()
    yield eng
    eng.follow_commits(False)


def test_a_commit_moves_the_generation_of_the_machines_whose_pods_it_changes(
    store: Store, engine: Engine
) -> None:
    nodes = ("ins-a", "ins-b", "ins-c")

    def moved(since: dict[str, Any]) -> set[str]:
        """The machines whose generation moved since `since`; `since` is brought up to date."""
        now = {n: engine.machine_generation(CLUSTER, n) for n in nodes}
        out = {n for n in nodes if now[n] != since.get(n)}
        since.update(now)
        return out

    seen: dict[str, Any] = {}
    with store.session() as s:
        for name in ("a", "b", "c"):
            add_node(s, name)
    assert moved(seen) == set(nodes)  # their rows
    cluster_before = engine.generation(CLUSTER)

    # A service and its pending pod: the controllers' business, no agent's.
    with store.session() as s:
        svc = add_service(s, "web", 1)
        pod = add_pod(s, "web-1", 100)
        pod.service_id = svc.id
    assert moved(seen) == set()
    assert engine.generation(CLUSTER) != cluster_before

    with store.session() as s:
        pod = s.scalars(select(Pod)).one()
        pod.node_id = "ins-a"  # scheduled
    assert moved(seen) == {"ins-a"}
    with store.session() as s:
        s.scalars(select(Pod)).one().status = {"reason": "Running", "ready": True}
    assert moved(seen) == {"ins-a"}
    with store.session() as s:
        s.scalars(select(Pod)).one().node_id = "ins-b"  # where it was and where it is
    assert moved(seen) == {"ins-a", "ins-b"}
    with store.session() as s:
        pod = s.scalars(select(Pod)).one()
        s.expire(pod, ["node_id"])
        pod.node_id = "ins-c"  # where it was is not known: every machine
    assert moved(seen) == set(nodes)

    # A machine's row: that machine; the cluster's row: every machine.
    with store.session() as s:
        node = s.get(Instance, "ins-b")
        assert node is not None
        node.labels = {"side": "b"}
    assert moved(seen) == {"ins-b"}
    with store.session() as s:
        cluster = s.get(Cluster, CLUSTER)
        assert cluster is not None
        cluster.description = "changed"
    assert moved(seen) == set(nodes)

    # A transaction rolled back moves nothing; a pod deleted moves its machine.
    with pytest.raises(RuntimeError), store.session() as s:
        s.scalars(select(Pod)).one().status = {"reason": "gone"}
        s.flush()
        raise RuntimeError("rolled back")
    assert moved(seen) == set()
    with store.session() as s:
        s.delete(s.scalars(select(Pod)).one())
    assert moved(seen) == {"ins-c"}

    # An UPDATE statement (its rows not known): every machine.
    with store.session() as s:
        s.execute(update(Pod).where(Pod.cluster_id == CLUSTER).values(deleting=True))
    assert moved(seen) == set(nodes)


def pulled() -> Event:
    return Event(
        cluster_id=CLUSTER, namespace="default", obj_type="Pod", obj_name="web-1",
        reason="Pulled", message="pulled",
    )  # fmt: skip


def test_commits_of_rows_no_pass_reads_move_no_generation(store: Store, engine: Engine) -> None:
    with store.session() as s:
        add_node(s, "a")
        add_pod(s, "web-1", 100, node="ins-a")

    def generations() -> tuple[Any, ...]:
        return engine.generation(CLUSTER), engine.machine_generation(CLUSTER, "ins-a")

    before = generations()
    # A read, an event of the cluster, an account's row: no pass has anything to do.
    with store.session() as s:
        assert s.scalars(select(Pod)).one().node_id == "ins-a"
    with store.session() as s:
        s.add(pulled())
    with store.session() as s:
        account = s.get(Account, 1)
        assert account is not None
        account.name = "renamed"
    assert generations() == before
    # A pod loaded in the same transactions but not changed neither.
    with store.session() as s:
        pod = s.scalars(select(Pod)).one()
        pod.status = dict(pod.status)  # the same value: not modified
        s.add(pulled())
    assert generations() == before


def test_a_pod_deleted_after_its_columns_expired_moves_its_machine(
    store: Store, engine: Engine
) -> None:
    with store.session() as s:
        for name in ("a", "b"):
            add_node(s, name)
        add_pod(s, "web-1", 100, node="ins-a")
    before = {n: engine.machine_generation(CLUSTER, n) for n in ("ins-a", "ins-b")}
    with store.session() as s:
        pod = s.scalars(select(Pod)).one()
        s.expire(pod)  # the note is taken after the row is gone
        s.delete(pod)
    after = {n: engine.machine_generation(CLUSTER, n) for n in ("ins-a", "ins-b")}
    assert after["ins-a"] != before["ins-a"] and after["ins-b"] == before["ins-b"]


def test_the_engine_hands_its_controllers_the_services_a_commit_touched(
    store: Store, engine: Engine, tmp_path: Path
) -> None:
    ctl = engine._controllers  # fed by the engine's listeners alone
    with store.session() as s:
        add_node(s, "a", cpu=16, mem=32)
        for i in range(3):
            add_service(s, f"svc{i}", 1)
    engine_pass(store, ctl, full=True)
    settle_noted(store, ctl, passes=3)
    # svc1 scales through this engine's sessions, svc2 in another process (not noted).
    with store.session() as s:
        s.scalars(select(Service).where(Service.name == "svc1")).one().replicas = 2
    other = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with other.session() as s:
            s.scalars(select(Service).where(Service.name == "svc2")).one().replicas = 2
    finally:
        other.dispose()
    settle_noted(store, ctl, passes=3)
    assert pods_of(store, "svc1") == {1: 2}
    assert pods_of(store, "svc2") == {1: 1}
