"""DescribeClusterService and DescribeServiceInstance on a real database without machines:
what they answer for services in every state, and that they answer in as many SQL
statements for 50 services and 590 pods as for 5 and 50 (the rows are inserted as the
engine would have left them; the end-to-end tests prove the same answers with machines)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from sqlalchemy import event

from openccs.api.app import execute
from openccs.domain import accounts
from openccs.domain import workloads as wl
from openccs.domain.accounts import Caller
from openccs.server import Services
from openccs.store.models import Cluster, Instance, Pod, ReplicaSet, Service, Subnet, Vpc
from openccs.traffic.models import LoadBalancer

CLUSTER = "cls-reads001"
NODE = "ins-reads001"
T0 = datetime.datetime(2026, 11, 1, 8, 0, 0)


@pytest.fixture
def caller(services: Services) -> Caller:
    """The owner of a Running cluster with one machine (a row: nothing runs)."""
    with services.store.session() as s:
        acct = accounts.create_account(s)
        s.add(Vpc(id="vpc-reads001", num_id=1, account_id=acct.id, cidr="10.0.0.0/16"))
        s.flush()
        s.add(Subnet(id="subnet-reads001", num_id=1, vpc_id="vpc-reads001",
                     account_id=acct.id, cidr="10.0.1.0/24", zone="zone-1"))  # fmt: skip
        s.flush()
        cluster = Cluster(id=CLUSTER, account_id=acct.id, name="reads", vpc_id="vpc-reads001",
                          cidr="172.16.0.0/16", service_cidr="172.17.0.0/24",
                          status="Running")  # fmt: skip
        s.add(cluster)
        s.flush()
        s.add(Instance(id=NODE, account_id=acct.id, vpc_id="vpc-reads001",
                       subnet_id="subnet-reads001", zone="zone-1", lan_ip="10.0.1.7",
                       cluster_id=CLUSTER, instance_type="S1.SMALL1", cpu=1, mem=1,
                       state="Running"))  # fmt: skip
        wl.ensure_default_namespaces(s, cluster)
        return Caller(account_id=acct.id, app_id=acct.app_id, uin=acct.uin,
                      account_enabled=True, secret_id="", secret_key="",
                      key_enabled=True)  # fmt: skip


def _call(services: Services, caller: Caller, action: str, **params: Any) -> Any:
    entry = services.registry.lookup(action)
    flat = {k: str(v) for k, v in params.items()}
    return execute(services, "req-reads", caller, entry, flat)


def _container(name: str, status: str, reason: str = "") -> dict[str, Any]:
    return {"name": name, "containerId": f"c-{name}", "status": status, "reason": reason,
            "ready": status == "Running", "restartCount": 1, "image": "busybox:1.36"}  # fmt: skip


RUNNING = {"ip": "172.16.0.5", "ready": True, "reason": "",
           "containers": [_container("a", "Running")]}  # fmt: skip


class Filler:
    """Services, replica sets and pods as the engine leaves them."""

    def __init__(self, services: Services, account_id: int) -> None:
        self.services = services
        self.account_id = account_id
        self.minutes = 0
        self.made = 0

    def service(self, name: str, replicas: int, *, paused: bool = False) -> tuple[int, int]:
        """A service and its current replica set: their ids."""
        spec = {"containers": [{"containerName": "a", "image": "busybox:1.36"}],
                "accessType": "ClusterIP"}  # fmt: skip
        self.made += 1
        with self.services.store.session() as s:
            svc = Service(account_id=self.account_id, cluster_id=CLUSTER, namespace="default",
                          name=name, spec=spec, labels={wl.APP_LABEL: name}, replicas=replicas,
                          paused=paused, created_at=self._next())  # fmt: skip
            s.add(svc)
            s.flush()
            tmpl = wl.template_of(spec)
            rs = ReplicaSet(service_id=svc.id, revision=2, template=tmpl,
                            template_hash=wl.template_hash(tmpl), replicas=replicas)  # fmt: skip
            s.add(rs)
            s.flush()
            return svc.id, rs.id

    def old_revision(self, service_id: int) -> int:
        with self.services.store.session() as s:
            rs = ReplicaSet(service_id=service_id, revision=1, template={},
                            template_hash="0ld0ld0ld0")  # fmt: skip
            s.add(rs)
            s.flush()
            return rs.id

    def pods(
        self,
        service_id: int,
        rs_id: int,
        n: int,
        status: dict[str, Any],
        *,
        node: str | None = NODE,
        deleting: bool = False,
    ) -> list[str]:
        names = []
        with self.services.store.session() as s:
            svc = s.get(Service, service_id)
            assert svc is not None
            for _ in range(n):
                name = f"{svc.name}-{uuid.uuid4().hex[:10]}"
                s.add(Pod(uid=str(uuid.uuid4()), account_id=self.account_id, cluster_id=CLUSTER,
                          namespace="default", name=name, service_id=service_id,
                          replicaset_id=rs_id, template={}, node_id=node, status=status,
                          deleting=deleting, created_at=self._next()))  # fmt: skip
                names.append(name)
        return names

    def _next(self) -> datetime.datetime:
        self.minutes += 1
        return T0 + datetime.timedelta(minutes=self.minutes)


def test_services_are_described_in_every_state(services: Services, caller: Caller) -> None:
    fill = Filler(services, caller.account_id)
    good, good_rs = fill.service("good", 2)
    fill.pods(good, good_rs, 2, RUNNING)
    fill.pods(good, good_rs, 1, RUNNING, deleting=True)  # going: not counted
    rolling, rolling_rs = fill.service("rolling", 2)
    fill.pods(rolling, fill.old_revision(rolling), 1, RUNNING)
    fill.pods(rolling, rolling_rs, 1, RUNNING)
    crash, crash_rs = fill.service("crash", 1)
    fill.pods(crash, crash_rs, 1, {"ip": "172.16.0.9", "ready": False, "reason": "CrashLoopBackOff",
              "containers": [_container("a", "Waiting", "CrashLoopBackOff"),
                             _container("b", "Running")]})  # fmt: skip
    fill.pods(crash, crash_rs, 1, {"ready": False, "containers": [
        _container("a", "Waiting", "ErrImagePull")]}, deleting=True)  # fmt: skip
    pending, pending_rs = fill.service("pending", 3)
    fill.pods(pending, pending_rs, 1, {"reason": "Unschedulable", "containers": []}, node=None)
    fill.pods(pending, pending_rs, 1, {"reason": "ContainerCreating", "containers": []})
    fill.pods(pending, pending_rs, 1, {"reason": "Pending", "containers": []}, node=None)
    paused, paused_rs = fill.service("paused", 1, paused=True)
    fill.pods(paused, paused_rs, 1, RUNNING)
    with services.store.session() as s:
        s.add(LoadBalancer(id="lb-reads001", account_id=caller.account_id, cluster_id=CLUSTER,
                           service_id=good, network="public", vip="198.18.0.4",
                           status="Running"))  # fmt: skip

    listed = _call(services, caller, "DescribeClusterService", clusterId=CLUSTER)
    assert listed["totalCount"] == 5
    by_name = {svc["serviceName"]: svc for svc in listed["services"]}
    assert [svc["serviceName"] for svc in listed["services"]] == [
        "good", "rolling", "crash", "pending", "paused"]  # fmt: skip
    shown = {
        name: (svc["status"], svc["reasonMap"], svc["currentReplicas"], svc["desiredReplicas"])
        for name, svc in by_name.items()
    }
    assert shown == {
        "good": ("Normal", {}, 2, 2),
        "rolling": ("Updating", {}, 2, 2),
        "crash": ("Abnormal", {"CrashLoopBackOff": 1}, 0, 1),
        "pending": ("Waiting", {"Unschedulable": 1, "Pending": 1}, 0, 3),
        "paused": ("Paused", {}, 1, 1),
    }
    assert (by_name["good"]["lbId"], by_name["good"]["externalIp"]) == ("lb-reads001", "198.18.0.4")
    assert (by_name["crash"]["lbId"], by_name["crash"]["lbStatus"]) == ("", "None")
    # One service alone says the same, and its first reason is the oldest pod's.
    info = _call(services, caller, "DescribeClusterServiceInfo", clusterId=CLUSTER,
                 serviceName="pending")["service"]  # fmt: skip
    assert (info["status"], info["reasonMap"], info["reason"]) == (
        "Waiting", {"Unschedulable": 1, "Pending": 1}, "Unschedulable")  # fmt: skip


def test_instances_are_paged_oldest_first_with_their_machine(
    services: Services, caller: Caller
) -> None:
    fill = Filler(services, caller.account_id)
    web, rs = fill.service("web", 5)
    names = fill.pods(web, rs, 3, RUNNING)
    names += fill.pods(web, rs, 1, {"reason": "Unschedulable", "containers": []}, node=None)
    names += fill.pods(web, rs, 1, RUNNING, deleting=True)
    ref = {"clusterId": CLUSTER, "serviceName": "web"}
    page = _call(services, caller, "DescribeServiceInstance", **ref, offset=2, limit=2)
    assert page["totalCount"] == 5
    assert [i["name"] for i in page["instances"]] == names[2:4]
    running, unscheduled = page["instances"]
    assert (running["status"], running["nodeIp"], running["ip"]) == (
        "Running", "10.0.1.7", "172.16.0.5")  # fmt: skip
    assert (running["restartCount"], running["readyCount"]) == (1, 1)
    assert running["containers"] == [{"name": "a", "containerId": "c-a", "status": "Running",
                                      "reason": "", "image": "busybox:1.36"}]  # fmt: skip
    assert (unscheduled["status"], unscheduled["nodeIp"], unscheduled["reason"]) == (
        "Waiting", "", "Unschedulable")  # fmt: skip
    last = _call(services, caller, "DescribeServiceInstance", **ref, offset=4)
    assert [(i["name"], i["status"]) for i in last["instances"]] == [(names[4], "Terminating")]
    beyond = _call(services, caller, "DescribeServiceInstance", **ref, offset=50)
    assert (beyond["totalCount"], beyond["instances"]) == (5, [])


def _statements(services: Services, caller: Caller, action: str, **params: Any) -> int:
    """The SQL statements one call of the action runs."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    engine = services.store.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        _call(services, caller, action, **params)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def _fill(fill: Filler, services_wanted: int) -> None:
    """Services of 10 pods each: 8 Running, 1 crashing, 1 unscheduled."""
    crashing = {"ready": False, "containers": [_container("a", "Waiting", "CrashLoopBackOff")]}
    while fill.made < services_wanted:
        svc, rs = fill.service(f"s{fill.made}", 10)
        fill.pods(svc, rs, 8, RUNNING)
        fill.pods(svc, rs, 1, crashing)
        fill.pods(svc, rs, 1, {"reason": "Unschedulable", "containers": []}, node=None)


def test_statements_per_read_do_not_grow_with_services_and_pods(
    services: Services, caller: Caller
) -> None:
    fill = Filler(services, caller.account_id)
    _fill(fill, 5)
    first = {"clusterId": CLUSTER, "serviceName": "s0"}

    def counts() -> dict[str, int]:
        return {
            "list": _statements(services, caller, "DescribeClusterService", clusterId=CLUSTER),
            "all namespaces": _statements(
                services, caller, "DescribeClusterService", clusterId=CLUSTER, allnamespace=1
            ),
            "one": _statements(services, caller, "DescribeClusterServiceInfo", **first),
            "instances": _statements(services, caller, "DescribeServiceInstance", **first),
            "a page": _statements(
                services, caller, "DescribeServiceInstance", **first, offset=3, limit=5
            ),
        }

    few = counts()
    _fill(fill, 50)
    fill.pods(1, 1, 90, RUNNING)  # s0 (the first service and replica set) has 100
    with services.store.session() as s:
        assert (s.query(Service).count(), s.query(Pod).count()) == (50, 590)
    many = counts()
    assert many == few, (few, many)
    assert max(many.values()) <= 10, many
