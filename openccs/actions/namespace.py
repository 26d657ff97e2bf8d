"""Namespace actions: DescribeClusterNameSpaces, CreateClusterNamespace,
DeleteClusterNamespace, ModifyNamespaceDescription."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import delete, select

from openccs.actions.inputs import ClusterId, Description, NamespaceName
from openccs.api.context import RequestContext
from openccs.api.params import Array, Params
from openccs.api.registry import action
from openccs.domain import cloud
from openccs.domain import workloads as wl
from openccs.errors import ApiError, invalid_parameter
from openccs.store.models import K8sNamespace, Service
from openccs.timeutil import fmt_time
from openccs.traffic.models import Ingress


class ClusterParams(Params):
    clusterId: ClusterId


@action("DescribeClusterNameSpaces", ClusterParams, resources=("clusterId",), inline=True)
def describe_namespaces(ctx: RequestContext, p: ClusterParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    rows = list(
        ctx.db.scalars(
            select(K8sNamespace)
            .where(K8sNamespace.cluster_id == cluster.id)
            .order_by(K8sNamespace.created_at, K8sNamespace.name)
        )
    )
    return {
        "totalCount": len(rows),
        "namespaces": [
            {
                "name": n.name,
                "status": n.status,
                "description": n.description,
                "createdAt": fmt_time(n.created_at),
            }
            for n in rows
        ],
    }


class CreateNamespaceParams(Params):
    clusterId: ClusterId
    name: NamespaceName
    # Required by the document's table (empty is allowed); ModifyNamespaceDescription's is not.
    description: Description


@action("CreateClusterNamespace", CreateNamespaceParams, resources=("clusterId",))
def create_namespace(ctx: RequestContext, p: CreateNamespaceParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    exists = ctx.db.scalars(
        select(K8sNamespace).where(
            K8sNamespace.cluster_id == cluster.id, K8sNamespace.name == p.name
        )
    ).first()
    if exists is not None:
        raise ApiError(
            4000, "NamespaceExists", f"namespace {p.name} (name) already exists in {cluster.id}"
        )
    ctx.db.add(
        K8sNamespace(
            account_id=ctx.account_id, cluster_id=cluster.id, name=p.name, description=p.description
        )
    )


class DeleteNamespaceParams(Params):
    clusterId: ClusterId
    names: Array[NamespaceName] = Field(min_length=1, max_length=100)


@action("DeleteClusterNamespace", DeleteNamespaceParams, resources=("clusterId",))
def delete_namespace(ctx: RequestContext, p: DeleteNamespaceParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    targets = []
    for i, name in enumerate(p.names):
        if name in wl.DEFAULT_NAMESPACES:
            raise invalid_parameter(f"names.{i}", f"namespace {name} cannot be deleted")
        if name in p.names[:i]:
            raise invalid_parameter(f"names.{i}", f"namespace {name} is named twice")
        targets.append(wl.get_namespace(ctx.db, cluster, name, f"names.{i}"))
    for ns in targets:
        # Terminating while its services go; the engine removes it once they are gone.
        ns.status = "Terminating"
        for svc in ctx.db.scalars(
            select(Service).where(Service.cluster_id == cluster.id, Service.namespace == ns.name)
        ):
            svc.deleting = True
        # Its ingresses go at once (their VIPs and nginx servers follow).
        ctx.db.execute(
            delete(Ingress).where(Ingress.cluster_id == cluster.id, Ingress.namespace == ns.name)
        )


class ModifyNamespaceDescriptionParams(Params):
    clusterId: ClusterId
    name: NamespaceName
    description: Description = ""


@action("ModifyNamespaceDescription", ModifyNamespaceDescriptionParams, resources=("clusterId",))
def modify_namespace_description(ctx: RequestContext, p: ModifyNamespaceDescriptionParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.get_namespace(ctx.db, cluster, p.name, "name").description = p.description
