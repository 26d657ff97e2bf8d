"""Ingress actions: CreateIngress, DescribeIngress, ModifyIngress, DeleteIngress (the
document also spells them Createlngress and MosifyIngress; the catalog maps those)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Array, Flag, Params
from openccs.api.registry import action
from openccs.domain import cloud
from openccs.domain import workloads as wl
from openccs.timeutil import fmt_time
from openccs.traffic import ingresses
from openccs.traffic.component import wake as wake_traffic

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Rule(Params):
    url: str = Field(min_length=1, max_length=80)
    domain: str = Field(min_length=1, max_length=80)
    protocol: Literal["http", "https"]
    serviceName: str = Field(min_length=1, max_length=63)
    servicePort: int = Field(ge=1, le=65535)
    LoadBalancePort: int = Field(ge=1, le=65535)


class IngressRef(Params):
    clusterId: str
    ingressName: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    namespace: str = Field(default="default", min_length=1, max_length=63, pattern=DNS_LABEL)


class CreateIngressParams(IngressRef):
    ingressDesc: str = Field(default="", max_length=1024)
    certId: str = ""
    rules: Array[Rule] = []
    unSubnetId: str = ""
    internetChargeType: Literal["TRAFFIC_POSTPAID_BY_HOUR", "BANDWIDTH_POSTPAID_BY_HOUR"] | None = (
        None
    )
    internetMaxBandwidthOut: int | None = Field(default=None, ge=1)


class ModifyIngressParams(IngressRef):
    ingressDesc: str | None = Field(default=None, max_length=1024)
    certId: str | None = None
    rules: Array[Rule] | None = None


def _wake(ctx: RequestContext) -> None:
    services = ctx.services
    ctx.on_commit(lambda: wake_traffic(services))


@action("CreateIngress", CreateIngressParams, resources=("clusterId",))
def create_ingress(ctx: RequestContext, p: CreateIngressParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.active_namespace(ctx.db, cluster, p.namespace)
    ingresses.create_ingress(
        ctx.db,
        ctx.services.settings,
        ctx.account_id,
        cluster,
        p.namespace,
        p.ingressName,
        p.ingressDesc,
        p.certId,
        [r.model_dump() for r in p.rules],
        p.unSubnetId,
    )
    _wake(ctx)


class DescribeIngressParams(Params):
    clusterId: str
    namespace: str = Field(default="default", min_length=1, max_length=63, pattern=DNS_LABEL)
    allnamespace: Flag = 0


@action("DescribeIngress", DescribeIngressParams, resources=("clusterId",), inline=True)
def describe_ingress(ctx: RequestContext, p: DescribeIngressParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    namespace = None
    if not p.allnamespace:
        wl.get_namespace(ctx.db, cluster, p.namespace)
        namespace = p.namespace
    items = []
    for ing, b in ingresses.list_ingresses(ctx.db, cluster, namespace):
        items.append(
            {
                "ingressName": ing.name,
                "ingressDesc": ing.description,
                "lbId": b.id if b else "",
                "ingressIp": b.vip if b else "",
                "lbStatus": b.status if b else "None",
                "certId": ing.cert_id,
                "rules": ing.rules,
                "createdAt": fmt_time(ing.created_at),
                "namespace": ing.namespace,
                "unSubnetId": ing.subnet_id,
            }
        )
    return {"ingressList": items, "totalCount": len(items)}


@action("ModifyIngress", ModifyIngressParams, resources=("clusterId",))
def modify_ingress(ctx: RequestContext, p: ModifyIngressParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.get_namespace(ctx.db, cluster, p.namespace)
    ingresses.modify_ingress(
        ctx.db,
        ctx.account_id,
        cluster,
        p.namespace,
        p.ingressName,
        p.ingressDesc,
        p.certId,
        None if p.rules is None else [r.model_dump() for r in p.rules],
    )
    _wake(ctx)


@action("DeleteIngress", IngressRef, resources=("clusterId",))
def delete_ingress(ctx: RequestContext, p: IngressRef) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.get_namespace(ctx.db, cluster, p.namespace)
    ing = ingresses.get_ingress(ctx.db, cluster, p.namespace, p.ingressName)
    ingresses.delete_ingress(ctx.db, ing)
    _wake(ctx)
