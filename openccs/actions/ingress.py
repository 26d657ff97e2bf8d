"""Ingress actions: CreateIngress, DescribeIngress, ModifyIngress, DeleteIngress (the
document also spells them Createlngress and MosifyIngress; the catalog maps those). Each
decodes its parameters, calls the traffic backend and encodes the answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Array, Flag, Params
from openccs.api.registry import action
from openccs.backends import traffic as backend
from openccs.backends.inputs import DNS_LABEL
from openccs.backends.traffic import IngressChange, IngressRule, NewIngress
from openccs.timeutil import fmt_time


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


def _rules(rules: list[Rule]) -> list[IngressRule]:
    return [
        IngressRule(r.url, r.domain, r.protocol, r.serviceName, r.servicePort, r.LoadBalancePort)
        for r in rules
    ]


@action("CreateIngress", CreateIngressParams, resources=("clusterId",))
def create_ingress(ctx: RequestContext, p: CreateIngressParams) -> None:
    new = NewIngress(
        p.namespace, p.ingressName, p.ingressDesc, p.certId, _rules(p.rules), p.unSubnetId
    )
    backend.create_ingress(ctx.work(), p.clusterId, new)


class DescribeIngressParams(Params):
    clusterId: str
    namespace: str = Field(default="default", min_length=1, max_length=63, pattern=DNS_LABEL)
    allnamespace: Flag = 0


@action("DescribeIngress", DescribeIngressParams, resources=("clusterId",), inline=True)
def describe_ingress(ctx: RequestContext, p: DescribeIngressParams) -> dict[str, Any]:
    found = backend.ingresses(ctx.work(), p.clusterId, None if p.allnamespace else p.namespace)
    items = [
        {
            "ingressName": ing.name,
            "ingressDesc": ing.description,
            "lbId": ing.balancer.id if ing.balancer else "",
            "ingressIp": ing.balancer.vip if ing.balancer else "",
            "lbStatus": ing.balancer.status if ing.balancer else "None",
            "certId": ing.cert_id,
            "rules": [r.to_v2() for r in ing.rules],
            "createdAt": fmt_time(ing.created_at),
            "namespace": ing.namespace,
            "unSubnetId": ing.subnet_id,
        }
        for ing in found
    ]
    return {"ingressList": items, "totalCount": len(items)}


@action("ModifyIngress", ModifyIngressParams, resources=("clusterId",))
def modify_ingress(ctx: RequestContext, p: ModifyIngressParams) -> None:
    change = IngressChange(p.ingressDesc, p.certId, None if p.rules is None else _rules(p.rules))
    backend.modify_ingress(ctx.work(), p.clusterId, p.namespace, p.ingressName, change)


@action("DeleteIngress", IngressRef, resources=("clusterId",))
def delete_ingress(ctx: RequestContext, p: IngressRef) -> None:
    backend.delete_ingress(ctx.work(), p.clusterId, p.namespace, p.ingressName)
