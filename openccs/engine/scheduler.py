"""The scheduler: places pending pods on the cluster's nodes.

Filters as kube-scheduler's predicates do (schedulable, resource requests against the
node's allocatable CPU and memory, node affinity, pod affinity; all hard), then prefers
the node with the fewest pods of the same service and the least requested resources.
A pod that fits nowhere stays Pending with a FailedScheduling event saying why.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.domain.workloads import record_event
from openccs.store.models import Instance, Pod, Service

# What a machine keeps for itself (its dockerd and containerd), as kubelet reserves.
SYSTEM_RESERVED_MILLICPU = 100
SYSTEM_RESERVED_MIB = 128


def requests_of(template: dict[str, Any]) -> tuple[int, int]:
    cpu = sum(int(c.get("cpu") or 0) for c in template.get("containers", []))
    mem = sum(int(c.get("memory") or 0) for c in template.get("containers", []))
    return cpu, mem


def allocatable(node: Instance) -> tuple[int, int]:
    return node.cpu * 1000 - SYSTEM_RESERVED_MILLICPU, node.mem * 1024 - SYSTEM_RESERVED_MIB


def _match(labels: dict[str, str], term: dict[str, Any]) -> bool:
    key, op, values = term["key"], term["operator"], [str(v) for v in term.get("values") or []]
    present = key in labels
    value = labels.get(key, "")
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        try:
            have, want = int(value), int(values[0])
        except (ValueError, IndexError):
            return False
        return have > want if op == "Gt" else have < want
    return False


# A placed pod's requests and labels (its template never changes), by pod uid.
Requests = tuple[int, int, dict[str, str]]


def schedule_cluster(
    s: Session, cluster_id: str, known: dict[str, Requests] | None = None
) -> set[str]:
    """Place the cluster's pending pods; the machines that got one. `known` keeps the placed
    pods' requests between passes (the caller's, per cluster), so a pass reads their
    templates only once."""
    pending = list(
        s.scalars(
            select(Pod).where(
                Pod.cluster_id == cluster_id, Pod.node_id.is_(None), Pod.deleting.is_(False)
            )
        )
    )
    # Most passes find nothing pending: then the cluster's pods are not read at all.
    if not pending:
        return set()
    nodes = list(
        s.scalars(
            select(Instance).where(Instance.cluster_id == cluster_id, Instance.state == "Running")
        )
    )
    used: dict[str, list[int]] = {n.id: [0, 0] for n in nodes}
    per_service: dict[str, Counter[int | None]] = {n.id: Counter() for n in nodes}
    pod_labels: dict[str, list[dict[str, str]]] = {n.id: [] for n in nodes}
    # The placed pods as three columns, not as objects: their statuses stay unread.
    placed = s.execute(
        select(Pod.uid, Pod.node_id, Pod.service_id).where(
            Pod.cluster_id == cluster_id, Pod.node_id.is_not(None), Pod.deleting.is_(False)
        )
    ).all()
    known = {} if known is None else known
    missing = [uid for uid, node_id, _ in placed if uid not in known and node_id in used]
    for i in range(0, len(missing), 500):
        for uid, template in s.execute(
            select(Pod.uid, Pod.template).where(Pod.uid.in_(missing[i : i + 500]))
        ):
            known[uid] = (*requests_of(template), template.get("labels") or {})
    alive: set[str] = set()
    for uid, node_id, service_id in placed:
        alive.add(uid)
        if node_id in used and uid in known:
            cpu, mem, labels = known[uid]
            used[node_id][0] += cpu
            used[node_id][1] += mem
            per_service[node_id][service_id] += 1
            pod_labels[node_id].append(labels)
    for uid in [u for u in known if u not in alive]:
        del known[uid]
    placed_on: set[str] = set()
    for pod in sorted(pending, key=lambda p: p.created_at):
        cpu, mem = requests_of(pod.template)
        reasons: Counter[str] = Counter()
        fits = []
        for n in nodes:
            why = _unfit(n, pod, cpu, mem, used[n.id], pod_labels[n.id])
            if why:
                reasons[why] += 1
            else:
                fits.append(n)
        service = s.get(Service, pod.service_id) if pod.service_id else None
        svc_name = service.name if service is not None else ""
        if not fits:
            detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
            message = f"0/{len(nodes)} nodes are available" + (f": {detail}." if detail else ".")
            record_event(
                s, cluster_id, pod.namespace, svc_name, "Pod", pod.name, "FailedScheduling",
                message, "Warning",
            )  # fmt: skip
            status = dict(pod.status)
            status.update(reason="Unschedulable", message=message)
            if status != pod.status:
                pod.status = status
            continue
        best = min(
            fits,
            key=lambda n: (
                per_service[n.id][pod.service_id],
                # Pods without requests still take room: fewer pods wins the tie.
                sum(per_service[n.id].values()),
                (used[n.id][0] + cpu) / max(1, allocatable(n)[0])
                + (used[n.id][1] + mem) / max(1, allocatable(n)[1]),
                n.id,
            ),
        )
        pod.node_id = best.id
        placed_on.add(best.id)
        pod.status = {"reason": "ContainerCreating", "containers": []}
        used[best.id][0] += cpu
        used[best.id][1] += mem
        per_service[best.id][pod.service_id] += 1
        pod_labels[best.id].append(pod.template.get("labels") or {})
        known[pod.uid] = (cpu, mem, pod.template.get("labels") or {})
        record_event(
            s, cluster_id, pod.namespace, svc_name, "Pod", pod.name, "Scheduled",
            f"Successfully assigned {pod.namespace}/{pod.name} to {best.lan_ip}",
        )  # fmt: skip
    return placed_on


def _unfit(
    node: Instance,
    pod: Pod,
    cpu: int,
    mem: int,
    used: list[int],
    labels_here: list[dict[str, str]],
) -> str:
    if not node.is_normal:
        return "node(s) were not ready"
    if node.unschedulable:
        return "node(s) were unschedulable"
    cap_cpu, cap_mem = allocatable(node)
    if used[0] + cpu > cap_cpu:
        return "Insufficient cpu"
    if used[1] + mem > cap_mem:
        return "Insufficient memory"
    for term in pod.template.get("nodeAffinity") or []:
        if not _match(node.labels, term):
            return "node(s) didn't match node selector"
    for term in pod.template.get("podAffinity") or []:
        if not any(_match(lbl, term) for lbl in labels_here):
            return "node(s) didn't match pod affinity rules"
    return ""
