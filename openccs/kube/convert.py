"""Kubernetes objects as the inputs of the workloads backend: a Deployment as the
parameters of CreateClusterService / ModifyClusterService (checked by the same models), a
Service as its Deployment's ports. What the service model has not answers 422 naming the
field; a bad value answers 422 naming the Kubernetes field it came from."""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

from openccs.domain import manifests
from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec
from openccs.errors import ApiError
from openccs.kube.errors import KubeError, from_api, invalid, unsupported
from openccs.kube.kinds import HASH_LABEL
from openccs.schema import validate_params
from openccs.store.models import Service


def _quantity_milli(value: Any) -> int:
    text = str(value)
    if text.endswith("m"):
        return int(float(text[:-1]))
    return int(float(text) * 1000)


_MEM = {
    "Ki": 1 / 1024,
    "Mi": 1,
    "Gi": 1024,
    "Ti": 1024 * 1024,
    "k": 1000 / 1048576,
    "M": 1e6 / 1048576,
    "G": 1e9 / 1048576,
}


def _quantity_mib(value: Any) -> int:
    text = str(value)
    for suffix in sorted(_MEM, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _MEM[suffix])
    return int(float(text) / 1048576)


_IGNORED_POD: dict[str, Any] = {
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": None,
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "securityContext": {},
}
_IGNORED_CONTAINER = (
    "ports",
    "imagePullPolicy",
    "terminationMessagePath",
    "terminationMessagePolicy",
)


class Conv:
    """Errors of one object's conversion, naming the Kubernetes field."""

    def __init__(self, kind: str, name: str, group: str = "apps") -> None:
        self.kind, self.name, self.group = kind, name, group

    def bad(self, field: str, why: str | None = None) -> KubeError:
        if why is None:
            return unsupported(self.kind, self.name, field, self.group)
        return invalid(self.kind, self.name, field, why, self.group)

    def leftovers(self, obj: dict[str, Any], known: set[str], where: str) -> None:
        for key, value in obj.items():
            if key not in known and value not in (None, {}, []):
                raise self.bad(f"{where}.{key}")


def _probe_in(c: Conv, pr: dict[str, Any], where: str) -> dict[str, Any]:
    c.leftovers(
        pr,
        {
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
            "tcpSocket",
            "httpGet",
            "exec",
        },
        where,
    )
    out: dict[str, Any] = {
        "healthNum": pr.get("successThreshold", 1),
        "unhealthNum": pr.get("failureThreshold", 3),
        "intervalTime": pr.get("periodSeconds", 10),
        "timeOut": max(2, pr.get("timeoutSeconds", 2)),
        "delayTime": pr.get("initialDelaySeconds", 0),
    }
    if pr.get("tcpSocket"):
        port = pr["tcpSocket"].get("port")
        if not isinstance(port, int):
            raise c.bad(f"{where}.tcpSocket.port", "named ports are not supported: give a number")
        out.update(checkMethod="methodTcp", methodTcp={"port": port})
    elif pr.get("httpGet"):
        h = pr["httpGet"]
        if not isinstance(h.get("port"), int):
            raise c.bad(f"{where}.httpGet.port", "named ports are not supported: give a number")
        out.update(
            checkMethod="methodHttp",
            methodHttp={
                "port": h["port"],
                "path": h.get("path") or "/",
                "protocol": h.get("scheme", "HTTP"),
            },
        )
    elif pr.get("exec"):
        cmd = pr["exec"].get("command") or []
        text = cmd[2] if len(cmd) == 3 and cmd[:2] == ["sh", "-c"] else shlex.join(cmd)
        out.update(checkMethod="methodCmd", methodCmd={"cmd": text})
    else:
        raise c.bad(where, "a probe needs tcpSocket, httpGet or exec")
    return out


