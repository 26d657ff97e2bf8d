"""Service and instance actions: a service is a Deployment whose pods run on the cluster's
machines; its instances are the pods."""

from __future__ import annotations

import copy
import datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from sqlalchemy import select

from openccs.actions.inputs import (
    ClusterId,
    Command,
    ContainerName,
    Description,
    HostPath,
    Image,
    LabelMap,
    MountPath,
    NamespaceName,
    PodName,
    ServiceName,
    check_affinity,
    check_labels,
    check_mounts,
    check_volumes,
)
from openccs.api.context import RequestContext
from openccs.api.params import Array, Paged, Params
from openccs.api.registry import action
from openccs.domain import cloud
from openccs.domain import workloads as wl
from openccs.engine import docker
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.store.models import Event, Instance, Pod, Service
from openccs.subsystems import need
from openccs.timeutil import fmt_time, utcnow
from openccs.traffic import lb

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Env(Params):
    name: str = Field(min_length=1, max_length=253, pattern=ENV_NAME)
    value: str = ""


class VolumeMount(Params):
    volumeName: str = Field(min_length=1)
    mountPath: MountPath
    mode: Literal["rw", "ro"] = "rw"


class HealthCheck(Params):
    type: Literal["liveCheck", "readyCheck"]
    checkMethod: Literal["methodTcp", "methodHttp", "methodCmd"]
    healthNum: int = Field(default=1, ge=1, le=10)
    unhealthNum: int = Field(default=3, ge=1, le=10)
    intervalTime: int = Field(default=10, ge=2, le=300)
    timeOut: int = Field(default=2, ge=2, le=60)
    delayTime: int = Field(default=0, ge=0, le=60)
    port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["HTTP", "HTTPS"] = "HTTP"
    path: str = "/"
    cmd: str = ""


class TcpCheck(Params):
    port: int = Field(ge=1, le=65535)


class HttpCheck(Params):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["HTTP", "HTTPS"] = "HTTP"
    path: str = "/"


class CmdCheck(Params):
    cmd: str = Field(min_length=1)


class Probe(Params):
    """A probe in DescribeClusterServiceInfo's shape (liveProbe / readyProbe)."""

    checkMethod: Literal["methodTcp", "methodHttp", "methodCmd"]
    healthNum: int = Field(default=1, ge=1, le=10)
    unhealthNum: int = Field(default=3, ge=1, le=10)
    intervalTime: int = Field(default=10, ge=2, le=300)
    timeOut: int = Field(default=2, ge=2, le=60)
    delayTime: int = Field(default=0, ge=0, le=60)
    methodTcp: TcpCheck | None = None
    methodHttp: HttpCheck | None = None
    methodCmd: CmdCheck | None = None


class Container(Params):
    containerName: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    image: Image
    envs: Array[Env] | None = None
    volumeMounts: Array[VolumeMount] | None = None
    healthCheck: Array[HealthCheck] | None = None
    liveProbe: Probe | None = None
    readyProbe: Probe | None = None
    cpu: int = Field(default=0, ge=0)
    cpuLimits: int = Field(default=0, ge=0)
    memory: int = Field(default=0, ge=0)
    memoryLimits: int = Field(default=0, ge=0)
    command: Command = ""
    arguments: Array[str] | None = None
    privileged: bool = False
    workingDir: str = Field(default="", pattern=r"^(/.*)?$")


class Volume(Params):
    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    volumeType: Literal["hostPath", "cbsDisk", "configMap", "nfsDisk"]
    hostPath: HostPath = ""
    cbsDiskId: str = ""
    nfsPath: str = ""
    configId: str = ""
    configVersion: str = ""


class PortMapping(Params):
    lbPort: int = Field(ge=1, le=65535)
    containerPort: int = Field(ge=1, le=65535)
    nodePort: int = Field(default=0, ge=0, le=65535)
    protocol: Literal["TCP", "UDP"]


class NodeAffinity(Params):
    key: str = Field(min_length=1, max_length=253)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: Array[str] = []


class PodAffinity(Params):
    key: str = Field(min_length=1, max_length=253)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: Array[str] = []


AccessType = Literal["LoadBalancer", "SvcLBTypeInner", "NodePort", "ClusterIP", "None"]


