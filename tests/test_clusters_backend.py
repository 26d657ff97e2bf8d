"""The clusters backend's rules on a real database without machines: what a cluster and its
nodes may become, which machines may join, and the tasks a change declares on its Work (the
runner is never handed them here, so no machine is made). The end-to-end tests
(test_clusters.py, test_cluster_input.py, test_kube.py) prove the same through the v2 wire
with machines."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import openccs.kube.component  # noqa: F401  (registers the kube.vip task, as the server does)
from openccs.backends import Work
from openccs.backends import clusters as backend
from openccs.domain import accounts, cloud
from openccs.domain import clusters as dom
from openccs.errors import ApiError
from openccs.server import Services
from openccs.store.models import Cluster, Instance, K8sNamespace, Pod, Task, Vpc

ZONE3 = "ap-guangzhou-3"


@dataclasses.dataclass
class Tenant:
    account_id: int
    vpc_id: str
    subnet_id: str  # in zone 3
    other_zone_subnet_id: str  # in zone 4


@pytest.fixture
def tenant(services: Services) -> Tenant:
    with services.store.session() as s:
        acct = accounts.create_account(s)
        vpc = cloud.create_vpc(s, acct.id, "10.20.0.0/16")
        sub3 = cloud.create_subnet(s, services.settings, vpc, "10.20.1.0/24", ZONE3)
        sub4 = cloud.create_subnet(s, services.settings, vpc, "10.20.2.0/24", "ap-guangzhou-4")
        return Tenant(acct.id, vpc.id, sub3.id, sub4.id)


@contextmanager
def work(services: Services, t: Tenant) -> Iterator[Work]:
    """A unit of work as a front end opens it: committed when the block ends, rolled back
    when it raises (a session without a context-managed transaction, so that
    `Work.outside()` may end the reading one)."""
    with services.store.sessions() as s:
        try:
            yield Work(s, t.account_id, services)
            s.commit()
        except BaseException:
            s.rollback()
            raise


def machines(t: Tenant, **more: Any) -> backend.NewMachines:
    fields: dict[str, Any] = {"zone": 100003, "subnet_id": t.subnet_id, "cpu": 1, "mem": 1}
    return backend.NewMachines(**{**fields, "count": 2, **more})


def new_cluster(t: Tenant, **more: Any) -> backend.NewCluster:
    fields = {"name": "unit", "vpc_id": t.vpc_id, "cidr": "172.18.0.0/16", "os_name": "ubuntu"}
    return backend.NewCluster(**{**fields, **more})


def running_cluster(services: Services, t: Tenant, **more: Any) -> str:
    """A cluster made through the backend and marked Running (as its task would)."""
    with work(services, t) as w:
        made = backend.create_cluster(w, new_cluster(t, **more), None)
        cluster = w.db.get(Cluster, made.cluster_id)
        assert cluster is not None
        cluster.status = "Running"
        return made.cluster_id


def count(s: Session, model: Any) -> int:
    return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_new_cluster_declares_one_task_for_its_machines(
    services: Services, tenant: Tenant
) -> None:
    settings = backend.MachineSettings(root_size=30, storage_size=10, sg_id="sg-1")
    with work(services, tenant) as w:
        made = backend.create_cluster(w, new_cluster(tenant), machines(tenant, settings=settings))
        assert w.effects.tasks == [made.task_id]
        cluster = w.db.get(Cluster, made.cluster_id)
        assert cluster is not None and cluster.status == "Creating"
        nodes = dom.cluster_nodes(w.db, cluster.id)
        assert len(nodes) == 2
        assert {n.task_id for n in nodes} == {made.task_id}
        assert all(n.state == "Creating" and n.zone == ZONE3 for n in nodes)
        assert len({n.pod_cidr for n in nodes}) == 2
        # The machine keeps what it was asked for, in the document's names.
        assert nodes[0].settings["rootSize"] == 30
        assert nodes[0].settings["storageSize"] == 10
        assert nodes[0].settings["sgId"] == "sg-1"
        assert nodes[0].settings["cvmType"] == "PayByHour"
        names = set(w.db.scalars(select(K8sNamespace.name)))
        assert {"default", "kube-system"} <= names
        task = w.db.get(Task, made.task_id)
        assert task is not None and task.type == "cluster.create"


@pytest.mark.parametrize(
    ("more", "field"),
    [
        ({"settings": backend.MachineSettings(cvm_type="PayByMonth")}, "period"),
        ({"password": "Secret123!", "key_id": "skey-abcdefgh"}, "keyId"),
        ({"zone": "nowhere"}, "zoneId"),
        ({"user_script": "not base64!"}, "userScript"),
        ({"subnet_id": "OTHER"}, "subnetId"),  # a subnet of zone 4 for a machine of zone 3
    ],
)
def test_a_cluster_whose_machines_are_refused_is_not_made(
    services: Services, tenant: Tenant, more: dict[str, Any], field: str
) -> None:
    if more.get("subnet_id") == "OTHER":
        more = {**more, "subnet_id": tenant.other_zone_subnet_id}
    # (A front end runs a Work's effects only once its transaction commits.)
    with pytest.raises(ApiError) as err, work(services, tenant) as w:
        backend.create_cluster(w, new_cluster(tenant), machines(tenant, **more))
    assert err.value.code == 4000
    assert field in err.value.message
    with services.store.session() as s:  # the failed call's transaction was rolled back
        assert count(s, Cluster) == 0 and count(s, Instance) == 0


def test_the_node_quota_is_checked_before_anything_is_made(
    services: Services, tenant: Tenant
) -> None:
    with work(services, tenant) as w:
        accounts.set_quota(w.db, tenant.account_id, "nodesPerCluster", 1)
        with pytest.raises(ApiError) as err:
            backend.create_cluster(w, new_cluster(tenant), machines(tenant, count=2))
        assert (err.value.code, err.value.code_desc) == (4400, "QuotaExceeded")
        assert count(w.db, Cluster) == 0


def test_nodes_join_a_running_cluster_only(services: Services, tenant: Tenant) -> None:
    with work(services, tenant) as w:
        creating = backend.create_cluster(w, new_cluster(tenant), None).cluster_id
        with pytest.raises(ApiError) as err:
            backend.add_instances(w, creating, machines(tenant))
        assert err.value.code_desc == "ClusterStateError"
        assert "needs it to be Running" in err.value.message
    empty = running_cluster(services, tenant, cidr="172.19.0.0/16", os_name="")
    with work(services, tenant) as w:
        with pytest.raises(ApiError, match="osName"):
            backend.add_instances(w, empty, machines(tenant))
        added = backend.add_instances(w, empty, machines(tenant), os_name="centos", description="d")
        assert w.effects.tasks == [added.task_id]
        cluster = w.db.get(Cluster, empty)
        assert cluster is not None
        assert (cluster.status, cluster.os_name, cluster.description) == ("Scaling", "centos", "d")
        assert [n.id for n in backend.nodes(w, empty)] == added.instance_ids
        assert [n.id for n in backend.nodes(w, empty, added.instance_ids[1:])] == (
            added.instance_ids[1:]
        )


def _machine(w: Work, t: Tenant, **more: Any) -> str:
    """A machine of the tenant's VPC, Running, outside any cluster unless `more` says."""
    vpc = w.db.get(Vpc, t.vpc_id)
    assert vpc is not None
    req = dom.MachineRequest(
        zone=ZONE3, subnet_id=t.subnet_id, instance_type="S2.SMALL1", cpu=1, mem=1, os_name="x"
    )
    [ins] = dom.new_instances(w.db, w.services.settings, t.account_id, vpc, req, 1, None, None)
    for k, v in {"state": "Running", "is_normal": True, **more}.items():
        setattr(ins, k, v)
    return ins.id


