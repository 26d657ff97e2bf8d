"""Faults on purpose (extension actions, outside the API document): inject one, list them,
end one, and report what a fault did to the services it touched. Each decodes, calls the
faults backend (`backends/faults.py`), checks what a sub-account may see, and encodes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Paged, Params
from openccs.api.registry import action
from openccs.backends import faults as backend
from openccs.backends.inputs import ClusterId, NamespaceName, PodName
from openccs.domain.accounts import Caller
from openccs.errors import ApiError
from openccs.faults.backend import KINDS
from openccs.faults.component import describe
from openccs.faults.models import Fault
from openccs.faults.records import FaultRequest

HOST = "ccs.api.qcloud.com"
MAX_DURATION = 86400

Kind = Literal[
    "machine-stop", "machine-reboot", "dockerd-kill", "machine-freeze",
    "net-cut", "net-loss", "registry-cut", "registry-refuse", "registry-stall", "pod-kill",
    "pod-liveness", "disk-fill",
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
    # GET through the fault's window by openccs, counted in the report (a load balancer's).
    probeUrl: str | None = Field(default=None, min_length=1, max_length=2048)
    # disk-fill: what fills up, the pod's writable layer (its first container's) or the
    # name of one of its volumes.
    which: str = Field(default="layer", min_length=1, max_length=63)


@action(
    "OpenccsCreateFault",
    CreateFaultParams,
    host=HOST,
    resources=("instanceId", "clusterId"),
    extension=True,
)
def create_fault(ctx: RequestContext, p: CreateFaultParams) -> dict[str, Any]:
    """Break a machine, its network or a pod for `duration` seconds (pod-kill: at once;
    disk-fill: the machine's disk full, in the pod's writable layer or volume `which`, on
    machines with disks of their own, `openccs serve --machine-disks loop`)."""
    w = ctx.work()
    req = FaultRequest(
        kind=p.kind, duration=p.duration, instance_id=p.instanceId, cluster_id=p.clusterId,
        namespace=p.namespace, pod=p.podName, direction=p.direction, percent=p.percent,
        probe_url=p.probeUrl, which=p.which,
    )  # fmt: skip
    spec = backend.target(w, req)
    if spec.pod and not (
        ctx.caller.may_use(spec.instance_id) or ctx.caller.may_use(spec.cluster_id)
    ):
        raise _not_allowed(spec.cluster_id)
    return {"faultId": backend.inject(w, spec)}


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
    found = backend.faults(ctx.work(), p.faultId, p.clusterId, p.state)
    rows = [f for f in found if _may_see(ctx.caller, f)]
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
    return describe(backend.end(ctx.work(), _own_fault(ctx, p.faultId)))


@action(
    "OpenccsDescribeFaultReport",
    FaultIdParams,
    host=HOST,
    unscoped="a fault belongs to the machine or cluster it acts on: the handler checks it",
    inline=True,
    extension=True,
)
def describe_fault_report(ctx: RequestContext, p: FaultIdParams) -> dict[str, Any]:
    """For the fault's window: the services it touched, their pods lost and replaced, how
    long each took to be back at full strength, and the requests that failed through the
    load balancer when openccs ran a probe loop (`probeUrl`)."""
    return backend.report(ctx.work(), _own_fault(ctx, p.faultId))


def _own_fault(ctx: RequestContext, fault_id: str) -> Fault:
    fault = backend.fault(ctx.work(), fault_id)
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
