"""Rules of the local cloud: zones, instance types, VPCs, subnets, addresses and CIDRs.

Everything here works on the database only; `openccs.cloud` does the host side.
Addresses are unique on the whole host (every VPC bridge and every pod network shares
the host's routing table), so overlap checks look across accounts where they must.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openccs.config import INSTANCE_TYPES, InstanceType, Settings, Zone
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.ids import new_id, parse_number
from openccs.store.models import Cluster, Instance, Subnet, Vpc

PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
POD_PREFIX = 24
# Cluster CIDRs: large enough for a few nodes plus the service range, small enough to share.
CLUSTER_PREFIX_MIN, CLUSTER_PREFIX_MAX = 14, 22


def resolve_zone(settings: Settings, value: str | int, name: str = "zoneId") -> Zone:
    text = str(value).strip()
    for z in settings.zones:
        if text in (z.name, str(z.zone_id)):
            return z
    known = ", ".join(f"{z.name} ({z.zone_id})" for z in settings.zones)
    raise invalid_parameter(name, f"unknown zone {text!r}; this region has {known}")


def zone_by_name(settings: Settings, name: str) -> Zone:
    return resolve_zone(settings, name, "zone")


def resolve_instance_type(instance_type: str | None, cpu: int, mem: int) -> InstanceType:
    """The catalogue entry for a request: the named type must have exactly cpu/mem."""
    if instance_type:
        for it in INSTANCE_TYPES:
            if it.name == instance_type:
                if (it.cpu, it.mem) != (cpu, mem):
                    raise invalid_parameter(
                        "cpu",
                        f"{it.name} has {it.cpu} core(s) and {it.mem} GB; got cpu={cpu} mem={mem}",
                    )
                return it
        raise invalid_parameter(
            "instanceType",
            f"unknown type {instance_type!r}; known: " + ", ".join(t.name for t in INSTANCE_TYPES),
        )
    for it in INSTANCE_TYPES:
        if (it.cpu, it.mem) == (cpu, mem):
            return it
    combos = sorted({(t.cpu, t.mem) for t in INSTANCE_TYPES})
    raise invalid_parameter(
        "mem",
        f"no machine type has cpu={cpu} and mem={mem}; valid cpu/mem pairs: "
        + ", ".join(f"{c}/{m}" for c, m in combos),
    )


_SPECIAL = set("()`~!@#$%^&*-+=|{}[]:;'<>,.?/")


def check_password(password: str, name: str = "password") -> None:
    """The document: 8-16 characters, at least two of letters, digits and special signs."""
    if not 8 <= len(password) <= 16:
        raise invalid_parameter(name, "must be 8 to 16 characters long")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") | _SPECIAL
    if any(c not in allowed for c in password):
        raise invalid_parameter(
            name, "may contain only letters, digits and ()`~!@#$%^&*-+=|{}[]:;'<>,.?/"
        )
    kinds = sum(
        (
            any(c.isalpha() for c in password),
            any(c.isdigit() for c in password),
            any(c in _SPECIAL for c in password),
        )
    )
    if kinds < 2:
        raise invalid_parameter(
            name, "must contain at least two of: letters, digits, special characters"
        )


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_login(password: str | None, key_id: str | None) -> None:
    if password and key_id:
        raise invalid_parameter("keyId", "give either password or keyId, not both")
    if password:
        check_password(password)
    if key_id and not re.fullmatch(r"skey-[a-z0-9]{8}", key_id):
        raise invalid_parameter("keyId", f"{key_id!r} is not a key id (skey-xxxxxxxx)")


def decode_user_script(script: str | None) -> str:
    if not script:
        return ""
    try:
        base64.b64decode(script, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_parameter("userScript", "must be base64-encoded") from None
    if len(script) > 16 * 1024:
        raise invalid_parameter("userScript", "must be at most 16 KB (base64)")
    return script


def parse_cidr(value: str, name: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise invalid_parameter(
            name, f"{value!r} is not a network address/prefix ({exc})"
        ) from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise invalid_parameter(name, "must be an IPv4 CIDR")
    return net


def check_private(net: ipaddress.IPv4Network, name: str) -> None:
    if not any(net.subnet_of(r) for r in PRIVATE_RANGES):
        raise invalid_parameter(
            name, f"{net} is not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
        )


# VPCs and subnets.


def _next_num(s: Session, column: Any) -> int:
    return int(s.scalar(select(func.max(column))) or 0) + 1


def create_vpc(
    s: Session, account_id: int, cidr: str, name: str = "", is_default: bool = False
) -> Vpc:
    net = parse_cidr(cidr, "cidr")
    check_private(net, "cidr")
    if not 16 <= net.prefixlen <= 28:
        raise invalid_parameter("cidr", "a VPC's prefix must be between /16 and /28")
    for other in s.scalars(select(Vpc)):
        if net.overlaps(ipaddress.ip_network(other.cidr)):
            raise ApiError(
                4000, "CidrConflict", f"{net} overlaps VPC network {other.cidr} on this host"
            )
    for cl in s.scalars(select(Cluster)):
        if net.overlaps(ipaddress.ip_network(cl.cidr)):
            raise ApiError(
                4000, "CidrConflict", f"{net} overlaps a cluster network ({cl.cidr}) on this host"
            )
    vpc = Vpc(
        id=new_id("vpc"),
        num_id=_next_num(s, Vpc.num_id),
        account_id=account_id,
        name=name or ("Default-VPC" if is_default else ""),
        cidr=str(net),
        is_default=is_default,
    )
    s.add(vpc)
    s.flush()
    return vpc


def create_subnet(
    s: Session, settings: Settings, vpc: Vpc, cidr: str, zone: str, name: str = ""
) -> Subnet:
    net = parse_cidr(cidr, "cidr")
    if not net.subnet_of(ipaddress.ip_network(vpc.cidr)):  # type: ignore[arg-type]
        raise invalid_parameter("cidr", f"{net} is not inside the VPC's {vpc.cidr}")
    if net.prefixlen > 28:
        raise invalid_parameter("cidr", "a subnet's prefix must be /28 or larger")
    z = resolve_zone(settings, zone, "zone")
    for other in s.scalars(select(Subnet).where(Subnet.vpc_id == vpc.id)):
        if net.overlaps(ipaddress.ip_network(other.cidr)):
            raise ApiError(4000, "CidrConflict", f"{net} overlaps subnet {other.id} ({other.cidr})")
    sub = Subnet(
        id=new_id("subnet"),
        num_id=_next_num(s, Subnet.num_id),
        vpc_id=vpc.id,
        account_id=vpc.account_id,
        name=name or f"{z.name}-subnet",
        cidr=str(net),
        zone=z.name,
    )
    s.add(sub)
    s.flush()
    return sub


def has_default_vpc(s: Session) -> bool:
    return s.scalars(select(Vpc).where(Vpc.is_default.is_(True))).first() is not None


def ensure_default_vpc(s: Session, settings: Settings, account_id: int, cidr: str) -> Vpc | None:
    """The default VPC with a subnet per zone, made once (at first start)."""
    if has_default_vpc(s):
        return None
    vpc = create_vpc(s, account_id, cidr, is_default=True)
    net = ipaddress.ip_network(vpc.cidr)
    subnets = net.subnets(new_prefix=max(24, net.prefixlen + 2))
    next(subnets)  # keep the first block free (x.x.0.0/24)
    for zone in settings.zones:
        create_subnet(s, settings, vpc, str(next(subnets)), zone.name)
    return vpc


def gateway_of(subnet_cidr: str) -> ipaddress.IPv4Interface:
    net = ipaddress.ip_network(subnet_cidr)
    return ipaddress.ip_interface(f"{net.network_address + 1}/{net.prefixlen}")  # type: ignore[return-value]


def get_vpc(s: Session, account_id: int, vpc_id: str, name: str = "vpcId") -> Vpc:
    vpc = s.get(Vpc, vpc_id)
    if vpc is None or vpc.account_id != account_id:
        num_id = parse_number(vpc_id)  # the legacy numeric id
        if num_id is not None:
            vpc = s.scalars(
                select(Vpc).where(Vpc.num_id == num_id, Vpc.account_id == account_id)
            ).first()
            if vpc is not None:
                return vpc
        raise ApiError(5000, "ResourceNotFound", f"VPC {vpc_id} does not exist ({name})")
    return vpc


def get_subnet(
    s: Session,
    account_id: int,
    subnet_id: str,
    vpc_id: str | None = None,
    name: str = "subnetId",
) -> Subnet:
    """The account's subnet; with `vpc_id`, one of that VPC (any of its zones)."""
    sub = s.get(Subnet, subnet_id)
    if sub is None or sub.account_id != account_id:
        raise ApiError(5000, "ResourceNotFound", f"subnet {subnet_id} does not exist ({name})")
    if vpc_id is not None and sub.vpc_id != vpc_id:
        # The VPC's router joins its subnets (and zones), nothing joins two VPCs.
        raise invalid_parameter(
            name,
            f"subnet {subnet_id} is in VPC {sub.vpc_id}, not in the cluster's VPC {vpc_id}:"
            " a cluster's machines must all be in subnets of its VPC",
        )
    return sub


