"""VIPs on the host: public ones on the site's own interface `ol<site>` (an empty bridge:
kernels may lack the dummy driver), inner ones as /32
addresses on their VPC's bridge (so machines of the VPC reach them through the host, which
answers ARP for them). Traffic the host forwards to a balancer's endpoints carries a mark
and is masqueraded, so answers come back through the host whatever the client.
"""

from __future__ import annotations

import ipaddress
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.cloud import host, naming, vpc
from openccs.log import get_logger, log_event
from openccs.store.models import Subnet
from openccs.traffic.models import LoadBalancer

log = get_logger("openccs.traffic.net")

# Set on packets DNAT'ed to a load balancer's endpoints (kube-proxy uses 0x4000; ours differs
# so both can live on one host).
LB_MARK = "0x40000"
MASQ_RULE = ["-m", "mark", "--mark", f"{LB_MARK}/{LB_MARK}", "-m", "comment", "--comment",
             "openccs-lb", "-j", "MASQUERADE"]  # fmt: skip

_lock = threading.Lock()


Wanted = tuple[frozenset[str], dict[str, frozenset[str]], dict[str, tuple[str, ...]]]


def desired(s: Session, site: str) -> Wanted:
    """(public VIPs, bridge -> inner VIPs, bridge -> its subnets) for the whole site.

    Only /32 addresses inside a subnet of the VPC are VIPs: the bridge also holds other
    /32s (the cluster DNS addresses), which are not ours to touch here."""
    public: set[str] = set()
    inner: dict[str, set[str]] = {}
    scopes: dict[str, list[str]] = {}
    subnets = list(s.scalars(select(Subnet)))
    for sub in subnets:
        scopes.setdefault(naming.bridge(site, sub.vpc_id), []).append(sub.cidr)
    subnet_vpc = {sub.id: sub.vpc_id for sub in subnets}
    for lb in s.scalars(select(LoadBalancer)):
        if lb.network == "public":
            public.add(lb.vip)
        elif lb.subnet_id in subnet_vpc:
            inner.setdefault(naming.bridge(site, subnet_vpc[lb.subnet_id]), set()).add(lb.vip)
    return (
        frozenset(public),
        {b: frozenset(v) for b, v in inner.items()},
        {b: tuple(sorted(v)) for b, v in scopes.items()},
    )


def host_addresses() -> set[str]:
    """Every IPv4 address the host holds (a VIP is served once it is among them)."""
    return _addresses(None, None)


def _addresses(link: str | None, scope: tuple[str, ...] | None) -> set[str]:
    """The link's addresses (all links' with None); with `scope`, only /32s inside those
    networks."""
    argv = ["ip", "-4", "-o", "addr", "show", *(["dev", link] if link else [])]
    out = host.run(argv, quiet=True).stdout
    nets = [ipaddress.ip_network(n) for n in scope or ()]
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            iface = ipaddress.ip_interface(parts[parts.index("inet") + 1])
            if scope is None or (
                iface.network.prefixlen == 32 and any(iface.ip in n for n in nets)
            ):
                found.add(str(iface.ip))
    return found


def _converge(link: str, want: frozenset[str], scope: tuple[str, ...] | None) -> None:
    have = _addresses(link, scope)
    for ip in sorted(want - have):
        host.run(["ip", "addr", "add", f"{ip}/32", "dev", link])
    for ip in sorted(have - want):
        host.run(["ip", "addr", "del", f"{ip}/32", "dev", link], check=False)


def sync(
    site: str,
    public: frozenset[str],
    inner: dict[str, frozenset[str]],
    scopes: dict[str, tuple[str, ...]],
) -> None:
    """Make the host hold exactly these VIPs (idempotent)."""
    with _lock:
        dummy = naming.vip_link(site)
        if public:
            if not host.link_exists(dummy):
                host.run(["ip", "link", "add", "name", dummy, "type", "bridge"])
                log_event(log, "vip link created", link=dummy)
            host.run(["ip", "link", "set", "dev", dummy, "up"], quiet=True)
            _converge(dummy, public, None)
        elif host.link_exists(dummy):
            host.run(["ip", "link", "del", "dev", dummy], check=False)
            log_event(log, "vip link removed", link=dummy)
        links = set(host.list_links())
        for bridge, scope in scopes.items():
            if bridge in links:
                _converge(bridge, inner.get(bridge, frozenset()), scope)
        post = naming.nat_chain(site)
        if public or any(inner.values()):
            vpc.ensure_site_chains(site)
            with vpc.chain_lock:
                host.ensure_rule("nat", post, MASQ_RULE)
        elif host.chain_exists(post, "nat"):
            with vpc.chain_lock:
                host.delete_rule("nat", post, MASQ_RULE)
            vpc.delete_site_chains_if_empty(site)
