"""One snapshot of a cluster's rows: what a rendering needs, read in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.domain import workloads as wl
from openccs.kube.models import KubeAnnotations
from openccs.kube.render import RENDER
from openccs.store.models import Event, Instance, K8sNamespace, Pod, ReplicaSet, Service
from openccs.timeutil import utcnow
from openccs.traffic.models import LoadBalancer


class Snapshot:
    """The rows a rendering needs, read once."""

    def __init__(
        self,
        s: Session,
        cluster_id: str,
        kinds: set[str],
        cache: dict[int, tuple[Any, dict[str, Any]]] | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        # Pods rendered before, by id, with what they were rendered from: an unchanged
        # pod is the same object again (most of a large cluster, most of the time).
        self.cache = cache if cache is not None else {}
        self.now = utcnow()
        need_services = kinds & {
            "pods",
            "services",
            "endpoints",
            "deployments",
            "replicasets",
            "events",
        }
        self.nodes = list(
            s.scalars(
                select(Instance).where(Instance.cluster_id == cluster_id).order_by(Instance.lan_ip)
            )
        )
        self.node_ip = {n.id: n.lan_ip for n in self.nodes}
        self.services: list[Service] = []
        self.vips: dict[int | None, str] = {}
        self.replicasets: dict[int, list[ReplicaSet]] = {}
        self.pods: list[Pod] = []
        if need_services:
            self.services = list(
                s.scalars(
                    select(Service)
                    .where(Service.cluster_id == cluster_id)
                    .order_by(Service.namespace, Service.name)
                )
            )
            ids = [svc.id for svc in self.services]
            # The VIPs of LoadBalancer Services (status.loadBalancer.ingress).
            self.vips = {
                lb.service_id: lb.vip
                for lb in s.scalars(select(LoadBalancer).where(LoadBalancer.service_id.in_(ids)))
                if lb.status == "Running"
            }
            for rs in s.scalars(
                select(ReplicaSet)
                .where(ReplicaSet.service_id.in_(ids))
                .order_by(ReplicaSet.revision)
            ):
                self.replicasets.setdefault(rs.service_id, []).append(rs)
        if kinds & {"pods", "endpoints", "deployments", "replicasets", "events"}:
            self.pods = list(
                s.scalars(
                    select(Pod)
                    .where(Pod.cluster_id == cluster_id)
                    .order_by(Pod.namespace, Pod.name)
                )
            )
        self.pods_of: dict[int, list[Pod]] = {}
        for p in self.pods:
            if p.service_id is not None:
                self.pods_of.setdefault(p.service_id, []).append(p)
        self.svc_by_id = {svc.id: svc for svc in self.services}
        self.rs_by_id = {rs.id: rs for rss in self.replicasets.values() for rs in rss}
        self.namespaces: list[K8sNamespace] = []
        if "namespaces" in kinds:
            self.namespaces = list(
                s.scalars(
                    select(K8sNamespace)
                    .where(K8sNamespace.cluster_id == cluster_id)
                    .order_by(K8sNamespace.name)
                )
            )
        self.annotations: dict[str, dict[str, str]] = {}
        self.managed: dict[str, list[dict[str, Any]]] = {}
        if kinds & {"namespaces", "nodes", "services", "deployments", "replicasets"}:
            for row in s.scalars(
                select(KubeAnnotations).where(KubeAnnotations.cluster_id == cluster_id)
            ):
                self.annotations[row.uid] = row.annotations
                if row.managed_fields:
                    self.managed[row.uid] = row.managed_fields
        self.events: list[Event] = []
        if "events" in kinds:
            self.events = list(
                s.scalars(
                    select(Event).where(Event.cluster_id == cluster_id).order_by(Event.last_seen)
                )
            )

    def current_rs(self, svc: Service) -> ReplicaSet | None:
        h = wl.template_hash(wl.template_of(svc.spec, svc.restarted_at))
        for rs in self.replicasets.get(svc.id, []):
            if rs.template_hash == h:
                return rs
        return None

    def render(self, kind: str) -> list[dict[str, Any]]:
        objs = RENDER[kind](self)
        if kind not in ("namespaces", "nodes", "services", "deployments"):
            return objs
        for obj in objs:
            meta = obj["metadata"]
            kept = self.annotations.get(meta["uid"])
            if kept and kind != "nodes":
                meta["annotations"] = {**kept, **meta.get("annotations", {})}
            if meta["uid"] in self.managed:
                meta["managedFields"] = self.managed[meta["uid"]]
        return objs
