"""Clusters and their nodes: the rules and state changes of the cluster actions.

Requests change the database in one transaction and hand long work (machines) to a task
(`openccs.domain.cluster_tasks`). Nothing here touches the host.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from openccs.config import Settings
from openccs.crypto import SecretBox
from openccs.domain import cloud, endpoints
from openccs.domain.accounts import quota
from openccs.domain.workloads import ensure_default_namespaces
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.ids import new_id
from openccs.store.models import Cluster, HubInfo, Instance, Pod, Vpc
from openccs.timeutil import utcnow

INSTANCE_TYPE_LABEL = "beta.kubernetes.io/instance-type"
MUTABLE_STATUSES = ("Running", "Isolated", "Abnormal")


@dataclass
class MachineRequest:
    """What a new machine is made of (validated)."""

    zone: str
    subnet_id: str
    instance_type: str
    cpu: int
    mem: int
    os_name: str
    password: str | None = None
    key_id: str | None = None
    user_script: str = ""
    unschedulable: bool = False
    settings: dict[str, Any] | None = None


def precondition(cluster: Cluster, allowed: tuple[str, ...], what: str) -> None:
    if cluster.status not in allowed:
        raise ApiError(
            5100,
            "ClusterStateError",
            f"cluster {cluster.id} is {cluster.status}; {what} needs it to be "
            + " or ".join(allowed),
        )


def count_nodes(s: Session, cluster_id: str) -> int:
    return int(
        s.scalar(
            select(func.count()).select_from(Instance).where(Instance.cluster_id == cluster_id)
        )
        or 0
    )


def check_node_quota(s: Session, account_id: int, cluster_id: str | None, adding: int) -> None:
    limit = quota(s, account_id, "nodesPerCluster")
    have = count_nodes(s, cluster_id) if cluster_id else 0
    if have + adding > limit:
        raise ApiError(
            4400,
            "QuotaExceeded",
            f"quota nodesPerCluster ({limit}) would be exceeded: the cluster has {have} node(s)"
            f" and {adding} were asked for",
        )


def check_goods_num(s: Session, account_id: int, goods_num: int) -> None:
    limit = quota(s, account_id, "goodsNum")
    if goods_num > limit:
        raise invalid_parameter(
            "goodsNum", f"at most {limit} machines per request (got {goods_num})"
        )


def create_cluster(
    s: Session,
    settings: Settings,
    account_id: int,
    *,
    name: str,
    description: str,
    vpc_id: str,
    cluster_cidr: str,
    ignore_conflict: bool,
    os_name: str,
    k8s_version: str,
    project_id: int,
    master_subnet_id: str | None,
    node_defaults: dict[str, Any],
) -> Cluster:
    limit = quota(s, account_id, "clusters")
    have = s.scalar(
        select(func.count()).select_from(Cluster).where(Cluster.account_id == account_id)
    )
    if (have or 0) >= limit:
        raise ApiError(
            4400, "QuotaExceeded", f"quota clusters ({limit}) reached: delete a cluster first"
        )
    vpc = cloud.get_vpc(s, account_id, vpc_id)
    if master_subnet_id:
        cloud.get_subnet(s, account_id, master_subnet_id, vpc.id, "masterSubnetId")
    net = cloud.check_cluster_cidr(s, account_id, vpc, cluster_cidr, ignore_conflict)
    cluster = Cluster(
        id=new_id("cls"),
        account_id=account_id,
        name=name,
        description=description,
        vpc_id=vpc.id,
        cidr=str(net),
        service_cidr=cloud.pick_service_cidr(s, str(net)),
        status="Creating",
        os_name=os_name,
        k8s_version=k8s_version or "1.10.5",
        project_id=project_id,
        master_subnet_id=master_subnet_id,
        node_defaults=node_defaults,
    )
    s.add(cluster)
    s.flush()
    ensure_default_namespaces(s, cluster)
    return cluster


def new_instances(
    s: Session,
    settings: Settings,
    account_id: int,
    vpc: Vpc,
    req: MachineRequest,
    count: int,
    cluster: Cluster | None,
    task_id: int | None,
) -> list[Instance]:
    """Rows for machines to be made; the task brings them up."""
    subnet = cloud.get_subnet(s, account_id, req.subnet_id, vpc.id)
    zone = cloud.resolve_zone(settings, req.zone)
    if subnet.zone != zone.name:
        raise invalid_parameter(
            "subnetId", f"subnet {subnet.id} is in {subnet.zone}, not in zone {zone.name}"
        )
    ips = cloud.allocate_lan_ips(s, subnet, count)
    pods = cloud.allocate_pod_cidrs(s, cluster, count) if cluster is not None else [None] * count
    rows = []
    for ip, pod in zip(ips, pods, strict=True):
        ins = Instance(
            id=new_id("ins"),
            account_id=account_id,
            vpc_id=vpc.id,
            subnet_id=subnet.id,
            zone=subnet.zone,
            lan_ip=ip,
            cluster_id=cluster.id if cluster else None,
            instance_type=req.instance_type,
            cpu=req.cpu,
            mem=req.mem,
            os_name=req.os_name,
            password_hash=cloud.hash_password(req.password) if req.password else "",
            key_id=req.key_id or "",
            user_script=req.user_script,
            settings=req.settings or {},
            state="Creating",
            pod_cidr=pod,
            labels={INSTANCE_TYPE_LABEL: req.instance_type},
            unschedulable=req.unschedulable,
            task_id=task_id,
        )
        ins.name = f"ccs_{cluster.id}_node" if cluster else f"cvm_{ins.id}"
        s.add(ins)
        rows.append(ins)
    s.flush()
    return rows


def adopt_existing(
    s: Session,
    cluster: Cluster,
    instance_ids: list[str],
    account_id: int,
    task_id: int,
    unschedulable: bool,
) -> tuple[list[Instance], list[dict[str, str]]]:
    """Existing CVMs of the cluster's VPC that can join it; the others with a reason."""
    ok: list[Instance] = []
    failed: list[dict[str, str]] = []
    for iid in instance_ids:
        ins = s.get(Instance, iid)
        reason = ""
        if ins is None or ins.account_id != account_id:
            reason = "instance does not exist"
        elif ins.cluster_id is not None:
            reason = "already in Cluster"
        elif ins.vpc_id != cluster.vpc_id:
            reason = "not in the cluster's VPC"
        elif ins.state not in ("Running", "Stopped"):
            reason = "cvm status error"
        if reason:
            failed.append({"instanceId": iid, "message": reason})
            continue
        assert ins is not None
        ok.append(ins)
    if ok:
        check_node_quota(s, account_id, cluster.id, len(ok))
        pods = cloud.allocate_pod_cidrs(s, cluster, len(ok))
        for ins, pod in zip(ok, pods, strict=True):
            ins.cluster_id = cluster.id
            ins.pod_cidr = pod
            ins.state = "Creating"
            ins.task_id = task_id
            ins.unschedulable = unschedulable
            ins.os_name = cluster.os_name or ins.os_name
            ins.labels = {INSTANCE_TYPE_LABEL: ins.instance_type}
            ins.name = f"ccs_{cluster.id}_node"
    return ok, failed


