"""Ingresses in the database: their rules checked against the cluster, each with the load
balancer that serves it (openccs.traffic.component makes nginx answer on its VIP)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.config import Settings
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.ids import new_id
from openccs.store.models import Cluster, Service
from openccs.timeutil import utcnow
from openccs.traffic import lb
from openccs.traffic.ingress import check_rule
from openccs.traffic.models import Certificate, Ingress, LoadBalancer


def check_rules(
    s: Session,
    account_id: int,
    cluster: Cluster,
    namespace: str,
    rules: list[dict[str, Any]],
    cert_id: str,
) -> list[dict[str, Any]]:
    """Every rule checked against the document and against the cluster: the backend service
    and port exist in the namespace, a port serves one protocol, no rule twice."""
    if cert_id:
        cert = s.get(Certificate, cert_id)
        if cert is None or cert.account_id != account_id:
            raise invalid_parameter(
                "certId", f"no certificate {cert_id}: upload one with `openccs cert upload`"
            )
    protocols: dict[int, str] = {}
    seen: set[tuple[int, str, str]] = set()
    for i, rule in enumerate(rules):
        where = f"rules.{i}"
        check_rule(rule, where)
        port, protocol = int(rule["LoadBalancePort"]), str(rule["protocol"])
        if protocol == "https" and not cert_id:
            raise invalid_parameter(f"{where}.protocol", "https needs the ingress's certId")
        if protocols.setdefault(port, protocol) != protocol:
            raise invalid_parameter(
                f"{where}.LoadBalancePort",
                f"port {port} already serves {protocols[port]} in this ingress",
            )
        key = (port, rule["domain"], rule["url"])
        if key in seen:
            raise invalid_parameter(where, "the same port, domain and url as an earlier rule")
        seen.add(key)
        name = rule["serviceName"]
        svc = s.scalars(
            select(Service).where(
                Service.cluster_id == cluster.id,
                Service.namespace == namespace,
                Service.name == name,
                Service.deleting.is_(False),
            )
        ).first()
        if svc is None:
            raise invalid_parameter(
                f"{where}.serviceName", f"no service {name} in namespace {namespace}"
            )
        ports = sorted(
            int(pm["lbPort"]) for pm in svc.spec.get("portMappings", []) if pm["protocol"] == "TCP"
        )
        if not svc.cluster_ip or rule["servicePort"] not in ports:
            raise invalid_parameter(
                f"{where}.servicePort",
                f"service {name} has no TCP port {rule['servicePort']}"
                f" (its ports: {', '.join(map(str, ports)) or 'none'})",
            )
    return rules


def get_ingress(s: Session, cluster: Cluster, namespace: str, name: str) -> Ingress:
    ing = s.scalars(
        select(Ingress).where(
            Ingress.cluster_id == cluster.id, Ingress.namespace == namespace, Ingress.name == name
        )
    ).first()
    if ing is None:
        raise not_found("ingress", f"{name} in namespace {namespace} of cluster {cluster.id}")
    return ing


def create_ingress(
    s: Session,
    settings: Settings,
    account_id: int,
    cluster: Cluster,
    namespace: str,
    name: str,
    description: str,
    cert_id: str,
    rules: list[dict[str, Any]],
    subnet_id: str,
) -> Ingress:
    """An ingress and its balancer (Creating until the traffic component serves its VIP)."""
    exists = s.scalars(
        select(Ingress.id).where(
            Ingress.cluster_id == cluster.id, Ingress.namespace == namespace, Ingress.name == name
        )
    ).first()
    if exists is not None:
        raise ApiError(4000, "IngressExists", f"ingress {name} already exists in {namespace}")
    rules = check_rules(s, account_id, cluster, namespace, rules, cert_id)
    if subnet_id:
        subnet = lb.inner_subnet(s, cluster, subnet_id, "unSubnetId")
        vip, network = lb.allocate_inner_vip(s, subnet), "inner"
    else:
        vip, network = lb.allocate_public_vip(s, settings), "public"
    ing = Ingress(
        account_id=account_id,
        cluster_id=cluster.id,
        namespace=namespace,
        name=name,
        description=description,
        cert_id=cert_id,
        rules=rules,
        subnet_id=subnet_id,
    )
    s.add(ing)
    s.flush()
    s.add(
        LoadBalancer(
            id=new_id("lb"),
            account_id=account_id,
            cluster_id=cluster.id,
            ingress_id=ing.id,
            network=network,
            subnet_id=subnet_id or None,
            vip=vip,
            status="Creating",
        )
    )
    return ing


def modify_ingress(
    s: Session,
    account_id: int,
    cluster: Cluster,
    namespace: str,
    name: str,
    description: str | None,
    cert_id: str | None,
    rules: list[dict[str, Any]] | None,
) -> Ingress:
    """Change what is given; the rules kept must still hold with the certificate given."""
    ing = get_ingress(s, cluster, namespace, name)
    cert = ing.cert_id if cert_id is None else cert_id
    checked = check_rules(
        s, account_id, cluster, namespace, ing.rules if rules is None else rules, cert
    )
    if rules is not None:
        ing.rules = checked
    ing.cert_id = cert
    if description is not None:
        ing.description = description
    ing.updated_at = utcnow()
    return ing


def list_ingresses(
    s: Session, cluster: Cluster, namespace: str | None
) -> list[tuple[Ingress, LoadBalancer | None]]:
    """A cluster's ingresses (of one namespace, or all), oldest first, with their balancers."""
    q = select(Ingress).where(Ingress.cluster_id == cluster.id)
    if namespace is not None:
        q = q.where(Ingress.namespace == namespace)
    balancers = {
        b.ingress_id: b
        for b in s.scalars(select(LoadBalancer).where(LoadBalancer.cluster_id == cluster.id))
    }
    return [
        (ing, balancers.get(ing.id))
        for ing in s.scalars(q.order_by(Ingress.created_at, Ingress.id))
    ]


def delete_ingress(s: Session, ing: Ingress) -> None:
    for b in s.scalars(select(LoadBalancer).where(LoadBalancer.ingress_id == ing.id)):
        s.delete(b)
    s.delete(ing)
