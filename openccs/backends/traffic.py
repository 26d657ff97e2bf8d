"""The traffic backend: ingresses, each with the load balancer that serves it.

The v2 ingress actions (`actions/ingress.py`) call these (and the console through them).
Inputs are typed (`NewIngress`, `IngressChange`, the rules as `IngressRule`); a change
declares that the traffic component has work (`Effects.wake_traffic`): it gives a new
balancer its VIP and makes nginx answer the rules (`traffic/component.py`). A service's own
balancer and node ports come with its spec (the workloads backend, `traffic/lb.py`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from openccs.backends import Work
from openccs.domain import cloud
from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.ids import new_id
from openccs.store.models import Cluster
from openccs.timeutil import utcnow
from openccs.traffic import lb
from openccs.traffic.ingress import IngressRule, check_rule
from openccs.traffic.models import Certificate, Ingress, LoadBalancer

__all__ = ["IngressChange", "IngressRule", "IngressState", "NewIngress"]


@dataclass(frozen=True)
class NewIngress:
    """CreateIngress's input: on a balancer of its own, public (no subnet) or inner (a
    subnet of the cluster's VPC); https rules need the certificate `cert_id`."""

    namespace: str
    name: str
    description: str = ""
    cert_id: str = ""
    rules: Sequence[IngressRule] = ()
    subnet_id: str = ""


@dataclass(frozen=True)
class IngressChange:
    """What ModifyIngress changes: each field given (None keeps it)."""

    description: str | None = None
    cert_id: str | None = None
    rules: Sequence[IngressRule] | None = None


@dataclass(frozen=True)
class IngressState:
    """An ingress as its describers show it: its settings, its rules and its balancer
    (none while it is being made)."""

    namespace: str
    name: str
    description: str
    cert_id: str
    rules: tuple[IngressRule, ...]
    subnet_id: str
    created_at: datetime.datetime
    balancer: LoadBalancer | None


def _check_rules(
    w: Work, cluster: Cluster, namespace: str, rules: Sequence[IngressRule], cert_id: str
) -> None:
    """Every rule checked against the document and against the cluster (the parameter
    `rules.n`): the backend service and port exist in the namespace, a port serves one
    protocol, no rule twice; https needs the account's certificate."""
    if cert_id:
        cert = w.db.get(Certificate, cert_id)
        if cert is None or cert.account_id != w.account_id:
            raise invalid_parameter(
                "certId", f"no certificate {cert_id}: upload one with `openccs cert upload`"
            )
    protocols: dict[int, str] = {}
    seen: set[tuple[int, str, str]] = set()
    for i, rule in enumerate(rules):
        where = f"rules.{i}"
        check_rule(rule, where)
        port, protocol = rule.lb_port, rule.protocol
        if protocol == "https" and not cert_id:
            raise invalid_parameter(f"{where}.protocol", "https needs the ingress's certId")
        if protocols.setdefault(port, protocol) != protocol:
            raise invalid_parameter(
                f"{where}.LoadBalancePort",
                f"port {port} already serves {protocols[port]} in this ingress",
            )
        key = (port, rule.domain, rule.url)
        if key in seen:
            raise invalid_parameter(where, "the same port, domain and url as an earlier rule")
        seen.add(key)
        name = rule.service_name
        svc = wl.service_named(w.db, cluster.id, namespace, name)
        if svc is None:
            raise invalid_parameter(
                f"{where}.serviceName", f"no service {name} in namespace {namespace}"
            )
        spec = ServiceSpec.from_v2(svc.spec)
        ports = sorted(p.lb_port for p in spec.ports if p.protocol == "TCP")
        if not svc.cluster_ip or rule.service_port not in ports:
            raise invalid_parameter(
                f"{where}.servicePort",
                f"service {name} has no TCP port {rule.service_port}"
                f" (its ports: {', '.join(map(str, ports)) or 'none'})",
            )


def _ingress(w: Work, cluster: Cluster, namespace: str, name: str) -> Ingress:
    ing = w.db.scalars(
        select(Ingress).where(
            Ingress.cluster_id == cluster.id, Ingress.namespace == namespace, Ingress.name == name
        )
    ).first()
    if ing is None:
        raise not_found("ingress", f"{name} in namespace {namespace} of cluster {cluster.id}")
    return ing


