"""openccs's state as Kubernetes objects (JSON), rendered from a snapshot of its rows.

Nodes are the cluster's machines (named by their LAN address, as the product names them);
a service of the API is a Deployment, its revisions are ReplicaSets, its access a Service
and Endpoints; pods and events are the engine's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from openccs.domain import manifests
from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec
from openccs.kube.kinds import CHANGE_CAUSE, HASH_LABEL, K8S_VERSION, REVISION, ts, uid
from openccs.store.models import Instance, Pod, ReplicaSet, Service

if TYPE_CHECKING:
    from openccs.kube.snapshot import Snapshot


def _meta(
    name: str, namespace: str | None, uid_: str, created: datetime | None, **more: Any
) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if namespace is not None:
        m["namespace"] = namespace
    m["uid"] = uid_
    m["creationTimestamp"] = ts(created)
    m.update({k: v for k, v in more.items() if v})
    return m


def _deployment_of(svc: Service, spec: dict[str, Any], restarted_at: str) -> dict[str, Any]:
    view = SimpleNamespace(
        spec=spec,
        restarted_at=restarted_at,
        description=svc.description,
        labels=svc.labels,
        name=svc.name,
        namespace=svc.namespace,
        replicas=svc.replicas,
        paused=svc.paused,
    )
    return manifests.deployment(view, 1, probes=True)  # type: ignore[arg-type]


def template_for(svc: Service, rs: ReplicaSet) -> dict[str, Any]:
    """The pod template of one revision (ReplicaSet) of a service, labelled with its hash."""
    t = rs.template
    spec = {**svc.spec, **{k: t.get(k) for k in wl.TEMPLATE_KEYS if k != "restartedAt"}}
    tmpl: dict[str, Any] = _deployment_of(svc, spec, t.get("restartedAt", ""))["spec"]["template"]
    tmpl["metadata"]["labels"] = {
        **tmpl["metadata"].get("labels", {}),
        HASH_LABEL: rs.template_hash,
    }
    return tmpl


def revision_uid(cluster_id: str, service_id: int, template_hash: str) -> str:
    """Where a revision's annotations (kubernetes.io/change-cause) are kept: by its template,
    known as soon as the template is, before the engine makes its ReplicaSet."""
    return uid(cluster_id, "revision", service_id, template_hash)


def deployment_uid(cluster_id: str, svc: Service) -> str:
    return uid(cluster_id, "deployment", svc.id)


def render_deployment(snap: Snapshot, svc: Service) -> dict[str, Any]:
    dep = _deployment_of(svc, svc.spec, svc.restarted_at)
    rs = snap.current_rs(svc)
    revs = snap.replicasets.get(svc.id, [])
    revision = rs.revision if rs else (max((r.revision for r in revs), default=0) + 1)
    pods = [p for p in snap.pods_of.get(svc.id, []) if not p.deleting]
    updated = [p for p in pods if rs is not None and p.replicaset_id == rs.id]
    ready = [p for p in pods if wl.pod_is_ready(p)]
    available = [p for p in updated if wl.pod_is_ready(p) and _available(svc, p, snap.now)]
    all_available = [p for p in ready if _available(svc, p, snap.now)]
    generation = max(revision, 1)
    annotations = {**dep["metadata"].get("annotations", {}), REVISION: str(revision)}
    dep["metadata"] = _meta(
        svc.name,
        svc.namespace,
        deployment_uid(snap.cluster_id, svc),
        svc.created_at,
        labels=dict(svc.labels),
        annotations=annotations,
        generation=generation,
    )
    if svc.deleting:
        dep["metadata"]["deletionTimestamp"] = ts(svc.updated_at)
    done = (
        len(pods) == svc.replicas
        and len(updated) == svc.replicas
        and len(available) == svc.replicas
    )
    conditions = [
        {
            "type": "Available",
            "status": "True" if len(all_available) >= svc.replicas else "False",
            "reason": "MinimumReplicasAvailable"
            if len(all_available) >= svc.replicas
            else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability."
            if len(all_available) >= svc.replicas
            else "Deployment does not have minimum availability.",
            "lastUpdateTime": ts(svc.updated_at),
            "lastTransitionTime": ts(svc.updated_at),
        },
        {
            "type": "Progressing",
            "status": "Unknown" if svc.paused else "True",
            "reason": "DeploymentPaused"
            if svc.paused
            else ("NewReplicaSetAvailable" if done else "ReplicaSetUpdated"),
            "message": "Deployment is paused"
            if svc.paused
            else f'ReplicaSet "{svc.name}-{rs.template_hash if rs else "pending"}" '
            + ("has successfully progressed." if done else "is progressing."),
            "lastUpdateTime": ts(svc.updated_at),
            "lastTransitionTime": ts(svc.updated_at),
        },
    ]
    dep["status"] = {
        "observedGeneration": generation,
        "replicas": len(pods),
        "updatedReplicas": len(updated),
        "readyReplicas": len(ready),
        "availableReplicas": len(all_available),
        "unavailableReplicas": max(0, len(pods) - len(all_available)),
        "conditions": conditions,
    }
    for k in (
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "updatedReplicas",
        "replicas",
    ):
        if not dep["status"][k]:
            del dep["status"][k]
    return dep


def _available(svc: Service, pod: Pod, now: datetime) -> bool:
    wait = int(svc.spec.get("minReadySeconds") or 0)
    if not wait:
        return True
    return pod.ready_since is not None and (now - pod.ready_since).total_seconds() >= wait


def _deployments(snap: Snapshot) -> list[dict[str, Any]]:
    return [render_deployment(snap, svc) for svc in snap.services]


def _replicasets(snap: Snapshot) -> list[dict[str, Any]]:
    out = []
    for svc in snap.services:
        dep_uid = deployment_uid(snap.cluster_id, svc)
        current = snap.current_rs(svc)
        # The current revision has the Deployment's change-cause (as the deployment
        # controller copies it); older ones keep the one they had (see writes.remember).
        cause = snap.annotations.get(dep_uid, {}).get(CHANGE_CAUSE)
        for rs in snap.replicasets.get(svc.id, []):
            rev_uid = revision_uid(snap.cluster_id, svc.id, rs.template_hash)
            kept = dict(snap.annotations.get(rev_uid, {}))
            if cause and current is not None and rs.id == current.id:
                kept[CHANGE_CAUSE] = cause
            pods = [
                p
                for p in snap.pods_of.get(svc.id, [])
                if p.replicaset_id == rs.id and not p.deleting
            ]
            ready = sum(1 for p in pods if wl.pod_is_ready(p))
            name = f"{svc.name}-{rs.template_hash}"
            labels = {**svc.labels, HASH_LABEL: rs.template_hash}
            status: dict[str, Any] = {"replicas": len(pods), "observedGeneration": 1}
            if ready:
                status.update(readyReplicas=ready, availableReplicas=ready)
            out.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": _meta(
                        name,
                        svc.namespace,
                        uid(snap.cluster_id, "replicaset", rs.id),
                        rs.created_at,
                        labels=labels,
                        annotations={
                            **kept,
                            REVISION: str(rs.revision),
                            "deployment.kubernetes.io/desired-replicas": str(svc.replicas),
                        },
                        generation=1,
                        ownerReferences=[
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "name": svc.name,
                                "uid": dep_uid,
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    ),
                    "spec": {
                        "replicas": rs.replicas,
                        "selector": {
                            "matchLabels": {wl.APP_LABEL: svc.name, HASH_LABEL: rs.template_hash}
                        },
                        "template": template_for(svc, rs),
                    },
                    "status": status,
                }
            )
    return out


def pod_phase(pod: Pod) -> str:
    containers = pod.status.get("containers", [])
    if not pod.node_id or not containers:
        return "Pending"
    if all(c.get("status") == "Running" for c in containers):
        return "Running"
    if any(c.get("containerId") for c in containers):
        return "Running"
    return "Pending"


def _container_state(c: dict[str, Any], started: str | None) -> dict[str, Any]:
    status = c.get("status")
    if status == "Running":
        return {"running": {"startedAt": c.get("startedAt") or started}}
    if status == "Terminated":
        return {
            "terminated": {
                "exitCode": int(c.get("exitCode", 1)),
                "reason": c.get("reason") or "Error",
            }
        }
    return {"waiting": {"reason": c.get("reason") or "ContainerCreating"}}


def render_pod(snap: Snapshot, pod: Pod) -> dict[str, Any]:
    svc = snap.svc_by_id.get(pod.service_id or -1)
    rs = snap.rs_by_id.get(pod.replicaset_id or -1)
    labels = dict(pod.template.get("labels") or (svc.labels if svc else {}))
    if svc is not None:
        labels.setdefault(wl.APP_LABEL, svc.name)
    owners = []
    if rs is not None and svc is not None:
        labels[HASH_LABEL] = rs.template_hash
        owners.append(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{svc.name}-{rs.template_hash}",
                "uid": uid(snap.cluster_id, "replicaset", rs.id),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        )
    template = ServiceSpec.from_v2(pod.template)
    volumes = {v.name: v for v in template.volumes}
    spec: dict[str, Any] = {
        "containers": [c.kubernetes(volumes) for c in template.containers],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
    }
    node_ip = snap.node_ip.get(pod.node_id or "", "")
    if node_ip:
        spec["nodeName"] = node_ip
    if volumes:
        spec["volumes"] = [v.kubernetes() for v in volumes.values()]
    meta = _meta(
        pod.name,
        pod.namespace,
        pod.uid,
        pod.created_at,
        labels=labels,
        ownerReferences=owners,
        generateName=(f"{svc.name}-{rs.template_hash}-" if svc and rs else ""),
    )
    if pod.deleting:
        meta["deletionTimestamp"] = ts(snap.now)
        meta["deletionGracePeriodSeconds"] = 30
    cstat = []
    for c in pod.status.get("containers", []):
        cid = c.get("containerId") or ""
        entry: dict[str, Any] = {
            "name": c["name"],
            "ready": bool(c.get("ready")),
            "restartCount": int(c.get("restartCount", 0)),
            "image": c.get("image", ""),
            "imageID": "",
            "started": c.get("status") == "Running",
            "state": _container_state(c, ts(pod.ready_since or pod.created_at)),
        }
        if cid:
            entry["containerID"] = f"docker://{cid}"
        cstat.append(entry)
    ready = bool(pod.status.get("ready"))
    scheduled = bool(pod.node_id)
    status: dict[str, Any] = {
        "phase": pod_phase(pod),
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "True" if scheduled else "False",
                **(
                    {}
                    if scheduled
                    else {"reason": "Unschedulable", "message": pod.status.get("reason", "")}
                ),
            },
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "True" if ready else "False"},
            {"type": "Ready", "status": "True" if ready else "False"},
        ],
        "qosClass": "BestEffort",
    }
    if node_ip:
        status["hostIP"] = node_ip
        status["hostIPs"] = [{"ip": node_ip}]
    if pod.status.get("ip"):
        status["podIP"] = pod.status["ip"]
        status["podIPs"] = [{"ip": pod.status["ip"]}]
    if scheduled:
        status["startTime"] = ts(pod.created_at)
    if cstat:
        status["containerStatuses"] = cstat
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _pods(snap: Snapshot) -> list[dict[str, Any]]:
    out, cache, seen = [], snap.cache, set()
    for p in snap.pods:
        rs = snap.rs_by_id.get(p.replicaset_id or -1)
        svc = snap.svc_by_id.get(p.service_id or -1)
        key = (p.name, p.uid, p.namespace, p.node_id, snap.node_ip.get(p.node_id or ""),
               p.deleting, p.status, p.template, p.ready_since, p.created_at,
               rs.template_hash if rs else None, rs.id if rs else None,
               svc.name if svc else None)  # fmt: skip
        seen.add(p.id)
        hit = cache.get(p.id)
        if hit is not None and hit[0] == key:
            out.append(hit[1])
            continue
        obj = render_pod(snap, p)
        cache[p.id] = (key, obj)
        out.append(obj)
    for gone in [k for k in cache if k not in seen]:
        del cache[gone]
    return out


SYSTEM_LABEL_PREFIXES = (
    "kubernetes.io/",
    "node.kubernetes.io/",
    "topology.kubernetes.io/",
    "beta.kubernetes.io/",
    "failure-domain.beta.kubernetes.io/",
    "cloud.tencent.com/",
)


def node_system_labels(n: Instance) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": n.lan_ip,
        "node.kubernetes.io/instance-type": n.instance_type,
        "topology.kubernetes.io/zone": n.zone,
        "cloud.tencent.com/node-instance-id": n.id,
    }


def node_ready(n: Instance) -> bool:
    return n.state == "Running" and n.is_normal


def render_node(snap: Snapshot, n: Instance) -> dict[str, Any]:
    ready = node_ready(n)
    spec: dict[str, Any] = {"providerID": f"qcloud:///{n.zone}/{n.id}"}
    if n.pod_cidr:
        spec["podCIDR"] = n.pod_cidr
        spec["podCIDRs"] = [n.pod_cidr]
    if n.unschedulable:
        spec["unschedulable"] = True
        spec["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    capacity = {"cpu": str(n.cpu), "memory": f"{n.mem * 1024 * 1024}Ki", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(
            n.lan_ip,
            None,
            uid(snap.cluster_id, "node", n.id),
            n.joined_at or n.created_at,
            labels={**node_system_labels(n), **n.labels},
            annotations={"openccs.io/instance-id": n.id},
        ),
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "kubelet is posting ready status"
                    if ready
                    else (n.abnormal_reason or f"machine is {n.state}"),
                    "lastHeartbeatTime": ts(snap.now),
                    "lastTransitionTime": ts(n.joined_at or n.created_at),
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": n.lan_ip},
                {"type": "Hostname", "address": n.lan_ip},
            ],
            "nodeInfo": {
                "machineID": n.id,
                "systemUUID": uid("machine", n.id),
                "bootID": "",
                "kernelVersion": n.kernel_version,
                "osImage": n.os_name,
                "containerRuntimeVersion": "docker://openccs",
                "kubeletVersion": K8S_VERSION,
                "kubeProxyVersion": K8S_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def _nodes(snap: Snapshot) -> list[dict[str, Any]]:
    return [render_node(snap, n) for n in snap.nodes]


def _namespaces(snap: Snapshot) -> list[dict[str, Any]]:
    out = []
    for ns in snap.namespaces:
        meta = _meta(
            ns.name,
            None,
            uid(snap.cluster_id, "namespace", ns.id),
            ns.created_at,
            labels={"kubernetes.io/metadata.name": ns.name},
            annotations={"description": ns.description} if ns.description else {},
        )
        if ns.status == "Terminating":
            meta["deletionTimestamp"] = ts(snap.now)
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": meta,
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": ns.status},
            }
        )
    return out


def render_service(snap: Snapshot, svc: Service) -> dict[str, Any] | None:
    obj = manifests.service_object(svc)
    if obj is None:
        return None
    obj["metadata"] = _meta(
        svc.name,
        svc.namespace,
        uid(snap.cluster_id, "service", svc.id),
        svc.created_at,
        labels=dict(svc.labels),
        annotations=obj["metadata"].get("annotations"),
    )
    if svc.deleting:
        obj["metadata"]["deletionTimestamp"] = ts(svc.updated_at)
    if svc.cluster_ip:
        obj["spec"]["clusterIPs"] = [svc.cluster_ip]
    obj["spec"]["sessionAffinity"] = "None"
    vip = snap.vips.get(svc.id)
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": vip}]} if vip else {}}
    return obj


def _services(snap: Snapshot) -> list[dict[str, Any]]:
    return [o for o in (render_service(snap, svc) for svc in snap.services) if o is not None]


def _endpoints(snap: Snapshot) -> list[dict[str, Any]]:
    out = []
    for svc in snap.services:
        obj = manifests.service_object(svc)
        if obj is None:
            continue
        ready: list[dict[str, Any]] = []
        not_ready: list[dict[str, Any]] = []
        for p in snap.pods_of.get(svc.id, []):
            if p.deleting or not p.status.get("ip"):
                continue
            addr = {
                "ip": p.status["ip"],
                "nodeName": snap.node_ip.get(p.node_id or "", ""),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": p.namespace,
                    "name": p.name,
                    "uid": p.uid,
                },
            }
            (ready if wl.pod_is_ready(p) else not_ready).append(addr)
        ports = [
            {"name": pm["name"], "port": pm["targetPort"], "protocol": pm["protocol"]}
            for pm in obj["spec"]["ports"]
        ]
        subsets = []
        if ready or not_ready:
            subset: dict[str, Any] = {"ports": ports}
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            subsets.append(subset)
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": _meta(
                    svc.name,
                    svc.namespace,
                    uid(snap.cluster_id, "endpoints", svc.id),
                    svc.created_at,
                    labels=dict(svc.labels),
                ),
                "subsets": subsets,
            }
        )
    return out


def _events(snap: Snapshot) -> list[dict[str, Any]]:
    pod_uid = {(p.namespace, p.name): p.uid for p in snap.pods}
    svc_by_name = {(s.namespace, s.name): s for s in snap.services}
    out = []
    for ev in snap.events:
        involved: dict[str, Any] = {
            "kind": ev.obj_type,
            "namespace": ev.namespace,
            "name": ev.obj_name,
        }
        if ev.obj_type == "Pod":
            involved["apiVersion"] = "v1"
            if (ev.namespace, ev.obj_name) in pod_uid:
                involved["uid"] = pod_uid[(ev.namespace, ev.obj_name)]
        elif ev.obj_type in ("Deployment", "ReplicaSet"):
            involved["apiVersion"] = "apps/v1"
            svc = svc_by_name.get((ev.namespace, ev.service))
            if svc is not None and ev.obj_type == "Deployment":
                involved["uid"] = deployment_uid(snap.cluster_id, svc)
            elif svc is not None:
                for rs in snap.replicasets.get(svc.id, []):
                    if f"{svc.name}-{rs.template_hash}" == ev.obj_name:
                        involved["uid"] = uid(snap.cluster_id, "replicaset", rs.id)
        source = {
            "Pod": "kubelet",
            "Deployment": "deployment-controller",
            "ReplicaSet": "replicaset-controller",
        }.get(ev.obj_type, "openccs")
        if ev.reason in ("Scheduled", "FailedScheduling"):
            source = "default-scheduler"
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": _meta(
                    f"{ev.obj_name}.{ev.id:x}",
                    ev.namespace,
                    uid(snap.cluster_id, "event", ev.id),
                    ev.first_seen,
                ),
                "involvedObject": involved,
                "reason": ev.reason,
                "message": ev.message,
                "type": "Warning" if ev.level == "Warning" else "Normal",
                "count": ev.count,
                "firstTimestamp": ts(ev.first_seen),
                "lastTimestamp": ts(ev.last_seen),
                "source": {"component": source},
                "reportingComponent": source,
            }
        )
    return out


RENDER: dict[str, Callable[[Snapshot], list[dict[str, Any]]]] = {
    "namespaces": _namespaces,
    "nodes": _nodes,
    "pods": _pods,
    "services": _services,
    "endpoints": _endpoints,
    "events": _events,
    "deployments": _deployments,
    "replicasets": _replicasets,
}