class ServiceParams(Params):
    clusterId: ClusterId
    serviceName: ServiceName
    serviceDesc: Description = ""
    replicas: int = Field(
        ge=0, le=1000, validation_alias=AliasChoices("replicas", "desiredReplicas")
    )
    accessType: AccessType = "ClusterIP"
    portMappings: Array[PortMapping] = []
    volumes: Array[Volume] = []
    containers: Array[Container] = Field(min_length=1)
    namespace: NamespaceName = "default"
    subnetId: str | None = None
    nodeAffinity: Array[NodeAffinity] = []
    podAffinity: Array[PodAffinity] = []
    strategy: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    minReadySeconds: int = Field(default=0, ge=0, le=3600)

    @model_validator(mode="after")
    def _consistent(self) -> ServiceParams:
        check_service(self)
        return self


def check_service(p: ServiceParams) -> None:
    """Rules across fields, each failing as a 4000 that names the parameter."""
    names = set()
    volumes = {v.name for v in p.volumes}
    check_volumes(p.volumes)
    check_affinity(p.nodeAffinity, "nodeAffinity")
    check_affinity(p.podAffinity, "podAffinity")
    for i, c in enumerate(p.containers):
        where = f"containers.{i}"
        if c.containerName in names:
            raise invalid_parameter(f"{where}.containerName", "two containers have this name")
        names.add(c.containerName)
        if c.cpu and c.cpu < 100:
            raise invalid_parameter(f"{where}.cpu", "at least 100 (0.1 core), or 0 for none")
        if c.cpuLimits and c.cpuLimits < 100:
            raise invalid_parameter(f"{where}.cpuLimits", "at least 100 (0.1 core), or 0")
        if c.cpuLimits and c.cpu and c.cpuLimits < c.cpu:
            raise invalid_parameter(f"{where}.cpuLimits", "must not be below cpu")
        if c.memory and c.memory < 4:
            raise invalid_parameter(f"{where}.memory", "at least 4 MiB, or 0 for none")
        if c.memoryLimits and c.memoryLimits < 4:
            raise invalid_parameter(f"{where}.memoryLimits", "at least 4 MiB, or 0")
        if c.memoryLimits and c.memory and c.memoryLimits < c.memory:
            raise invalid_parameter(f"{where}.memoryLimits", "must not be below memory")
        check_mounts(c.volumeMounts or [], volumes, where)
        probes(c, where)
    if p.accessType != "None" and not p.portMappings:
        raise invalid_parameter("portMappings", f"a {p.accessType} service needs at least one port")
    if p.accessType == "SvcLBTypeInner" and not p.subnetId:
        raise invalid_parameter(
            "subnetId", "required for SvcLBTypeInner: the subnet the inner VIP is taken from"
        )
    seen_ports = set()
    for i, pm in enumerate(p.portMappings):
        key = (pm.lbPort, pm.protocol)
        if key in seen_ports:
            raise invalid_parameter(f"portMappings.{i}.lbPort", "the same port twice")
        seen_ports.add(key)


def _probe_from_check(h: HealthCheck, where: str) -> dict[str, Any]:
    """The create shape (healthCheck.n) in the describe shape (liveProbe/readyProbe)."""
    probe: dict[str, Any] = {
        "checkMethod": h.checkMethod,
        "healthNum": h.healthNum,
        "unhealthNum": h.unhealthNum,
        "intervalTime": h.intervalTime,
        "timeOut": h.timeOut,
        "delayTime": h.delayTime,
        "methodTcp": None,
        "methodHttp": None,
        "methodCmd": None,
    }
    if h.checkMethod == "methodCmd":
        if not h.cmd:
            raise invalid_parameter(f"{where}.cmd", "required for methodCmd")
        probe["methodCmd"] = {"cmd": h.cmd}
    else:
        if h.port is None:
            raise invalid_parameter(f"{where}.port", f"required for {h.checkMethod}")
        if h.checkMethod == "methodTcp":
            probe["methodTcp"] = {"port": h.port}
        else:
            probe["methodHttp"] = {"port": h.port, "protocol": h.protocol, "path": h.path or "/"}
    return probe


def _probe_from_spec(pr: Probe, where: str) -> dict[str, Any]:
    probe = pr.model_dump()
    method = {"methodTcp": pr.methodTcp, "methodHttp": pr.methodHttp, "methodCmd": pr.methodCmd}
    if method[pr.checkMethod] is None:
        raise invalid_parameter(f"{where}.{pr.checkMethod}", f"required for {pr.checkMethod}")
    for other in method:
        if other != pr.checkMethod:
            probe[other] = None
    return probe


