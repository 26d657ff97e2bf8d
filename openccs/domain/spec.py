"""A service's spec, typed: containers, probes, volumes, ports, affinity, update strategy.

The database keeps the spec in the shape DescribeClusterServiceInfo answers with (so the
matching Modify accepts it back, and databases made before this module keep working);
`ServiceSpec.from_v2` reads that shape once and `to_v2` writes it back, key for key. Code
that needs a container's command, limits or probes reads them here by attribute, and the
container's Kubernetes form is made here, once, for every place that shows one.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(slots=True)
class Probe:
    """A liveness or readiness check (the document's liveProbe / readyProbe)."""

    method: str  # methodTcp, methodHttp or methodCmd
    health_num: int = 1
    unhealth_num: int = 3
    interval: int = 10
    timeout: int = 2
    delay: int = 0
    port: int = 0  # methodTcp, methodHttp
    path: str = "/"  # methodHttp
    protocol: str = "HTTP"  # methodHttp
    cmd: str = ""  # methodCmd

    @classmethod
    def from_v2(cls, p: Mapping[str, Any]) -> Probe:
        method = p["checkMethod"]
        how = p.get(method) or {}
        return cls(
            method=method,
            health_num=p.get("healthNum", 1),
            unhealth_num=p.get("unhealthNum", 3),
            interval=p.get("intervalTime", 10),
            timeout=p.get("timeOut", 2),
            delay=p.get("delayTime", 0),
            port=how.get("port", 0),
            path=how.get("path", "/"),
            protocol=how.get("protocol", "HTTP"),
            cmd=how.get("cmd", ""),
        )

    def to_v2(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checkMethod": self.method,
            "healthNum": self.health_num,
            "unhealthNum": self.unhealth_num,
            "intervalTime": self.interval,
            "timeOut": self.timeout,
            "delayTime": self.delay,
            "methodTcp": None,
            "methodHttp": None,
            "methodCmd": None,
        }
        if self.method == "methodTcp":
            out["methodTcp"] = {"port": self.port}
        elif self.method == "methodHttp":
            out["methodHttp"] = {"port": self.port, "protocol": self.protocol, "path": self.path}
        else:
            out["methodCmd"] = {"cmd": self.cmd}
        return out

    def kubernetes(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "initialDelaySeconds": self.delay,
            "timeoutSeconds": self.timeout,
            "periodSeconds": self.interval,
            "successThreshold": self.health_num,
            "failureThreshold": self.unhealth_num,
        }
        if self.method == "methodTcp":
            out["tcpSocket"] = {"port": self.port}
        elif self.method == "methodHttp":
            out["httpGet"] = {"port": self.port, "path": self.path or "/", "scheme": self.protocol}
        else:
            out["exec"] = {"command": ["sh", "-c", self.cmd]}
        return out


@dataclass(slots=True)
class EnvVar:
    name: str
    value: str = ""


@dataclass(slots=True)
class Mount:
    volume: str
    path: str
    mode: str = "rw"  # rw or ro


@dataclass(slots=True)
class ContainerSpec:
    name: str
    image: str
    envs: tuple[EnvVar, ...] = ()
    mounts: tuple[Mount, ...] = ()
    cpu: int = 0  # millicores requested
    cpu_limit: int = 0
    memory: int = 0  # MiB requested
    memory_limit: int = 0
    command: str = ""  # the entrypoint, one shell-like string
    args: tuple[str, ...] = ()
    privileged: bool = False
    working_dir: str = ""
    live_probe: Probe | None = None
    ready_probe: Probe | None = None

    @classmethod
    def from_v2(cls, c: Mapping[str, Any]) -> ContainerSpec:
        live, ready = c.get("liveProbe"), c.get("readyProbe")
        return cls(
            name=c["containerName"],
            image=c["image"],
            envs=tuple(EnvVar(e["name"], e.get("value", "")) for e in c.get("envs") or []),
            mounts=tuple(
                Mount(m["volumeName"], m["mountPath"], m.get("mode") or "rw")
                for m in c.get("volumeMounts") or []
            ),
            cpu=int(c.get("cpu") or 0),
            cpu_limit=int(c.get("cpuLimits") or 0),
            memory=int(c.get("memory") or 0),
            memory_limit=int(c.get("memoryLimits") or 0),
            command=c.get("command") or "",
            args=tuple(c.get("arguments") or ()),
            privileged=bool(c.get("privileged")),
            working_dir=c.get("workingDir") or "",
            live_probe=Probe.from_v2(live) if live else None,
            ready_probe=Probe.from_v2(ready) if ready else None,
        )

    def to_v2(self) -> dict[str, Any]:
        return {
            "containerName": self.name,
            "image": self.image,
            "envs": [{"name": e.name, "value": e.value} for e in self.envs] or None,
            "volumeMounts": [
                {"volumeName": m.volume, "mountPath": m.path, "mode": m.mode} for m in self.mounts
            ]
            or None,
            "cpu": self.cpu,
            "cpuLimits": self.cpu_limit,
            "memory": self.memory,
            "memoryLimits": self.memory_limit,
            "command": self.command,
            "arguments": list(self.args) or None,
            "privileged": self.privileged,
            "workingDir": self.working_dir,
            "liveProbe": self.live_probe.to_v2() if self.live_probe else None,
            "readyProbe": self.ready_probe.to_v2() if self.ready_probe else None,
        }

    @property
    def entrypoint(self) -> list[str]:
        """The command split as a shell would (the parameter models refuse what cannot be)."""
        return shlex.split(self.command) if self.command else []

    @property
    def effective_memory_limit(self) -> int:
        """MiB the container may use: the limit, or without one the request (the document)."""
        return self.memory_limit or self.memory

    def kubernetes(self, volumes: Mapping[str, Any], probes: bool = True) -> dict[str, Any]:
        """The container as a Kubernetes Pod's `containers[]` item; mounts of volumes that
        are not in `volumes` (by name) are left out."""
        out: dict[str, Any] = {"name": self.name, "image": self.image}
        if self.command:
            out["command"] = self.entrypoint
        if self.args:
            out["args"] = list(self.args)
        if self.working_dir:
            out["workingDir"] = self.working_dir
        if self.envs:
            out["env"] = [{"name": e.name, "value": e.value} for e in self.envs]
        requests = _quantities(self.cpu, self.memory)
        limits = _quantities(self.cpu_limit, self.memory_limit)
        if requests or limits:
            out["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
        if self.privileged:
            out["securityContext"] = {"privileged": True}
        if self.mounts:
            out["volumeMounts"] = [
                {"name": m.volume, "mountPath": m.path, "readOnly": m.mode == "ro"}
                for m in self.mounts
                if m.volume in volumes
            ]
        if probes and self.live_probe:
            out["livenessProbe"] = self.live_probe.kubernetes()
        if probes and self.ready_probe:
            out["readinessProbe"] = self.ready_probe.kubernetes()
        return out


def _quantities(millicores: int, mib: int) -> dict[str, str]:
    out = {}
    if millicores:
        out["cpu"] = f"{millicores}m"
    if mib:
        out["memory"] = f"{mib}Mi"
    return out


@dataclass(slots=True)
class VolumeSpec:
    name: str
    type: str = "hostPath"
    host_path: str = ""  # empty: a directory of the pod's own (emptyDir)

    @classmethod
    def from_v2(cls, v: Mapping[str, Any]) -> VolumeSpec:
        return cls(v["name"], v.get("volumeType", "hostPath"), v.get("hostPath") or "")

    def to_v2(self) -> dict[str, Any]:
        return {"name": self.name, "volumeType": self.type, "hostPath": self.host_path}

    def kubernetes(self) -> dict[str, Any]:
        if self.host_path:
            return {"name": self.name, "hostPath": {"path": self.host_path}}
        return {"name": self.name, "emptyDir": {}}


@dataclass(slots=True)
class PortSpec:
    lb_port: int
    container_port: int
    protocol: str = "TCP"
    node_port: int = 0

    @classmethod
    def from_v2(cls, pm: Mapping[str, Any]) -> PortSpec:
        return cls(
            pm["lbPort"], pm["containerPort"], pm.get("protocol", "TCP"), pm.get("nodePort", 0)
        )

    def to_v2(self) -> dict[str, Any]:
        return {
            "lbPort": self.lb_port,
            "containerPort": self.container_port,
            "nodePort": self.node_port,
            "protocol": self.protocol,
        }


@dataclass(slots=True)
class AffinityTerm:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def from_v2(cls, a: Mapping[str, Any]) -> AffinityTerm:
        return cls(a["key"], a["operator"], tuple(a.get("values") or ()))

    def to_v2(self) -> dict[str, Any]:
        return {"key": self.key, "operator": self.operator, "values": list(self.values)}

    def kubernetes(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.values:
            out["values"] = list(self.values)
        return out


@dataclass(slots=True)
class ServiceSpec:
    """What a service runs and how it is reached: the stored `Service.spec`, typed."""

    containers: tuple[ContainerSpec, ...]
    volumes: tuple[VolumeSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    access_type: str = "ClusterIP"
    subnet_id: str = ""
    node_affinity: tuple[AffinityTerm, ...] = ()
    pod_affinity: tuple[AffinityTerm, ...] = ()
    strategy: str = "RollingUpdate"
    min_ready_seconds: int = 0
    # Keys of the stored shape this version does not know, kept as they were.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_v2(cls, spec: Mapping[str, Any]) -> ServiceSpec:
        known = {
            "containers",
            "volumes",
            "portMappings",
            "accessType",
            "subnetId",
            "nodeAffinity",
            "podAffinity",
            "strategy",
            "minReadySeconds",
        }
        return cls(
            containers=tuple(ContainerSpec.from_v2(c) for c in spec.get("containers") or []),
            volumes=tuple(VolumeSpec.from_v2(v) for v in spec.get("volumes") or []),
            ports=tuple(PortSpec.from_v2(pm) for pm in spec.get("portMappings") or []),
            access_type=spec.get("accessType", "ClusterIP"),
            subnet_id=spec.get("subnetId") or "",
            node_affinity=tuple(AffinityTerm.from_v2(a) for a in spec.get("nodeAffinity") or []),
            pod_affinity=tuple(AffinityTerm.from_v2(a) for a in spec.get("podAffinity") or []),
            strategy=spec.get("strategy", "RollingUpdate"),
            min_ready_seconds=int(spec.get("minReadySeconds") or 0),
            extra={k: v for k, v in spec.items() if k not in known},
        )

    def to_v2(self) -> dict[str, Any]:
        return {
            **self.extra,
            "containers": [c.to_v2() for c in self.containers],
            "volumes": [v.to_v2() for v in self.volumes],
            "portMappings": [pm.to_v2() for pm in self.ports],
            "accessType": self.access_type,
            "subnetId": self.subnet_id,
            "nodeAffinity": [a.to_v2() for a in self.node_affinity],
            "podAffinity": [a.to_v2() for a in self.pod_affinity],
            "strategy": self.strategy,
            "minReadySeconds": self.min_ready_seconds,
        }

    def container(self, name: str) -> ContainerSpec | None:
        return next((c for c in self.containers if c.name == name), None)

    def with_images(self, images: Mapping[str, str]) -> ServiceSpec:
        """The same spec with some containers (by name) on other images."""
        return replace(
            self,
            containers=tuple(
                replace(c, image=images[c.name]) if c.name in images else c for c in self.containers
            ),
        )


# Typed specs by service id, with the stored spec each was read from (a copy of it).
_TYPED: dict[int, tuple[dict[str, Any], ServiceSpec]] = {}
_TYPED_MAX = 16384


def typed_spec(service_id: int, stored: Mapping[str, Any]) -> ServiceSpec:
    """`ServiceSpec.from_v2(stored)`, for the passes that read every service's spec (the
    deployment controller, node ports): remembered per service while its stored spec stays
    equal to the one it was read from. Comparing the two costs about a seventh of reading
    the spec again, and never answers a spec that changed. The answer is shared: read it,
    never change it (`dataclasses.replace` makes another)."""
    seen = _TYPED.get(service_id)
    if seen is not None and seen[0] == stored:
        return seen[1]
    typed = ServiceSpec.from_v2(stored)
    if len(_TYPED) >= _TYPED_MAX:
        _TYPED.clear()
    _TYPED[service_id] = (json.loads(json.dumps(stored)), typed)
    return typed