def test_existing_machines_join_with_their_reasons_or_nothing_changes(
    services: Services, tenant: Tenant
) -> None:
    cluster_id = running_cluster(services, tenant, os_name="")
    with work(services, tenant) as w:
        free = _machine(w, tenant)
        stopped = _machine(w, tenant, state="Creating")
        other = accounts.create_account(w.db).id
        foreign = _machine(w, tenant, account_id=other)
        candidates = backend.existing_candidates(w, cluster_id)
        reasons = {c.instance.id: c.reason for c in candidates}
        assert reasons[free] == "" and reasons[stopped] == "cvm status error"
        assert foreign not in reasons  # another account's machine does not exist

        refused = backend.ExistingMachines([stopped, foreign], os_name="ubuntu")
        done = backend.add_existing(w, cluster_id, refused)
        assert done.task_id is None and done.joined == []
        assert [(f.instance_id, f.message) for f in done.failed] == [
            (stopped, "cvm status error"),
            (foreign, "instance does not exist"),
        ]
        assert w.effects.tasks == []
        cluster = w.db.get(Cluster, cluster_id)
        assert cluster is not None and cluster.os_name == "" and cluster.status == "Running"
        assert count(w.db, Task) == 1  # the cluster's own creation task only

        done = backend.add_existing(
            w, cluster_id, backend.ExistingMachines([free, free, stopped], os_name="ubuntu")
        )
        assert done.joined == [free] and [f.instance_id for f in done.failed] == [stopped]
        assert w.effects.tasks == [done.task_id]
        ins = w.db.get(Instance, free)
        assert ins is not None and ins.cluster_id == cluster_id and ins.task_id == done.task_id
        assert ins.settings["reinstall"] is True and ins.os_name == "ubuntu"
        assert cluster.status == "Scaling"
        reasons = {c.instance.id: c.reason for c in backend.existing_candidates(w, cluster_id)}
        assert reasons[free] == "already in Cluster"


