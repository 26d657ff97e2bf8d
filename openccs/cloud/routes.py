"""Pod networking between machines, host-gateway style: every node's pod CIDR is routed to
that node's `lanIp`, on the host and inside every other machine of the cluster, so every pod
answers every machine and the host.

Public interface (idempotent; routes carry `proto 233` so ours are told apart):

* `sync_pod_routes(site, cluster_id, routes, machines, runtime_base=...)` — `routes` maps
  pod CIDR -> lan IP. On the host, `ip route replace CIDR via LANIP` and removal of the
  cluster's routes not in `routes` any more (remembered in
  `<runtime_base>/<site>/routes/<cluster_id>.json`); in each machine's netns, routes to the
  other machines' pod CIDRs (not its own), stale ones removed: straight to the owner when it
  is on the machine's own subnet, else through the machine's gateway (the host, which is the
  VPC's router between its subnets and zones, as in the cloud).
* `ensure_cluster_masquerade(site, cluster_id, vpc_id, cluster_cidr)` — pods' traffic that
  leaves the VPC (through the host) is masqueraded, as dockerd runs with --ip-masq=false.
* `delete_cluster_routes(site, cluster_id, machines=(), runtime_base=...)` — the host routes
  and masquerade rule of the cluster (and its routes in `machines`, if given).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import threading
from collections.abc import Sequence
from pathlib import Path

from openccs.cloud import host, naming, vpc
from openccs.cloud.machine import MachineSpec
from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.routes")

_lock = threading.Lock()


def _record_file(site: str, cluster_id: str, runtime_base: Path) -> Path:
    return naming.site_runtime_dir(site, runtime_base) / "routes" / f"{cluster_id}.json"


def _read_record(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _norm(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False))


def _our_routes(netns: str | None) -> dict[str, str]:
    """Destination -> gateway of the proto-233 routes of the host or of a netns."""
    argv = ["ip", "-4", "route", "show", "proto", naming.ROUTE_PROTO]
    if netns is not None:
        argv[1:1] = ["-n", netns]
    found: dict[str, str] = {}
    for line in host.run(argv, quiet=True).stdout.splitlines():
        parts = line.split()
        if parts and "via" in parts:
            found[_norm(parts[0])] = parts[parts.index("via") + 1]
    return found


def _apply(netns: str | None, want: dict[str, str], remove: set[str]) -> tuple[int, int]:
    """Make the routes of `want` present and delete those of `remove` that are present."""
    ip = ["ip"] if netns is None else ["ip", "-n", netns]
    have = _our_routes(netns)
    added = deleted = 0
    for cidr in sorted(remove - set(want)):
        if cidr in have:
            host.run([*ip, "route", "del", cidr, "proto", naming.ROUTE_PROTO], check=False)
            deleted += 1
    for cidr, via in sorted(want.items()):
        if have.get(cidr) != via:
            host.run([*ip, "route", "replace", cidr, "via", via, "proto", naming.ROUTE_PROTO])
            added += 1
    return added, deleted


def machine_routes(machine: MachineSpec, routes: dict[str, str]) -> dict[str, str]:
    """Pod CIDR -> next hop in `machine`: the owner's lan IP on the machine's own subnet,
    the machine's gateway for an owner in another subnet (not on the link: the host routes
    it on)."""
    own = _norm(machine.pod_cidr)
    subnet = ipaddress.ip_interface(f"{machine.lan_ip}/{machine.prefix_len}").network
    return {
        cidr: lan if ipaddress.ip_address(lan) in subnet else machine.gateway
        for cidr, lan in routes.items()
        if cidr != own and lan != machine.lan_ip
    }


def sync_pod_routes(
    site: str,
    cluster_id: str,
    routes: dict[str, str],
    machines: Sequence[MachineSpec],
    runtime_base: Path = naming.DEFAULT_RUNTIME_BASE,
) -> None:
    want = {_norm(cidr): lan for cidr, lan in routes.items()}
    record = _record_file(site, cluster_id, runtime_base)
    with _lock:
        previous = _read_record(record)
        added, deleted = _apply(None, want, set(previous))
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(want, indent=1, sort_keys=True))
        for machine in machines:
            ns = naming.netns(site, machine.instance_id)
            if not host.netns_exists(ns):
                log_event(log, "pod routes skipped", instance=machine.instance_id,
                          reason="no network namespace")  # fmt: skip
                continue
            mine = machine_routes(machine, want)
            # In a machine every proto-233 route is this cluster's: a machine is in one cluster.
            a, d = _apply(ns, mine, set(_our_routes(ns)))
            added, deleted = added + a, deleted + d
    log_event(log, "pod routes synced", site=site, cluster=cluster_id, routes=len(want),
              machines=len(machines), added=added, deleted=deleted)  # fmt: skip


def ensure_cluster_masquerade(site: str, cluster_id: str, vpc_id: str, cluster_cidr: str) -> None:
    bridge = naming.bridge(site, vpc_id)
    vpc.ensure_site_chains(site)
    rule = vpc.masquerade_rule(_norm(cluster_cidr), bridge, cluster_id)
    with vpc.chain_lock:
        host.ensure_rule("nat", naming.nat_chain(site), rule)


def delete_cluster_routes(
    site: str,
    cluster_id: str,
    machines: Sequence[MachineSpec] = (),
    runtime_base: Path = naming.DEFAULT_RUNTIME_BASE,
) -> None:
    record = _record_file(site, cluster_id, runtime_base)
    with _lock:
        previous = _read_record(record)
        _apply(None, {}, set(previous))
        for machine in machines:
            ns = naming.netns(site, machine.instance_id)
            if host.netns_exists(ns):
                _apply(ns, {}, set(_our_routes(ns)))
        record.unlink(missing_ok=True)
        # Leave no empty directories behind (the site's runtime dir goes with its last user).
        for d in (record.parent, record.parent.parent):
            with contextlib.suppress(OSError):
                d.rmdir()
    with vpc.chain_lock:
        vpc.delete_rules_matching("nat", naming.nat_chain(site), {cluster_id})
    vpc.delete_site_chains_if_empty(site)
    log_event(log, "cluster routes deleted", site=site, cluster=cluster_id, routes=len(previous))
