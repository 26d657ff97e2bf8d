"""The long halves of the cluster actions, as durable tasks.

Every step is idempotent: it looks at the database and at the host and does what is
missing, so a task killed half way resumes where it was. A task that fails rolls back
what it made (machines it created are destroyed; a cluster being created is removed).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from openccs.log import get_logger, log_event
from openccs.store.models import Cluster, HubInfo, Instance, Pod
from openccs.subsystems import need
from openccs.tasks.runner import StepContext, TaskFailed, task_type
from openccs.timeutil import utcnow

if TYPE_CHECKING:
    from openccs.cloud.component import Cloud

log = get_logger("openccs.clusters")


def _cloud(ctx: StepContext) -> Cloud:
    cloud: Cloud = need(ctx.services["services"].subsystems.cloud, "cloud")
    return cloud


def _store(ctx: StepContext) -> Any:
    return ctx.services["services"].store


def bring_up_machines(ctx: StepContext) -> None:
    """Start every machine this task is making (state Creating), all at once."""
    cloud = _cloud(ctx)
    with _store(ctx).session() as s:
        pending = list(
            s.scalars(
                select(Instance).where(
                    Instance.task_id == ctx.task_id, Instance.state == "Creating"
                )
            )
        )
        specs = [cloud.spec_for(s, ins) for ins in pending]
        reinstall = {ins.id for ins in pending if ins.settings.get("reinstall")}
    if not specs:
        return
    progress = ctx.state.setdefault("progress", {})
    lock = threading.Lock()

    def report(instance_id: str, outcome: Any) -> None:
        with lock:
            progress[instance_id] = f"failed: {outcome.error}" if outcome.error else "running"
            ctx.save()

    results = cloud.bring_up(specs, reinstall, report)
    failures = []
    with _store(ctx).session() as s:
        for spec in specs:
            ins = s.get(Instance, spec.instance_id)
            if ins is None:
                continue
            outcome = results[spec.instance_id]
            if outcome.error:
                failures.append(f"{ins.id}: {outcome.error}")
                ins.state = "Failed"
                ins.is_normal = False
                ins.abnormal_reason = f"Unknown (machine did not start: {outcome.error})"
                continue
            ins.state = "Running"
            ins.kernel_version = outcome.kernel_version
            ins.joined_at = ins.joined_at or utcnow()
            if outcome.script_error:
                ins.is_normal = False
                ins.abnormal_reason = f"Unknown (userScript failed: {outcome.script_error})"
            else:
                ins.is_normal = True
                ins.abnormal_reason = ""
    if failures:
        raise TaskFailed("machines did not start: " + "; ".join(failures))


def sync_network(ctx: StepContext) -> None:
    cluster_id = ctx.params["clusterId"]
    with _store(ctx).session() as s:
        _cloud(ctx).sync_routes(s, cluster_id)
    _sync_registry_trust(ctx)


def _sync_registry_trust(ctx: StepContext) -> None:
    """The machines' dockerds trust the registry (certs.d) exactly while machines live in
    a subnet: follow a change now rather than at the registry's next pass."""
    registry = ctx.services["services"].subsystems.registry
    if registry is not None:
        registry.sync_machine_access(restart=False)


def mark_running(ctx: StepContext) -> None:
    with _store(ctx).session() as s:
        cluster = s.get(Cluster, ctx.params["clusterId"])
        if cluster is not None:
            cluster.status = "Running"
            cluster.updated_at = utcnow()
        for ins in s.scalars(select(Instance).where(Instance.task_id == ctx.task_id)):
            ins.task_id = None
            ins.settings = {
                k: v for k, v in ins.settings.items() if k not in ("adopted", "reinstall")
            }


def _destroy_task_machines(ctx: StepContext, delete_rows: bool) -> None:
    cloud = _cloud(ctx)
    with _store(ctx).session() as s:
        made = list(s.scalars(select(Instance).where(Instance.task_id == ctx.task_id)))
        new = [i.id for i in made if not i.settings.get("adopted")]
        adopted = [i.id for i in made if i.settings.get("adopted")]
    for iid in new:
        cloud.destroy(iid)
    with _store(ctx).session() as s:
        for iid in new:
            ins = s.get(Instance, iid)
            if ins is not None and delete_rows:
                s.delete(ins)
        for iid in adopted:
            ins = s.get(Instance, iid)
            if ins is not None:
                ins.cluster_id = None
                ins.pod_cidr = None
                ins.task_id = None
                ins.state = "Running"
                ins.settings = {k: v for k, v in ins.settings.items() if k != "adopted"}


