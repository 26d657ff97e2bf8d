"""Service addresses, kube-proxy style (iptables mode): a ClusterIP port is DNAT'ed to the
ready endpoints of its service, chosen at random with equal weight, in every machine of
the cluster and on the host. A load balancer's VIP port leads to the same endpoints (marked,
so the host masquerades what it forwards); a node port is opened on every machine's own
addresses. UDP conntrack entries towards an endpoint that left are deleted.

Per cluster one nat chain `OCC-<site>-<cluster8>` (jumped to from PREROUTING and OUTPUT)
holds a rule per service port leading to that port's chain of endpoints. The chains are
written with one `iptables-restore --noflush` per place, only when they change. In the
machines, DNAT'ed connections are masqueraded, so a pod reaching its own service through
its own node gets the answer back (hairpin), as kube-proxy's masquerade-all.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import threading
from dataclasses import dataclass

from openccs.cloud import host
from openccs.cloud.host import CloudError
from openccs.log import get_logger, log_event

log = get_logger("openccs.engine.proxy")


@dataclass(frozen=True)
class ServicePort:
    key: str  # cluster/namespace/service/port/protocol: names the endpoint chain
    cluster_ip: str
    port: int
    protocol: str  # TCP or UDP
    target_port: int
    endpoints: tuple[str, ...]  # ready pod IPs
    vips: tuple[str, ...] = ()  # load balancer VIPs serving the same port
    node_port: int = 0  # open on every machine's own addresses when set


def entry_chain(site: str, cluster_id: str) -> str:
    return f"OCC-{site}-{cluster_id.split('-', 1)[1]}"


def port_chain(site: str, key: str) -> str:
    return f"OCC-{site}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


LB_MARK = "0x40000"  # openccs.traffic.net masquerades what carries it on the host


def restore_script(
    site: str, cluster_id: str, ports: list[ServicePort], machine: bool = False
) -> str:
    """The cluster's nat chains; `machine` adds the node ports (opened on the machine's own
    addresses only, never on the host's)."""
    entry = entry_chain(site, cluster_id)
    lines = ["*nat", f":{entry} - [0:0]"]
    rules = []
    for sp in sorted(ports, key=lambda p: p.key):
        chain = port_chain(site, sp.key)
        proto = sp.protocol.lower()
        comment = f"-m comment --comment {shlex.quote(sp.key)}"
        lines.append(f":{chain} - [0:0]")
        rules.append(
            f"-A {entry} -d {sp.cluster_ip}/32 -p {proto} -m {proto} --dport {sp.port}"
            f" {comment} -j {chain}"
        )
        for vip in sp.vips:
            match = f"-A {entry} -d {vip}/32 -p {proto} -m {proto} --dport {sp.port} {comment}"
            # Only what comes from elsewhere is marked for masquerading: the host's own
            # connections are answered through it anyway, and masquerading them would put
            # them in the same port space as every other connection of the host to a pod.
            rules.append(f"{match} -m addrtype ! --src-type LOCAL -j MARK --or-mark {LB_MARK}")
            rules.append(f"{match} -j {chain}")
        if sp.node_port and machine:
            rules.append(
                f"-A {entry} -p {proto} -m {proto} --dport {sp.node_port}"
                f" -m addrtype --dst-type LOCAL {comment} -j {chain}"
            )
        n = len(sp.endpoints)
        for i, ip in enumerate(sp.endpoints):
            pick = (
                f" -m statistic --mode random --probability {1 / (n - i):.5f}" if i < n - 1 else ""
            )
            rules.append(
                f"-A {chain} -p {proto}{pick} -j DNAT --to-destination {ip}:{sp.target_port}"
            )
    return "\n".join([*lines, *rules, "COMMIT", ""])


