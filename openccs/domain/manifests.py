"""A service as Kubernetes objects: the apps/v1 Deployment and the v1 Service that
describe it (DescribeClusterServiceText), valid YAML that kubectl accepts."""

from __future__ import annotations

from typing import Any

import yaml

from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec
from openccs.store.models import Pod, Service


def _affinity(spec: ServiceSpec) -> dict[str, Any] | None:
    aff: dict[str, Any] = {}
    if spec.node_affinity:
        aff["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [a.kubernetes() for a in spec.node_affinity]}
                ]
            }
        }
    if spec.pod_affinity:
        aff["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchExpressions": [a.kubernetes() for a in spec.pod_affinity]
                    },
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    return aff or None


def pod_spec(spec: ServiceSpec, probes: bool = True) -> dict[str, Any]:
    """The pod template's spec: containers, volumes, affinity."""
    volumes = {v.name: v for v in spec.volumes}
    out: dict[str, Any] = {
        "containers": [c.kubernetes(volumes, probes) for c in spec.containers],
        "restartPolicy": "Always",
    }
    if volumes:
        out["volumes"] = [v.kubernetes() for v in volumes.values()]
    affinity = _affinity(spec)
    if affinity:
        out["affinity"] = affinity
    return out


def deployment(svc: Service, revision: int, probes: bool = False) -> dict[str, Any]:
    """The Deployment of a service; with `probes`, its containers' probes too (the
    Kubernetes API shows them; DescribeClusterServiceText never did)."""
    spec = ServiceSpec.from_v2(svc.spec)
    strategy: dict[str, Any] = {"type": spec.strategy}
    if strategy["type"] == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": 0}
    annotations = {"description": svc.description} if svc.description else {}
    template_meta: dict[str, Any] = {"labels": dict(svc.labels)}
    if svc.restarted_at:
        template_meta["annotations"] = {"openccs.io/restartedAt": svc.restarted_at}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": svc.name,
            "namespace": svc.namespace,
            "labels": dict(svc.labels),
            **({"annotations": annotations} if annotations else {}),
        },
        "spec": {
            "replicas": svc.replicas,
            "paused": svc.paused,
            "minReadySeconds": spec.min_ready_seconds,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {wl.APP_LABEL: svc.name}},
            "strategy": strategy,
            "template": {"metadata": template_meta, "spec": pod_spec(spec, probes)},
        },
    }


# A service's accessType as the type of its Kubernetes Service (None has no Service).
SERVICE_TYPES = {
    "ClusterIP": "ClusterIP",
    "NodePort": "NodePort",
    "LoadBalancer": "LoadBalancer",
    "SvcLBTypeInner": "LoadBalancer",
}
INNER_SUBNET_ANNOTATION = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"


def service_object(svc: Service) -> dict[str, Any] | None:
    spec = svc.spec
    if spec.get("accessType") == "None" or not spec.get("portMappings"):
        return None
    access = spec.get("accessType", "ClusterIP")
    ports = []
    for pm in spec["portMappings"]:
        port = {
            "name": f"{pm['protocol'].lower()}-{pm['lbPort']}-{pm['containerPort']}",
            "port": pm["lbPort"],
            "targetPort": pm["containerPort"],
            "protocol": pm["protocol"],
        }
        if access != "ClusterIP" and pm.get("nodePort"):
            port["nodePort"] = pm["nodePort"]
        ports.append(port)
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": svc.name, "namespace": svc.namespace, "labels": dict(svc.labels)},
        "spec": {
            "type": SERVICE_TYPES.get(access, "ClusterIP"),
            "selector": {wl.APP_LABEL: svc.name},
            "ports": ports,
        },
    }
    if access == "SvcLBTypeInner":
        # As TKE marks a Service whose balancer is in the VPC: the subnet it takes its VIP from.
        out["metadata"]["annotations"] = {INNER_SUBNET_ANNOTATION: spec.get("subnetId") or ""}
    if svc.cluster_ip:
        out["spec"]["clusterIP"] = svc.cluster_ip
    return out


def texts(svc: Service, pods: list[Pod], revision: int) -> tuple[str, str]:
    """(serviceText with metadata and status, servicePureText without)."""
    dep, obj = deployment(svc, revision), service_object(svc)
    pure = [d for d in (dep, obj) if d is not None]
    full_dep = yaml.safe_load(yaml.safe_dump(dep))
    full_dep["metadata"].update(
        uid=f"svc-{svc.id}",
        generation=revision,
        creationTimestamp=svc.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        annotations={
            **full_dep["metadata"].get("annotations", {}),
            "deployment.kubernetes.io/revision": str(revision),
        },
    )
    live = [p for p in pods if not p.deleting]
    ready = sum(1 for p in live if wl.pod_is_ready(p))
    full_dep["status"] = {
        "observedGeneration": revision,
        "replicas": len(live),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(0, svc.replicas - ready),
        "updatedReplicas": len(live),
    }
    full = [full_dep]
    if obj is not None:
        full_obj = yaml.safe_load(yaml.safe_dump(obj))
        full_obj["metadata"]["creationTimestamp"] = svc.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        full_obj["status"] = {"loadBalancer": {}}
        full.append(full_obj)
    return _dump(full), _dump(pure)


def _dump(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