def rollback_create(ctx: StepContext) -> None:
    _destroy_task_machines(ctx, delete_rows=True)
    with _store(ctx).session() as s:
        _cloud(ctx).delete_routes(ctx.params["clusterId"])
        cluster = s.get(Cluster, ctx.params["clusterId"])
        if cluster is not None:
            s.delete(cluster)
    log_event(log, "cluster creation rolled back", cluster=ctx.params["clusterId"])


def rollback_scale_out(ctx: StepContext) -> None:
    _destroy_task_machines(ctx, delete_rows=True)
    with _store(ctx).session() as s:
        _cloud(ctx).sync_routes(s, ctx.params["clusterId"])
        cluster = s.get(Cluster, ctx.params["clusterId"])
        if cluster is not None:
            cluster.status = "Running"
            cluster.updated_at = utcnow()


def remove_nodes(ctx: StepContext) -> None:
    """Return destroys a node's machine; RemoveOnly keeps it as an existing CVM."""
    cloud = _cloud(ctx)
    mode = ctx.params.get("mode", "Return")
    with _store(ctx).session() as s:
        q = select(Instance.id).where(Instance.cluster_id == ctx.params["clusterId"])
        ids = ctx.params.get("instanceIds")
        if ids is not None:
            q = q.where(Instance.id.in_(ids))
        targets = list(s.scalars(q))

    def remove(iid: str) -> None:
        # The node's pods go with it; their services make new ones elsewhere.
        with _store(ctx).session() as s:
            s.execute(delete(Pod).where(Pod.node_id == iid))
        if mode == "RemoveOnly":
            cloud.reset(iid)
            with _store(ctx).session() as s:
                ins = s.get(Instance, iid)
                if ins is not None:
                    ins.cluster_id = None
                    ins.pod_cidr = None
                    ins.labels = {}
                    ins.unschedulable = False
                    ins.drain_status = ""
                    ins.joined_at = None
                    ins.name = f"cvm_{ins.id}"
        else:
            cloud.destroy(iid)
            with _store(ctx).session() as s:
                ins = s.get(Instance, iid)
                if ins is not None:
                    s.delete(ins)
        log_event(log, "node removed", cluster=ctx.params["clusterId"], instance=iid, mode=mode)

    # Machines go away in parallel, as they came; each is recorded as soon as it is gone.
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(targets)))) as pool:
        for future in [pool.submit(remove, iid) for iid in targets]:
            future.result()


def finish_scale_in(ctx: StepContext) -> None:
    mark_running(ctx)


def delete_cluster_row(ctx: StepContext) -> None:
    cluster_id = ctx.params["clusterId"]
    _cloud(ctx).delete_routes(cluster_id)
    engine = ctx.services["services"].subsystems.engine
    with _store(ctx).session() as s:
        cluster = s.get(Cluster, cluster_id)
        if engine is not None and cluster is not None:
            engine.forget_cluster(cluster_id, cluster.vpc_id, cluster.service_cidr)
    with _store(ctx).session() as s:
        for hub in s.scalars(select(HubInfo).where(HubInfo.cluster_id == cluster_id)):
            s.delete(hub)
        cluster = s.get(Cluster, cluster_id)
        if cluster is not None:
            s.delete(cluster)
    _sync_registry_trust(ctx)


def mark_abnormal(ctx: StepContext) -> None:
    with _store(ctx).session() as s:
        cluster = s.get(Cluster, ctx.params["clusterId"])
        if cluster is not None:
            cluster.status = "Abnormal"
            cluster.updated_at = utcnow()


CREATE = task_type(
    "cluster.create",
    [("machines", bring_up_machines), ("network", sync_network), ("ready", mark_running)],
    rollback=rollback_create,
)
SCALE_OUT = task_type(
    "cluster.scale_out",
    [("machines", bring_up_machines), ("network", sync_network), ("ready", mark_running)],
    rollback=rollback_scale_out,
)
SCALE_IN = task_type(
    "cluster.scale_in",
    [("remove", remove_nodes), ("network", sync_network), ("ready", finish_scale_in)],
    rollback=mark_abnormal,
)
DELETE = task_type(
    "cluster.delete",
    [("remove", remove_nodes), ("cleanup", delete_cluster_row)],
    rollback=mark_abnormal,
)
