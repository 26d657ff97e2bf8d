"""VPCs and subnets on the host: a VPC is a Linux bridge, a subnet is its gateway address on
that bridge, and traffic leaving the VPC for other interfaces is masqueraded by the host.

Public interface (all idempotent; `site` is the caller's 4-character site id):

* `ensure_vpc(site, vpc_id, cidr) -> str` — bridge up, the site's iptables chains installed
  (`OCC-<site>-FWD` jumped to from FORWARD at position 1, `OCC-<site>-POST` from nat
  POSTROUTING), forwarding accepted for the bridge, `cidr` masqueraded when it leaves through
  another interface, host `net.ipv4.ip_forward=1`. Returns the bridge name.
* `ensure_subnet(site, vpc_id, gateway_cidr)` — e.g. "10.0.1.1/24" added to the bridge.
* `delete_subnet(site, vpc_id, gateway_cidr)`
* `delete_vpc(site, vpc_id)` — the bridge (with its addresses and the routes through it) and
  the VPC's rules; the site's chains too once they are empty.
"""

from __future__ import annotations

import ipaddress
import shlex
import threading
import time

from openccs.cloud import host, naming
from openccs.cloud.host import CloudError
from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.vpc")

# Chain set-up is check-then-act; serialize it between threads of one process.
chain_lock = threading.Lock()


def ensure_site_chains(site: str) -> None:
    """The site's own filter and nat chains, each jumped to from the built-in chain at the
    top (so a host dockerd's FORWARD policy DROP does not hide our bridges)."""
    fwd, post = naming.forward_chain(site), naming.nat_chain(site)
    with chain_lock:
        host.ensure_chain(fwd, "filter")
        host.ensure_rule("filter", "FORWARD", ["-j", fwd], position=1)
        host.ensure_chain(post, "nat")
        host.ensure_rule("nat", "POSTROUTING", ["-j", post], position=1)


def forward_rules(bridge: str, vpc_id: str) -> list[list[str]]:
    comment = ["-m", "comment", "--comment", vpc_id]
    return [
        # Out of the VPC (to another machine on the bridge, the host's uplink...).
        ["-i", bridge, *comment, "-j", "ACCEPT"],
        # Answers, and connections the host DNATs into the VPC (load balancers, node ports).
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", *comment,
         "-j", "ACCEPT"],
    ]  # fmt: skip


def masquerade_rule(source_cidr: str, bridge: str, comment: str) -> list[str]:
    return [
        "-s", source_cidr, "!", "-o", bridge, "-m", "comment", "--comment", comment,
        "-j", "MASQUERADE",
    ]  # fmt: skip


def ensure_vpc(site: str, vpc_id: str, cidr: str) -> str:
    started = time.monotonic()
    ipaddress.ip_network(cidr)  # a malformed CIDR fails here, not in iptables
    bridge = naming.bridge(site, vpc_id)
    # Without forwarding, pods and machines cannot reach anything beyond the host.
    host.sysctl_set("net.ipv4.ip_forward", "1")
    if not host.link_exists(bridge):
        host.run(["ip", "link", "add", "name", bridge, "type", "bridge"])
    host.run(["ip", "link", "set", "dev", bridge, "up"])
    ensure_site_chains(site)
    with chain_lock:
        for rule in forward_rules(bridge, vpc_id):
            host.ensure_rule("filter", naming.forward_chain(site), rule)
        host.ensure_rule("nat", naming.nat_chain(site), masquerade_rule(cidr, bridge, vpc_id))
    log_event(log, "vpc ensured", site=site, vpc=vpc_id, bridge=bridge, cidr=cidr,
              ms=round((time.monotonic() - started) * 1000, 1))  # fmt: skip
    return bridge


def ensure_subnet(site: str, vpc_id: str, gateway_cidr: str) -> None:
    iface = ipaddress.ip_interface(gateway_cidr)
    bridge = naming.bridge(site, vpc_id)
    if not host.link_exists(bridge):
        raise CloudError(f"VPC {vpc_id} has no bridge {bridge}: call ensure_vpc first")
    host.run(["ip", "addr", "replace", str(iface), "dev", bridge])
    log_event(log, "subnet ensured", site=site, vpc=vpc_id, gateway=str(iface))


def delete_subnet(site: str, vpc_id: str, gateway_cidr: str) -> None:
    iface = ipaddress.ip_interface(gateway_cidr)
    bridge = naming.bridge(site, vpc_id)
    if not host.link_exists(bridge):
        return
    shown = host.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], quiet=True).stdout
    if f" {iface} " in shown:
        host.run(["ip", "addr", "del", str(iface), "dev", bridge])
        log_event(log, "subnet deleted", site=site, vpc=vpc_id, gateway=str(iface))


def delete_rules_matching(table: str, chain: str, words: set[str]) -> int:
    """Delete the rules of `chain` that contain any of `words` (interface names, comments)."""
    if not host.chain_exists(chain, table):
        return 0
    removed = 0
    for line in host.iptables("-t", table, "-S", chain).splitlines():
        parts = shlex.split(line)
        if len(parts) > 2 and parts[0] == "-A" and words & set(parts):
            host.iptables("-t", table, "-D", chain, *parts[2:], check=False)
            removed += 1
    return removed


def delete_site_chains_if_empty(site: str) -> None:
    with chain_lock:
        for chain, table in ((naming.forward_chain(site), "filter"),
                             (naming.nat_chain(site), "nat")):  # fmt: skip
            if not host.chain_exists(chain, table):
                continue
            rules = [
                ln for ln in host.iptables("-t", table, "-S", chain).splitlines()
                if ln.startswith("-A ")
            ]  # fmt: skip
            if not rules:
                host.delete_chain(chain, table)


def delete_vpc(site: str, vpc_id: str) -> None:
    bridge = naming.bridge(site, vpc_id)
    with chain_lock:
        delete_rules_matching("filter", naming.forward_chain(site), {bridge, vpc_id})
        delete_rules_matching("nat", naming.nat_chain(site), {bridge, vpc_id})
    if host.link_exists(bridge):
        # Deleting the bridge also removes its addresses and every route through it.
        host.run(["ip", "link", "del", "dev", bridge])
    delete_site_chains_if_empty(site)
    log_event(log, "vpc deleted", site=site, vpc=vpc_id, bridge=bridge)
