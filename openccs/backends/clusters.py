"""The clusters backend: clusters, their nodes (machines), the machines of a VPC that may
join them, third-party registry credentials, and each cluster's Kubernetes API endpoint.

The v2 actions (`actions/cluster.py`, `actions/kube.py`) call these; the command line's
tables (`cli/clusters.py`, across accounts) read the same `domain/clusters.py` `summarize`
that DescribeCluster answers from. Inputs are typed (`NewCluster`, `NewMachines`,
`ExistingMachines`, names, numbers); answers are rows or small typed results each front end
encodes in its wire format. The rules and queries of one cluster live in
`domain/clusters.py` and `domain/cloud.py`; this module orders them into one call per
change, writes desired state, and declares the tasks that bring machines up, take them down
or open a listener on `Work.effects` (handed to the runner after the commit). Errors are
the document's (`openccs.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openccs.backends import Work
from openccs.domain import (
    cloud,
    cluster_tasks,  # noqa: F401  (registers the cluster task types)
    endpoints,
)
from openccs.domain import clusters as dom
from openccs.domain.clusters import ClusterSummary
from openccs.errors import ApiError, invalid_parameter
from openccs.ports import free_port
from openccs.store.models import Cluster, HubInfo, Instance, Pod, Subnet, Vpc
from openccs.tasks.runner import create_task

DeleteMode = Literal["RemoveOnly", "Return"]
VIP_TASK = "kube.vip"  # registered by the listeners' component (kube/component.py)


# -- typed inputs ------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineSettings:
    """How new machines are billed and what disks they get: kept on each machine as asked
    (the disk's size is its `rootSize`)."""

    cvm_type: str = "PayByHour"  # PayByHour or PayByMonth
    bandwidth_type: str = "PayByHour"
    bandwidth: int = 0
    wan_ip: int = 1
    root_size: int = 50
    root_type: str = "CLOUD_BASIC"
    storage_size: int = 0
    storage_type: str = "CLOUD_BASIC"
    sg_id: str | None = None
    mount_target: str | None = None
    docker_graph_path: str | None = None

    def stored(self) -> dict[str, Any]:
        """The shape a machine row keeps (the document's names)."""
        return {
            "cvmType": self.cvm_type,
            "bandwidthType": self.bandwidth_type,
            "bandwidth": self.bandwidth,
            "wanIp": self.wan_ip,
            "rootSize": self.root_size,
            "rootType": self.root_type,
            "storageSize": self.storage_size,
            "storageType": self.storage_type,
            "sgId": self.sg_id,
            "mountTarget": self.mount_target,
            "dockerGraphPath": self.docker_graph_path,
        }


@dataclass(frozen=True)
class NewMachines:
    """Machines to make for a cluster (CreateCluster, AddClusterInstances). The zone, the
    instance type, the login and the script are checked here, in the document's order."""

    zone: str | int  # a zone's name or number
    subnet_id: str
    cpu: int
    mem: int
    count: int
    instance_type: str | None = None
    period: int | None = None  # months, required when paid by month
    password: str | None = None
    key_id: str | None = None
    user_script: str | None = None  # base64, as given
    unschedulable: bool = False
    settings: MachineSettings = field(default_factory=MachineSettings)


@dataclass(frozen=True)
class NewCluster:
    name: str
    vpc_id: str
    cidr: str
    description: str = ""
    ignore_cidr_conflict: bool = False
    os_name: str = ""
    k8s_version: str = ""
    project_id: int = 0
    master_subnet_id: str | None = None


@dataclass(frozen=True)
class ExistingMachines:
    """Machines of the cluster's VPC to join it (AddClusterInstancesFromExistedCvm)."""

    instance_ids: Sequence[str]
    password: str | None = None
    key_id: str | None = None
    os_name: str | None = None
    unschedulable: bool = False
    user_script: str | None = None  # base64, as given


# -- typed results -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterCreated:
    cluster_id: str
    task_id: int


@dataclass(frozen=True)
class InstancesAdded:
    instance_ids: list[str]
    task_id: int


@dataclass(frozen=True)
class AdoptFailure:
    instance_id: str
    message: str


@dataclass(frozen=True)
class Adopted:
    """The machines that join (under `task_id`, None when none does) and those that cannot,
    each with its reason."""

    joined: list[str]
    failed: list[AdoptFailure]
    task_id: int | None


@dataclass(frozen=True)
class Candidate:
    """A machine of the cluster's VPC and why it cannot join ("" when it can)."""

    instance: Instance
    reason: str

    @property
    def usable(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Drained:
    node: Instance
    pods: list[Pod]  # evicted, or with a dry run those that would be


@dataclass
class Resources:
    """Requests and limits in cores and GiB."""

    cpu_request: float = 0.0
    cpu_limit: float = 0.0
    mem_request: float = 0.0
    mem_limit: float = 0.0

    def add(self, other: Resources) -> None:
        self.cpu_request += other.cpu_request
        self.cpu_limit += other.cpu_limit
        self.mem_request += other.mem_request
        self.mem_limit += other.mem_limit


@dataclass(frozen=True)
class RequestLimits:
    total: Resources
    nodes: dict[str, Resources]  # by the node's LAN address


@dataclass(frozen=True)
class SecurityInfo:
    """How to reach a cluster's Kubernetes API and as whom."""

    user: str
    password: str
    ca_cert: str
    external_url: str | None  # while OperateClusterVip has it open
    internal_url: str  # on the VPC's gateway; "" before the cluster has a subnet


# -- clusters ----------------------------------------------------------------------------


def _start(w: Work, type_name: str, cluster_id: str, **params: Any) -> int:
    """A task row for the cluster, handed to the runner after the commit."""
    task = create_task(
        w.db, w.account_id, type_name, {"clusterId": cluster_id, **params}, cluster_id
    )
    w.effects.tasks.append(task.id)
    return task.id


def _machine_request(w: Work, m: NewMachines, os_name: str) -> dom.MachineRequest:
    if m.settings.cvm_type == "PayByMonth" and m.period is None:
        raise invalid_parameter("period", "required when cvmType is PayByMonth")
    cloud.check_login(m.password, m.key_id)
    it = cloud.resolve_instance_type(m.instance_type, m.cpu, m.mem)
    zone = cloud.resolve_zone(w.services.settings, m.zone)
    return dom.MachineRequest(
        zone=zone.name,
        subnet_id=m.subnet_id,
        instance_type=it.name,
        cpu=it.cpu,
        mem=it.mem,
        os_name=os_name,
        password=m.password,
        key_id=m.key_id,
        user_script=cloud.decode_user_script(m.user_script),
        unschedulable=m.unschedulable,
        settings=m.settings.stored(),
    )


def _new_cluster(w: Work, c: NewCluster) -> Cluster:
    return dom.create_cluster(
        w.db,
        w.services.settings,
        w.account_id,
        name=c.name,
        description=c.description,
        vpc_id=c.vpc_id,
        cluster_cidr=c.cidr,
        ignore_conflict=c.ignore_cidr_conflict,
        os_name=c.os_name,
        k8s_version=c.k8s_version,
        project_id=c.project_id,
        master_subnet_id=c.master_subnet_id,
        node_defaults={},
    )


def create_cluster(w: Work, c: NewCluster, machines: NewMachines | None) -> ClusterCreated:
    """A cluster (Creating) and, unless empty, its first machines; one task brings them up."""
    if machines is None:
        cluster = _new_cluster(w, c)
        return ClusterCreated(cluster.id, _start(w, "cluster.create", cluster.id))
    s = w.db
    dom.check_goods_num(s, w.account_id, machines.count)
    dom.check_node_quota(s, w.account_id, None, machines.count)
    req = _machine_request(w, machines, c.os_name)
    cluster = _new_cluster(w, c)
    task_id = _start(w, "cluster.create", cluster.id)
    vpc = dom.vpc_of(s, cluster)
    dom.new_instances(
        s, w.services.settings, w.account_id, vpc, req, machines.count, cluster, task_id
    )
    return ClusterCreated(cluster.id, task_id)


def check_cluster_cidr(w: Work, vpc_id: str, cidr: str) -> None:
    """Whether a new cluster of the VPC may take `cidr` (and a service CIDR beside it)."""
    vpc = cloud.get_vpc(w.db, w.account_id, vpc_id)
    net = cloud.check_cluster_cidr(w.db, w.account_id, vpc, cidr, False)
    cloud.pick_service_cidr(w.db, str(net))


def clusters(
    w: Work,
    ids: Sequence[str] = (),
    name: str | None = None,
    status: str | None = None,
    order_field: str = "createdAt",
    asc: bool = False,
) -> list[ClusterSummary]:
    """The account's clusters (by ids, by name, by the status they are described with)."""
    found = dom.list_clusters(w.db, w.account_id, list(ids), name, order_field, asc)
    summaries = [dom.summarize(w.db, w.services.settings, c) for c in found]
    return [x for x in summaries if x.status == status] if status else summaries


def modify_cluster(w: Work, cluster_id: str, name: str | None, description: str | None) -> None:
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    if name is not None:
        cluster.name = name
    if description is not None:
        cluster.description = description
    dom.touch(cluster)


def set_project(w: Work, cluster_id: str, project_id: int) -> None:
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    cluster.project_id = project_id
    dom.touch(cluster)


def delete_cluster(w: Work, cluster_id: str, mode: DeleteMode) -> int:
    """Deleting at once; the task removes its machines (or returns them, `mode`)."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id, lock=True)
    dom.precondition(cluster, dom.MUTABLE_STATUSES, "DeleteCluster")
    dom.touch(cluster, "Deleting")
    return _start(w, "cluster.delete", cluster.id, mode=mode)


# -- nodes -------------------------------------------------------------------------------


def add_instances(
    w: Work,
    cluster_id: str,
    machines: NewMachines,
    os_name: str | None = None,
    description: str | None = None,
) -> InstancesAdded:
    """New machines for a running cluster; the first nodes of an empty cluster name its OS."""
    s = w.db
    cluster = cloud.get_cluster(s, w.account_id, cluster_id, lock=True)
    dom.precondition(cluster, ("Running",), "AddClusterInstances")
    dom.check_goods_num(s, w.account_id, machines.count)
    dom.check_node_quota(s, w.account_id, cluster.id, machines.count)
    chosen = cluster.os_name or os_name or ""
    if not chosen:
        raise invalid_parameter("osName", "required for the first nodes of an empty cluster")
    req = _machine_request(w, machines, chosen)
    if not cluster.os_name:
        cluster.os_name = chosen
    if description is not None:
        cluster.description = description
    vpc = dom.vpc_of(s, cluster)
    task_id = _start(w, "cluster.scale_out", cluster.id)
    rows = dom.new_instances(
        s, w.services.settings, w.account_id, vpc, req, machines.count, cluster, task_id
    )
    dom.touch(cluster, "Scaling")
    return InstancesAdded([r.id for r in rows], task_id)


def add_existing(w: Work, cluster_id: str, m: ExistingMachines) -> Adopted:
    """Machines of the cluster's VPC join it (reinstalled by the task); those that cannot
    are answered with their reason, and when none can, nothing changes."""
    s = w.db
    cluster = cloud.get_cluster(s, w.account_id, cluster_id, lock=True)
    dom.precondition(cluster, ("Running",), "AddClusterInstancesFromExistedCvm")
    cloud.check_login(m.password, m.key_id)
    script = cloud.decode_user_script(m.user_script)
    os_before = cluster.os_name
    if not cluster.os_name:
        if not m.os_name:
            raise invalid_parameter("osName", "required for the first nodes of an empty cluster")
        cluster.os_name = m.os_name
    task = create_task(s, w.account_id, "cluster.scale_out", {"clusterId": cluster.id}, cluster.id)
    ok, failed = dom.adopt_existing(
        s, cluster, list(dict.fromkeys(m.instance_ids)), w.account_id, task.id, m.unschedulable
    )
    failures = [AdoptFailure(f["instanceId"], f["message"]) for f in failed]
    if not ok:
        s.delete(task)
        cluster.os_name = os_before
        return Adopted([], failures, None)
    for ins in ok:
        ins.settings = {**ins.settings, "adopted": True, "reinstall": True}
        if m.password:
            ins.password_hash = cloud.hash_password(m.password)
        ins.user_script = script
    dom.touch(cluster, "Scaling")
    w.effects.tasks.append(task.id)
    return Adopted([i.id for i in ok], failures, task.id)


def existing_candidates(
    w: Work,
    cluster_id: str,
    ids: Sequence[str] = (),
    name: str | None = None,
    ip: str | None = None,
) -> list[Candidate]:
    """The account's machines in the cluster's VPC, each with why it cannot join."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    found = dom.vpc_instances(w.db, w.account_id, cluster.vpc_id, list(ids), name, ip)
    out = []
    for ins in found:
        reason = ""
        if ins.cluster_id is not None:
            reason = "already in Cluster"
        elif ins.state != "Running":
            reason = "cvm status error"
        out.append(Candidate(ins, reason))
    return out


def nodes(w: Work, cluster_id: str, ids: Sequence[str] = ()) -> list[Instance]:
    """The cluster's nodes, oldest first (those of `ids` when given)."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    found = dom.cluster_nodes(w.db, cluster.id)
    if ids:
        wanted = set(ids)
        found = [n for n in found if n.id in wanted]
    return found


def label_node(
    w: Work, cluster_id: str, instance_id: str, labels: Sequence[tuple[str, str]]
) -> None:
    """Set labels on a node (the last of a key wins); the others stay."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    node = dom.get_node(w.db, cluster, instance_id)
    merged = dict(node.labels)
    for key, value in labels:
        merged[key] = value
    node.labels = merged


def set_schedulable(
    w: Work, cluster_id: str, instance_ids: Sequence[str], unschedulable: bool
) -> None:
    """Cordon or uncordon nodes (all of them, or none when one is not the cluster's)."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    for node in dom.instances_of(w.db, cluster, list(instance_ids)):
        dom.set_schedulable(node, unschedulable)


def delete_instances(
    w: Work, cluster_id: str, instance_ids: Sequence[str], mode: DeleteMode
) -> int:
    """Scaling at once; the task drains the nodes and removes (or returns) their machines."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id, lock=True)
    dom.precondition(cluster, dom.MUTABLE_STATUSES, "DeleteClusterInstances")
    found = dom.instances_of(w.db, cluster, list(instance_ids))
    dom.touch(cluster, "Scaling")
    return _start(w, "cluster.scale_in", cluster.id, instanceIds=[n.id for n in found], mode=mode)


def drain_node(w: Work, cluster_id: str, instance_id: str, dry_run: bool) -> Drained:
    """Cordon the node and evict its pods (their services start them elsewhere); with
    `dry_run` only say which would go. (DrainClusterNode's capitalized parameter names.)"""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id, name="ClusterId")
    node = dom.get_node(w.db, cluster, instance_id, "InstanceId")
    pods = dom.node_pods(w.db, node.id) if dry_run else dom.drain_node(w.db, node)
    return Drained(node, pods)


def request_limits(w: Work, cluster_id: str) -> RequestLimits:
    """What the pods on each node request and are limited to, in cores and GiB."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    total = Resources()
    per_node: dict[str, Resources] = {}
    for node in dom.cluster_nodes(w.db, cluster.id):
        sums = Resources()
        for pod in dom.node_pods(w.db, node.id):
            for c in pod.template.get("containers", []):
                sums.cpu_request += int(c.get("cpu") or 0) / 1000
                sums.cpu_limit += int(c.get("cpuLimits") or 0) / 1000
                sums.mem_request += int(c.get("memory") or 0) / 1024
                sums.mem_limit += int(c.get("memoryLimits") or 0) / 1024
        total.add(sums)
        per_node[node.lan_ip] = sums
    return RequestLimits(total, per_node)


# -- third-party registries --------------------------------------------------------------


def add_hub(
    w: Work,
    cluster_id: str,
    domain: str,
    username: str,
    password: str,
    namespaces: Sequence[str],
) -> HubInfo:
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    return dom.add_hub(w.db, w.services.box, cluster, domain, username, password, list(namespaces))


def hubs(
    w: Work,
    cluster_id: str,
    hub_id: str | None = None,
    domain: str | None = None,
    username: str | None = None,
) -> list[HubInfo]:
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    return dom.find_hubs(w.db, cluster.id, hub_id, domain, username)


# -- VPCs (the VPC module's two lists) ------------------------------------------------------


def vpcs(w: Work, vpc_id: str | None, name: str | None, by_name: bool, asc: bool) -> list[Vpc]:
    """The account's VPCs (by id, new or legacy; by a part of the name)."""
    return cloud.list_vpcs(w.db, w.account_id, vpc_id, name, by_name, asc)


def vpc_counts(w: Work, vpc: Vpc) -> tuple[int, int]:
    """(subnets, machines) of one of the account's VPCs."""
    return cloud.vpc_counts(w.db, vpc.id)


def subnets(
    w: Work,
    vpc_id: str | None,
    subnet_id: str | None,
    name: str | None,
    zones: Sequence[str | int],
    by_name: bool,
    asc: bool,
) -> list[tuple[Subnet, Vpc]]:
    """The account's subnets with their VPC (in zones given by name or number)."""
    settings = w.services.settings
    names = [cloud.resolve_zone(settings, z, "zoneIds").name for z in zones]
    return cloud.list_subnets(w.db, w.account_id, vpc_id, subnet_id, name, names, by_name, asc)


# -- the cluster's Kubernetes API ---------------------------------------------------------


def security_info(w: Work, cluster_id: str) -> SecurityInfo:
    """The API's credentials and addresses; the CA and the secret are made on first need,
    and the port inside the VPC is picked then (binding a socket: outside the transaction)."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    cluster_id, subnet = cluster.id, cloud.cluster_gateway_subnet(w.db, cluster)
    port: int | None = None
    if endpoints.internal_port(w.db, cluster_id) is None:
        with w.outside():
            port = free_port("0.0.0.0")
    row = endpoints.ensure_endpoint(w.db, w.services.box, cluster_id)
    if row.internal_port is None:
        row.internal_port = port
    external = endpoints.external_url(w.db, w.services.settings, cluster_id)
    internal = ""
    if subnet and row.internal_port:
        internal = endpoints.url(str(cloud.gateway_of(subnet).ip), row.internal_port)
    return SecurityInfo(
        user=endpoints.USER,
        password=w.services.box.decrypt(row.password_enc),
        ca_cert=row.ca_cert,
        external_url=external,
        internal_url=internal,
    )


def operate_vip(w: Work, cluster_id: str, operation: Literal["Create", "Delete"]) -> int:
    """Open or close the API's external address; the task makes the listener so."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id, lock=True)
    if cluster.status == "Deleting":
        raise ApiError(5100, "ClusterStateError", f"cluster {cluster.id} is Deleting")
    row = endpoints.ensure_endpoint(w.db, w.services.box, cluster.id)
    if operation == "Create" and row.external_open:
        raise ApiError(
            5100, "ClusterVipExists", f"the external address of {cluster.id} is already open"
        )
    if operation == "Delete" and not row.external_open:
        raise ApiError(
            5100, "ClusterVipNotExists", f"the external address of {cluster.id} is not open"
        )
    row.external_open = operation == "Create"
    return _start(w, VIP_TASK, cluster.id, operation=operation)
