"""Services (Deployments), their pod templates, and how the API shows them.

A service's `spec` is stored in the shape DescribeClusterServiceInfo answers with (so the
matching Modify accepts it back); the pod template is the part of it that pods are made
from, hashed to tell revisions apart, as the Kubernetes deployment controller does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from openccs.domain.spec import ServiceSpec
from openccs.errors import ApiError, not_found
from openccs.ids import random_token
from openccs.store.models import Cluster, Event, K8sNamespace, Pod, ReplicaSet, Service
from openccs.timeutil import fmt_time, utcnow

DEFAULT_NAMESPACES = ("default", "kube-system")
APP_LABEL = "qcloud-app"
TEMPLATE_KEYS = ("containers", "volumes", "nodeAffinity", "podAffinity", "restartedAt")


def template_of(spec: dict[str, Any], restarted_at: str = "") -> dict[str, Any]:
    t = {k: spec.get(k) for k in TEMPLATE_KEYS if k != "restartedAt"}
    t["restartedAt"] = restarted_at
    return t


def template_hash(template: dict[str, Any]) -> str:
    raw = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:10]


def pod_name(service: str, tmpl_hash: str) -> str:
    return f"{service}-{tmpl_hash}-{random_token(5, 'bcdfghjklmnpqrstvwxz2456789')}"


def ensure_default_namespaces(s: Session, cluster: Cluster) -> None:
    have = set(s.scalars(select(K8sNamespace.name).where(K8sNamespace.cluster_id == cluster.id)))
    for name in DEFAULT_NAMESPACES:
        if name not in have:
            s.add(K8sNamespace(account_id=cluster.account_id, cluster_id=cluster.id, name=name))


def get_namespace(
    s: Session, cluster: Cluster, name: str, param: str = "namespace"
) -> K8sNamespace:
    ns = s.scalars(
        select(K8sNamespace).where(K8sNamespace.cluster_id == cluster.id, K8sNamespace.name == name)
    ).first()
    if ns is None:
        raise not_found(f"namespace ({param})", f"{name} in cluster {cluster.id}")
    return ns


def active_namespace(
    s: Session, cluster: Cluster, name: str, param: str = "namespace"
) -> K8sNamespace:
    ns = get_namespace(s, cluster, name, param)
    if ns.status != "Active":
        raise ApiError(
            5100, "NamespaceTerminating", f"namespace {name} is being deleted: nothing new in it"
        )
    return ns


def service_named(
    s: Session, cluster_id: str, namespace: str, name: str, deleting: bool | None = False
) -> Service | None:
    """The service of that name: one not being deleted (False), one being deleted (True),
    or either (None)."""
    q = select(Service).where(
        Service.cluster_id == cluster_id, Service.namespace == namespace, Service.name == name
    )
    if deleting is not None:
        q = q.where(Service.deleting.is_(deleting))
    return s.scalars(q).first()


def get_service(s: Session, cluster: Cluster, namespace: str, name: str) -> Service:
    svc = service_named(s, cluster.id, namespace, name)
    if svc is None:
        raise not_found(
            "service (serviceName)", f"{name} in namespace {namespace} of cluster {cluster.id}"
        )
    return svc


def service_pods(s: Session, svc: Service) -> list[Pod]:
    """The service's pods, oldest first. Their templates (the largest column, which
    statuses and lists never need) are read only if asked for."""
    return list(
        s.scalars(
            select(Pod)
            .where(Pod.service_id == svc.id)
            .order_by(Pod.created_at)
            .options(defer(Pod.template))
        )
    )


def revisions(s: Session, svc: Service) -> list[ReplicaSet]:
    return list(
        s.scalars(
            select(ReplicaSet).where(ReplicaSet.service_id == svc.id).order_by(ReplicaSet.revision)
        )
    )


def current_replicaset(s: Session, svc: Service) -> ReplicaSet | None:
    h = template_hash(template_of(svc.spec, svc.restarted_at))
    for rs in revisions(s, svc):
        if rs.template_hash == h:
            return rs
    return None


def pod_is_ready(pod: Pod) -> bool:
    return bool(pod.status.get("ready")) and not pod.deleting


def rollout_done(s: Session, svc: Service, pods: list[Pod] | None = None) -> bool:
    pods = service_pods(s, svc) if pods is None else pods
    rs = current_replicaset(s, svc)
    if rs is None:
        return False
    live = [p for p in pods if not p.deleting]
    return (
        len(live) == svc.replicas
        and all(p.replicaset_id == rs.id for p in live)
        and all(pod_is_ready(p) for p in live)
    )


@dataclass
class PodTally:
    """What a service's status needs of its live pods (those not being deleted): how many
    there are on each replica set, how many are ready, and the reasons they give."""

    live: dict[int | None, int] = field(default_factory=dict)  # replicaset_id -> pods
    ready: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> containers or pods

    def add_reasons(self, status: dict[str, Any], scheduled: bool) -> None:
        """A live pod's reasons: each container's that is not Running, and the pod's own
        while it has no machine (Pending, Unschedulable)."""
        for c in status.get("containers", []):
            if c.get("reason") and c.get("status") != "Running":
                self.reasons[c["reason"]] = self.reasons.get(c["reason"], 0) + 1
        if not scheduled and status.get("reason"):
            self.reasons[status["reason"]] = self.reasons.get(status["reason"], 0) + 1


BAD_REASONS = frozenset(
    ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "Error", "CreateContainerError",
     "CreateContainerConfigError")
)  # fmt: skip


def service_status(svc: Service, tally: PodTally, current_rs: int | None) -> str:
    """The document's status (Normal, Abnormal, Waiting, Paused, Updating, RollingBack) of
    a service whose current replica set (the one of its template) is `current_rs`."""
    if svc.paused:
        return "Paused"
    if svc.operation == "RollingBack":
        return "RollingBack"
    if any(r in BAD_REASONS for r in tally.reasons):
        return "Abnormal"
    live = sum(tally.live.values())
    on_current = tally.live.get(current_rs, 0) if current_rs is not None else 0
    if current_rs is not None and live == svc.replicas == on_current == tally.ready:
        return "Normal"  # the rollout is done (`rollout_done`)
    if live > on_current:
        return "Updating"
    return "Waiting"


def instance_status(pod: Pod) -> str:
    if pod.deleting:
        return "Terminating"
    containers = pod.status.get("containers", [])
    if not pod.node_id or not containers:
        return "Waiting"
    states = {c.get("status") for c in containers}
    if "Terminated" in states:
        return "Terminated"
    if "Waiting" in states:
        return "Waiting"
    if not pod.status.get("ready"):
        return "NotReady"
    return "Running"


def record_event(
    s: Session,
    cluster_id: str,
    namespace: str,
    service: str,
    obj_type: str,
    obj_name: str,
    reason: str,
    message: str,
    level: str = "Normal",
) -> None:
    """Add an event, or count one more of the same (object, reason, message)."""
    ev = s.scalars(
        select(Event).where(
            Event.cluster_id == cluster_id,
            Event.namespace == namespace,
            Event.obj_type == obj_type,
            Event.obj_name == obj_name,
            Event.reason == reason,
            Event.message == message,
        )
    ).first()
    now = utcnow()
    if ev is None:
        s.add(
            Event(
                cluster_id=cluster_id,
                namespace=namespace,
                service=service,
                obj_type=obj_type,
                obj_name=obj_name,
                reason=reason,
                message=message,
                level=level,
                first_seen=now,
                last_seen=now,
            )
        )
    else:
        ev.count += 1
        ev.last_seen = now


def services_on(s: Session, node_id: str) -> list[tuple[str, str]]:
    """(namespace, service) of the pods a machine runs."""
    rows = s.execute(
        select(Pod.namespace, Service.name)
        .join(Service, Service.id == Pod.service_id)
        .where(Pod.node_id == node_id)
    )
    return sorted(set(rows))


def record_node_event(
    s: Session,
    cluster_id: str,
    node_name: str,
    services: set[tuple[str, str]],
    reason: str,
    message: str,
    level: str = "Normal",
) -> None:
    """An event of a node, once for each service it touches (a node event names no
    service; each one's copy names it, so that every service keeps its own)."""
    for ns, svc in sorted(services or {("default", "")}):
        text = f"{message} (service {svc})" if svc else message
        record_event(s, cluster_id, ns, svc, "Node", node_name, reason, text, level)


def describe_event(ev: Event) -> dict[str, Any]:
    return {
        "firstSeen": fmt_time(ev.first_seen),
        "lastSeen": fmt_time(ev.last_seen),
        "count": ev.count,
        "level": ev.level,
        "objType": ev.obj_type,
        "objName": ev.obj_name,
        "reason": ev.reason,
        "message": ev.message,
    }


def _time(value: datetime | None) -> str:
    return fmt_time(value) if value else ""


def describe_instance(pod: Pod, node_ip: str) -> dict[str, Any]:
    containers = pod.status.get("containers", [])
    return {
        "name": pod.name,
        "status": instance_status(pod),
        "reason": pod.status.get("reason", ""),
        "nodeIp": node_ip,
        "nodeName": node_ip,
        "ip": pod.status.get("ip", ""),
        "restartCount": sum(int(c.get("restartCount", 0)) for c in containers),
        "readyCount": sum(1 for c in containers if c.get("ready")),
        "createdAt": _time(pod.created_at),
        "containers": [
            {
                "name": c["name"],
                "containerId": c.get("containerId", ""),
                "status": c.get("status", "Waiting"),
                "reason": c.get("reason", ""),
                "image": c.get("image", ""),
            }
            for c in containers
        ],
    }


def set_images(svc: Service, images: dict[str, str]) -> None:
    """Point containers (by name) at new images; a new revision rolls out."""
    svc.spec = ServiceSpec.from_v2(svc.spec).with_images(images).to_v2()
    svc.operation = ""
    svc.updated_at = utcnow()


def find_service(
    s: Session, account_id: int, cluster_id: str, namespace: str, name: str
) -> Service:
    """A service of an account, or 5000 (another account's cluster does not exist)."""
    cluster = s.get(Cluster, cluster_id)
    if cluster is None or cluster.account_id != account_id:
        raise not_found("cluster", cluster_id)
    return get_service(s, cluster, namespace, name)
