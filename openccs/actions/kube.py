"""The cluster's Kubernetes API: its credentials (DescribeClusterSecurityInfo) and its
external address (OperateClusterVip)."""

from __future__ import annotations

from typing import Any, Literal

from openccs.api.context import RequestContext
from openccs.api.params import Params
from openccs.api.registry import action
from openccs.domain import cloud
from openccs.domain.cloud import gateway_of
from openccs.errors import ApiError
from openccs.kube import component as kube_component  # also registers the kube.vip task
from openccs.kube import creds, endpoint
from openccs.tasks.runner import create_task


class SecurityInfoParams(Params):
    clusterId: str


@action("DescribeClusterSecurityInfo", SecurityInfoParams, resources=("clusterId",))
def describe_security_info(ctx: RequestContext, p: SecurityInfoParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    cluster_id, subnet = cluster.id, cloud.cluster_gateway_subnet(ctx.db, cluster)
    port: int | None = None
    if creds.internal_port(ctx.db, cluster_id) is None:
        # Picking a free port binds a socket: not while the transaction is open.
        with ctx.outside():
            port = kube_component.free_port("0.0.0.0")
    row = creds.ensure_endpoint(ctx.db, ctx.services.box, cluster_id)
    if row.internal_port is None:
        row.internal_port = port
    url = endpoint.external_url(ctx.db, ctx.services.settings, cluster_id)
    internal = ""
    if subnet and row.internal_port:
        internal = endpoint.url(str(gateway_of(subnet).ip), row.internal_port)
    return {
        "userName": creds.USER,
        "password": ctx.services.box.decrypt(row.password_enc),
        "certificationAuthority": row.ca_cert,
        "clusterExternalEndpoint": url or "",
        # Not in the document: the address machines of the VPC reach the API on, always.
        "clusterInternalEndpoint": internal,
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