def allocate_lan_ips(s: Session, subnet: Subnet, count: int) -> list[str]:
    """Free addresses of a subnet, lowest first (the gateway and the first two are reserved)."""
    net = ipaddress.ip_network(subnet.cidr)
    from openccs.traffic.models import LoadBalancer

    used = set(s.scalars(select(Instance.lan_ip).where(Instance.subnet_id == subnet.id)))
    used |= set(s.scalars(select(LoadBalancer.vip).where(LoadBalancer.subnet_id == subnet.id)))
    free: list[str] = []
    for addr in list(net.hosts())[2:-1]:
        if str(addr) not in used:
            free.append(str(addr))
            if len(free) == count:
                return free
    raise ApiError(
        5200,
        "SubnetIpExhausted",
        f"subnet {subnet.id} ({subnet.cidr}) has {len(free)} free address(es); {count} needed",
    )


# Cluster networks.


def service_cidr_of(cluster_cidr: str) -> str:
    """The last /24 of the cluster CIDR holds service IPs; nodes get the /24s before it."""
    net = ipaddress.ip_network(cluster_cidr)
    last = list(net.subnets(new_prefix=POD_PREFIX))[-1]
    return str(last)


def check_cluster_cidr(
    s: Session,
    account_id: int,
    vpc: Vpc,
    cidr: str,
    ignore_conflict: bool,
    name: str = "clusterCIDR",
) -> ipaddress.IPv4Network:
    net = parse_cidr(cidr, name)
    check_private(net, name)
    if not CLUSTER_PREFIX_MIN <= net.prefixlen <= CLUSTER_PREFIX_MAX:
        raise invalid_parameter(
            name, f"prefix must be between /{CLUSTER_PREFIX_MIN} and /{CLUSTER_PREFIX_MAX}"
        )
    if net.overlaps(ipaddress.ip_network(vpc.cidr)):
        raise ApiError(
            4000, "CIDRConflictWithVPCCIDR", f"{net} conflicts with the VPC's CIDR {vpc.cidr}"
        )
    for other in s.scalars(select(Vpc).where(Vpc.id != vpc.id)):
        if net.overlaps(ipaddress.ip_network(other.cidr)):
            raise ApiError(
                4000, "CIDRConflictWithVPCCIDR", f"{net} conflicts with a VPC network on this host"
            )
    if not ignore_conflict:
        for cl in s.scalars(select(Cluster).where(Cluster.vpc_id == vpc.id)):
            if net.overlaps(ipaddress.ip_network(cl.cidr)):
                raise ApiError(
                    4000,
                    "ConflictWithOtherClusterCIDR",
                    f"{net} conflicts with the CIDR {cl.cidr} of cluster {cl.id} in the same VPC"
                    " (ignoreClusterCIDRConflict=1 to create it anyway)",
                )
    return net