def cluster_nodes(s: Session, cluster_id: str) -> list[Instance]:
    return list(
        s.scalars(
            select(Instance).where(Instance.cluster_id == cluster_id).order_by(Instance.created_at)
        )
    )


def node_status(nodes: list[Instance]) -> str:
    if not nodes:
        return "AllNormal"
    normal = sum(1 for n in nodes if n.is_normal)
    if normal == len(nodes):
        return "AllNormal"
    return "AllAbnormal" if normal == 0 else "PartialAbnormal"


@dataclass(frozen=True)
class ClusterSummary:
    """What DescribeCluster and `openccs cluster ls` say of a cluster beyond its row."""

    cluster: Cluster
    vpc_num_id: int
    status: str  # the cluster's; Abnormal while it runs and every live node is abnormal
    node_num: int
    node_status: str  # AllNormal, PartialAbnormal or AllAbnormal (of the live nodes)
    cpu: int  # cores of the live (Running or Failed) nodes
    mem: int  # GiB of the live nodes
    external_endpoint: str | None  # while OperateClusterVip has it open


def summarize(
    s: Session, settings: Settings, cluster: Cluster, nodes: list[Instance] | None = None
) -> ClusterSummary:
    nodes = cluster_nodes(s, cluster.id) if nodes is None else nodes
    vpc = s.get(Vpc, cluster.vpc_id)
    live = [n for n in nodes if n.state in ("Running", "Failed")]
    status = cluster.status
    ns = node_status(live)
    if status == "Running" and live and ns == "AllAbnormal":
        status = "Abnormal"
    return ClusterSummary(
        cluster=cluster,
        vpc_num_id=vpc.num_id if vpc else 0,
        status=status,
        node_num=len(nodes),
        node_status=ns,
        cpu=sum(n.cpu for n in live),
        mem=sum(n.mem for n in live),
        external_endpoint=endpoints.external_url(s, settings, cluster.id),
    )


def touch(cluster: Cluster, status: str | None = None) -> None:
    if status is not None:
        cluster.status = status
    cluster.updated_at = utcnow()


def instances_of(
    s: Session, cluster: Cluster, instance_ids: list[str], name: str = "instanceIds"
) -> list[Instance]:
    found = []
    for iid in instance_ids:
        ins = s.get(Instance, iid)
        if ins is None or ins.cluster_id != cluster.id:
            raise ApiError(
                5000, "ResourceNotFound", f"node {iid} is not in cluster {cluster.id} ({name})"
            )
        found.append(ins)
    if len({i.id for i in found}) != len(found):
        raise invalid_parameter(name, "an instance is named twice")
    return found