def probes(c: Container, where: str) -> dict[str, dict[str, Any] | None]:
    """liveProbe and readyProbe of a container, from either shape, checked."""
    found: dict[str, dict[str, Any] | None] = {"liveProbe": None, "readyProbe": None}
    for j, h in enumerate(c.healthCheck or []):
        key = "liveProbe" if h.type == "liveCheck" else "readyProbe"
        if found[key] is not None:
            raise invalid_parameter(f"{where}.healthCheck.{j}.type", f"a second {h.type}")
        found[key] = _probe_from_check(h, f"{where}.healthCheck.{j}")
    for key in ("liveProbe", "readyProbe"):
        given = getattr(c, key)
        if given is not None:
            if found[key] is not None:
                raise invalid_parameter(f"{where}.{key}", "given twice (healthCheck and probe)")
            found[key] = _probe_from_spec(given, f"{where}.{key}")
    live = found["liveProbe"]
    if live is not None and live["healthNum"] != 1:
        raise invalid_parameter(f"{where}.healthCheck", "healthNum of a liveCheck must be 1")
    return found


def spec_of(p: ServiceParams) -> dict[str, Any]:
    """The stored spec, in DescribeClusterServiceInfo's shape."""
    containers = []
    for i, c in enumerate(p.containers):
        checks = probes(c, f"containers.{i}")
        containers.append(
            {
                "containerName": c.containerName,
                "image": c.image,
                "envs": [e.model_dump() for e in c.envs] if c.envs else None,
                "volumeMounts": [m.model_dump() for m in c.volumeMounts]
                if c.volumeMounts
                else None,
                "cpu": c.cpu,
                "cpuLimits": c.cpuLimits,
                "memory": c.memory,
                # The document: without memoryLimits the limit equals the request.
                "memoryLimits": c.memoryLimits or c.memory,
                "command": c.command,
                "arguments": list(c.arguments) if c.arguments else None,
                "privileged": c.privileged,
                "workingDir": c.workingDir,
                "liveProbe": checks["liveProbe"],
                "readyProbe": checks["readyProbe"],
            }
        )
    return {
        "containers": containers,
        "volumes": [
            {"name": v.name, "volumeType": v.volumeType, "hostPath": v.hostPath} for v in p.volumes
        ],
        "portMappings": [pm.model_dump() for pm in p.portMappings],
        "accessType": p.accessType,
        "subnetId": p.subnetId or "",
        "nodeAffinity": [a.model_dump() for a in p.nodeAffinity],
        "podAffinity": [a.model_dump() for a in p.podAffinity],
        "strategy": p.strategy,
        "minReadySeconds": p.minReadySeconds,
    }


def _cluster(ctx: RequestContext, cluster_id: str) -> Any:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, cluster_id)
    if cluster.status in ("Creating", "Deleting"):
        raise ApiError(
            5100, "ClusterStateError", f"cluster {cluster.id} is {cluster.status}: try again later"
        )
    return cluster


def _allocate_cluster_ip(ctx: RequestContext, cluster: Any) -> str:
    import ipaddress

    taken = set(ctx.db.scalars(select(Service.cluster_ip).where(Service.cluster_id == cluster.id)))
    net = ipaddress.ip_network(cluster.service_cidr)
    for addr in list(net.hosts())[9:]:  # the first few are kept for cluster services (DNS)
        if str(addr) not in taken:
            return str(addr)
    raise ApiError(5200, "ServiceIpExhausted", f"no service IP left in {cluster.service_cidr}")


def _check_privileged(ctx: RequestContext, p: ServiceParams) -> None:
    """Machines share this host's kernel and devices: a privileged container is root on the
    host, so it is the operator's choice (`--allow-privileged`), not a tenant's."""
    if ctx.services.settings.allow_privileged:
        return
    for i, c in enumerate(p.containers):
        if c.privileged:
            raise invalid_parameter(
                f"containers.{i}.privileged",
                "privileged containers are not allowed on this openccs (they would have root"
                " on its host); the operator can allow them with `openccs serve"
                " --allow-privileged`",
            )


