"""The durable halves of scale-down and group deletion: drain the machines (cordon, evict
their pods so their services start them elsewhere, wait until the pods are gone), then
remove the machines with the cluster's own removal step. Each step is idempotent, so a
server killed half way resumes where it was."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from openccs.autoscaler.domain import DELETE, SCALE_IN, minutes
from openccs.domain import cluster_tasks as ct
from openccs.domain.workloads import record_event
from openccs.log import get_logger, log_event
from openccs.store.models import Instance, Pod, Service
from openccs.tasks.runner import StepContext, task_type

log = get_logger("openccs.autoscaler")

# How long a drain waits for evicted pods to end before the machine goes anyway
# (cluster-autoscaler's max-graceful-termination-sec is 10 minutes).
DRAIN_TIMEOUT_MINUTES = 10


def _services(ctx: StepContext) -> Any:
    return ctx.services["services"]


def _targets(ctx: StepContext) -> list[str]:
    ids = ctx.params.get("instanceIds")
    if ids is None:
        ids = ctx.state.get("instanceIds")
    return list(ids or [])


def collect_group(ctx: StepContext) -> None:
    """The deleted group's machines, once none of them is still being made."""
    services = _services(ctx)
    while True:
        with services.store.session() as s:
            nodes = list(
                s.scalars(
                    select(Instance).where(Instance.autoscaling_group_id == ctx.params["asgId"])
                )
            )
            if not any(n.state == "Creating" and n.task_id is not None for n in nodes):
                for n in nodes:
                    n.unschedulable = True
                    n.drain_status = "draining"
                ctx.state["instanceIds"] = [n.id for n in nodes]
                return
        ctx.sleep(0.5)


def drain(ctx: StepContext) -> None:
    services = _services(ctx)
    ids = _targets(ctx)
    if not ctx.params.get("drain", True) or not ids:
        return
    with services.store.session() as s:
        for node in s.scalars(select(Instance).where(Instance.id.in_(ids))):
            node.unschedulable = True
            node.drain_status = "draining"
            for pod in s.scalars(
                select(Pod).where(Pod.node_id == node.id, Pod.deleting.is_(False))
            ):
                pod.deleting = True
                svc = s.get(Service, pod.service_id) if pod.service_id else None
                record_event(
                    s,
                    pod.cluster_id,
                    pod.namespace,
                    svc.name if svc else "",
                    "Pod",
                    pod.name,
                    "ScaleDown",
                    f"deleting pod for node scale down ({node.lan_ip})",
                )
    deadline = time.monotonic() + minutes(services.settings, DRAIN_TIMEOUT_MINUTES)
    while time.monotonic() < deadline:
        with services.store.session() as s:
            left = s.scalars(select(Pod.id).where(Pod.node_id.in_(ids))).first()
        if left is None:
            return
        ctx.sleep(0.3)
    log_event(log, "drain timed out; removing the machines anyway", nodes=",".join(ids))


def remove(ctx: StepContext) -> None:
    ctx.params["instanceIds"] = _targets(ctx)
    ctx.params["mode"] = "Return"
    ct.remove_nodes(ctx)


def undo_drain(ctx: StepContext) -> None:
    """A failed scale-down leaves what is still there schedulable again."""
    with _services(ctx).store.session() as s:
        for node in s.scalars(select(Instance).where(Instance.id.in_(_targets(ctx)))):
            node.unschedulable = False
            node.drain_status = ""


SCALE_IN_TASK = task_type(
    SCALE_IN,
    [("drain", drain), ("remove", remove), ("network", ct.sync_network)],
    rollback=undo_drain,
)
DELETE_TASK = task_type(
    DELETE,
    [
        ("collect", collect_group),
        ("drain", drain),
        ("remove", remove),
        ("network", ct.sync_network),
    ],
    rollback=undo_drain,
)
