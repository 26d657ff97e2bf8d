"""The node lifecycle controller: pods of a machine that stopped answering are replaced
elsewhere after a grace period, as Kubernetes evicts the pods of a NotReady node."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.domain.workloads import record_event
from openccs.store.models import Instance, Pod, Service


def node_lifecycle(
    s: Session, cluster_id: str, not_ready_since: dict[str, float], grace: float, now: float
) -> float:
    """One pass at monotonic time `now`. `not_ready_since` (node id -> when it was first
    seen not ready) is the controller's memory between passes; a node seen ready again is
    forgotten. Returns the seconds until the next grace period ends."""
    due = math.inf
    for node in s.scalars(select(Instance).where(Instance.cluster_id == cluster_id)):
        if node.state == "Running" and node.is_normal:
            not_ready_since.pop(node.id, None)
            continue
        since = not_ready_since.setdefault(node.id, now)
        if now - since < grace:
            due = min(due, since + grace - now)
            continue
        for pod in s.scalars(select(Pod).where(Pod.node_id == node.id)):
            svc = s.get(Service, pod.service_id) if pod.service_id else None
            record_event(
                s, cluster_id, pod.namespace, svc.name if svc else "", "Pod", pod.name,
                "NodeNotReady", f"Node {node.lan_ip} is not ready: pod evicted", "Warning",
            )  # fmt: skip
            s.delete(pod)
    return due