def node_at(s: Session, cluster_id: str, lan_ip: str) -> Instance | None:
    """The cluster's node of that address (a Kubernetes Node's name)."""
    return s.scalars(
        select(Instance).where(Instance.cluster_id == cluster_id, Instance.lan_ip == lan_ip)
    ).first()


def set_schedulable(node: Instance, unschedulable: bool) -> None:
    """Cordon or uncordon a node; an uncordoned node is no longer draining."""
    node.unschedulable = unschedulable
    if not unschedulable:
        node.drain_status = ""


def add_hub(
    s: Session,
    box: SecretBox,
    cluster: Cluster,
    domain: str,
    username: str,
    password: str,
    namespaces: list[str],
) -> HubInfo:
    if find_hubs(s, cluster.id, domain=domain):
        raise ApiError(
            4000, "HubInfoExists", f"cluster {cluster.id} already has credentials for {domain}"
        )
    hub = HubInfo(
        id=new_id("hub"),
        account_id=cluster.account_id,
        cluster_id=cluster.id,
        domain=domain,
        username=username,
        password_enc=box.encrypt(password),
        namespaces=namespaces,
    )
    s.add(hub)
    s.flush()
    return hub


def get_node(s: Session, cluster: Cluster, instance_id: str, name: str = "instanceId") -> Instance:
    ins = s.get(Instance, instance_id)
    if ins is None or ins.cluster_id != cluster.id:
        raise not_found(f"node ({name})", instance_id)
    return ins


# --- what the actions read -----------------------------------------------------------------
CLUSTER_ORDER = ("clusterId", "clusterName", "createdAt", "updatedAt")


@functools.cache
def _clusters_query(by_ids: bool, by_name: bool, order_field: str, asc: bool) -> Select[Any]:
    """The statement for one shape of cluster listing, built once: the values are bound
    parameters, and SQLAlchemy keeps a built statement's cache key."""
    q = select(Cluster).where(Cluster.account_id == bindparam("account_id"))
    if by_ids:
        q = q.where(Cluster.id.in_(bindparam("ids", expanding=True)))
    if by_name:
        q = q.where(Cluster.name == bindparam("name"))
    col = {
        "clusterId": Cluster.id,
        "clusterName": Cluster.name,
        "createdAt": Cluster.created_at,
        "updatedAt": Cluster.updated_at,
    }[order_field]
    return q.order_by(col.asc() if asc else col.desc(), Cluster.id)


def list_clusters(
    s: Session,
    account_id: int,
    ids: list[str],
    name: str | None,
    order_field: str = "createdAt",
    asc: bool = False,
) -> list[Cluster]:
    q = _clusters_query(bool(ids), bool(name), order_field, asc)
    return list(s.scalars(q, {"account_id": account_id, "ids": ids, "name": name}))


def vpc_instances(
    s: Session,
    account_id: int,
    vpc_id: str,
    ids: list[str],
    name: str | None,
    ip: str | None,
) -> list[Instance]:
    """The account's machines in a VPC (the candidates to add to a cluster of it)."""
    q = select(Instance).where(Instance.account_id == account_id, Instance.vpc_id == vpc_id)
    if ids:
        q = q.where(Instance.id.in_(ids))
    if name:
        q = q.where(Instance.name.contains(name))
    if ip:
        q = q.where(Instance.lan_ip.contains(ip))
    return list(s.scalars(q.order_by(Instance.created_at)))


def vpc_of(s: Session, cluster: Cluster) -> Vpc:
    vpc = s.get(Vpc, cluster.vpc_id)
    assert vpc is not None
    return vpc


def find_hubs(
    s: Session,
    cluster_id: str,
    hub_id: str | None = None,
    domain: str | None = None,
    username: str | None = None,
) -> list[HubInfo]:
    q = select(HubInfo).where(HubInfo.cluster_id == cluster_id)
    if hub_id:
        q = q.where(HubInfo.id == hub_id)
    if domain:
        q = q.where(HubInfo.domain == domain)
    if username:
        q = q.where(HubInfo.username == username)
    return list(s.scalars(q.order_by(HubInfo.created_at)))


def node_pods(s: Session, node_id: str) -> list[Pod]:
    """The pods on a node that are not being deleted."""
    return list(s.scalars(select(Pod).where(Pod.node_id == node_id, Pod.deleting.is_(False))))


def drain_node(s: Session, node: Instance) -> list[Pod]:
    """Cordon the node and evict its pods (their services start them elsewhere)."""
    pods = node_pods(s, node.id)
    node.unschedulable = True
    node.drain_status = "drained"
    for pod in pods:
        pod.deleting = True
    return pods
