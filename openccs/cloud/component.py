"""The local cloud as a server component: the bridge between cluster state in the database
and the host engines (`vpc`, `machine`, `routes`), plus the machine health monitor.

`Cloud` is what cluster tasks call; its methods are idempotent like the engines below it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import string
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from openccs.cloud import cgroups, host, naming, routes, vpc
from openccs.cloud.host import CloudError
from openccs.cloud.machine import MachineEngine, MachineSpec, reachable, remove_containers
from openccs.domain import cloud as rules
from openccs.domain import workloads
from openccs.log import get_logger, log_event
from openccs.store.models import Account, Cluster, Instance, Subnet, Vpc

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.cloud")
# A machine's disk when its request gave no rootSize (the document's largest system disk).
DEFAULT_ROOT_GIB = 50
MISSES_TO_FAIL = 2  # failed health checks in a row that mark a machine Failed


def site_id(data_dir: Path) -> str:
    """The data directory's 4-character site id, part of every host object's name."""
    path = data_dir / "site-id"
    if path.exists():
        return path.read_text().strip()
    site = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4))
    path.write_text(site + "\n")
    return site


@dataclass
class Outcome:
    error: str = ""
    script_error: str = ""
    kernel_version: str = ""


class Cloud:
    name = "cloud"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.store = services.store
        self.site = site_id(self.settings.data_dir)
        self.engine = MachineEngine(self.site)
        self.machines_dir = self.settings.data_dir / "machines"
        self._stop = threading.Event()
        self._monitor: asyncio.Task[None] | None = None
        self._misses: dict[str, int] = {}  # a machine's failed checks in a row

    # -- the component -----------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        await asyncio.to_thread(self._start)
        self._monitor = asyncio.create_task(self._monitor_loop())

    async def stop(self) -> None:
        self._stop.set()
        if self._monitor is not None:
            self._monitor.cancel()
        # Machines keep running: they are the cloud, not part of the control plane.

    def _start(self) -> None:
        with self.store.session() as s:
            owner = s.scalars(select(Account).order_by(Account.id)).first()
            if owner is not None and not rules.has_default_vpc(s):
                cidr = self.settings.default_vpc_cidr
                if cidr is None:
                    cidr = first_unrouted("10.0.0.0/8", 16)
                check_unrouted(cidr, "--default-vpc-cidr")
                rules.ensure_default_vpc(s, self.settings, owner.id, cidr)
        with self.store.session() as s:
            for v in s.scalars(select(Vpc)):
                self.ensure_vpc(s, v)
        running = self.engine.find_running()
        tree = cgroups.driver()
        log_event(log, "cloud started", site=self.site, machines_running=len(running),
                  cgroups=tree.describe())  # fmt: skip
        missing = tree.missing()
        if missing:
            # Said once: machines still run, without the limits of these controllers.
            log.warning("machine limits not enforced", extra={"fields": {
                "cgroups": tree.describe(), "controllers": ",".join(missing),
                "not_enforced": "; ".join(cgroups.ENFORCED[c] for c in missing)}})  # fmt: skip

    def ensure_vpc(self, s: Session, v: Vpc) -> None:
        vpc.ensure_vpc(self.site, v.id, v.cidr)
        for sub in s.scalars(select(Subnet).where(Subnet.vpc_id == v.id)):
            vpc.ensure_subnet(self.site, v.id, str(rules.gateway_of(sub.cidr)))

    # -- machines ----------------------------------------------------------------------
    def root_dir(self, instance_id: str) -> Path:
        return self.machines_dir / instance_id

    def spec_for(self, s: Session, ins: Instance) -> MachineSpec:
        sub = s.get(Subnet, ins.subnet_id)
        assert sub is not None
        gw = rules.gateway_of(sub.cidr)
        return MachineSpec(
            instance_id=ins.id,
            site=self.site,
            vpc_id=ins.vpc_id,
            lan_ip=ins.lan_ip,
            prefix_len=gw.network.prefixlen,
            gateway=str(gw.ip),
            pod_cidr=ins.pod_cidr or _idle_pod_cidr(ins.lan_ip),
            cpu=float(ins.cpu),
            mem_mib=ins.mem * 1024,
            root_dir=self.root_dir(ins.id),
            user_script=ins.user_script or None,
            disk_gib=self.disk_gib(ins),
        )

    def disk_gib(self, ins: Instance) -> int:
        """The size of the machine's own disk, 0 for a directory of the host."""
        if self.settings.machine_disks != "loop":
            return 0
        return int((ins.settings or {}).get("rootSize") or DEFAULT_ROOT_GIB)

    def bring_up(
        self,
        specs: list[MachineSpec],
        reinstall: set[str] | None = None,
        on_done: Callable[[str, Outcome], None] | None = None,
    ) -> dict[str, Outcome]:
        """Create (or, for `reinstall`, restart with the new settings) machines in parallel."""
        reinstall = reinstall or set()

        def one(spec: MachineSpec) -> Outcome:
            outcome = made(spec)
            if on_done is not None:
                on_done(spec.instance_id, outcome)
            return outcome

        def made(spec: MachineSpec) -> Outcome:
            try:
                if spec.instance_id in reinstall:
                    self.engine.stop(spec.instance_id)
                result = self.engine.create(spec)
            except CloudError as exc:
                return Outcome(error=exc.message)
            except Exception as exc:  # a machine must fail alone, not the whole batch
                log.exception("machine creation failed")
                return Outcome(error=str(exc))
            script = result.user_script
            return Outcome(
                script_error="" if script is None or script.ok else script.reason,
                kernel_version=self.engine.kernel_version(),
            )

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(specs)))) as pool:
            outcomes = list(pool.map(one, specs))
        return {spec.instance_id: o for spec, o in zip(specs, outcomes, strict=True)}

    def destroy(self, instance_id: str) -> None:
        self.engine.destroy(instance_id, self.root_dir(instance_id))

    def reset(self, instance_id: str) -> None:
        """A machine leaving its cluster keeps running, without the cluster's containers."""
        if self.engine.dockerd_pid(instance_id) is not None:
            remove_containers(self.engine.docker_socket(instance_id))
        ns = naming.netns(self.site, instance_id)
        if host.netns_exists(ns):
            host.run(["ip", "-n", ns, "route", "flush", "proto", naming.ROUTE_PROTO])

    # -- pod network -------------------------------------------------------------------
    def sync_routes(self, s: Session, cluster_id: str) -> None:
        nodes = list(
            s.scalars(
                select(Instance).where(
                    Instance.cluster_id == cluster_id, Instance.state == "Running"
                )
            )
        )
        table = {n.pod_cidr: n.lan_ip for n in nodes if n.pod_cidr}
        routes.sync_pod_routes(self.site, cluster_id, table, [self.spec_for(s, n) for n in nodes])
        cluster = s.get(Cluster, cluster_id)
        if cluster is not None:
            routes.ensure_cluster_masquerade(self.site, cluster_id, cluster.vpc_id, cluster.cidr)

    def delete_routes(self, cluster_id: str) -> None:
        routes.delete_cluster_routes(self.site, cluster_id)
        vpc.delete_rules_matching("nat", naming.nat_chain(self.site), {cluster_id})

    # -- health ------------------------------------------------------------------------
    async def _monitor_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.check_health)
            except Exception:
                log.exception("health check failed")
            await asyncio.sleep(self.settings.health_interval)

    def check_health(self) -> None:
        """Mark machines as failed whose dockerd stopped answering or whose VPC address went
        silent (the control plane reaches a node over the VPC: a machine cut from it is
        unreachable, as a stopped one is), and back when both answer again.

        A machine is marked failed after `MISSES_TO_FAIL` failed checks in a row, and back at
        the first check that passes: one lost knock is not a dead node, and a check that was
        slow because a fault was on when it began does not mark a machine whose fault has
        ended since (the next check sees it answer)."""
        with self.store.session() as s:
            machines = [
                (i.id, i.state, i.lan_ip)
                for i in s.scalars(
                    select(Instance).where(Instance.state.in_(("Running", "Failed")))
                )
            ]

        def one(iid: str, lan_ip: str) -> tuple[bool, str]:
            ok, why = self.engine.health(iid)
            if ok and not reachable(lan_ip):
                return False, f"{lan_ip} of {iid} is unreachable from the VPC"
            return ok, why

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(machines)))) as pool:
            checked = pool.map(lambda m: one(m[0], m[2]), machines)
            results = {m[0]: r for m, r in zip(machines, checked, strict=True)}
        with self.store.session() as s:
            self._misses = {
                iid: self._misses.get(iid, 0) + 1 for iid, (ok, _) in results.items() if not ok
            }
            for iid, state, _ in machines:
                ok, why = results[iid]
                if not ok and self._misses[iid] < MISSES_TO_FAIL:
                    continue
                ins = s.get(Instance, iid)
                if ins is None or ins.state not in ("Running", "Failed"):
                    continue
                if ok and state == "Failed":
                    ins.state, ins.is_normal, ins.abnormal_reason = "Running", True, ""
                    log_event(log, "machine recovered", instance=iid)
                    _node_event(s, ins, "NodeReady", "status is now: NodeReady", "Normal")
                elif not ok and state == "Running":
                    ins.state, ins.is_normal = "Failed", False
                    ins.abnormal_reason = f"Unknown (node not ready: {why})"
                    log_event(log, "machine failed", instance=iid, reason=why)
                    _node_event(s, ins, "NodeNotReady", f"status is now: NodeNotReady ({why})")


