"""Load balancers and node ports of services, in the database.

A service of accessType LoadBalancer gets a VIP from the host's public pool, one of
SvcLBTypeInner a VIP from the subnet it names; both (and NodePort) get a node port per port
mapping, given or allocated from the configured range, unique in the cluster. The engine
makes the VIPs answer (openccs.traffic.net) and forwards their ports to ready endpoints
(openccs.engine.proxy); a balancer is Creating until then, Running after.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.config import Settings
from openccs.domain.spec import ServiceSpec, typed_spec
from openccs.errors import ApiError, invalid_parameter
from openccs.ids import new_id
from openccs.store.models import Cluster, Instance, Service, Subnet
from openccs.traffic.models import LoadBalancer

LB_TYPES = ("LoadBalancer", "SvcLBTypeInner")
NODE_PORT_TYPES = ("NodePort", "LoadBalancer", "SvcLBTypeInner")


def _taken_vips(s: Session) -> set[str]:
    return set(s.scalars(select(LoadBalancer.vip)))


def allocate_public_vip(s: Session, settings: Settings) -> str:
    taken = _taken_vips(s)
    pool = ipaddress.ip_network(settings.lb_pool)
    for addr in pool.hosts() if pool.num_addresses > 2 else pool:
        if str(addr) not in taken:
            return str(addr)
    raise ApiError(5200, "VipExhausted", f"no public VIP left in the pool {settings.lb_pool}")


def allocate_inner_vip(s: Session, subnet: Subnet) -> str:
    """The highest free address of the subnet (machines take the lowest first)."""
    taken = _taken_vips(s) | set(
        s.scalars(select(Instance.lan_ip).where(Instance.subnet_id == subnet.id))
    )
    hosts = list(ipaddress.ip_network(subnet.cidr).hosts())[2:]
    for addr in reversed(hosts):
        if str(addr) not in taken:
            return str(addr)
    raise ApiError(
        5200, "SubnetIpExhausted", f"subnet {subnet.id} ({subnet.cidr}) has no free address left"
    )


def inner_subnet(s: Session, cluster: Cluster, subnet_id: str | None, name: str) -> Subnet:
    if not subnet_id:
        raise invalid_parameter(name, "required for an inner load balancer (SvcLBTypeInner)")
    sub = s.scalars(select(Subnet).where(Subnet.id == subnet_id)).first()
    if sub is None or sub.account_id != cluster.account_id:
        raise ApiError(5000, "ResourceNotFound", f"subnet {subnet_id} does not exist ({name})")
    if sub.vpc_id != cluster.vpc_id:
        raise invalid_parameter(
            name, f"subnet {subnet_id} is not in the cluster's VPC {cluster.vpc_id}"
        )
    return sub


def node_ports_in_use(s: Session, cluster_id: str, exclude_service: int | None) -> dict[int, str]:
    """Node port -> the service using it, in a cluster."""
    used: dict[int, str] = {}
    for svc in s.scalars(select(Service).where(Service.cluster_id == cluster_id)):
        if svc.id == exclude_service:
            continue
        for pm in typed_spec(svc.id, svc.spec).ports:
            if pm.node_port:
                used[int(pm.node_port)] = f"{svc.namespace}/{svc.name}"
    return used


def assign_node_ports(
    s: Session,
    settings: Settings,
    cluster_id: str,
    spec: ServiceSpec,
    service_id: int | None = None,
    old: ServiceSpec | None = None,
) -> ServiceSpec:
    """The spec with its node ports checked and the missing ones allocated.

    On a modification a port mapping that had a node port in `old` keeps it unless another
    is given (Kubernetes keeps a Service's nodePort across updates)."""
    if spec.access_type not in NODE_PORT_TYPES:
        for i, pm in enumerate(spec.ports):
            if pm.node_port:
                raise invalid_parameter(
                    f"portMappings.{i}.nodePort",
                    f"node ports are for NodePort, LoadBalancer and SvcLBTypeInner services,"
                    f" not {spec.access_type}: leave it out or 0",
                )
        return spec
    low, high = settings.node_port_range
    used = node_ports_in_use(s, cluster_id, service_id)
    previous = {(pm.lb_port, pm.protocol): pm.node_port for pm in (old.ports if old else ())}
    mine: dict[int, str] = {}  # node port -> protocol, within this service
    for i, pm in enumerate(spec.ports):
        port = int(pm.node_port or 0)
        if not port:
            continue
        if not low <= port <= high:
            raise invalid_parameter(
                f"portMappings.{i}.nodePort", f"{port} is outside the node port range {low}-{high}"
            )
        if port in used:
            raise invalid_parameter(
                f"portMappings.{i}.nodePort", f"{port} is already used by service {used[port]}"
            )
        if mine.get(port) == pm.protocol:
            raise invalid_parameter(f"portMappings.{i}.nodePort", f"{port} given twice")
        mine[port] = pm.protocol
    ports = []
    for pm in spec.ports:
        if pm.node_port:
            ports.append(pm)
            continue
        kept = previous.get((pm.lb_port, pm.protocol), 0)
        if kept and kept not in used and mine.get(kept) != pm.protocol:
            ports.append(replace(pm, node_port=kept))
            mine[kept] = pm.protocol
            continue
        for port in range(low, high + 1):
            if port not in used and port not in mine:
                ports.append(replace(pm, node_port=port))
                mine[port] = pm.protocol
                break
        else:
            raise ApiError(5200, "NodePortExhausted", f"no node port left in {low}-{high}")
    return replace(spec, ports=tuple(ports))


def service_lb(s: Session, svc: Service) -> LoadBalancer | None:
    return s.scalars(select(LoadBalancer).where(LoadBalancer.service_id == svc.id)).first()


def ensure_service_lb(s: Session, settings: Settings, cluster: Cluster, svc: Service) -> None:
    """Create, keep, replace or remove the service's balancer to match its accessType."""
    spec = ServiceSpec.from_v2(svc.spec)
    kind = spec.access_type
    current = service_lb(s, svc)
    if kind not in LB_TYPES:
        if current is not None:
            s.delete(current)
        return
    network = "public" if kind == "LoadBalancer" else "inner"
    subnet_id = spec.subnet_id or None if network == "inner" else None
    if current is not None and current.network == network and current.subnet_id == subnet_id:
        return
    if current is not None:
        s.delete(current)
        s.flush()
    if network == "public":
        vip = allocate_public_vip(s, settings)
    else:
        vip = allocate_inner_vip(s, inner_subnet(s, cluster, subnet_id, "subnetId"))
    s.add(
        LoadBalancer(
            id=new_id("lb"),
            account_id=svc.account_id,
            cluster_id=cluster.id,
            service_id=svc.id,
            network=network,
            subnet_id=subnet_id,
            vip=vip,
            status="Creating",
        )
    )