def test_nodes_are_labelled_cordoned_drained_and_deleted_by_their_rules(
    services: Services, tenant: Tenant
) -> None:
    cluster_id = running_cluster(services, tenant)
    other_id = running_cluster(services, tenant, cidr="172.19.0.0/16")
    with work(services, tenant) as w:
        cluster = w.db.get(Cluster, cluster_id)
        assert cluster is not None
        a, b = _machine(w, tenant, cluster_id=cluster_id), _machine(w, tenant)
        elsewhere = _machine(w, tenant, cluster_id=other_id)
        backend.label_node(w, cluster_id, a, [("role", "web"), ("tier", "1"), ("role", "db")])
        node = w.db.get(Instance, a)
        assert node is not None and node.labels["role"] == "db" and node.labels["tier"] == "1"
        with pytest.raises(ApiError) as err:
            backend.label_node(w, cluster_id, b, [("x", "y")])  # not a node of the cluster
        assert err.value.code == 5000

        pod = Pod(
            uid="00000000-0000-0000-0000-00000000unit",
            account_id=tenant.account_id,
            cluster_id=cluster_id,
            namespace="default",
            name="web-1",
            node_id=a,
            template={"containers": [{"cpu": 250, "cpuLimits": 500, "memory": 256}]},
            status={},
        )
        w.db.add(pod)
        w.db.flush()
        limits = backend.request_limits(w, cluster_id)
        assert limits.total == backend.Resources(0.25, 0.5, 0.25, 0.0)
        assert limits.nodes[node.lan_ip] == limits.total

        dry = backend.drain_node(w, cluster_id, a, dry_run=True)
        assert [p.name for p in dry.pods] == ["web-1"] and not node.unschedulable
        done = backend.drain_node(w, cluster_id, a, dry_run=False)
        assert [p.name for p in done.pods] == ["web-1"] and pod.deleting
        assert (node.unschedulable, node.drain_status) == (True, "drained")
        backend.set_schedulable(w, cluster_id, [a], unschedulable=False)
        assert (node.unschedulable, node.drain_status) == (False, "")

        with pytest.raises(ApiError) as err:
            backend.delete_instances(w, cluster_id, [a, elsewhere], "Return")
        assert err.value.code == 5000 and "instanceIds" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.delete_instances(w, cluster_id, [a, a], "Return")
        assert err.value.code == 4000
        assert w.effects.tasks == [] and cluster.status == "Running"
        task_id = backend.delete_instances(w, cluster_id, [a], "RemoveOnly")
        assert w.effects.tasks == [task_id] and cluster.status == "Scaling"
        task = w.db.get(Task, task_id)
        assert task is not None and task.params["instanceIds"] == [a]
        assert task.params["mode"] == "RemoveOnly"
        # Scaling: the cluster cannot be deleted meanwhile.
        with pytest.raises(ApiError, match="DeleteCluster needs it to be Running"):
            backend.delete_cluster(w, cluster_id, "Return")