def _node_event(
    s: Session, ins: Instance, reason: str, message: str, level: str = "Warning"
) -> None:
    """A cluster's machine changing health is an event of the node, for its services."""
    if ins.cluster_id:
        services = set(workloads.services_on(s, ins.id))
        text = f"Node {ins.lan_ip} {message}"
        workloads.record_node_event(s, ins.cluster_id, ins.lan_ip, services, reason, text, level)


def routed_overlaps(cidr: str) -> list[str]:
    """Routes of this host that overlap `cidr` (another network already lives there)."""
    net = ipaddress.ip_network(cidr)
    out = host.run(["ip", "-4", "route", "show", "table", "all"], quiet=True).stdout
    found = []
    for line in out.splitlines():
        words = line.split()
        dest = words[0] if words and words[0] not in ("local", "broadcast") else None
        if dest is None and len(words) > 1 and words[0] == "local":
            continue
        if not dest or dest in ("default", "unreachable", "multicast"):
            continue
        try:
            other = ipaddress.ip_network(dest, strict=False)
        except ValueError:
            continue
        if other.prefixlen > 0 and net.overlaps(other):
            found.append(line.strip())
    return found


def first_unrouted(space: str, prefix: int) -> str:
    for candidate in ipaddress.ip_network(space).subnets(new_prefix=prefix):
        if not routed_overlaps(str(candidate)):
            return str(candidate)
    raise CloudError(f"every /{prefix} of {space} is routed on this host: give --default-vpc-cidr")


def check_unrouted(cidr: str, option: str) -> None:
    """Refuse a VPC network that the host already routes elsewhere (it would be unreachable)."""
    overlaps = routed_overlaps(cidr)
    if overlaps:
        raise CloudError(
            f"{cidr} overlaps networks this host already routes ({'; '.join(overlaps[:3])}):"
            f" choose another with {option}"
        )


def _idle_pod_cidr(lan_ip: str) -> str:
    """docker0's network for a machine in no cluster: a link-local /24 that routes nowhere."""
    last = int(ipaddress.ip_address(lan_ip)) & 0xFF
    return f"169.254.{last}.0/24"


def component(services: Services) -> Cloud:
    cloud = Cloud(services)
    services.subsystems.cloud = cloud
    return cloud
