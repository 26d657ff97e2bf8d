"""The cluster's Kubernetes API: its credentials (DescribeClusterSecurityInfo) and its
external address (OperateClusterVip)."""

from __future__ import annotations

from typing import Any, Literal

from openccs.api.context import RequestContext
from openccs.api.errors import ApiError
from openccs.api.params import Params
from openccs.api.registry import action
from openccs.domain import cloud
from openccs.kube import component as _kube_component  # noqa: F401  (registers kube.vip)
from openccs.kube import creds, endpoint
from openccs.tasks.runner import create_task


class SecurityInfoParams(Params):
    clusterId: str


@action("DescribeClusterSecurityInfo", SecurityInfoParams, resources=("clusterId",))
def describe_security_info(ctx: RequestContext, p: SecurityInfoParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    row = creds.ensure_endpoint(ctx.db, ctx.services.box, cluster.id)
    url = endpoint.external_url(ctx.db, ctx.services.settings, cluster.id)
    return {
        "userName": creds.USER,
        "password": ctx.services.box.decrypt(row.password_enc),
        "certificationAuthority": row.ca_cert,
        "clusterExternalEndpoint": url or "",
    }


class OperateVipParams(Params):
    clusterId: str
    operation: Literal["Create", "Delete"]


@action("OperateClusterVip", OperateVipParams, resources=("clusterId",))
def operate_cluster_vip(ctx: RequestContext, p: OperateVipParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId, lock=True)
    if cluster.status == "Deleting":
        raise ApiError(5100, "ClusterStateError", f"cluster {cluster.id} is Deleting")
    row = creds.ensure_endpoint(ctx.db, ctx.services.box, cluster.id)
    if p.operation == "Create" and row.external_open:
        raise ApiError(
            5100, "ClusterVipExists", f"the external address of {cluster.id} is already open"
        )
    if p.operation == "Delete" and not row.external_open:
        raise ApiError(
            5100, "ClusterVipNotExists", f"the external address of {cluster.id} is not open"
        )
    row.external_open = p.operation == "Create"
    task = create_task(
        ctx.db,
        ctx.account_id,
        "kube.vip",
        {"clusterId": cluster.id, "operation": p.operation},
        cluster.id,
    )
    runner, task_id = ctx.services.tasks, task.id
    ctx.on_commit(lambda: runner.submit(task_id))
    return {"requestId": task_id}
