"""Cluster actions: clusters, their nodes, third-party registries; and the VPC module's two
list actions users need to find `vpcId` and `subnetId`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator

from openccs.api.context import RequestContext
from openccs.api.envelope import TopLevel
from openccs.api.params import INT_MAX, Array, Flag, Paged, Params
from openccs.api.registry import action
from openccs.backends.inputs import ClusterId as ClusterIdParam
from openccs.backends.inputs import NodeLabel
from openccs.domain import (
    cloud,
    cluster_tasks,  # noqa: F401  (registers the task types)
)
from openccs.domain import clusters as dom
from openccs.errors import invalid_parameter
from openccs.tasks.runner import create_task
from openccs.timeutil import fmt_time

DiskType = Literal["LOCAL_BASIC", "LOCAL_SSD", "CLOUD_BASIC", "CLOUD_PREMIUM", "CLOUD_SSD"]
RenewFlag = Literal[
    "NOTIFY_AND_AUTO_RENEW", "NOTIFY_AND_MANUAL_RENEW", "DISABLE_NOTIFY_AND_MANUAL_RENEW"
]
NAME = Field(min_length=1, max_length=50, pattern=r"^[^\s].*$")


class MachineParams(Params):
    """The machine settings CreateCluster and AddClusterInstances share."""

    zoneId: str
    cpu: int = Field(ge=1, le=64)
    mem: int = Field(ge=1, le=512)
    instanceType: str | None = None
    cvmType: Literal["PayByHour", "PayByMonth"] = "PayByHour"
    renewFlag: RenewFlag = "NOTIFY_AND_AUTO_RENEW"
    bandwidthType: Literal["PayByHour", "PayByTraffic", "PayByMonth"]
    bandwidth: int = Field(ge=0, le=1000)
    wanIp: Flag = 1
    subnetId: str
    isVpcGateway: Flag
    rootSize: int = Field(ge=20, le=50)
    rootType: DiskType = "CLOUD_BASIC"
    storageSize: int = Field(ge=0, le=16000)
    storageType: DiskType = "CLOUD_BASIC"
    goodsNum: int = Field(ge=1)
    password: str | None = None
    keyId: str | None = None
    period: int | None = Field(default=None, ge=1, le=36)
    sgId: str | None = None
    userScript: str | None = None
    unschedulable: int = Field(default=0, ge=0)
    mountTarget: str | None = None
    dockerGraphPath: str | None = None

    @field_validator("storageSize")
    @classmethod
    def _step_of_ten(cls, v: int) -> int:
        if v % 10:
            raise ValueError("must be a multiple of 10 (0 for no data disk)")
        return v


class CreateClusterParams(MachineParams):
    clusterName: str = NAME
    clusterDesc: str = Field(default="", max_length=256)
    clusterCIDR: str
    ignoreClusterCIDRConflict: Flag = 0
    osName: str = Field(min_length=1, max_length=64)
    vpcId: str = Field(validation_alias=AliasChoices("vpcId", "vpclId", "vpclid"))
    masterSubnetId: str | None = None
    clusterVersion: str = ""
    projectId: int = Field(default=0, ge=0)


class CreateEmptyClusterParams(Params):
    clusterName: str = NAME
    clusterCIDR: str
    clusterDesc: str = Field(default="", max_length=256)
    clusterVersion: str = ""
    osName: str = ""
    projectId: int = Field(default=0, ge=0)
    ignoreClusterCIDRConflict: Flag = 0
    masterSubnetId: str | None = None
    vpcId: str = Field(validation_alias=AliasChoices("vpcId", "vpclId", "vpclid"))


class AddClusterInstancesParams(MachineParams):
    clusterId: str
    clusterDesc: str | None = None
    osName: str | None = None


def _machine_request(
    s: Any, ctx: RequestContext, p: MachineParams, os_name: str
) -> dom.MachineRequest:
    if p.cvmType == "PayByMonth" and p.period is None:
        raise invalid_parameter("period", "required when cvmType is PayByMonth")
    cloud.check_login(p.password, p.keyId)
    it = cloud.resolve_instance_type(p.instanceType, p.cpu, p.mem)
    zone = cloud.resolve_zone(ctx.services.settings, p.zoneId)
    return dom.MachineRequest(
        zone=zone.name,
        subnet_id=p.subnetId,
        instance_type=it.name,
        cpu=it.cpu,
        mem=it.mem,
        os_name=os_name,
        password=p.password,
        key_id=p.keyId,
        user_script=cloud.decode_user_script(p.userScript),
        unschedulable=p.unschedulable != 0,
        settings={
            "cvmType": p.cvmType,
            "bandwidthType": p.bandwidthType,
            "bandwidth": p.bandwidth,
            "wanIp": p.wanIp,
            "rootSize": p.rootSize,
            "rootType": p.rootType,
            "storageSize": p.storageSize,
            "storageType": p.storageType,
            "sgId": p.sgId,
            "mountTarget": p.mountTarget,
            "dockerGraphPath": p.dockerGraphPath,
        },
    )


def _start(ctx: RequestContext, type_name: str, cluster_id: str, **params: Any) -> int:
    task = create_task(
        ctx.db, ctx.account_id, type_name, {"clusterId": cluster_id, **params}, cluster_id
    )
    runner = ctx.services.tasks
    task_id = task.id
    ctx.on_commit(lambda: runner.submit(task_id))
    return task_id


@action("CreateCluster", CreateClusterParams, resources=("vpcId",))
def create_cluster(ctx: RequestContext, p: CreateClusterParams) -> dict[str, Any]:
    s, settings = ctx.db, ctx.services.settings
    dom.check_goods_num(s, ctx.account_id, p.goodsNum)
    dom.check_node_quota(s, ctx.account_id, None, p.goodsNum)
    req = _machine_request(s, ctx, p, p.osName)
    cluster = dom.create_cluster(
        s,
        settings,
        ctx.account_id,
        name=p.clusterName,
        description=p.clusterDesc,
        vpc_id=p.vpcId,
        cluster_cidr=p.clusterCIDR,
        ignore_conflict=p.ignoreClusterCIDRConflict == 1,
        os_name=p.osName,
        k8s_version=p.clusterVersion,
        project_id=p.projectId,
        master_subnet_id=p.masterSubnetId,
        node_defaults={},
    )
    task_id = _start(ctx, "cluster.create", cluster.id)
    vpc = dom.vpc_of(s, cluster)
    dom.new_instances(s, settings, ctx.account_id, vpc, req, p.goodsNum, cluster, task_id)
    return {"requestId": task_id, "clusterId": cluster.id}


@action("CreateEmptyCluster", CreateEmptyClusterParams, resources=("vpcId",))
def create_empty_cluster(ctx: RequestContext, p: CreateEmptyClusterParams) -> dict[str, Any]:
    cluster = dom.create_cluster(
        ctx.db,
        ctx.services.settings,
        ctx.account_id,
        name=p.clusterName,
        description=p.clusterDesc,
        vpc_id=p.vpcId,
        cluster_cidr=p.clusterCIDR,
        ignore_conflict=p.ignoreClusterCIDRConflict == 1,
        os_name=p.osName,
        k8s_version=p.clusterVersion,
        project_id=p.projectId,
        master_subnet_id=p.masterSubnetId,
        node_defaults={},
    )
    task_id = _start(ctx, "cluster.create", cluster.id)
    return {"requestId": task_id, "clusterId": cluster.id}


class CheckClusterCIDRParams(Params):
    vpcId: str
    clusterCIDR: str


@action("CheckClusterCIDR", CheckClusterCIDRParams, resources=("vpcId",), inline=True)
def check_cluster_cidr(ctx: RequestContext, p: CheckClusterCIDRParams) -> None:
    vpc = cloud.get_vpc(ctx.db, ctx.account_id, p.vpcId)
    net = cloud.check_cluster_cidr(ctx.db, ctx.account_id, vpc, p.clusterCIDR, False)
    cloud.pick_service_cidr(ctx.db, str(net))


@action("AddClusterInstances", AddClusterInstancesParams, resources=("clusterId",))
def add_cluster_instances(ctx: RequestContext, p: AddClusterInstancesParams) -> dict[str, Any]:
    s, settings = ctx.db, ctx.services.settings
    cluster = cloud.get_cluster(s, ctx.account_id, p.clusterId, lock=True)
    dom.precondition(cluster, ("Running",), "AddClusterInstances")
    dom.check_goods_num(s, ctx.account_id, p.goodsNum)
    dom.check_node_quota(s, ctx.account_id, cluster.id, p.goodsNum)
    os_name = cluster.os_name or p.osName or ""
    if not os_name:
        raise invalid_parameter("osName", "required for the first nodes of an empty cluster")
    req = _machine_request(s, ctx, p, os_name)
    if not cluster.os_name:
        cluster.os_name = os_name
    if p.clusterDesc is not None:
        cluster.description = p.clusterDesc
    vpc = dom.vpc_of(s, cluster)
    task_id = _start(ctx, "cluster.scale_out", cluster.id)
    rows = dom.new_instances(s, settings, ctx.account_id, vpc, req, p.goodsNum, cluster, task_id)
    dom.touch(cluster, "Scaling")
    return {"instanceIds": [r.id for r in rows], "requestId": task_id}


class AddExistedParams(Params):
    clusterId: str
    instanceIds: Array[str] = Field(min_length=1, max_length=100)
    password: str | None = None
    keyId: str | None = None
    sgId: str | None = None
    osName: str | None = None
    mountTarget: str | None = None
    dockerGraphPath: str | None = None
    unschedulable: int = Field(default=0, ge=0)
    userScript: str | None = None


@action(
    "AddClusterInstancesFromExistedCvm", AddExistedParams, resources=("clusterId", "instanceIds")
)
def add_existed(ctx: RequestContext, p: AddExistedParams) -> dict[str, Any]:
    s = ctx.db
    cluster = cloud.get_cluster(s, ctx.account_id, p.clusterId, lock=True)
    dom.precondition(cluster, ("Running",), "AddClusterInstancesFromExistedCvm")
    cloud.check_login(p.password, p.keyId)
    script = cloud.decode_user_script(p.userScript)
    if not cluster.os_name:
        if not p.osName:
            raise invalid_parameter("osName", "required for the first nodes of an empty cluster")
        cluster.os_name = p.osName
    task = create_task(
        s, ctx.account_id, "cluster.scale_out", {"clusterId": cluster.id}, cluster.id
    )
    ok, failed = dom.adopt_existing(
        s,
        cluster,
        list(dict.fromkeys(p.instanceIds)),
        ctx.account_id,
        task.id,
        p.unschedulable != 0,
    )
    for ins in ok:
        ins.settings = {**ins.settings, "adopted": True, "reinstall": True}
        if p.password:
            ins.password_hash = cloud.hash_password(p.password)
        ins.user_script = script
    if not ok:
        s.delete(task)
        return {"succInstanceIds": [], "failInstanceIds": failed}
    dom.touch(cluster, "Scaling")
    runner, task_id = ctx.services.tasks, task.id
    ctx.on_commit(lambda: runner.submit(task_id))
    return {
        "succInstanceIds": [i.id for i in ok],
        "failInstanceIds": failed or None,
        "requestId": task_id,
    }


class DescribeExistedParams(Params):
    clusterId: str
    instanceName: str | None = None
    ip: str | None = None
    instanceIds: Array[str] = []


@action("DescribeExistedCvmForAddClusterInstances", DescribeExistedParams, resources=("clusterId",))
def describe_existed(ctx: RequestContext, p: DescribeExistedParams) -> dict[str, Any]:
    s = ctx.db
    cluster = cloud.get_cluster(s, ctx.account_id, p.clusterId)
    found = dom.vpc_instances(
        s, ctx.account_id, cluster.vpc_id, p.instanceIds, p.instanceName, p.ip
    )
    devices = []
    for ins in found:
        reason = ""
        if ins.cluster_id is not None:
            reason = "already in Cluster"
        elif ins.state != "Running":
            reason = "cvm status error"
        devices.append(
            {
                "instanceName": ins.name,
                "lanIp": ins.lan_ip,
                "wanIp": "",
                "instanceId": ins.id,
                "instanceCreateTime": fmt_time(ins.created_at),
                "usable": not reason,
                "unusableReason": reason,
            }
        )
    return {"totalCount": len(devices), "deviceList": devices}


class DescribeClusterParams(Paged):
    clusterIds: Array[str] = []
    clusterName: str | None = None
    status: str | None = None
    orderField: Literal["clusterId", "clusterName", "createdAt", "updatedAt"] = "createdAt"
    orderType: Literal["asc", "desc"] = "desc"


@action("DescribeCluster", DescribeClusterParams, resources=("clusterIds",), inline=True)
def describe_cluster(ctx: RequestContext, p: DescribeClusterParams) -> dict[str, Any]:
    s, settings = ctx.db, ctx.services.settings
    clusters = dom.list_clusters(
        s, ctx.account_id, p.clusterIds, p.clusterName, p.orderField, p.orderType == "asc"
    )
    items = [dom.describe_cluster(s, settings, c) for c in clusters]
    if p.status:
        items = [c for c in items if c["status"] == p.status]
    items = [c for c in items if ctx.caller.may_use(c["clusterId"])]
    return {"totalCount": len(items), "clusters": items[p.offset : p.offset + p.limit]}


class DescribeClusterInstancesParams(Paged):
    clusterId: str
    namespace: str = "default"
    instancesId: Array[str] = Field(
        default=[], validation_alias=AliasChoices("instancesId", "instanceIds")
    )


@action(
    "DescribeClusterInstances",
    DescribeClusterInstancesParams,
    resources=("clusterId",),
    inline=True,
)
def describe_cluster_instances(
    ctx: RequestContext, p: DescribeClusterInstancesParams
) -> dict[str, Any]:
    s = ctx.db
    cluster = cloud.get_cluster(s, ctx.account_id, p.clusterId)
    nodes = dom.cluster_nodes(s, cluster.id)
    if p.instancesId:
        wanted = set(p.instancesId)
        nodes = [n for n in nodes if n.id in wanted]
    settings = ctx.services.settings
    return {
        "totalCount": len(nodes),
        "nodes": [dom.describe_node(settings, n) for n in nodes[p.offset : p.offset + p.limit]],
    }


class ModifyClusterAttributesParams(Params):
    clusterId: str
    clusterName: str | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        validation_alias=AliasChoices("clusterName", "cluserName"),
    )
    clusterDesc: str | None = Field(default=None, max_length=256)


@action("ModifyClusterAttributes", ModifyClusterAttributesParams, resources=("clusterId",))
def modify_cluster_attributes(ctx: RequestContext, p: ModifyClusterAttributesParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    if p.clusterName is not None:
        cluster.name = p.clusterName
    if p.clusterDesc is not None:
        cluster.description = p.clusterDesc
    dom.touch(cluster)


class ModifyProjectIdParams(Params):
    clusterId: str
    projectId: int = Field(ge=0)


@action("ModifyProjectId", ModifyProjectIdParams, resources=("clusterId",))
def modify_project_id(ctx: RequestContext, p: ModifyProjectIdParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    cluster.project_id = p.projectId
    dom.touch(cluster)


class ModifyClusterNodeLabelParams(Params):
    clusterId: str
    instanceId: str
    labels: Array[NodeLabel] = Field(min_length=1)


@action(
    "ModifyClusterNodeLabel", ModifyClusterNodeLabelParams, resources=("clusterId", "instanceId")
)
def modify_cluster_node_label(ctx: RequestContext, p: ModifyClusterNodeLabelParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    node = dom.get_node(ctx.db, cluster, p.instanceId)
    labels = dict(node.labels)
    for label in p.labels:
        labels[label.key] = label.value
    node.labels = labels


class ModifyClusterNodeSchedulableParams(Params):
    clusterId: ClusterIdParam
    instanceIds: Array[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=100, validation_alias=AliasChoices("instanceIds", "InstanceIds")
    )
    unschedulable: int = Field(default=0, ge=0)


@action(
    "ModifyClusterNodeSchedulable",
    ModifyClusterNodeSchedulableParams,
    resources=("clusterId", "instanceIds"),
)
def modify_cluster_node_schedulable(
    ctx: RequestContext, p: ModifyClusterNodeSchedulableParams
) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    for node in dom.instances_of(ctx.db, cluster, p.instanceIds):
        dom.set_schedulable(node, p.unschedulable != 0)


class AddHubInfoParams(Params):
    clusterId: str
    domain: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=255)
    namespaces: Array[str] = Field(
        default=[], validation_alias=AliasChoices("namespaces", "namespace")
    )


@action("AddHubInfo", AddHubInfoParams, resources=("clusterId",))
def add_hub_info(ctx: RequestContext, p: AddHubInfoParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    dom.add_hub(ctx.db, ctx.services.box, cluster, p.domain, p.username, p.password, p.namespaces)


class DescribeHubInfoParams(Paged):
    clusterId: str
    unHubId: str | None = None
    domain: str | None = None
    username: str | None = None


@action("DescribeHubInfo", DescribeHubInfoParams, resources=("clusterId",), inline=True)
def describe_hub_info(ctx: RequestContext, p: DescribeHubInfoParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    hubs = dom.find_hubs(ctx.db, cluster.id, p.unHubId, p.domain, p.username)
    return {
        "totalCount": len(hubs),
        "hubs": [
            dom.describe_hub(h, ctx.caller.app_id) for h in hubs[p.offset : p.offset + p.limit]
        ],
    }


DeleteMode = Literal["RemoveOnly", "Return"]


class DeleteClusterInstancesParams(Params):
    clusterId: str
    instanceIds: Array[str] = Field(min_length=1, max_length=100)
    nodeDeleteMode: DeleteMode = "Return"


@action(
    "DeleteClusterInstances", DeleteClusterInstancesParams, resources=("clusterId", "instanceIds")
)
def delete_cluster_instances(
    ctx: RequestContext, p: DeleteClusterInstancesParams
) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId, lock=True)
    dom.precondition(cluster, dom.MUTABLE_STATUSES, "DeleteClusterInstances")
    nodes = dom.instances_of(ctx.db, cluster, p.instanceIds)
    dom.touch(cluster, "Scaling")
    task_id = _start(
        ctx,
        "cluster.scale_in",
        cluster.id,
        instanceIds=[n.id for n in nodes],
        mode=p.nodeDeleteMode,
    )
    return {"requestId": task_id}


class DeleteClusterParams(Params):
    clusterId: str
    nodeDeleteMode: DeleteMode = "Return"


@action("DeleteCluster", DeleteClusterParams, resources=("clusterId",))
def delete_cluster(ctx: RequestContext, p: DeleteClusterParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId, lock=True)
    dom.precondition(cluster, dom.MUTABLE_STATUSES, "DeleteCluster")
    dom.touch(cluster, "Deleting")
    return {"requestId": _start(ctx, "cluster.delete", cluster.id, mode=p.nodeDeleteMode)}


# The VPC module (host vpc.api.qcloud.com): its answers carry totalCount and data at top level.


class DescribeVpcExParams(Paged):
    vpcId: str | None = None
    vpcName: str | None = Field(default=None, validation_alias=AliasChoices("vpcName", "vpnName"))
    orderField: Literal["createTime", "vpcName"] = "createTime"
    orderDirection: Literal["asc", "desc"] = "desc"


@action(
    "DescribeVpcEx",
    DescribeVpcExParams,
    host="vpc.api.qcloud.com",
    resources=("vpcId",),
    inline=True,
)
def describe_vpc_ex(ctx: RequestContext, p: DescribeVpcExParams) -> TopLevel:
    s = ctx.db
    found = cloud.list_vpcs(
        s,
        ctx.account_id,
        p.vpcId,
        p.vpcName,
        p.orderField == "vpcName",
        p.orderDirection == "asc",
    )
    # Without vpcId, a sub-account sees the VPCs its allow-list names.
    vpcs = [v for v in found if ctx.caller.may_use(v.id)]
    data = []
    for vpc in vpcs[p.offset : p.offset + p.limit]:
        subnets, devices = cloud.vpc_counts(s, vpc.id)
        data.append(
            {
                "vpcId": f"gz_vpc_{vpc.num_id}",
                "unVpcId": vpc.id,
                "vpcName": vpc.name,
                "cidrBlock": vpc.cidr,
                "subnetNum": subnets,
                "routeTableNum": 1,
                "vpnGwNum": 0,
                "vpcPeerNum": 0,
                "vpcDeviceNum": devices,
                "classicLinkNum": 0,
                "vpgNum": 0,
                "natNum": 0,
                "createTime": fmt_time(vpc.created_at),
                "isDefault": vpc.is_default,
            }
        )
    return TopLevel(totalCount=len(vpcs), data=data)


class DescribeSubnetExParams(Paged):
    vpcId: str | None = None
    subnetId: str | None = None
    subnetName: str | None = None
    zoneIds: Array[Annotated[int, Field(ge=0, le=INT_MAX)]] = []
    orderField: Literal["createTime", "subnetName"] = "createTime"
    orderDirection: Literal["asc", "desc"] = "desc"


@action(
    "DescribeSubnetEx",
    DescribeSubnetExParams,
    host="vpc.api.qcloud.com",
    resources=("vpcId",),
    inline=True,
)
def describe_subnet_ex(ctx: RequestContext, p: DescribeSubnetExParams) -> TopLevel:
    s, settings = ctx.db, ctx.services.settings
    zones = [cloud.resolve_zone(settings, z, "zoneIds").name for z in p.zoneIds]
    found = cloud.list_subnets(
        s,
        ctx.account_id,
        p.vpcId,
        p.subnetId,
        p.subnetName,
        zones,
        p.orderField == "subnetName",
        p.orderDirection == "asc",
    )
    rows = [(sub, vpc) for sub, vpc in found if ctx.caller.may_use(vpc.id)]
    data = [
        dom.subnet_entry(sub, vpc, settings) for sub, vpc in rows[p.offset : p.offset + p.limit]
    ]
    return TopLevel(totalCount=len(rows), data=data)


class DrainParams(Params):
    ClusterId: ClusterIdParam
    InstanceId: str = Field(min_length=1, max_length=64)
    DryRun: int = Field(default=1, ge=0)


@action("DrainClusterNode", DrainParams, resources=("ClusterId", "InstanceId"))
def drain_cluster_node(ctx: RequestContext, p: DrainParams) -> dict[str, Any]:
    """Cordon the node and evict its pods (their services start them elsewhere); with
    DryRun (the default) only list what would be evicted."""
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.ClusterId, name="ClusterId")
    node = dom.get_node(ctx.db, cluster, p.InstanceId, "InstanceId")
    pods = dom.node_pods(ctx.db, node.id) if p.DryRun else dom.drain_node(ctx.db, node)
    return {
        "Pods": [{"Name": x.name, "Namespace": x.namespace, "NodeIp": node.lan_ip} for x in pods]
    }


class RequestLimitParams(Params):
    clusterId: ClusterIdParam


@action(
    "DescribeClusterRequestLimitInfo", RequestLimitParams, resources=("clusterId",), inline=True
)
def describe_request_limit(ctx: RequestContext, p: RequestLimitParams) -> dict[str, Any]:
    """Requests and limits of the pods on each node, in cores and GiB, as the example."""
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    per_node: dict[str, dict[str, float]] = {}
    totals = {"cpuRequest": 0.0, "cpuLimit": 0.0, "memRequest": 0.0, "memLimit": 0.0}
    for node in dom.cluster_nodes(ctx.db, cluster.id):
        sums = {k: 0.0 for k in totals}
        for pod in dom.node_pods(ctx.db, node.id):
            for c in pod.template.get("containers", []):
                sums["cpuRequest"] += int(c.get("cpu") or 0) / 1000
                sums["cpuLimit"] += int(c.get("cpuLimits") or 0) / 1000
                sums["memRequest"] += int(c.get("memory") or 0) / 1024
                sums["memLimit"] += int(c.get("memoryLimits") or 0) / 1024
        for k, v in sums.items():
            totals[k] += v
        per_node[node.lan_ip] = {**{k: round(v, 2) for k, v in sums.items()}, "gpuLimit": 0}
    return {
        "totalCpuRequest": round(totals["cpuRequest"], 2),
        "totalCpuLimit": round(totals["cpuLimit"], 2),
        "totalMemRequest": round(totals["memRequest"], 2),
        "totalMemLimit": round(totals["memLimit"], 2),
        "totalGpuLimit": 0,
        "requestLimitInfo": per_node,
    }