def _container_in(c: Conv, ct: dict[str, Any], where: str) -> dict[str, Any]:
    c.leftovers(
        ct,
        {
            "name",
            "image",
            "command",
            "args",
            "workingDir",
            "env",
            "resources",
            "securityContext",
            "volumeMounts",
            "livenessProbe",
            "readinessProbe",
            *_IGNORED_CONTAINER,
        },
        where,
    )
    out: dict[str, Any] = {"containerName": ct.get("name", ""), "image": ct.get("image", "")}
    if ct.get("command"):
        out["command"] = shlex.join(ct["command"])
    if ct.get("args"):
        out["arguments"] = list(ct["args"])
    if ct.get("workingDir"):
        out["workingDir"] = ct["workingDir"]
    envs = []
    for i, e in enumerate(ct.get("env") or []):
        if "valueFrom" in e:
            raise c.bad(f"{where}.env[{i}].valueFrom")
        envs.append({"name": e.get("name", ""), "value": e.get("value", "")})
    if envs:
        out["envs"] = envs
    res = ct.get("resources") or {}
    c.leftovers(res, {"requests", "limits"}, f"{where}.resources")
    for part, cpu_key, mem_key in (
        ("requests", "cpu", "memory"),
        ("limits", "cpuLimits", "memoryLimits"),
    ):
        q = res.get(part) or {}
        c.leftovers(q, {"cpu", "memory"}, f"{where}.resources.{part}")
        try:
            if "cpu" in q:
                out[cpu_key] = _quantity_milli(q["cpu"])
            if "memory" in q:
                out[mem_key] = _quantity_mib(q["memory"])
        except ValueError:
            raise c.bad(f"{where}.resources.{part}", "not a quantity") from None
    sc = ct.get("securityContext") or {}
    c.leftovers(sc, {"privileged"}, f"{where}.securityContext")
    if sc.get("privileged"):
        out["privileged"] = True
    mounts = []
    for i, m in enumerate(ct.get("volumeMounts") or []):
        c.leftovers(m, {"name", "mountPath", "readOnly"}, f"{where}.volumeMounts[{i}]")
        mounts.append(
            {
                "volumeName": m.get("name", ""),
                "mountPath": m.get("mountPath", ""),
                "mode": "ro" if m.get("readOnly") else "rw",
            }
        )
    if mounts:
        out["volumeMounts"] = mounts
    if ct.get("livenessProbe"):
        out["liveProbe"] = _probe_in(c, ct["livenessProbe"], f"{where}.livenessProbe")
    if ct.get("readinessProbe"):
        out["readyProbe"] = _probe_in(c, ct["readinessProbe"], f"{where}.readinessProbe")
    return out


def _affinity_in(c: Conv, aff: dict[str, Any], where: str) -> dict[str, Any]:
    c.leftovers(aff, {"nodeAffinity", "podAffinity"}, where)
    out: dict[str, Any] = {}
    na = aff.get("nodeAffinity")
    if na:
        c.leftovers(na, {"requiredDuringSchedulingIgnoredDuringExecution"}, f"{where}.nodeAffinity")
        terms = (na.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
            "nodeSelectorTerms"
        ) or []
        if len(terms) != 1:
            raise c.bad(f"{where}.nodeAffinity", "exactly one nodeSelectorTerm is supported")
        out["nodeAffinity"] = [
            {"key": e["key"], "operator": e["operator"], "values": e.get("values") or []}
            for e in terms[0].get("matchExpressions") or []
        ]
    pa = aff.get("podAffinity")
    if pa:
        terms = pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if len(terms) != 1 or terms[0].get("topologyKey") != "kubernetes.io/hostname":
            raise c.bad(
                f"{where}.podAffinity",
                "one required term with topologyKey kubernetes.io/hostname is supported",
            )
        sel = terms[0].get("labelSelector") or {}
        out["podAffinity"] = [
            {"key": e["key"], "operator": e["operator"], "values": e.get("values") or []}
            for e in sel.get("matchExpressions") or []
        ]
        out["podAffinity"] += [
            {"key": k, "operator": "In", "values": [v]}
            for k, v in (sel.get("matchLabels") or {}).items()
        ]
    return out


