"""The typed input of a service and a namespace: the parameter models every front end
decodes into (the v2 actions from the wire, the Kubernetes API from a Deployment or a
Service), with the checks across fields, and `spec_of`, which makes the domain's
`ServiceSpec` of a checked input. A bad value is a 4000 naming the parameter; the
Kubernetes API says it as the field it came from."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from openccs.backends.inputs import (
    DNS_LABEL,
    ClusterId,
    Command,
    ContainerName,
    Description,
    HostPath,
    Image,
    LabelMap,
    MountPath,
    NamespaceName,
    ServiceName,
    check_affinity,
    check_labels,
    check_mounts,
    check_volumes,
)
from openccs.domain import spec as sp
from openccs.domain.workloads import APP_LABEL
from openccs.errors import invalid_parameter
from openccs.schema import Array, Params

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Env(Params):
    name: str = Field(min_length=1, max_length=253, pattern=ENV_NAME)
    value: str = ""


class VolumeMount(Params):
    volumeName: str = Field(min_length=1)
    mountPath: MountPath
    mode: Literal["rw", "ro"] = "rw"


class ProbeTiming(Params):
    """What both shapes of a probe say alike: the method and the timing."""

    checkMethod: Literal["methodTcp", "methodHttp", "methodCmd"]
    healthNum: int = Field(default=1, ge=1, le=10)
    unhealthNum: int = Field(default=3, ge=1, le=10)
    intervalTime: int = Field(default=10, ge=2, le=300)
    timeOut: int = Field(default=2, ge=2, le=60)
    delayTime: int = Field(default=0, ge=0, le=60)


class HealthCheck(ProbeTiming):
    type: Literal["liveCheck", "readyCheck"]
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


class Probe(ProbeTiming):
    """A probe in DescribeClusterServiceInfo's shape (liveProbe / readyProbe)."""

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
        for request, limit, floor, least in (("cpu", "cpuLimits", 100, "100 (0.1 core)"),
                                             ("memory", "memoryLimits", 4, "4 MiB")):  # fmt: skip
            given, most = getattr(c, request), getattr(c, limit)
            if given and given < floor:
                raise invalid_parameter(f"{where}.{request}", f"at least {least}, or 0 for none")
            if most and most < floor:
                raise invalid_parameter(f"{where}.{limit}", f"at least {least}, or 0")
            if most and given and most < given:
                raise invalid_parameter(f"{where}.{limit}", f"must not be below {request}")
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


def _timing(p: ProbeTiming) -> sp.Probe:
    """A probe's method and timing, from either shape (they share these fields)."""
    return sp.Probe(
        p.checkMethod,
        health_num=p.healthNum,
        unhealth_num=p.unhealthNum,
        interval=p.intervalTime,
        timeout=p.timeOut,
        delay=p.delayTime,
    )


def _probe_from_check(h: HealthCheck, where: str) -> sp.Probe:
    """The create shape (healthCheck.n) as a probe."""
    base = _timing(h)
    if h.checkMethod == "methodCmd":
        if not h.cmd:
            raise invalid_parameter(f"{where}.cmd", "required for methodCmd")
        return replace(base, cmd=h.cmd)
    if h.port is None:
        raise invalid_parameter(f"{where}.port", f"required for {h.checkMethod}")
    if h.checkMethod == "methodTcp":
        return replace(base, port=h.port)
    return replace(base, port=h.port, protocol=h.protocol, path=h.path or "/")


def _probe_from_spec(pr: Probe, where: str) -> sp.Probe:
    """The describe shape (liveProbe / readyProbe) as a probe."""
    method = {"methodTcp": pr.methodTcp, "methodHttp": pr.methodHttp, "methodCmd": pr.methodCmd}
    how = method[pr.checkMethod]
    if how is None:
        raise invalid_parameter(f"{where}.{pr.checkMethod}", f"required for {pr.checkMethod}")
    out = _timing(pr)
    if isinstance(how, CmdCheck):
        return replace(out, cmd=how.cmd)
    if isinstance(how, HttpCheck):
        return replace(out, port=how.port, protocol=how.protocol, path=how.path)
    return replace(out, port=how.port)


def probes(c: Container, where: str) -> tuple[sp.Probe | None, sp.Probe | None]:
    """The liveness and readiness probes of a container, from either shape, checked."""
    found: dict[str, sp.Probe | None] = {"liveProbe": None, "readyProbe": None}
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
    if live is not None and live.health_num != 1:
        raise invalid_parameter(f"{where}.healthCheck", "healthNum of a liveCheck must be 1")
    return found["liveProbe"], found["readyProbe"]


def spec_of(p: ServiceParams) -> sp.ServiceSpec:
    """The typed spec of checked parameters."""
    containers = []
    for i, c in enumerate(p.containers):
        live, ready = probes(c, f"containers.{i}")
        containers.append(
            sp.ContainerSpec(
                name=c.containerName,
                image=c.image,
                envs=tuple(sp.EnvVar(e.name, e.value) for e in c.envs or ()),
                mounts=tuple(
                    sp.Mount(m.volumeName, m.mountPath, m.mode) for m in c.volumeMounts or ()
                ),
                cpu=c.cpu,
                cpu_limit=c.cpuLimits,
                memory=c.memory,
                # The document: without memoryLimits the limit equals the request.
                memory_limit=c.memoryLimits or c.memory,
                command=c.command,
                args=tuple(c.arguments or ()),
                privileged=c.privileged,
                working_dir=c.workingDir,
                live_probe=live,
                ready_probe=ready,
            )
        )
    return sp.ServiceSpec(
        containers=tuple(containers),
        volumes=tuple(sp.VolumeSpec(v.name, v.volumeType, v.hostPath) for v in p.volumes),
        ports=tuple(
            sp.PortSpec(pm.lbPort, pm.containerPort, pm.protocol, pm.nodePort)
            for pm in p.portMappings
        ),
        access_type=p.accessType,
        subnet_id=p.subnetId or "",
        node_affinity=tuple(
            sp.AffinityTerm(a.key, a.operator, tuple(a.values)) for a in p.nodeAffinity
        ),
        pod_affinity=tuple(
            sp.AffinityTerm(a.key, a.operator, tuple(a.values)) for a in p.podAffinity
        ),
        strategy=p.strategy,
        min_ready_seconds=p.minReadySeconds,
    )


class ImageChange(Params):
    containerName: ContainerName
    image: Image


class ServiceLabels(Params):
    """A service's own labels (the system's label is not one of them)."""

    labels: LabelMap = {}

    @model_validator(mode="after")
    def _valid(self) -> ServiceLabels:
        check_labels(self.labels, "labels", APP_LABEL)
        return self


class CreateNamespaceParams(Params):
    clusterId: ClusterId
    name: NamespaceName
    # Required by the document's table (empty is allowed); ModifyNamespaceDescription's is not.
    description: Description