@action("CreateClusterService", ServiceParams, resources=("clusterId",))
def create_service(ctx: RequestContext, p: ServiceParams) -> None:
    _check_privileged(ctx, p)
    cluster = _cluster(ctx, p.clusterId)
    wl.active_namespace(ctx.db, cluster, p.namespace)
    exists = ctx.db.scalars(
        select(Service.id).where(
            Service.cluster_id == cluster.id,
            Service.namespace == p.namespace,
            Service.name == p.serviceName,
        )
    ).first()
    if exists is not None:
        raise ApiError(
            4000,
            "ServiceExists",
            f"service {p.serviceName} (serviceName) already exists in {p.namespace}",
        )
    svc = Service(
        account_id=ctx.account_id,
        cluster_id=cluster.id,
        namespace=p.namespace,
        name=p.serviceName,
        description=p.serviceDesc,
        spec=spec_of(p),
        labels={wl.APP_LABEL: p.serviceName},
        replicas=p.replicas,
        cluster_ip=_allocate_cluster_ip(ctx, cluster) if p.accessType != "None" else None,
    )
    ctx.db.add(svc)
    ctx.db.flush()
    _access(ctx, cluster, svc, None)


def _access(ctx: RequestContext, cluster: Any, svc: Service, old: dict[str, Any] | None) -> None:
    """Node ports and the load balancer of a service whose spec was just set."""
    spec = copy.deepcopy(svc.spec)
    lb.assign_node_ports(ctx.db, ctx.services.settings, cluster.id, spec, svc.id, old)
    svc.spec = spec
    lb.ensure_service_lb(ctx.db, ctx.services.settings, cluster, svc)


class ServiceRef(Params):
    clusterId: ClusterId
    serviceName: ServiceName
    namespace: NamespaceName = "default"


def _service(ctx: RequestContext, p: ServiceRef | ServiceParams) -> tuple[Any, Service]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.get_namespace(ctx.db, cluster, p.namespace)
    return cluster, wl.get_service(ctx.db, cluster, p.namespace, p.serviceName)


def _summary(ctx: RequestContext, svc: Service) -> dict[str, Any]:
    pods = wl.service_pods(ctx.db, svc)
    status, reasons = wl.service_status(ctx.db, svc, pods)
    balancer = lb.service_lb(ctx.db, svc)
    return {
        "serviceName": svc.name,
        "status": status,
        "reasonMap": reasons,
        "serviceIp": svc.cluster_ip or "",
        "externalIp": balancer.vip if balancer else "",
        "lbId": balancer.id if balancer else "",
        "lbStatus": balancer.status if balancer else "None",
        "accessType": svc.spec.get("accessType", "ClusterIP"),
        "desiredReplicas": svc.replicas,
        "currentReplicas": sum(1 for pp in pods if wl.pod_is_ready(pp)),
        "createdAt": fmt_time(svc.created_at),
        "namespace": svc.namespace,
    }


class DescribeServicesParams(Params):
    clusterId: ClusterId
    namespace: NamespaceName = "default"
    allnamespace: int = Field(default=0, ge=0, le=1)


