"""Ingress actions: CreateIngress, DescribeIngress, ModifyIngress, DeleteIngress (the
document also spells them Createlngress and MosifyIngress; the catalog maps those)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select

from openccs.api.context import RequestContext
from openccs.api.params import Array, Flag, Params
from openccs.api.registry import action
from openccs.domain import cloud
from openccs.domain import workloads as wl
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.ids import new_id
from openccs.store.models import Service
from openccs.timeutil import fmt_time, utcnow
from openccs.traffic import lb
from openccs.traffic.component import wake as wake_traffic
from openccs.traffic.ingress import check_rule
from openccs.traffic.models import Certificate, Ingress, LoadBalancer

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


def check_rules(
    ctx: RequestContext, cluster: Any, namespace: str, rules: list[Rule], cert_id: str
) -> list[dict[str, Any]]:
    """Every rule checked against the document and against the cluster: the backend service
    and port exist in the namespace, a port serves one protocol, no rule twice."""
    if cert_id:
        cert = ctx.db.get(Certificate, cert_id)
        if cert is None or cert.account_id != ctx.account_id:
            raise invalid_parameter(
                "certId", f"no certificate {cert_id}: upload one with `openccs cert upload`"
            )
    protocols: dict[int, str] = {}
    seen: set[tuple[int, str, str]] = set()
    out = []
    for i, rule in enumerate(rules):
        where = f"rules.{i}"
        data = rule.model_dump()
        check_rule(data, where)
        if rule.protocol == "https" and not cert_id:
            raise invalid_parameter(f"{where}.protocol", "https needs the ingress's certId")
        if protocols.setdefault(rule.LoadBalancePort, rule.protocol) != rule.protocol:
            raise invalid_parameter(
                f"{where}.LoadBalancePort",
                f"port {rule.LoadBalancePort} already serves"
                f" {protocols[rule.LoadBalancePort]} in this ingress",
            )
        key = (rule.LoadBalancePort, rule.domain, rule.url)
        if key in seen:
            raise invalid_parameter(where, "the same port, domain and url as an earlier rule")
        seen.add(key)
        svc = ctx.db.scalars(
            select(Service).where(
                Service.cluster_id == cluster.id,
                Service.namespace == namespace,
                Service.name == rule.serviceName,
                Service.deleting.is_(False),
            )
        ).first()
        if svc is None:
            raise invalid_parameter(
                f"{where}.serviceName", f"no service {rule.serviceName} in namespace {namespace}"
            )
        ports = sorted(
            int(pm["lbPort"]) for pm in svc.spec.get("portMappings", []) if pm["protocol"] == "TCP"
        )
        if not svc.cluster_ip or rule.servicePort not in ports:
            raise invalid_parameter(
                f"{where}.servicePort",
                f"service {rule.serviceName} has no TCP port {rule.servicePort}"
                f" (its ports: {', '.join(map(str, ports)) or 'none'})",
            )
        out.append(data)
    return out


def _get(ctx: RequestContext, cluster: Any, namespace: str, name: str) -> Ingress:
    ing = ctx.db.scalars(
        select(Ingress).where(
            Ingress.cluster_id == cluster.id, Ingress.namespace == namespace, Ingress.name == name
        )
    ).first()
    if ing is None:
        raise not_found("ingress", f"{name} in namespace {namespace} of cluster {cluster.id}")
    return ing


@action("CreateIngress", CreateIngressParams, resources=("clusterId",))
def create_ingress(ctx: RequestContext, p: CreateIngressParams) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.active_namespace(ctx.db, cluster, p.namespace)
    exists = ctx.db.scalars(
        select(Ingress.id).where(
            Ingress.cluster_id == cluster.id,
            Ingress.namespace == p.namespace,
            Ingress.name == p.ingressName,
        )
    ).first()
    if exists is not None:
        raise ApiError(
            4000, "IngressExists", f"ingress {p.ingressName} already exists in {p.namespace}"
        )
    rules = check_rules(ctx, cluster, p.namespace, p.rules, p.certId)
    settings = ctx.services.settings
    if p.unSubnetId:
        subnet = lb.inner_subnet(ctx.db, cluster, p.unSubnetId, "unSubnetId")
        vip, network = lb.allocate_inner_vip(ctx.db, subnet), "inner"
    else:
        vip, network = lb.allocate_public_vip(ctx.db, settings), "public"
    ing = Ingress(
        account_id=ctx.account_id,
        cluster_id=cluster.id,
        namespace=p.namespace,
        name=p.ingressName,
        description=p.ingressDesc,
        cert_id=p.certId,
        rules=rules,
        subnet_id=p.unSubnetId,
    )
    ctx.db.add(ing)
    ctx.db.flush()
    ctx.db.add(
        LoadBalancer(
            id=new_id("lb"),
            account_id=ctx.account_id,
            cluster_id=cluster.id,
            ingress_id=ing.id,
            network=network,
            subnet_id=p.unSubnetId or None,
            vip=vip,
            status="Creating",
        )
    )
    _wake(ctx)


class DescribeIngressParams(Params):
    clusterId: str
    namespace: str = Field(default="default", min_length=1, max_length=63, pattern=DNS_LABEL)
    allnamespace: Flag = 0


@action("DescribeIngress", DescribeIngressParams, resources=("clusterId",), inline=True)
def describe_ingress(ctx: RequestContext, p: DescribeIngressParams) -> dict[str, Any]:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    q = select(Ingress).where(Ingress.cluster_id == cluster.id)
    if not p.allnamespace:
        wl.get_namespace(ctx.db, cluster, p.namespace)
        q = q.where(Ingress.namespace == p.namespace)
    balancers = {
        b.ingress_id: b
        for b in ctx.db.scalars(select(LoadBalancer).where(LoadBalancer.cluster_id == cluster.id))
    }
    items = []
    for ing in ctx.db.scalars(q.order_by(Ingress.created_at, Ingress.id)):
        b = balancers.get(ing.id)
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
    ing = _get(ctx, cluster, p.namespace, p.ingressName)
    cert_id = ing.cert_id if p.certId is None else p.certId
    if p.rules is not None:
        ing.rules = check_rules(ctx, cluster, p.namespace, p.rules, cert_id)
    else:
        # The rules kept must still hold with the certificate given now.
        check_rules(ctx, cluster, p.namespace, [Rule(**r) for r in ing.rules], cert_id)
    ing.cert_id = cert_id
    if p.ingressDesc is not None:
        ing.description = p.ingressDesc
    ing.updated_at = utcnow()
    _wake(ctx)


@action("DeleteIngress", IngressRef, resources=("clusterId",))
def delete_ingress(ctx: RequestContext, p: IngressRef) -> None:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId)
    wl.get_namespace(ctx.db, cluster, p.namespace)
    ing = _get(ctx, cluster, p.namespace, p.ingressName)
    for b in ctx.db.scalars(select(LoadBalancer).where(LoadBalancer.ingress_id == ing.id)):
        ctx.db.delete(b)
    ctx.db.delete(ing)
    _wake(ctx)