def test_a_cluster_is_described_with_what_its_nodes_say(services: Services, tenant: Tenant) -> None:
    cluster_id = running_cluster(services, tenant)
    with work(services, tenant) as w:
        [empty] = backend.clusters(w)
        assert (empty.status, empty.node_status, empty.node_num) == ("Running", "AllNormal", 0)
        a = _machine(w, tenant, cluster_id=cluster_id, is_normal=False)
        _machine(w, tenant, cluster_id=cluster_id, state="Creating")
        [x] = backend.clusters(w, [cluster_id])
        assert (x.status, x.node_status, x.node_num) == ("Abnormal", "AllAbnormal", 2)
        assert (x.cpu, x.mem) == (1, 1)  # the live node only
        assert x.external_endpoint is None
        assert backend.clusters(w, status="Running") == []
        node = w.db.get(Instance, a)
        assert node is not None
        node.is_normal = True
        [x] = backend.clusters(w, status="Running")
        assert x.node_status == "AllNormal"


def test_the_external_address_opens_and_closes_once_each(
    services: Services, tenant: Tenant
) -> None:
    cluster_id = running_cluster(services, tenant)
    with work(services, tenant) as w:
        with pytest.raises(ApiError) as err:
            backend.operate_vip(w, cluster_id, "Delete")
        assert err.value.code_desc == "ClusterVipNotExists"
        task_id = backend.operate_vip(w, cluster_id, "Create")
        assert w.effects.tasks == [task_id]
        task = w.db.get(Task, task_id)
        assert task is not None and task.type == "kube.vip"
        assert task.params == {"clusterId": cluster_id, "operation": "Create"}
        with pytest.raises(ApiError) as err:
            backend.operate_vip(w, cluster_id, "Create")
        assert err.value.code_desc == "ClusterVipExists"
        backend.operate_vip(w, cluster_id, "Delete")
        cluster = w.db.get(Cluster, cluster_id)
        assert cluster is not None
        cluster.status = "Deleting"
        with pytest.raises(ApiError, match="is Deleting"):
            backend.operate_vip(w, cluster_id, "Create")


def test_the_security_info_picks_its_port_outside_the_transaction_once(
    services: Services, tenant: Tenant
) -> None:
    cluster_id = running_cluster(services, tenant)
    with work(services, tenant) as w:
        first = backend.security_info(w, cluster_id)
    with work(services, tenant) as w:
        again = backend.security_info(w, cluster_id)
        # No port to pick the second time: the call stays in one transaction.
        assert w.db.in_transaction()
    assert first == again
    assert first.user == "admin" and len(first.password) >= 32
    assert first.ca_cert.startswith("-----BEGIN CERTIFICATE-----")
    assert first.internal_url.startswith("https://10.20.1.1:")
    assert first.external_url is None
    with work(services, tenant) as w, pytest.raises(ApiError) as err:
        other = dataclasses.replace(tenant, account_id=accounts.create_account(w.db).id)
        backend.security_info(Work(w.db, other.account_id, services), cluster_id)
    assert err.value.code == 5000