@action("DescribeClusterService", DescribeServicesParams, resources=("clusterId",), inline=True)
def describe_services(ctx: RequestContext, p: DescribeServicesParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    q = select(Service).where(Service.cluster_id == cluster.id, Service.deleting.is_(False))
    if not p.allnamespace:
        wl.get_namespace(ctx.db, cluster, p.namespace)
        q = q.where(Service.namespace == p.namespace)
    services = [_summary(ctx, svc) for svc in ctx.db.scalars(q.order_by(Service.created_at))]
    return {"totalCount": len(services), "services": services}


@action("DescribeClusterServiceInfo", ServiceRef, resources=("clusterId",), inline=True)
def describe_service_info(ctx: RequestContext, p: ServiceRef) -> dict[str, Any]:
    _, svc = _service(ctx, p)
    info = _summary(ctx, svc)
    spec = svc.spec
    info.update(
        serviceDesc=svc.description,
        reason=next(iter(info["reasonMap"]), ""),
        regionId=ctx.services.settings.regions[0].region_id,
        portMappings=spec.get("portMappings", []),
        volumes=spec.get("volumes", []),
        containers=spec.get("containers", []),
        labels=dict(svc.labels),
        selector={wl.APP_LABEL: svc.name},
        subnetId=spec.get("subnetId", ""),
        unHubId="",
        strategy=spec.get("strategy", "RollingUpdate"),
        minReadySeconds=spec.get("minReadySeconds", 0),
        nodeAffinity=spec.get("nodeAffinity", []),
        podAffinity=spec.get("podAffinity", []),
    )
    return {"service": info}


@action("DeleteClusterService", ServiceRef, resources=("clusterId",))
def delete_service(ctx: RequestContext, p: ServiceRef) -> None:
    _, svc = _service(ctx, p)
    svc.deleting = True


class ReplicasParams(ServiceRef):
    scaleTo: int = Field(ge=0, le=1000, validation_alias=AliasChoices("scaleTo", "replicas"))


@action("ModifyServiceReplicas", ReplicasParams, resources=("clusterId",))
def modify_replicas(ctx: RequestContext, p: ReplicasParams) -> None:
    _, svc = _service(ctx, p)
    svc.replicas = p.scaleTo
    svc.updated_at = utcnow()


class DescribeInstancesParams(ServiceRef, Paged):
    pass


@action("DescribeServiceInstance", DescribeInstancesParams, resources=("clusterId",), inline=True)
def describe_instances(ctx: RequestContext, p: DescribeInstancesParams) -> dict[str, Any]:
    _, svc = _service(ctx, p)
    pods = wl.service_pods(ctx.db, svc)
    ips = {
        i.id: i.lan_ip
        for i in ctx.db.scalars(select(Instance).where(Instance.cluster_id == svc.cluster_id))
    }
    return {
        "totalCount": len(pods),
        "instances": [
            wl.describe_instance(pod, ips.get(pod.node_id or "", ""))
            for pod in pods[p.offset : p.offset + p.limit]
        ],
    }


class DeleteInstancesParams(Params):
    clusterId: ClusterId
    instances: Array[PodName] = Field(min_length=1, max_length=100)
    namespace: NamespaceName = "default"


@action("DeleteInstances", DeleteInstancesParams, resources=("clusterId",))
def delete_instances(ctx: RequestContext, p: DeleteInstancesParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.get_namespace(ctx.db, cluster, p.namespace)
    for i, name in enumerate(p.instances):
        if name in p.instances[:i]:
            raise invalid_parameter(f"instances.{i}", f"instance {name} is named twice")
    done, failed = [], {}
    for name in p.instances:
        pod = ctx.db.scalars(
            select(Pod).where(
                Pod.cluster_id == cluster.id, Pod.namespace == p.namespace, Pod.name == name
            )
        ).first()
        if pod is None:
            failed[name] = f"instance {name} does not exist in namespace {p.namespace}"
        elif pod.deleting:
            failed[name] = f"instance {name} is already being deleted"
        else:
            pod.deleting = True
            done.append(name)
    return {"successList": done, "failedMap": failed}


class DescribeEventsParams(ServiceRef):
    pass


@action("DescribeServiceEvent", DescribeEventsParams, resources=("clusterId",), inline=True)
def describe_events(ctx: RequestContext, p: DescribeEventsParams) -> dict[str, Any]:
    _, svc = _service(ctx, p)
    since = utcnow() - datetime.timedelta(hours=1)
    events = ctx.db.scalars(
        select(Event)
        .where(
            Event.cluster_id == svc.cluster_id,
            Event.namespace == svc.namespace,
            Event.service == svc.name,
            Event.last_seen >= since,
        )
        .order_by(Event.last_seen.desc())
    )
    return {"eventList": [wl.describe_event(ev) for ev in events]}


class InstanceLogParams(ServiceRef):
    podName: PodName | None = None
    containerName: ContainerName | None = None
    sinceTime: str | None = None
    tail: int | None = Field(default=None, ge=0, le=100_000)


@action("DescribeInstanceLog", InstanceLogParams, resources=("clusterId",))
def describe_instance_log(ctx: RequestContext, p: InstanceLogParams) -> dict[str, Any]:
    _, svc = _service(ctx, p)
    since: int | None = None
    if p.sinceTime:
        try:
            local = datetime.datetime.strptime(p.sinceTime, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise invalid_parameter("sinceTime", "use the form 2006-01-02 15:04:05") from None
        from openccs import timeutil

        since = int(local.replace(tzinfo=timeutil.zone()).timestamp())
        if since > int(utcnow().replace(tzinfo=datetime.UTC).timestamp()) + 1:
            raise invalid_parameter("sinceTime", "must not be in the future")
    if p.containerName and p.containerName not in (
        c["containerName"] for c in svc.spec.get("containers", [])
    ):
        raise not_found("container (containerName)", f"{p.containerName} in service {svc.name}")
    pods = [pp for pp in wl.service_pods(ctx.db, svc) if not pp.deleting]
    if p.podName:
        pods = [pp for pp in pods if pp.name == p.podName]
        if not pods:
            raise not_found("instance (podName)", p.podName)
    cloud_ = need(ctx.subsystems.cloud, "cloud")
    result = []
    for pod in pods:
        logs = []
        for c in pod.status.get("containers", []):
            if p.containerName and c["name"] != p.containerName:
                continue
            text = ""
            if c.get("containerId") and pod.node_id:
                sock = cloud_.engine.docker_socket(pod.node_id)
                text = docker.logs(sock, c["containerId"], since=since, tail=p.tail)
            logs.append({"name": c["name"], "log": text})
        result.append({"name": pod.name, "containerLog": logs})
    return {"podLog": result}


class PreviousLogParams(ServiceRef):
    podName: PodName
    containerName: ContainerName | None = None
    tail: int | None = Field(default=None, ge=0, le=100_000)


@action(
    "OpenccsDescribeInstancePreviousLog",
    PreviousLogParams,
    host="ccs.api.qcloud.com",
    resources=("clusterId",),
    extension=True,
)
def describe_instance_previous_log(ctx: RequestContext, p: PreviousLogParams) -> dict[str, Any]:
    """The logs of a pod's containers' previous run (the one that exited or crashed before
    the current one), as `kubectl logs --previous`; a container that has not ended once is
    left out."""
    _, svc = _service(ctx, p)
    if p.containerName and p.containerName not in (
        c["containerName"] for c in svc.spec.get("containers", [])
    ):
        raise not_found("container (containerName)", f"{p.containerName} in service {svc.name}")
    pod = next(
        (pp for pp in wl.service_pods(ctx.db, svc) if pp.name == p.podName and not pp.deleting),
        None,
    )
    if pod is None:
        raise not_found("instance (podName)", p.podName)
    cloud_ = need(ctx.subsystems.cloud, "cloud")
    logs = []
    if pod.node_id:
        sock = cloud_.engine.docker_socket(pod.node_id)
        for c in pod.status.get("containers", []):
            if p.containerName and c["name"] != p.containerName:
                continue
            current = c.get("containerId", "") if c.get("status") == "Running" else ""
            found = docker.previous_container(sock, pod.uid, c["name"], current)
            if found is not None:
                text = docker.logs(sock, found, tail=p.tail)
                logs.append(
                    {"name": c["name"], "restartCount": int(c.get("restartCount", 0)), "log": text}
                )
    return {"podLog": [{"name": pod.name, "containerLog": logs}]}


@action("ModifyClusterService", ServiceParams, resources=("clusterId",))
def modify_service(ctx: RequestContext, p: ServiceParams) -> None:
    """The whole service again, in the create shape or the describe shape."""
    _check_privileged(ctx, p)
    cluster, svc = _service(ctx, p)
    spec = spec_of(p)
    # What the request leaves out of the update strategy stays as it was (a client sending
    # the create shape must not turn a Recreate service into a RollingUpdate one).
    for key in ("strategy", "minReadySeconds"):
        if key not in p.model_fields_set and key in svc.spec:
            spec[key] = svc.spec[key]
    if spec["accessType"] != "None" and not svc.cluster_ip:
        svc.cluster_ip = _allocate_cluster_ip(ctx, cluster)
    elif spec["accessType"] == "None":
        svc.cluster_ip = None
    old = svc.spec
    svc.spec = spec
    _access(ctx, cluster, svc, old)
    svc.description = p.serviceDesc
    svc.replicas = p.replicas
    svc.operation = ""
    svc.updated_at = utcnow()


class DescriptionParams(ServiceRef):
    description: Description = ""


@action("ModifyServiceDescription", DescriptionParams, resources=("clusterId",))
def modify_description(ctx: RequestContext, p: DescriptionParams) -> None:
    _, svc = _service(ctx, p)
    svc.description = p.description


class ImageChange(Params):
    containerName: ContainerName
    image: Image


class ImageParams(ServiceRef):
    image: Image | None = None
    containers: Array[ImageChange] = []


@action("ModifyClusterServiceImage", ImageParams, resources=("clusterId",))
def modify_image(ctx: RequestContext, p: ImageParams) -> None:
    _, svc = _service(ctx, p)
    containers = svc.spec["containers"]
    if p.image is not None:
        if p.containers:
            raise invalid_parameter("containers", "give image or containers, not both")
        if len(containers) != 1:
            raise invalid_parameter(
                "image", f"the service has {len(containers)} containers: use containers.n instead"
            )
        changes = {containers[0]["containerName"]: p.image}
    elif p.containers:
        names = {c["containerName"] for c in containers}
        changes = {}
        for i, change in enumerate(p.containers):
            if change.containerName not in names:
                raise invalid_parameter(
                    f"containers.{i}.containerName", f"no container {change.containerName!r}"
                )
            if change.containerName in changes:
                raise invalid_parameter(
                    f"containers.{i}.containerName", f"{change.containerName} given twice"
                )
            changes[change.containerName] = change.image
    else:
        raise invalid_parameter("image", "give image (one container) or containers.n")
    wl.set_images(svc, changes)


class LabelsParams(ServiceRef):
    labels: LabelMap = {}

    @model_validator(mode="after")
    def _valid(self) -> LabelsParams:
        check_labels(self.labels, "labels", wl.APP_LABEL)
        return self


@action("ModifyServiceLabels", LabelsParams, resources=("clusterId",))
def modify_labels(ctx: RequestContext, p: LabelsParams) -> dict[str, Any]:
    _, svc = _service(ctx, p)
    svc.labels = {wl.APP_LABEL: svc.name, **p.labels}
    return {
        "labels": dict(svc.labels),
        "sysLabels": {wl.APP_LABEL: svc.name},
        "userLabels": dict(p.labels),
    }


@action("RollBackClusterService", ServiceRef, resources=("clusterId",))
def rollback(ctx: RequestContext, p: ServiceRef) -> None:
    """Back to the revision before the current one, as `kubectl rollout undo`."""
    _, svc = _service(ctx, p)
    revs = wl.revisions(ctx.db, svc)
    current = wl.current_replicaset(ctx.db, svc)
    older = [rs for rs in revs if current is None or rs.revision < current.revision]
    if not older:
        raise ApiError(5100, "NoRevisionToRollBack", f"service {svc.name} has no earlier revision")
    target = older[-1]
    spec = dict(svc.spec)
    for key in ("containers", "volumes", "nodeAffinity", "podAffinity"):
        spec[key] = target.template.get(key)
    svc.spec = spec
    svc.restarted_at = target.template.get("restartedAt", "")
    # The revision returned to becomes the newest, as in Kubernetes.
    target.revision = max(rs.revision for rs in revs) + 1
    svc.operation = "RollingBack"
    svc.paused = False


@action("RedeployClusterService", ServiceRef, resources=("clusterId",))
def redeploy(ctx: RequestContext, p: ServiceRef) -> None:
    """Every pod made again with the current spec (images pulled again)."""
    _, svc = _service(ctx, p)
    svc.restarted_at = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")


@action("PauseClusterService", ServiceRef, resources=("clusterId",))
def pause(ctx: RequestContext, p: ServiceRef) -> None:
    _, svc = _service(ctx, p)
    if svc.paused:
        raise ApiError(5100, "ServicePaused", f"service {svc.name} is already paused")
    svc.paused = True


@action("ResumeClusterService", ServiceRef, resources=("clusterId",))
def resume(ctx: RequestContext, p: ServiceRef) -> None:
    _, svc = _service(ctx, p)
    if not svc.paused:
        raise ApiError(5100, "ServiceNotPaused", f"service {svc.name} is not paused")
    svc.paused = False


class TextParams(ServiceRef):
    bSimple: int = Field(default=0, ge=0, le=1)


@action("DescribeClusterServiceText", TextParams, resources=("clusterId",), inline=True)
def describe_text(ctx: RequestContext, p: TextParams) -> dict[str, Any]:
    from openccs.domain import manifests

    _, svc = _service(ctx, p)
    current = wl.current_replicaset(ctx.db, svc)
    full, pure = manifests.texts(
        svc, wl.service_pods(ctx.db, svc), current.revision if current else 1
    )
    return {"serviceText": pure if p.bSimple else full, "servicePureText": pure}
