"""Namespace actions: DescribeClusterNameSpaces, CreateClusterNamespace,
DeleteClusterNamespace, ModifyNamespaceDescription. Each decodes its parameters, calls the
workloads backend and encodes the answer."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Array, Params
from openccs.api.registry import action
from openccs.backends import workloads as backend
from openccs.backends.inputs import ClusterId, Description, NamespaceName
from openccs.backends.workload_params import CreateNamespaceParams
from openccs.timeutil import fmt_time


class ClusterParams(Params):
    clusterId: ClusterId


@action("DescribeClusterNameSpaces", ClusterParams, resources=("clusterId",), inline=True)
def describe_namespaces(ctx: RequestContext, p: ClusterParams) -> dict[str, Any]:
    rows = backend.namespaces(ctx.work(), p.clusterId)
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


@action("CreateClusterNamespace", CreateNamespaceParams, resources=("clusterId",))
def create_namespace(ctx: RequestContext, p: CreateNamespaceParams) -> None:
    backend.create_namespace(ctx.work(), p.clusterId, p.name, p.description)


class DeleteNamespaceParams(Params):
    clusterId: ClusterId
    names: Array[NamespaceName] = Field(min_length=1, max_length=100)


@action("DeleteClusterNamespace", DeleteNamespaceParams, resources=("clusterId",))
def delete_namespace(ctx: RequestContext, p: DeleteNamespaceParams) -> None:
    backend.delete_namespaces(ctx.work(), p.clusterId, p.names)


class ModifyNamespaceDescriptionParams(Params):
    clusterId: ClusterId
    name: NamespaceName
    description: Description = ""


@action("ModifyNamespaceDescription", ModifyNamespaceDescriptionParams, resources=("clusterId",))
def modify_namespace_description(ctx: RequestContext, p: ModifyNamespaceDescriptionParams) -> None:
    backend.set_namespace_description(ctx.work(), p.clusterId, p.name, p.description)