def _used_pod_cidrs(s: Session) -> set[str]:
    return {c for c in s.scalars(select(Instance.pod_cidr)) if c}


def _used_service_cidrs(s: Session, exclude: str | None = None) -> set[str]:
    q = select(Cluster.service_cidr)
    if exclude:
        q = q.where(Cluster.id != exclude)
    return set(s.scalars(q))


def pick_service_cidr(s: Session, cluster_cidr: str) -> str:
    """The service range, unique on the host (clusters may overlap when told to ignore)."""
    svc = service_cidr_of(cluster_cidr)
    taken = _used_service_cidrs(s) | _used_pod_cidrs(s)
    if svc in taken:
        raise ApiError(
            4000,
            "ConflictWithOtherClusterCIDR",
            f"the service range {svc} of {cluster_cidr} is used by another cluster on this host",
        )
    return svc


def allocate_pod_cidrs(s: Session, cluster: Cluster, count: int) -> list[str]:
    """Free /24s of the cluster CIDR, unique across the host's clusters."""
    taken = _used_pod_cidrs(s) | _used_service_cidrs(s)
    free: list[str] = []
    for block in ipaddress.ip_network(cluster.cidr).subnets(new_prefix=POD_PREFIX):
        b = str(block)
        if b == cluster.service_cidr or b in taken:
            continue
        free.append(b)
        if len(free) == count:
            return free
    raise ApiError(
        5200,
        "ClusterCIDRExhausted",
        f"cluster CIDR {cluster.cidr} has room for {len(free)} more node(s); {count} requested",
    )