class Proxy:
    def __init__(self, site: str) -> None:
        self.site = site
        self._applied: dict[tuple[str, str | None], str] = {}
        self._lock = threading.Lock()
        # Clusters sync in threads of their own; on the host one at a time, so one never
        # drops another's fresh entry chain before its jump is in place.
        self._host_lock = threading.Lock()
        # UDP endpoints last applied per port key: a UDP "connection" to a pod that left
        # would otherwise keep its conntrack entry (and its dead destination) for minutes.
        self._udp: dict[str, set[tuple[str, int]]] = {}
        self._conntrack = shutil.which("conntrack")

    def sync(self, cluster_id: str, ports: list[ServicePort], netns_list: list[str | None]) -> bool:
        """Apply the rules everywhere; True when the host's are in place."""
        scripts = {
            False: restore_script(self.site, cluster_id, ports),
            True: restore_script(self.site, cluster_id, ports, machine=True),
        }
        host_ok = True
        gone: set[tuple[str, int]] = set()
        for sp in ports:
            if sp.protocol == "UDP":
                now = {(ip, sp.target_port) for ip in sp.endpoints}
                gone |= self._udp.get(sp.key, set()) - now
                self._udp[sp.key] = now
        for netns in netns_list:
            script = scripts[netns is not None]
            key = (cluster_id, netns)
            with self._lock:
                if self._applied.get(key) == script:
                    continue
            try:
                if netns is None:
                    with self._host_lock:
                        self._apply(cluster_id, netns, script)
                else:
                    self._apply(cluster_id, netns, script)
            except CloudError as exc:
                log_event(log, "service rules failed", cluster=cluster_id, netns=netns or "host",
                          error=exc.message[-300:])  # fmt: skip
                if netns is None:
                    host_ok = False
                continue
            with self._lock:
                self._applied[key] = script
            log_event(log, "service rules synced", cluster=cluster_id, netns=netns or "host",
                      ports=len(ports))  # fmt: skip
        if gone and self._conntrack:
            for netns in netns_list:
                for ip, port in sorted(gone):
                    argv = [self._conntrack, "-D", "-p", "udp", "--reply-src", ip,
                            "--reply-port-src", str(port)]  # fmt: skip
                    host.run(host.in_netns(netns, argv) if netns else argv, check=False,
                             quiet=True)  # fmt: skip
        return host_ok

    def _apply(self, cluster_id: str, netns: str | None, script: str) -> None:
        argv = ["iptables-restore", "-w", "10", "--noflush"]
        host.run(host.in_netns(netns, argv) if netns else argv, input_text=script, quiet=True)
        entry = entry_chain(self.site, cluster_id)
        for parent in ("PREROUTING", "OUTPUT"):
            _ensure_jump(netns, parent, entry)
        if netns:
            rule = ["-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"]
            if not host.ok(host.in_netns(netns, ["iptables", "-w", "10", "-t", "nat", "-C",
                                                 "POSTROUTING", *rule])):  # fmt: skip
                host.iptables("-t", "nat", "-I", "POSTROUTING", "1", *rule, netns=netns)
        _drop_unreferenced(netns, f"OCC-{self.site}-")

    def forget(self, cluster_id: str) -> None:
        """Remove the cluster's chains from the host (its machines take theirs with them)."""
        entry = entry_chain(self.site, cluster_id)
        with self._lock:
            for key in [k for k in self._applied if k[0] == cluster_id]:
                del self._applied[key]
        with self._host_lock:
            if host.chain_exists(entry, "nat"):
                host.delete_chain(entry, "nat")
            _drop_unreferenced(None, f"OCC-{self.site}-")


def _ensure_jump(netns: str | None, parent: str, chain: str) -> None:
    check = ["iptables", "-w", "10", "-t", "nat", "-C", parent, "-j", chain]
    if not host.ok(host.in_netns(netns, check) if netns else check):
        host.iptables("-t", "nat", "-I", parent, "1", "-j", chain, netns=netns)


def _drop_unreferenced(netns: str | None, prefix: str) -> None:
    """Delete our nat chains nothing jumps to any more (services that went away)."""
    listing = host.iptables("-t", "nat", "-S", netns=netns)
    chains, targets = [], set()
    for line in listing.splitlines():
        parts = line.split()
        if parts[:1] == ["-N"] and parts[1].startswith(prefix):
            chains.append(parts[1])
        if "-j" in parts:
            targets.add(parts[parts.index("-j") + 1])
    for chain in chains:
        # Entry chains are jumped to from PREROUTING/OUTPUT, port chains from entries.
        if chain not in targets:
            host.iptables("-t", "nat", "-F", chain, netns=netns)
            host.iptables("-t", "nat", "-X", chain, netns=netns)
