"""The cluster's Kubernetes API: its credentials (DescribeClusterSecurityInfo) and its
external address (OperateClusterVip). Each decodes, calls the clusters backend, encodes."""

from __future__ import annotations

from typing import Any, Literal

from openccs.api.context import RequestContext
from openccs.api.params import Params
from openccs.api.registry import action
from openccs.backends import clusters as backend
from openccs.kube import component as _listeners  # noqa: F401  (registers the kube.vip task)


class SecurityInfoParams(Params):
    clusterId: str


@action("DescribeClusterSecurityInfo", SecurityInfoParams, resources=("clusterId",))
def describe_security_info(ctx: RequestContext, p: SecurityInfoParams) -> dict[str, Any]:
    info = backend.security_info(ctx.work(), p.clusterId)
    return {
        "userName": info.user,
        "password": info.password,
        "certificationAuthority": info.ca_cert,
        "clusterExternalEndpoint": info.external_url or "",
        # Not in the document: the address machines of the VPC reach the API on, always.
        "clusterInternalEndpoint": info.internal_url,
    }


class OperateVipParams(Params):
    clusterId: str
    operation: Literal["Create", "Delete"]


@action("OperateClusterVip", OperateVipParams, resources=("clusterId",))
def operate_cluster_vip(ctx: RequestContext, p: OperateVipParams) -> dict[str, Any]:
    return {"requestId": backend.operate_vip(ctx.work(), p.clusterId, p.operation)}