def get_cluster(
    s: Session, account_id: int, cluster_id: str, lock: bool = False, name: str = "clusterId"
) -> Cluster:
    q = select(Cluster).where(Cluster.id == cluster_id, Cluster.account_id == account_id)
    if lock:
        q = q.with_for_update()
    cluster = s.scalars(q).first()
    if cluster is None:
        raise not_found(f"cluster ({name})", cluster_id)
    return cluster


def cluster_gateway_subnet(s: Session, cluster: Cluster) -> str | None:
    """The CIDR of a subnet the cluster's machines are in (any of its VPC's otherwise)."""
    return (
        s.scalars(
            select(Subnet.cidr)
            .join(Instance, Instance.subnet_id == Subnet.id)
            .where(Instance.cluster_id == cluster.id)
            .order_by(Subnet.num_id)
        ).first()
        or s.scalars(
            select(Subnet.cidr).where(Subnet.vpc_id == cluster.vpc_id).order_by(Subnet.num_id)
        ).first()
    )


def legacy_num(value: str, prefix: str) -> int:
    """The number of a legacy id (`gz_vpc_12`), or -1."""
    tail = value[len(prefix) :] if value.startswith(prefix) else ""
    number = parse_number(tail)
    return -1 if number is None else number


def _vpc_match(value: str) -> Any:
    return (Vpc.id == value) | (Vpc.num_id == legacy_num(value, "gz_vpc_"))


def list_vpcs(
    s: Session, account_id: int, vpc_id: str | None, name: str | None, by_name: bool, asc: bool
) -> list[Vpc]:
    """The account's VPCs (by id, new or legacy; by a part of the name), by creation or name."""
    q = select(Vpc).where(Vpc.account_id == account_id)
    if vpc_id:
        q = q.where(_vpc_match(vpc_id))
    if name:
        q = q.where(Vpc.name.contains(name))
    col = Vpc.name if by_name else Vpc.created_at
    return list(s.scalars(q.order_by(col.asc() if asc else col.desc(), Vpc.num_id)))


def vpc_counts(s: Session, vpc_id: str) -> tuple[int, int]:
    """(subnets, machines) of a VPC."""
    subnets = s.scalar(select(func.count()).select_from(Subnet).where(Subnet.vpc_id == vpc_id))
    devices = s.scalar(select(func.count()).select_from(Instance).where(Instance.vpc_id == vpc_id))
    return subnets or 0, devices or 0


def list_subnets(
    s: Session,
    account_id: int,
    vpc_id: str | None,
    subnet_id: str | None,
    name: str | None,
    zones: list[str],
    by_name: bool,
    asc: bool,
) -> list[tuple[Subnet, Vpc]]:
    q = (
        select(Subnet, Vpc)
        .join(Vpc, Vpc.id == Subnet.vpc_id)
        .where(Subnet.account_id == account_id)
    )
    if vpc_id:
        q = q.where(_vpc_match(vpc_id))
    if subnet_id:
        legacy = legacy_num(subnet_id, "gz_subnet_")
        q = q.where((Subnet.id == subnet_id) | (Subnet.num_id == legacy))
    if name:
        q = q.where(Subnet.name.contains(name))
    if zones:
        q = q.where(Subnet.zone.in_(zones))
    col = Subnet.name if by_name else Subnet.created_at
    q = q.order_by(col.asc() if asc else col.desc(), Subnet.num_id)
    return [(sub, vpc) for sub, vpc in s.execute(q)]
