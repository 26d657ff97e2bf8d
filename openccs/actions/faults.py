"""Faults on purpose (extension actions, outside the API document): inject one, list them,
end one, and report what a fault did to the services it touched."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select

from openccs.api.context import RequestContext
from openccs.api.params import Paged, Params
from openccs.api.registry import action
from openccs.backends.inputs import ClusterId, NamespaceName, PodName
from openccs.domain.accounts import Caller
from openccs.domain.cloud import get_cluster
from openccs.domain.clusters import cluster_nodes
from openccs.errors import ApiError, invalid_parameter, missing_parameter, not_found
from openccs.faults.backend import CLUSTER_KINDS, KINDS, POD_KINDS, FaultError
from openccs.faults.component import Faults, FaultSpec, describe
from openccs.faults.models import Fault
from openccs.faults.report import fault_report
from openccs.store.models import Instance, Pod
from openccs.subsystems import need

HOST = "ccs.api.qcloud.com"
MAX_DURATION = 86400

Kind = Literal[
    "machine-stop", "machine-reboot", "dockerd-kill", "machine-freeze",
    "net-cut", "net-loss", "registry-cut", "registry-refuse", "registry-stall", "pod-kill",
]  # fmt: skip
assert set(Kind.__args__) == set(KINDS)  # type: ignore[attr-defined]


class CreateFaultParams(Params):
    kind: Kind
    duration: int = Field(default=60, ge=0, le=MAX_DURATION)
    instanceId: str | None = Field(default=None, min_length=1, max_length=64)
    clusterId: ClusterId | None = None
    namespace: NamespaceName = "default"
    podName: PodName | None = None
    direction: Literal["both", "in", "out"] = "both"
    percent: int = Field(default=50, ge=1, le=100)


@action(
    "OpenccsCreateFault",
    CreateFaultParams,
    host=HOST,
    resources=("instanceId", "clusterId"),
    extension=True,
)
def create_fault(ctx: RequestContext, p: CreateFaultParams) -> dict[str, Any]:
    """Break a machine, its network or a pod for `duration` seconds (pod-kill: at once)."""
    spec = FaultSpec(account_id=ctx.account_id, kind=p.kind, duration=p.duration)
    if p.kind in POD_KINDS:
        if not p.clusterId or not p.podName:
            raise missing_parameter(*[n for n in ("clusterId", "podName")
                                      if not getattr(p, n)])  # fmt: skip
        pod = ctx.db.scalars(
            select(Pod).where(
                Pod.account_id == ctx.account_id,
                Pod.cluster_id == p.clusterId,
                Pod.namespace == p.namespace,
                Pod.name == p.podName,
                Pod.deleting.is_(False),
            )
        ).first()
        if pod is None or not pod.node_id:
            raise not_found("Pod (podName)", p.podName)
        spec.cluster_id, spec.instance_id = pod.cluster_id, pod.node_id
        spec.namespace, spec.pod, spec.params = pod.namespace, pod.name, {"podId": pod.id}
        if not ctx.caller.may_use(pod.node_id) and not ctx.caller.may_use(pod.cluster_id):
            raise _not_allowed(pod.cluster_id)
    elif p.kind in CLUSTER_KINDS:
        if not p.clusterId:
            raise missing_parameter("clusterId")
        cluster = get_cluster(ctx.db, ctx.account_id, p.clusterId)
        machines = [n.id for n in cluster_nodes(ctx.db, cluster.id) if n.state == "Running"]
        if not machines:
            raise invalid_parameter("clusterId", f"cluster {cluster.id} has no running machine")
        spec.cluster_id, spec.params = cluster.id, {"machines": machines}
    else:
        if not p.instanceId:
            raise missing_parameter("instanceId")
        ins = ctx.db.get(Instance, p.instanceId)
        if ins is None or ins.account_id != ctx.account_id:
            raise not_found("Instance (instanceId)", p.instanceId)
        if ins.state != "Running":
            raise invalid_parameter("instanceId", f"machine {ins.id} is {ins.state}, not Running")
        spec.cluster_id, spec.instance_id = ins.cluster_id or "", ins.id
        if p.kind == "net-cut":
            spec.params = {"direction": p.direction}
        elif p.kind == "net-loss":
            spec.params = {"percent": p.percent}
    try:
        fault_id = _keeper(ctx).start_fault(spec)
    except FaultError as exc:
        raise ApiError(5100, "FaultNotInjected", str(exc)) from None
    return {"faultId": fault_id}


class DescribeFaultsParams(Paged):
    faultId: str | None = Field(default=None, max_length=32)
    clusterId: ClusterId | None = None
    state: Literal["active", "ended", "failed"] | None = None


@action(
    "OpenccsDescribeFaults",
    DescribeFaultsParams,
    host=HOST,
    resources=("clusterId",),
    inline=True,
    extension=True,
)
def describe_faults(ctx: RequestContext, p: DescribeFaultsParams) -> dict[str, Any]:
    """The account's faults, newest first; a sub-account sees those of its resources."""
    q = select(Fault).where(Fault.account_id == ctx.account_id)
    if p.faultId:
        q = q.where(Fault.id == p.faultId)
    if p.clusterId:
        q = q.where(Fault.cluster_id == p.clusterId)
    if p.state:
        q = q.where(Fault.state == p.state)
    rows = [f for f in ctx.db.scalars(q.order_by(Fault.started_at.desc(), Fault.id))
            if _may_see(ctx.caller, f)]  # fmt: skip
    return {
        "totalCount": len(rows),
        "faults": [describe(f) for f in rows[p.offset : p.offset + p.limit]],
    }


class FaultIdParams(Params):
    faultId: str = Field(min_length=1, max_length=32)


@action(
    "OpenccsEndFault",
    FaultIdParams,
    host=HOST,
    unscoped="a fault belongs to the machine or cluster it acts on: the handler checks it",
    extension=True,
)
def end_fault(ctx: RequestContext, p: FaultIdParams) -> dict[str, Any]:
    """Restore what an active fault changed now; an ended fault stays as it is."""
    fault = _own_fault(ctx, p.faultId)
    _keeper(ctx).end_fault(fault.id)
    ctx.db.expire_all()
    return describe(_own_fault(ctx, p.faultId))


@action(
    "OpenccsDescribeFaultReport",
    FaultIdParams,
    host=HOST,
    unscoped="a fault belongs to the machine or cluster it acts on: the handler checks it",
    inline=True,
    extension=True,
)
def describe_fault_report(ctx: RequestContext, p: FaultIdParams) -> dict[str, Any]:
    """For the fault's window: the services it touched, their pods lost and replaced, and
    how long each took to be back at full strength."""
    return fault_report(ctx.db, _own_fault(ctx, p.faultId))


def _keeper(ctx: RequestContext) -> Faults:
    keeper = need(ctx.subsystems.faults, "faults")
    return keeper


def _own_fault(ctx: RequestContext, fault_id: str) -> Fault:
    fault = ctx.db.get(Fault, fault_id)
    if fault is None or fault.account_id != ctx.account_id:
        raise not_found("Fault (faultId)", fault_id)
    if not _may_see(ctx.caller, fault):
        raise _not_allowed(fault.cluster_id or fault.instance_id)
    return fault


def _may_see(caller: Caller, fault: Fault) -> bool:
    return caller.may_use(fault.instance_id) or bool(
        fault.cluster_id and caller.may_use(fault.cluster_id)
    )


def _not_allowed(resource: str) -> ApiError:
    return ApiError(
        4102,
        "UnauthorizedResource",
        f"This sub-account is not allowed to use {resource}: ask the account owner to allow it",
    )
