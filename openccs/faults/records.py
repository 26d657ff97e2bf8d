"""The faults' side of the store for the front ends (actions, CLI): what a fault request
targets, checked against the account's own resources, and the account's fault records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.domain.cloud import get_cluster
from openccs.domain.clusters import cluster_nodes
from openccs.errors import invalid_parameter, missing_parameter, not_found
from openccs.faults.backend import CLUSTER_KINDS, POD_KINDS
from openccs.faults.component import FaultSpec
from openccs.faults.models import Fault
from openccs.store.models import Instance, Pod


@dataclass
class FaultRequest:
    """A fault as asked for, before it is checked."""

    kind: str
    duration: int
    instance_id: str | None = None
    cluster_id: str | None = None
    namespace: str = "default"
    pod: str | None = None
    direction: str = "both"
    percent: int = 50
    probe_url: str | None = None
    which: str = "layer"


def resolve(s: Session, account_id: int, req: FaultRequest) -> FaultSpec:
    """The fault's target among the account's own resources (another account's are not
    found), or the document's error for what is missing or wrong."""
    spec = FaultSpec(account_id=account_id, kind=req.kind, duration=req.duration)
    params: dict[str, Any] = {}
    if req.kind in POD_KINDS:
        if not req.cluster_id or not req.pod:
            raise missing_parameter(
                *[n for n, v in (("clusterId", req.cluster_id), ("podName", req.pod)) if not v]
            )
        pod = s.scalars(
            select(Pod).where(
                Pod.account_id == account_id,
                Pod.cluster_id == req.cluster_id,
                Pod.namespace == req.namespace,
                Pod.name == req.pod,
                Pod.deleting.is_(False),
            )
        ).first()
        if pod is None or not pod.node_id:
            raise not_found("Pod (podName)", req.pod)
        if req.kind == "pod-liveness" and not any(
            c.get("liveProbe") for c in pod.template.get("containers") or []
        ):
            raise invalid_parameter(
                "podName", f"pod {pod.name} has no liveness probe: failing it would change nothing"
            )
        spec.cluster_id, spec.instance_id = pod.cluster_id, pod.node_id
        spec.namespace, spec.pod = pod.namespace, pod.name
        params = {"podId": pod.id, "podUid": pod.uid}
        if req.kind == "disk-fill":
            volumes = [v.get("name") for v in pod.template.get("volumes") or []]
            if req.which != "layer" and req.which not in volumes:
                raise invalid_parameter(
                    "which",
                    f"pod {pod.name} has no volume {req.which!r} (it has: "
                    f"{', '.join(map(str, volumes)) or 'none'}; 'layer' is its writable layer)",
                )
            params["which"] = req.which
    elif req.kind in CLUSTER_KINDS:
        if not req.cluster_id:
            raise missing_parameter("clusterId")
        cluster = get_cluster(s, account_id, req.cluster_id)
        machines = [n.id for n in cluster_nodes(s, cluster.id) if n.state == "Running"]
        if not machines:
            raise invalid_parameter("clusterId", f"cluster {cluster.id} has no running machine")
        spec.cluster_id, params = cluster.id, {"machines": machines}
    else:
        if not req.instance_id:
            raise missing_parameter("instanceId")
        ins = s.get(Instance, req.instance_id)
        if ins is None or ins.account_id != account_id:
            raise not_found("Instance (instanceId)", req.instance_id)
        if ins.state != "Running":
            raise invalid_parameter("instanceId", f"machine {ins.id} is {ins.state}, not Running")
        spec.cluster_id, spec.instance_id = ins.cluster_id or "", ins.id
        if req.kind == "net-cut":
            params = {"direction": req.direction}
        elif req.kind == "net-loss":
            params = {"percent": req.percent}
    if req.probe_url:
        params["probeUrl"] = check_probe_url(s, account_id, req.probe_url)
    spec.params = params
    return spec


def check_probe_url(s: Session, account_id: int, url: str) -> str:
    """A probe loop may only knock at one of the account's load balancers (openccs sends
    the requests from the host: any other address is not the tenant's to probe)."""
    from openccs.traffic.models import LoadBalancer

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise invalid_parameter("probeUrl", f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_parameter("probeUrl", f"{url!r} is not an http:// or https:// URL")
    vips = set(s.scalars(select(LoadBalancer.vip).where(LoadBalancer.account_id == account_id)))
    if parts.hostname not in vips:
        raise invalid_parameter(
            "probeUrl", f"{parts.hostname} is not the address of one of your load balancers"
        )
    return url


def list_faults(
    s: Session,
    account_id: int,
    fault_id: str | None = None,
    cluster_id: str | None = None,
    state: str | None = None,
) -> list[Fault]:
    """The account's faults, newest first."""
    q = select(Fault).where(Fault.account_id == account_id)
    if fault_id:
        q = q.where(Fault.id == fault_id)
    if cluster_id:
        q = q.where(Fault.cluster_id == cluster_id)
    if state:
        q = q.where(Fault.state == state)
    return list(s.scalars(q.order_by(Fault.started_at.desc(), Fault.id)))


def own_fault(s: Session, account_id: int, fault_id: str) -> Fault:
    fault = s.get(Fault, fault_id)
    if fault is None or fault.account_id != account_id:
        raise not_found("Fault (faultId)", fault_id)
    return fault