def deployment_params(
    cluster_id: str, namespace: str, dep: dict[str, Any], existing: Service | None
) -> tuple[dict[str, Any], dict[str, str], str]:
    """A Deployment as the parameters of CreateClusterService/ModifyClusterService (v2 shape),
    its labels, and its restartedAt."""
    meta = dep.get("metadata") or {}
    name = meta.get("name") or ""
    c = Conv("Deployment", name)
    if dep.get("kind", "Deployment") != "Deployment":
        raise c.bad("kind", "must be Deployment")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise c.bad("metadata.namespace", "does not match the namespace of the request")
    spec = copy.deepcopy(dep.get("spec") or {})
    c.leftovers(
        spec,
        {
            "replicas",
            "selector",
            "template",
            "strategy",
            "minReadySeconds",
            "paused",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
        },
        "spec",
    )
    tmpl = spec.get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    labels = {k: str(v) for k, v in (tmeta.get("labels") or {}).items() if k != HASH_LABEL}
    sel = spec.get("selector") or {}
    c.leftovers(sel, {"matchLabels"}, "spec.selector")
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v and not (k == wl.APP_LABEL and v == name):
            raise c.bad("spec.selector", "`selector` does not match template `labels`")
    if labels.get(wl.APP_LABEL, name) != name:
        raise c.bad(
            f"spec.template.metadata.labels[{wl.APP_LABEL}]",
            f"must be the Deployment's name ({name})",
        )
    labels[wl.APP_LABEL] = name
    restarted = (tmeta.get("annotations") or {}).get("openccs.io/restartedAt", "")
    pod = tmpl.get("spec") or {}
    c.leftovers(pod, {"containers", "volumes", "affinity", *_IGNORED_POD}, "spec.template.spec")
    if pod.get("restartPolicy", "Always") != "Always":
        raise c.bad("spec.template.spec.restartPolicy", "only Always is supported")
    containers = [
        _container_in(c, ct, f"spec.template.spec.containers[{i}]")
        for i, ct in enumerate(pod.get("containers") or [])
    ]
    volumes = []
    for i, v in enumerate(pod.get("volumes") or []):
        where = f"spec.template.spec.volumes[{i}]"
        c.leftovers(v, {"name", "hostPath", "emptyDir"}, where)
        if v.get("hostPath"):
            volumes.append(
                {
                    "name": v.get("name", ""),
                    "volumeType": "hostPath",
                    "hostPath": v["hostPath"].get("path", ""),
                }
            )
        elif "emptyDir" in v:
            volumes.append({"name": v.get("name", ""), "volumeType": "hostPath", "hostPath": ""})
        else:
            raise c.bad(where, "only hostPath and emptyDir volumes are supported")
    strategy = spec.get("strategy") or {}
    params: dict[str, Any] = {
        "clusterId": cluster_id,
        "namespace": namespace,
        "serviceName": name,
        "serviceDesc": (meta.get("annotations") or {}).get("description", ""),
        "replicas": spec.get("replicas", 1),
        "containers": containers,
        "volumes": volumes,
        "strategy": strategy.get("type", "RollingUpdate"),
        "minReadySeconds": spec.get("minReadySeconds", 0),
        **_affinity_in(c, pod.get("affinity") or {}, "spec.template.spec.affinity"),
    }
    if existing is not None:
        params["accessType"] = existing.spec.get("accessType", "None")
        params["portMappings"] = existing.spec.get("portMappings", [])
        params["subnetId"] = existing.spec.get("subnetId") or None
        params["serviceDesc"] = existing.description
    else:
        params["accessType"] = "None"
    return params, labels, restarted


_FIELDS = {
    "containerName": "name",
    "cpu": "resources.requests.cpu",
    "cpuLimits": "resources.limits.cpu",
    "memory": "resources.requests.memory",
    "memoryLimits": "resources.limits.memory",
    "envs": "env",
    "arguments": "args",
    "liveProbe": "livenessProbe",
    "readyProbe": "readinessProbe",
    "healthCheck": "readinessProbe",
    "volumeName": "name",
}


def k8s_field(param: str, kind: str) -> str:
    """A v2 parameter path (containers.0.cpu) as the Kubernetes field it came from."""
    parts = param.split(".")
    if kind == "Service" and parts[0] == "portMappings":
        tail = {"lbPort": "port", "containerPort": "targetPort"}.get(parts[-1], parts[-1])
        return f"spec.ports[{parts[1]}].{tail}" if len(parts) > 2 else "spec.ports"
    head = {
        "containers": "spec.template.spec.containers",
        "volumes": "spec.template.spec.volumes",
        "replicas": "spec.replicas",
        "serviceName": "metadata.name",
        "minReadySeconds": "spec.minReadySeconds",
        "strategy": "spec.strategy.type",
        "namespace": "metadata.namespace",
    }.get(parts[0], parts[0])
    out = head
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else "." + _FIELDS.get(part, part)
    return out


def validate(model: type[Any], params: dict[str, Any], kind: str, name: str) -> Any:
    try:
        return validate_params(model, params)
    except ApiError as err:
        m = re.match(r"^(?:Invalid|Missing required) parameter (\S+?)(?:: (.*))?$", err.message)
        if err.code == 4000 and m:
            group = "apps" if kind == "Deployment" else ""
            why = m.group(2) or "Required value"
            raise invalid(kind, name, k8s_field(m.group(1), kind), why, group) from None
        raise from_api(err, kind, name) from None


