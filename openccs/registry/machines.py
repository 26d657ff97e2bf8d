"""The registry as machines see it: an endpoint on every VPC gateway address (the host's
address in each subnet), the token realm they can reach, and image names rewritten to the
endpoint of a machine's own gateway.

Functions for the node agents: `registry_endpoint_for(rt, gateway_ip)`,
`image_for_machine(rt, image, gateway_ip)`; with `openccs.registry.clusters.
pull_auth_for_cluster` they make a pull (`POST /images/create` with `X-Registry-Auth`).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.domain.cloud import gateway_of
from openccs.store.models import Instance, Subnet

from .client import RegistryError

if TYPE_CHECKING:
    from .runtime import RegistryRuntime

LOOPBACK = "127.0.0.1"


def gateway_addresses(s: Session) -> list[str]:
    """Every subnet's gateway address, oldest subnet first. The database is the truth: a
    VPC made by the CLI while the server runs appears here at the next reconciliation."""
    found: list[str] = []
    for cidr in s.scalars(select(Subnet.cidr).order_by(Subnet.num_id)):
        gw = str(gateway_of(cidr).ip)
        if gw not in found:
            found.append(gw)
    return found


def gateways_with_machines(s: Session) -> list[str]:
    """The gateway addresses of the subnets that hold machines: only their dockerds need
    to trust the registry, and a deleted cluster's machines leave no trust behind."""
    found: list[str] = []
    used = select(Instance.subnet_id).distinct()
    for cidr in s.scalars(select(Subnet.cidr).where(Subnet.id.in_(used)).order_by(Subnet.num_id)):
        gw = str(gateway_of(cidr).ip)
        if gw not in found:
            found.append(gw)
    return found


def is_local_address(ip: str) -> bool:
    """Whether the host has this address now (binding to it succeeds only then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError:
            return False
    return True


def realm_host(gateways: list[str]) -> str:
    """Where the token realm lives. Distribution names one realm for every client, so it
    must be an address the host and all machines reach: a machine reaches any of the
    host's addresses through its own gateway, so the oldest gateway present on the host
    serves everyone (it changes only if that subnet goes). Loopback when there is none:
    then no machine can exist either."""
    for gw in gateways:
        if is_local_address(gw):
            return gw
    return LOOPBACK


def registry_endpoint_for(rt: RegistryRuntime, gateway_ip: str) -> str:
    """`GATEWAY:PORT`, where a machine whose subnet has this gateway pulls images from."""
    gw = str(ipaddress.ip_address(gateway_ip))
    if gw not in rt.gateways:
        raise RegistryError(
            f"the registry is not served on {gw}: not a VPC gateway of this site, or a subnet"
            " made since the last reconciliation (it is picked up within seconds)"
        )
    return f"{gw}:{rt.daemon.port}"


def is_ours(rt: RegistryRuntime, image: str) -> bool:
    """Whether `image` names this registry (by its loopback address, `localhost` or any
    gateway endpoint)."""
    domain, sep, _ = image.partition("/")
    port = rt.daemon.port
    return bool(sep) and domain in {
        rt.host,
        f"localhost:{port}",
        *(f"{g}:{port}" for g in rt.gateways),
    }


def image_for_machine(rt: RegistryRuntime, image: str, gateway_ip: str) -> str:
    """The image name a machine pulls: one naming this registry is pointed at the machine's
    own gateway endpoint; any other image is left alone."""
    if not is_ours(rt, image):
        return image
    return f"{registry_endpoint_for(rt, gateway_ip)}/{image.partition('/')[2]}"