def _existing(w: Work, cluster_id: str, namespace: str) -> Cluster:
    """The caller's cluster, with the namespace checked to exist (5000 naming either)."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    wl.get_namespace(w.db, cluster, namespace)
    return cluster


def create_ingress(w: Work, cluster_id: str, new: NewIngress) -> Ingress:
    """An ingress and its balancer (Creating until the traffic component serves its VIP)."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    wl.active_namespace(w.db, cluster, new.namespace)
    exists = w.db.scalars(
        select(Ingress.id).where(
            Ingress.cluster_id == cluster.id,
            Ingress.namespace == new.namespace,
            Ingress.name == new.name,
        )
    ).first()
    if exists is not None:
        raise ApiError(
            4000, "IngressExists", f"ingress {new.name} already exists in {new.namespace}"
        )
    _check_rules(w, cluster, new.namespace, new.rules, new.cert_id)
    if new.subnet_id:
        subnet = lb.inner_subnet(w.db, cluster, new.subnet_id, "unSubnetId")
        vip, network = lb.allocate_inner_vip(w.db, subnet), "inner"
    else:
        vip, network = lb.allocate_public_vip(w.db, w.services.settings), "public"
    ing = Ingress(
        account_id=w.account_id,
        cluster_id=cluster.id,
        namespace=new.namespace,
        name=new.name,
        description=new.description,
        cert_id=new.cert_id,
        rules=[r.to_v2() for r in new.rules],
        subnet_id=new.subnet_id,
    )
    w.db.add(ing)
    w.db.flush()
    w.db.add(
        LoadBalancer(
            id=new_id("lb"),
            account_id=w.account_id,
            cluster_id=cluster.id,
            ingress_id=ing.id,
            network=network,
            subnet_id=new.subnet_id or None,
            vip=vip,
            status="Creating",
        )
    )
    w.effects.wake_traffic = True
    return ing


def modify_ingress(
    w: Work, cluster_id: str, namespace: str, name: str, change: IngressChange
) -> Ingress:
    """Change what is given; the rules kept must still hold with the certificate given."""
    cluster = _existing(w, cluster_id, namespace)
    ing = _ingress(w, cluster, namespace, name)
    cert = ing.cert_id if change.cert_id is None else change.cert_id
    rules = [IngressRule.from_v2(r) for r in ing.rules] if change.rules is None else change.rules
    _check_rules(w, cluster, namespace, rules, cert)
    if change.rules is not None:
        ing.rules = [r.to_v2() for r in change.rules]
    ing.cert_id = cert
    if change.description is not None:
        ing.description = change.description
    ing.updated_at = utcnow()
    w.effects.wake_traffic = True
    return ing


def delete_ingress(w: Work, cluster_id: str, namespace: str, name: str) -> None:
    """The ingress and its balancer go (its VIP and nginx servers follow)."""
    cluster = _existing(w, cluster_id, namespace)
    ing = _ingress(w, cluster, namespace, name)
    w.db.execute(delete(LoadBalancer).where(LoadBalancer.ingress_id == ing.id))
    w.db.delete(ing)
    w.effects.wake_traffic = True


def ingresses(w: Work, cluster_id: str, namespace: str | None) -> list[IngressState]:
    """A cluster's ingresses (of one namespace, which must exist, or of all with None),
    oldest first, with their balancers: two queries."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    q = select(Ingress).where(Ingress.cluster_id == cluster.id)
    if namespace is not None:
        wl.get_namespace(w.db, cluster, namespace)
        q = q.where(Ingress.namespace == namespace)
    balancers = {
        b.ingress_id: b
        for b in w.db.scalars(select(LoadBalancer).where(LoadBalancer.cluster_id == cluster.id))
    }
    return [
        IngressState(
            namespace=ing.namespace,
            name=ing.name,
            description=ing.description,
            cert_id=ing.cert_id,
            rules=tuple(IngressRule.from_v2(r) for r in ing.rules),
            subnet_id=ing.subnet_id,
            created_at=ing.created_at,
            balancer=balancers.get(ing.id),
        )
        for ing in w.db.scalars(q.order_by(Ingress.created_at, Ingress.id))
    ]
