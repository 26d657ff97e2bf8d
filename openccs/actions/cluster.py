"""Cluster actions: clusters, their nodes, third-party registries; and the VPC module's two
list actions users need to find `vpcId` and `subnetId`. Each decodes its parameters, calls
the clusters backend (`backends/clusters.py`) and encodes the answer."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator

from openccs.api.context import RequestContext
from openccs.api.envelope import TopLevel
from openccs.api.params import INT_MAX, Array, Flag, Paged, Params
from openccs.api.registry import action
from openccs.backends import clusters as backend
from openccs.backends.clusters import DeleteMode
from openccs.backends.inputs import ClusterId as ClusterIdParam
from openccs.backends.inputs import NodeLabel
from openccs.config import Region, Settings
from openccs.domain.cloud import zone_by_name
from openccs.domain.clusters import ClusterSummary
from openccs.store.models import Instance, Subnet, Vpc
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


def _machines(p: MachineParams) -> backend.NewMachines:
    return backend.NewMachines(
        zone=p.zoneId,
        subnet_id=p.subnetId,
        cpu=p.cpu,
        mem=p.mem,
        count=p.goodsNum,
        instance_type=p.instanceType,
        period=p.period,
        password=p.password,
        key_id=p.keyId,
        user_script=p.userScript,
        unschedulable=p.unschedulable != 0,
        settings=backend.MachineSettings(
            cvm_type=p.cvmType,
            bandwidth_type=p.bandwidthType,
            bandwidth=p.bandwidth,
            wan_ip=p.wanIp,
            root_size=p.rootSize,
            root_type=p.rootType,
            storage_size=p.storageSize,
            storage_type=p.storageType,
            sg_id=p.sgId,
            mount_target=p.mountTarget,
            docker_graph_path=p.dockerGraphPath,
        ),
    )


def _new_cluster(p: CreateClusterParams | CreateEmptyClusterParams) -> backend.NewCluster:
    return backend.NewCluster(
        name=p.clusterName,
        vpc_id=p.vpcId,
        cidr=p.clusterCIDR,
        description=p.clusterDesc,
        ignore_cidr_conflict=p.ignoreClusterCIDRConflict == 1,
        os_name=p.osName,
        k8s_version=p.clusterVersion,
        project_id=p.projectId,
        master_subnet_id=p.masterSubnetId,
    )


@action("CreateCluster", CreateClusterParams, resources=("vpcId",))
def create_cluster(ctx: RequestContext, p: CreateClusterParams) -> dict[str, Any]:
    made = backend.create_cluster(ctx.work(), _new_cluster(p), _machines(p))
    return {"requestId": made.task_id, "clusterId": made.cluster_id}


@action("CreateEmptyCluster", CreateEmptyClusterParams, resources=("vpcId",))
def create_empty_cluster(ctx: RequestContext, p: CreateEmptyClusterParams) -> dict[str, Any]:
    made = backend.create_cluster(ctx.work(), _new_cluster(p), None)
    return {"requestId": made.task_id, "clusterId": made.cluster_id}


class CheckClusterCIDRParams(Params):
    vpcId: str
    clusterCIDR: str


@action("CheckClusterCIDR", CheckClusterCIDRParams, resources=("vpcId",), inline=True)
def check_cluster_cidr(ctx: RequestContext, p: CheckClusterCIDRParams) -> None:
    backend.check_cluster_cidr(ctx.work(), p.vpcId, p.clusterCIDR)


@action("AddClusterInstances", AddClusterInstancesParams, resources=("clusterId",))
def add_cluster_instances(ctx: RequestContext, p: AddClusterInstancesParams) -> dict[str, Any]:
    added = backend.add_instances(ctx.work(), p.clusterId, _machines(p), p.osName, p.clusterDesc)
    return {"instanceIds": added.instance_ids, "requestId": added.task_id}


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
    existing = backend.ExistingMachines(
        instance_ids=p.instanceIds,
        password=p.password,
        key_id=p.keyId,
        os_name=p.osName,
        unschedulable=p.unschedulable != 0,
        user_script=p.userScript,
    )
    done = backend.add_existing(ctx.work(), p.clusterId, existing)
    failed = [{"instanceId": f.instance_id, "message": f.message} for f in done.failed]
    if done.task_id is None:
        return {"succInstanceIds": [], "failInstanceIds": failed}
    return {
        "succInstanceIds": done.joined,
        "failInstanceIds": failed or None,
        "requestId": done.task_id,
    }


class DescribeExistedParams(Params):
    clusterId: str
    instanceName: str | None = None
    ip: str | None = None
    instanceIds: Array[str] = []


@action("DescribeExistedCvmForAddClusterInstances", DescribeExistedParams, resources=("clusterId",))
def describe_existed(ctx: RequestContext, p: DescribeExistedParams) -> dict[str, Any]:
    found = backend.existing_candidates(
        ctx.work(), p.clusterId, p.instanceIds, p.instanceName, p.ip
    )
    devices = [
        {
            "instanceName": c.instance.name,
            "lanIp": c.instance.lan_ip,
            "wanIp": "",
            "instanceId": c.instance.id,
            "instanceCreateTime": fmt_time(c.instance.created_at),
            "usable": c.usable,
            "unusableReason": c.reason,
        }
        for c in found
    ]
    return {"totalCount": len(devices), "deviceList": devices}


class DescribeClusterParams(Paged):
    clusterIds: Array[str] = []
    clusterName: str | None = None
    status: str | None = None
    orderField: Literal["clusterId", "clusterName", "createdAt", "updatedAt"] = "createdAt"
    orderType: Literal["asc", "desc"] = "desc"


@action("DescribeCluster", DescribeClusterParams, resources=("clusterIds",), inline=True)
def describe_cluster(ctx: RequestContext, p: DescribeClusterParams) -> dict[str, Any]:
    found = backend.clusters(
        ctx.work(), p.clusterIds, p.clusterName, p.status, p.orderField, p.orderType == "asc"
    )
    region = ctx.services.settings.regions[0]
    items = [_cluster_entry(c, region) for c in found if ctx.caller.may_use(c.cluster.id)]
    return {"totalCount": len(items), "clusters": items[p.offset : p.offset + p.limit]}


def _cluster_entry(x: ClusterSummary, region: Region) -> dict[str, Any]:
    c = x.cluster
    return {
        "clusterId": c.id,
        "clusterName": c.name,
        "description": c.description,
        "clusterCIDR": c.cidr,
        "unVpcId": c.vpc_id,
        "vpcId": x.vpc_num_id,
        "status": x.status,
        "nodeNum": x.node_num,
        "nodeStatus": x.node_status,
        "totalCpu": x.cpu * 1000,
        "totalMem": x.mem * 1024,
        "os": c.os_name,
        "createdAt": fmt_time(c.created_at),
        "updatedAt": fmt_time(c.updated_at),
        "regionId": region.region_id,
        "region": region.name,
        "k8sVersion": c.k8s_version,
        "clusterExternalEndpoint": x.external_endpoint,
        "projectId": c.project_id,
    }


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
    found = backend.nodes(ctx.work(), p.clusterId, p.instancesId)
    settings = ctx.services.settings
    return {
        "totalCount": len(found),
        "nodes": [_node_entry(settings, n) for n in found[p.offset : p.offset + p.limit]],
    }


# What CVM state numbers mean in the product (DescribeInstances' table).
CVM_STATE = {"Failed": 1, "Running": 2, "Creating": 3, "Stopped": 4, "Deleting": 6}


def _node_entry(settings: Settings, n: Instance) -> dict[str, Any]:
    zone = zone_by_name(settings, n.zone)
    return {
        "instanceId": n.id,
        "projectId": n.project_id,
        "instanceName": n.name,
        "instanceType": n.instance_type,
        "kernelVersion": n.kernel_version,
        "podCidr": n.pod_cidr or "",
        "cpu": n.cpu * 1000,
        "mem": n.mem * 1024,
        "gpu": 0,
        "wanIp": "",
        "lanIp": n.lan_ip,
        "osImage": n.os_name,
        "isNormal": 1 if n.is_normal else 0,
        "cvmState": CVM_STATE.get(n.state, 1),
        "cvmPayMode": 2,
        "networkPayMode": 2,
        "createdAt": fmt_time(n.joined_at or n.created_at),
        "instanceCreateTime": fmt_time(n.created_at),
        "instanceDeadlineTime": "0000-00-00 00:00:00",
        "zoneId": zone.zone_id,
        "zone": zone.name,
        "abnormalReason": n.abnormal_reason,
        "labels": dict(n.labels),
        "autoScalingGroupId": n.autoscaling_group_id,
        "unschedulable": n.unschedulable,
        "drainStatus": n.drain_status,
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
    backend.modify_cluster(ctx.work(), p.clusterId, p.clusterName, p.clusterDesc)


class ModifyProjectIdParams(Params):
    clusterId: str
    projectId: int = Field(ge=0)


@action("ModifyProjectId", ModifyProjectIdParams, resources=("clusterId",))
def modify_project_id(ctx: RequestContext, p: ModifyProjectIdParams) -> None:
    backend.set_project(ctx.work(), p.clusterId, p.projectId)


class ModifyClusterNodeLabelParams(Params):
    clusterId: str
    instanceId: str
    labels: Array[NodeLabel] = Field(min_length=1)


@action(
    "ModifyClusterNodeLabel", ModifyClusterNodeLabelParams, resources=("clusterId", "instanceId")
)
def modify_cluster_node_label(ctx: RequestContext, p: ModifyClusterNodeLabelParams) -> None:
    labels = [(label.key, label.value) for label in p.labels]
    backend.label_node(ctx.work(), p.clusterId, p.instanceId, labels)


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
    backend.set_schedulable(ctx.work(), p.clusterId, p.instanceIds, p.unschedulable != 0)


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
    backend.add_hub(ctx.work(), p.clusterId, p.domain, p.username, p.password, p.namespaces)


class DescribeHubInfoParams(Paged):
    clusterId: str
    unHubId: str | None = None
    domain: str | None = None
    username: str | None = None


@action("DescribeHubInfo", DescribeHubInfoParams, resources=("clusterId",), inline=True)
def describe_hub_info(ctx: RequestContext, p: DescribeHubInfoParams) -> dict[str, Any]:
    found = backend.hubs(ctx.work(), p.clusterId, p.unHubId, p.domain, p.username)
    app_id = ctx.caller.app_id
    return {
        "totalCount": len(found),
        "hubs": [
            {
                "unHubId": h.id,
                "name": "",
                "clusterId": h.cluster_id,
                "appId": app_id,
                "domain": h.domain,
                "username": h.username,
                "namespaces": list(h.namespaces),
                "createdAt": fmt_time(h.created_at),
            }
            for h in found[p.offset : p.offset + p.limit]
        ],
    }


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
    task_id = backend.delete_instances(ctx.work(), p.clusterId, p.instanceIds, p.nodeDeleteMode)
    return {"requestId": task_id}


class DeleteClusterParams(Params):
    clusterId: str
    nodeDeleteMode: DeleteMode = "Return"


@action("DeleteCluster", DeleteClusterParams, resources=("clusterId",))
def delete_cluster(ctx: RequestContext, p: DeleteClusterParams) -> dict[str, Any]:
    return {"requestId": backend.delete_cluster(ctx.work(), p.clusterId, p.nodeDeleteMode)}


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
    w = ctx.work()
    found = backend.vpcs(
        w, p.vpcId, p.vpcName, p.orderField == "vpcName", p.orderDirection == "asc"
    )
    # Without vpcId, a sub-account sees the VPCs its allow-list names.
    vpcs = [v for v in found if ctx.caller.may_use(v.id)]
    data = []
    for vpc in vpcs[p.offset : p.offset + p.limit]:
        subnets, devices = backend.vpc_counts(w, vpc)
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
    found = backend.subnets(
        ctx.work(),
        p.vpcId,
        p.subnetId,
        p.subnetName,
        p.zoneIds,
        p.orderField == "subnetName",
        p.orderDirection == "asc",
    )
    rows = [(sub, vpc) for sub, vpc in found if ctx.caller.may_use(vpc.id)]
    settings = ctx.services.settings
    data = [_subnet_entry(settings, sub, vpc) for sub, vpc in rows[p.offset : p.offset + p.limit]]
    return TopLevel(totalCount=len(rows), data=data)


def _subnet_entry(settings: Settings, sub: Subnet, vpc: Vpc) -> dict[str, Any]:
    zone = zone_by_name(settings, sub.zone)
    return {
        "vpcId": f"gz_vpc_{vpc.num_id}",
        "unVpcId": vpc.id,
        "subnetId": f"gz_subnet_{sub.num_id}",
        "unSubnetId": sub.id,
        "subnetName": sub.name,
        "cidrBlock": sub.cidr,
        "zoneId": zone.zone_id,
        "zone": zone.name,
        "totalIPNum": ipaddress.ip_network(sub.cidr).num_addresses,
        "createTime": fmt_time(sub.created_at),
    }


class DrainParams(Params):
    ClusterId: ClusterIdParam
    InstanceId: str = Field(min_length=1, max_length=64)
    DryRun: int = Field(default=1, ge=0)


@action("DrainClusterNode", DrainParams, resources=("ClusterId", "InstanceId"))
def drain_cluster_node(ctx: RequestContext, p: DrainParams) -> dict[str, Any]:
    """Cordon the node and evict its pods (their services start them elsewhere); with
    DryRun (the default) only list what would be evicted."""
    done = backend.drain_node(ctx.work(), p.ClusterId, p.InstanceId, p.DryRun != 0)
    ip = done.node.lan_ip
    return {"Pods": [{"Name": x.name, "Namespace": x.namespace, "NodeIp": ip} for x in done.pods]}


class RequestLimitParams(Params):
    clusterId: ClusterIdParam


@action(
    "DescribeClusterRequestLimitInfo", RequestLimitParams, resources=("clusterId",), inline=True
)
def describe_request_limit(ctx: RequestContext, p: RequestLimitParams) -> dict[str, Any]:
    """Requests and limits of the pods on each node, in cores and GiB, as the example."""
    found = backend.request_limits(ctx.work(), p.clusterId)
    total = found.total
    return {
        "totalCpuRequest": round(total.cpu_request, 2),
        "totalCpuLimit": round(total.cpu_limit, 2),
        "totalMemRequest": round(total.mem_request, 2),
        "totalMemLimit": round(total.mem_limit, 2),
        "totalGpuLimit": 0,
        "requestLimitInfo": {ip: _limits_entry(r) for ip, r in found.nodes.items()},
    }


def _limits_entry(r: backend.Resources) -> dict[str, float]:
    return {
        "cpuRequest": round(r.cpu_request, 2),
        "cpuLimit": round(r.cpu_limit, 2),
        "memRequest": round(r.mem_request, 2),
        "memLimit": round(r.mem_limit, 2),
        "gpuLimit": 0,
    }
