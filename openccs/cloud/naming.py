"""Names of every host object the local cloud creates, derived from a site id and resource ids.

A *site* is one openccs data directory: its 4-character id (lower-case alphanumerics, chosen
and persisted by the caller) is part of every name, so two openccs instances (or test runs)
on one host never touch each other's objects, and a sweep can find exactly one site's
leftovers. Interface names are limited to 15 characters, hence the short forms:

| object                    | name                          | example                        |
| ------------------------- | ----------------------------- | ------------------------------ |
| machine network namespace | `occ-<site>-<ins8>`           | `occ-ab12-x1y2z3w4`            |
| host side of machine veth | `ov<site><ins8>`              | `ovab12x1y2z3w4` (14 chars)    |
| VPC bridge                | `ob<site><vpc8>`              | `obab12q9w8e7r6` (14 chars)    |
| public VIPs (empty bridge)| `ol<site>`                    | `olab12`                       |
| iptables chains           | `OCC-<site>-FWD`, `-POST`     | `OCC-ab12-FWD` (filter, nat)   |
| cgroup (every controller) | `/openccs-<site>/<ins-id>`    | `/openccs-ab12/ins-x1y2z3w4`   |
| runtime dir (sockets)     | `<runtime>/<site>/<ins-id>`   | `/run/openccs/ab12/ins-x1y2z3w4` |

`<ins8>`/`<vpc8>` are the 8 characters after the id's dash (ids are unique per site).
"""

from __future__ import annotations

import re
from pathlib import Path

SITE_RE = re.compile(r"^[a-z0-9]{4}$")
NETNS_PREFIX = "occ-"
VETH_PREFIX = "ov"
BRIDGE_PREFIX = "ob"
VIP_PREFIX = "ol"
CHAIN_PREFIX = "OCC-"
CGROUP_PREFIX = "openccs-"
DEFAULT_RUNTIME_BASE = Path("/run/openccs")
# Routes openccs adds (host and machines) carry this protocol number, so they can be told
# apart from routes added by anyone else. 233 is unassigned in iproute2's rt_protos.
ROUTE_PROTO = "233"


def check_site(site: str) -> str:
    if not SITE_RE.match(site):
        raise ValueError(f"site id must be 4 lower-case letters or digits, got {site!r}")
    return site


def short_id(resource_id: str) -> str:
    """The 8 characters after the dash of `ins-xxxxxxxx` / `vpc-xxxxxxxx`."""
    tail = resource_id.rsplit("-", 1)[-1].lower()
    if not re.match(r"^[a-z0-9]{8}$", tail):
        raise ValueError(f"resource id must end in 8 lower-case alphanumerics: {resource_id!r}")
    return tail


def netns(site: str, instance_id: str) -> str:
    return f"{NETNS_PREFIX}{check_site(site)}-{short_id(instance_id)}"


def host_veth(site: str, instance_id: str) -> str:
    return f"{VETH_PREFIX}{check_site(site)}{short_id(instance_id)}"


def bridge(site: str, vpc_id: str) -> str:
    return f"{BRIDGE_PREFIX}{check_site(site)}{short_id(vpc_id)}"


def vip_link(site: str) -> str:
    """The interface (an empty bridge) holding the site's public load balancer VIPs."""
    return f"{VIP_PREFIX}{check_site(site)}"


def forward_chain(site: str) -> str:
    return f"{CHAIN_PREFIX}{check_site(site)}-FWD"


def nat_chain(site: str) -> str:
    return f"{CHAIN_PREFIX}{check_site(site)}-POST"


def cgroup_site(site: str) -> str:
    return f"/{CGROUP_PREFIX}{check_site(site)}"


def cgroup(site: str, instance_id: str) -> str:
    """Parent cgroup of the machine's containers (docker's --cgroup-parent)."""
    return f"{cgroup_site(site)}/{instance_id}"


def cgroup_system(site: str, instance_id: str) -> str:
    """Cgroup of the machine's own daemons (dockerd, containerd, shims): inside the machine's
    limits, as a real machine's system daemons are, and a reliable way to find them."""
    return f"{cgroup(site, instance_id)}/system"


def runtime_dir(site: str, instance_id: str, base: Path = DEFAULT_RUNTIME_BASE) -> Path:
    return base / check_site(site) / instance_id


def site_runtime_dir(site: str, base: Path = DEFAULT_RUNTIME_BASE) -> Path:
    return base / check_site(site)


def is_site_object(name: str, site: str | None) -> bool:
    """Whether a netns, link or chain name belongs to `site` (or to any site when None)."""
    if site is None:
        return name.startswith((NETNS_PREFIX, CHAIN_PREFIX)) or bool(
            re.match(r"^(o[bv][a-z0-9]{12}|ol[a-z0-9]{4})$", name)
        )
    check_site(site)
    return name.startswith((f"{NETNS_PREFIX}{site}-", f"{CHAIN_PREFIX}{site}-")) or bool(
        re.match(rf"^(o[bv]{site}[a-z0-9]{{8}}|ol{site})$", name)
    )
