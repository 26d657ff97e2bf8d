"""The deployment and replica set controllers, level-triggered, one pass per service.

As in Kubernetes: each distinct pod template is a revision (ReplicaSet). RollingUpdate
(maxSurge 1, maxUnavailable 0) adds a new pod, and removes an old one only while enough
pods are available (ready for minReadySeconds), so there are never fewer ready pods than
desired; Recreate removes every old pod before new ones start. A paused service neither
rolls out nor scales. Each pass takes one step toward the desired state, so a pass may be
interrupted anywhere and the next one goes on. A pass returns when the next one is due at
the latest (a ready pod becoming available after minReadySeconds), as nothing else would
wake the cluster then.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from openccs.domain import workloads as wl
from openccs.domain.spec import typed_spec
from openccs.store.models import K8sNamespace, Pod, ReplicaSet, Service
from openccs.timeutil import utcnow


def reconcile_cluster(s: Session, cluster_id: str) -> float:
    """One step for every service of the cluster; seconds until the next pass is due."""
    return min(reconcile_services(s, cluster_id).values(), default=math.inf)


def reconcile_services(
    s: Session, cluster_id: str, only: Collection[int] | None = None
) -> dict[int, float]:
    """One step for the cluster's services (those of `only`, by id, or all of them), and
    the removal of its terminating namespaces once empty. Returns, per service reconciled,
    the seconds until its next pass is due (math.inf: only a change of its rows)."""
    if only is not None and not only:
        services: list[Service] = []
    else:
        q = select(Service).where(Service.cluster_id == cluster_id)
        services = list(s.scalars(q if only is None else q.where(Service.id.in_(only))))
    ids = [svc.id for svc in services]
    # Their pods and revisions in two queries, not two per service; the pods' templates
    # (the controllers never read them) stay unread.
    pods: dict[int, list[Pod]] = defaultdict(list)
    revs: dict[int, list[ReplicaSet]] = defaultdict(list)
    if services:
        pq = select(Pod).where(Pod.cluster_id == cluster_id, Pod.service_id.is_not(None))
        rq = select(ReplicaSet).join(Service, ReplicaSet.service_id == Service.id)
        rq = rq.where(Service.cluster_id == cluster_id)
        if only is not None:
            pq, rq = pq.where(Pod.service_id.in_(ids)), rq.where(ReplicaSet.service_id.in_(ids))
        for pod in s.scalars(pq.order_by(Pod.created_at).options(defer(Pod.template))):
            pods[pod.service_id or 0].append(pod)
        for rs in s.scalars(rq.order_by(ReplicaSet.revision)):
            revs[rs.service_id].append(rs)
    due = {svc.id: reconcile_service(s, svc, pods[svc.id], revs[svc.id]) for svc in services}
    # A terminating namespace goes once nothing is left in it.
    for ns in s.scalars(
        select(K8sNamespace).where(
            K8sNamespace.cluster_id == cluster_id, K8sNamespace.status == "Terminating"
        )
    ):
        left = (
            s.scalars(
                select(Pod.id).where(Pod.cluster_id == cluster_id, Pod.namespace == ns.name)
            ).first()
            or s.scalars(
                select(Service.id).where(
                    Service.cluster_id == cluster_id, Service.namespace == ns.name
                )
            ).first()
        )
        if left is None:
            s.delete(ns)
    return due


def _event(s: Session, svc: Service, obj_type: str, obj: str, reason: str, message: str) -> None:
    wl.record_event(s, svc.cluster_id, svc.namespace, svc.name, obj_type, obj, reason, message)


def _available_at(min_ready: int, pod: Pod) -> datetime | None:
    """When a ready pod is (or becomes) available, `min_ready` seconds after it became
    ready; None for a pod that is not ready."""
    if not wl.pod_is_ready(pod) or pod.ready_since is None:
        return None
    return pod.ready_since + timedelta(seconds=min_ready)


def _available(min_ready: int, pod: Pod) -> bool:
    at = _available_at(min_ready, pod)
    return at is not None and at <= utcnow()


def _due(min_ready: int, pods: list[Pod]) -> float:
    """Seconds until the first ready pod that is not yet available becomes available."""
    now = utcnow()
    later = [at for p in pods if (at := _available_at(min_ready, p)) is not None and at > now]
    return min(((at - now).total_seconds() for at in later), default=math.inf)


def reconcile_service(
    s: Session,
    svc: Service,
    pods: list[Pod] | None = None,
    revisions: list[ReplicaSet] | None = None,
) -> float:
    """One step toward the service's desired state (its pods, oldest first, and revisions,
    by number, when the caller has them); seconds until the next is due."""
    pods = wl.service_pods(s, svc) if pods is None else pods
    if svc.deleting:
        for p in pods:
            p.deleting = True
        if not pods:
            for rs in wl.revisions(s, svc) if revisions is None else revisions:
                s.delete(rs)
            s.delete(svc)
        return math.inf
    revs = wl.revisions(s, svc) if revisions is None else list(revisions)
    template = wl.template_of(svc.spec, svc.restarted_at)
    digest = wl.template_hash(template)
    current = next((rs for rs in revs if rs.template_hash == digest), None)
    if svc.paused:
        return math.inf
    spec = typed_spec(svc.id, svc.spec)
    if current is None:
        current = ReplicaSet(
            service_id=svc.id,
            revision=max((rs.revision for rs in revs), default=0) + 1,
            template_hash=digest,
            template=template,
            replicas=0,
        )
        s.add(current)
        s.flush()
        revs.append(current)
    live = [p for p in pods if not p.deleting]
    olds = [rs for rs in revs if rs.id != current.id]
    old_pods = [p for p in live if p.replicaset_id != current.id]
    new_pods = [p for p in live if p.replicaset_id == current.id]
    desired = svc.replicas

    if not old_pods:
        for rs in olds:
            rs.replicas = 0
        _scale(s, svc, current, desired)
    elif spec.strategy == "Recreate":
        for rs in olds:
            _scale(s, svc, rs, 0)
        _scale(s, svc, current, 0)
    else:
        # Up: at most one pod above the desired count.
        upped = current.replicas < desired and len(old_pods) + len(new_pods) < desired + 1
        if upped:
            _scale(s, svc, current, current.replicas + 1)
        # Old pods that are not ready cost no availability: they go first, so a broken
        # revision never blocks the next one (Kubernetes' cleanup of unhealthy replicas).
        old_before = sum(rs.replicas for rs in olds)
        for rs in olds:
            broken = sum(1 for p in old_pods if p.replicaset_id == rs.id and not wl.pod_is_ready(p))
            if broken and rs.replicas > 0:
                _scale(s, svc, rs, max(0, rs.replicas - broken))
        # Down: only what leaves at least `desired` pods available.
        available = sum(1 for p in live if _available(spec.min_ready_seconds, p))
        spare = available - desired
        for rs in sorted(olds, key=lambda r: r.revision):
            if spare <= 0:
                break
            if rs.replicas > 0:
                take = min(spare, rs.replicas)
                _scale(s, svc, rs, rs.replicas - take)
                spare -= take
        # Up again for the room the step down just made (surge still at most one): the
        # next new pod starts in this pass, not the next one.
        left = len(live) - (old_before - sum(rs.replicas for rs in olds))
        wanted = sum(rs.replicas for rs in revs)
        if not upped and current.replicas < desired and max(left, wanted) < desired + 1:
            _scale(s, svc, current, current.replicas + 1)
        if current.replicas > desired:
            _scale(s, svc, current, desired)

    for rs in revs:
        _sync_replicaset(s, svc, rs, [p for p in live if p.replicaset_id == rs.id])
    if svc.operation == "RollingBack" and wl.rollout_done(s, svc):
        svc.operation = ""
    return _due(spec.min_ready_seconds, live)


def _scale(s: Session, svc: Service, rs: ReplicaSet, replicas: int) -> None:
    if rs.replicas == replicas:
        return
    way = "up" if replicas > rs.replicas else "down"
    rs.replicas = replicas
    name = f"{svc.name}-{rs.template_hash}"
    _event(s, svc, "Deployment", svc.name, "ScalingReplicaSet",
           f"Scaled {way} replica set {name} to {replicas}")  # fmt: skip


def _sync_replicaset(s: Session, svc: Service, rs: ReplicaSet, pods: list[Pod]) -> None:
    name = f"{svc.name}-{rs.template_hash}"
    if len(pods) < rs.replicas:
        # A name's random part can repeat (27^5 of them): every name taken in the namespace
        # by this replica set's pods, terminating ones included, is drawn again.
        taken = set(
            s.scalars(
                select(Pod.name).where(
                    Pod.cluster_id == svc.cluster_id,
                    Pod.namespace == svc.namespace,
                    Pod.name.startswith(f"{name}-", autoescape=True),
                )
            )
        )
        for _ in range(rs.replicas - len(pods)):
            pod_name = wl.pod_name(svc.name, rs.template_hash)
            while pod_name in taken:
                pod_name = wl.pod_name(svc.name, rs.template_hash)
            taken.add(pod_name)
            pod = Pod(
                uid=str(uuid.uuid4()),
                account_id=svc.account_id,
                cluster_id=svc.cluster_id,
                namespace=svc.namespace,
                name=pod_name,
                service_id=svc.id,
                replicaset_id=rs.id,
                template={**rs.template, "labels": dict(svc.labels)},
                status={"reason": "Pending", "containers": []},
            )
            s.add(pod)
            _event(s, svc, "ReplicaSet", name, "SuccessfulCreate", f"Created pod: {pod.name}")
    elif len(pods) > rs.replicas:
        # Unscheduled first, then not ready, then the newest, as the replica set controller.
        victims = sorted(
            pods,
            key=lambda p: (p.node_id is not None, wl.pod_is_ready(p), -p.created_at.timestamp()),
        )[: len(pods) - rs.replicas]
        for p in victims:
            p.deleting = True
            if p.node_id is None:
                s.delete(p)
            _event(s, svc, "ReplicaSet", name, "SuccessfulDelete", f"Deleted pod: {p.name}")