def norm(value: Any) -> Any:
    """Without empty values (what a Go client sends for its zero fields)."""
    if isinstance(value, dict):
        out = {k: norm(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [norm(v) for v in value]
    return value


def strip_hash(tmpl: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(tmpl)
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return dict(norm(t))


def changed(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return any((norm(a.get(k)) or None) != (norm(b.get(k)) or None) for k in keys)


def service_params(cluster_id: str, svc: Service) -> dict[str, Any]:
    """A service's stored spec as ModifyClusterService parameters (the describe shape)."""
    spec = ServiceSpec.from_v2(svc.spec)
    return {
        "clusterId": cluster_id,
        "serviceName": svc.name,
        "namespace": svc.namespace,
        "serviceDesc": svc.description,
        "replicas": svc.replicas,
        "containers": [
            {k: v for k, v in c.to_v2().items() if v is not None} for c in spec.containers
        ],
        "volumes": [v.to_v2() for v in spec.volumes],
        "subnetId": spec.subnet_id or None,
        "nodeAffinity": [a.to_v2() for a in spec.node_affinity],
        "podAffinity": [a.to_v2() for a in spec.pod_affinity],
        "strategy": spec.strategy,
        "minReadySeconds": spec.min_ready_seconds,
    }


SERVICE_SPEC_FIELDS = {
    "type",
    "selector",
    "ports",
    "clusterIP",
    "clusterIPs",
    "sessionAffinity",
    "ipFamilies",
    "ipFamilyPolicy",
    "internalTrafficPolicy",
    "externalTrafficPolicy",
    "allocateLoadBalancerNodePorts",
}


def service_access(obj: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """A Service as the access of its Deployment's service: the accessType, the subnet of an
    inner balancer, and the portMappings."""
    meta = obj.get("metadata") or {}
    c = Conv("Service", meta.get("name") or "", "")
    spec = obj.get("spec") or {}
    c.leftovers(spec, SERVICE_SPEC_FIELDS, "spec")
    access, subnet_id = _access_of(c, meta, spec)
    if spec.get("sessionAffinity", "None") != "None":
        raise c.bad("spec.sessionAffinity")
    mappings = []
    for i, port in enumerate(spec.get("ports") or []):
        c.leftovers(
            port, {"name", "port", "targetPort", "protocol", "nodePort"}, f"spec.ports[{i}]"
        )
        target = port.get("targetPort", port.get("port"))
        if not isinstance(target, int):
            raise c.bad(
                f"spec.ports[{i}].targetPort",
                "named target ports are not supported: give the container port",
            )
        mapping = {
            "lbPort": port.get("port"),
            "containerPort": target,
            "protocol": port.get("protocol", "TCP"),
        }
        if port.get("nodePort"):
            if access == "ClusterIP":
                raise c.bad(
                    f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"
                )
            mapping["nodePort"] = port["nodePort"]
        mappings.append(mapping)
    if not mappings:
        raise c.bad("spec.ports", "Required value: a Service needs at least one port")
    return access, subnet_id, mappings


def _access_of(c: Conv, meta: dict[str, Any], spec: dict[str, Any]) -> tuple[str, str]:
    """The accessType (and the subnet of an inner balancer) a Service's type means:
    ClusterIP, NodePort, LoadBalancer; a LoadBalancer annotated with a subnet, as on TKE,
    is the VPC's own (SvcLBTypeInner)."""
    kind = spec.get("type") or "ClusterIP"
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise c.bad(
            "spec.type",
            f'Unsupported value: "{kind}": supported values: "ClusterIP", "LoadBalancer",'
            ' "NodePort"',
        )
    if spec.get("externalTrafficPolicy", "Cluster") not in ("Cluster",):
        raise c.bad("spec.externalTrafficPolicy", "only Cluster is supported")
    if spec.get("allocateLoadBalancerNodePorts", True) is not True:
        raise c.bad("spec.allocateLoadBalancerNodePorts", "node ports are always allocated")
    subnet = ((meta.get("annotations") or {}).get(manifests.INNER_SUBNET_ANNOTATION)) or ""
    if subnet and kind != "LoadBalancer":
        raise c.bad(
            f"metadata.annotations[{manifests.INNER_SUBNET_ANNOTATION}]",
            "only a LoadBalancer Service takes its address from a subnet",
        )
    if kind == "LoadBalancer" and subnet:
        return "SvcLBTypeInner", str(subnet)
    return kind, ""
