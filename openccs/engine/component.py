"""The workload engine as a server component: for every cluster, a loop of its own that
runs the deployment controller, the scheduler, the node lifecycle and every node's agent.

Level-triggered: each pass compares what the database wants with what the machines run
and takes a step. What wakes a cluster's pass is what changed in that cluster: a committed
change to its rows (any transaction, the API's or the engine's own, so a pass that changed
something runs again at once), an event of one of its machines' dockerd, a finished probe
or stop. Each cluster also runs a pass every `--engine-resync` seconds (a lost dockerd
event costs at most that), and clusters never wait for each other. Node agents of a
cluster run in parallel threads (one of them the pass's own, a machine that just got a pod
when there is one); everything else is quick database work. One global loop
keeps the set of cluster loops, the load balancers' VIPs and the event table.

A pass is cheap when nothing changed: every commit gives the clusters it touched a new
generation, and the controllers of a cluster (and its service addresses) run only when its
generation moved, something they asked for is due, or every `FULL_RESYNC` resyncs. Then
they reconcile only the services whose rows (the service, its pods, its replica sets) a
commit touched or that asked to be looked at again, all of them in a full pass or after a
change no service can be named for (`engine/controllers.py`). Agents go by a generation of
their machine's instead: a commit that changes pods gives a new one to the machines they
were on and are on (a pod not yet scheduled is the scheduler's business, not an agent's),
one that changes a machine's row to that machine, one that changes the cluster's row to
all its machines; an UPDATE or DELETE statement on the engine's rows, whose rows are not
known, to every machine. Services, namespaces and load balancers are no agent's business
(an agent reads services only for their names, which never change). One set of session
listeners (`engine/changes.py`) notes all of it, and the services changed for the
controllers, in one pass over each flush; a commit that writes none of the engine's rows
(a read-only request's, an API-only table's) costs a dictionary lookup per written object
and a dictionary pop. An agent whose
machine's generation is that of its last pass does not even list the containers while its
dockerd's event stream has been up without a break and quiet since its last list (and
stops after the list when the containers are those of its last pass), so a pod starting on
one machine of a cluster costs the other machines nothing, and the idle cost grows neither
with the pods nor with the machines' containers. A full pass lists and works everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import math
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from openccs.cloud import naming
from openccs.cloud.host import CloudError
from openccs.components import PassLoop
from openccs.engine import dns, lifecycle
from openccs.engine.agent import NodeAgent
from openccs.engine.changes import note_flush, note_statement, take
from openccs.engine.controllers import Controllers
from openccs.engine.dns import ClusterDns
from openccs.engine.proxy import Proxy, ServicePort
from openccs.log import get_logger, log_event
from openccs.store.models import (
    Cluster,
    Event,
    Instance,
    Pod,
    Service,
)
from openccs.subsystems import need
from openccs.timeutil import utcnow
from openccs.traffic import net as traffic_net
from openccs.traffic.lb import NODE_PORT_TYPES
from openccs.traffic.models import LoadBalancer

if TYPE_CHECKING:
    from openccs.cloud.component import Cloud
    from openccs.server import Services

log = get_logger("openccs.engine")

PASS_INTERVAL = 1.0  # the global pass (cluster loops, VIPs)
AGENT_THREADS = 32
EVENT_PRUNE_EVERY = 600.0
EVENT_RETENTION = timedelta(hours=6)
# Every this many resyncs (and at least every FULL_RESYNC_MIN s) a cluster's pass works
# whatever its generation says: the net under the net (changes made outside this process).
FULL_RESYNC, FULL_RESYNC_MIN = 10, 10.0


class Engine:
    name = "engine"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.settings = services.settings
        self._loop = PassLoop("engine", self.run_pass, PASS_INTERVAL, log)
        self._clusters: dict[str, _ClusterLoops] = {}
        self._agents: dict[str, NodeAgent] = {}
        self._lock = threading.Lock()  # the two dicts above, changed from several threads
        self._vips_lock = threading.Lock()
        # The engine's write transactions one at a time on SQLite (one writer at a time
        # anyway): they queue here in order instead of retrying in SQLite's busy handler,
        # where a writer (an API request's) can wait past its timeout while others go.
        self._writes: Any = threading.Lock() if self.store.is_sqlite else contextlib.nullcontext()
        self._pool = ThreadPoolExecutor(max_workers=AGENT_THREADS, thread_name_prefix="agent")
        self._not_ready_since: dict[str, float] = {}
        self._pruned = 0.0
        self._proxy: Proxy | None = None
        self._vips: traffic_net.Wanted | None = None
        self._vips_checked = 0.0
        self._dns: ClusterDns | None = None
        # Cluster -> the number of the last commit that changed its rows; machine -> that of
        # the last commit that changed its pods or its row; cluster -> that of the last
        # commit that changed what all its machines' agents read (the cluster's row);
        # `_bulk` numbers the last commit with an UPDATE or DELETE statement on the engine's
        # rows (cluster and machines unknown).
        self._commits = itertools.count(1)
        self._generation: dict[str, int] = {}
        self._machines: dict[str, int] = {}
        self._all_machines: dict[str, int] = {}
        self._bulk = 0
        # Which services the controllers reconcile in a pass (engine/controllers.py).
        self._controllers = Controllers()

    @property
    def dns(self) -> ClusterDns:
        if self._dns is None:
            self._dns = ClusterDns(self.cloud.site)
        return self._dns

    @property
    def proxy(self) -> Proxy:
        if self._proxy is None:
            self._proxy = Proxy(self.cloud.site)
        return self._proxy

    @property
    def cloud(self) -> Cloud:
        cloud: Cloud = need(self.services.subsystems.cloud, "cloud")
        return cloud

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        self.follow_commits()
        self._loop.start()

    async def stop(self) -> None:
        self.follow_commits(False)
        await self._loop.stop()
        with self._lock:
            loops, self._clusters = list(self._clusters.values()), {}
            agents, self._agents = list(self._agents.values()), {}
        for loops_of in loops:
            loops_of.cancel()
        for loops_of in loops:
            await asyncio.to_thread(loops_of.join, 30)
        for agent in agents:
            agent.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def follow_commits(self, follow: bool = True) -> None:
        """Keep the generations, and the controllers' notes, from every transaction of the
        store's sessions (or stop)."""
        change = event.listen if follow else event.remove
        change(self.store.sessions, "after_flush", note_flush)
        change(self.store.sessions, "do_orm_execute", note_statement)
        change(self.store.sessions, "after_commit", self._after_commit)
        change(self.store.sessions, "after_rollback", self._after_rollback)

    def wake(self, cluster_id: str | None = None) -> None:
        """Run the cluster's pass at once (every cluster's, and the global one, without
        an id)."""
        with self._lock:
            loops = (
                list(self._clusters.values())
                if cluster_id is None
                else [x for x in (self._clusters.get(cluster_id),) if x is not None]
            )
        if cluster_id is None or not loops:  # a cluster the global pass does not know yet
            self._loop.wake()
        for loop in loops:
            loop.wake()

    def _after_commit(self, session: Session) -> None:
        note = take(session)
        if note is None:  # nothing the engine works from
            return
        # The services first, then the numbers, then the wakes: a pass woken reads them all.
        self._controllers.committed(note)
        if not (note.clusters or note.machines or note.shared or note.bulk or note.vips):
            return
        number = next(self._commits)
        for node_id in note.machines:
            self._machines[node_id] = number
        for cluster_id in note.shared:
            self._all_machines[cluster_id] = number
        for cluster_id in note.clusters:
            self._generation[cluster_id] = number
        if note.bulk:
            self._bulk = number
            self.wake()
        for cluster_id in note.clusters:
            self.wake(cluster_id)
        if note.vips:
            self._loop.wake()

    def _after_rollback(self, session: Session) -> None:
        note = take(session)
        if note is not None:
            self._controllers.rolled_back(note)

    def generation(self, cluster_id: str) -> tuple[int, int]:
        """Changes with every committed change of the cluster's rows (the controllers')."""
        return self._generation.get(cluster_id, 0), self._bulk

    def machine_generation(self, cluster_id: str, node_id: str) -> tuple[int, int, int]:
        """Changes with every committed change of what the machine's agent reads: the pods
        that are or were on it, its row, its cluster's row."""
        return (
            self._machines.get(node_id, 0),
            self._all_machines.get(cluster_id, 0),
            self._bulk,
        )

    def run_pass(self) -> None:
        """The global pass: a loop for every active cluster (and none for the others),
        the VIPs, the pruning of old events."""
        if time.monotonic() - self._pruned > EVENT_PRUNE_EVERY:
            self._pruned = time.monotonic()
            with self.store.session() as s:
                # Events are kept well past the hour DescribeServiceEvent shows.
                s.execute(delete(Event).where(Event.last_seen < utcnow() - EVENT_RETENTION))
        with self.store.session() as s:
            clusters = [
                c.id
                for c in s.scalars(
                    select(Cluster).where(Cluster.status.in_(("Running", "Scaling", "Abnormal")))
                )
            ]
        self._sync_vips()
        with self._lock:
            started = [c for c in clusters if c not in self._clusters]
            for cluster_id in started:
                interval = self.settings.engine_resync
                loops_of = self._clusters[cluster_id] = _ClusterLoops(
                    PassLoop(f"engine-{cluster_id}",
                             functools.partial(self.run_cluster_pass, cluster_id), interval, log),
                    PassLoop(f"services-{cluster_id}",
                             functools.partial(self._sync_services, cluster_id), interval, log),
                    full_every=max(FULL_RESYNC * interval, FULL_RESYNC_MIN),
                )  # fmt: skip
                loops_of.start()
            ended = [c for c in self._clusters if c not in clusters]
            for cluster_id in ended:
                self._clusters.pop(cluster_id).cancel()
                self._controllers.forget(cluster_id)
            # Agents of clusters without a loop go, also one that a pass still under way
            # when its cluster ended made after this loop last looked.
            for node_id, agent in list(self._agents.items()):
                if agent.cluster_id not in self._clusters:
                    del self._agents[node_id]
                    agent.close()

    def run_cluster_pass(self, cluster_id: str) -> None:
        """One cluster: controllers, then the agents of its machines in parallel; then its
        service addresses follow in a loop of their own (iptables and DNS take time the
        next step of a rollout need not wait for). The controllers run when the cluster's
        rows changed since they last ran, when they asked to (a grace period, a pod becoming
        available) or in a full pass; each agent works when what it reads changed (its
        machine's generation), when its machine's containers changed, when it is due or
        poked, or in a full pass (where the agents list and work whatever they find; in
        the others an agent lists its containers only when its dockerd's event stream
        cannot vouch for them, see `NodeAgent.sync`)."""
        with self._lock:
            loops_of = self._clusters.get(cluster_id)
        now = time.monotonic()
        generation = self.generation(cluster_id)
        full = loops_of is None or now >= loops_of.full_at
        controllers = (
            full or loops_of is None or generation != loops_of.controllers_seen
            or now >= loops_of.controllers_due
        )  # fmt: skip
        due = math.inf
        placed: set[str] = set()
        with self._writes if controllers else contextlib.nullcontext(), self.store.session() as s:
            if controllers:
                due = self._controllers.run(
                    s,
                    cluster_id,
                    full,
                    functools.partial(self._node_lifecycle, s, cluster_id),
                    placed=placed,
                )
            nodes = [
                n.id
                for n in s.scalars(
                    select(Instance).where(
                        Instance.cluster_id == cluster_id, Instance.state == "Running"
                    )
                )
            ]
        if loops_of is not None and controllers:
            loops_of.controllers_seen, loops_of.controllers_due = generation, now + due
        if full and loops_of is not None:
            loops_of.full_at = now + loops_of.full_every
        # The agents in parallel, one of them in this thread: a machine that just got a pod
        # when there is one, so its pod's containers are asked for without first waiting
        # for a pool thread to wake up (on a busy host, tens of milliseconds).
        nodes.sort(key=lambda n: n not in placed)
        later = [self._pool.submit(self._sync_node, cluster_id, n, full) for n in nodes[1:]]
        done = [self._sync_node(cluster_id, nodes[0], full)] if nodes else []
        agents = [a for a in [*done, *(f.result() for f in later)] if a is not None]
        # A machine that left the cluster gets a fresh agent if it joins another.
        with self._lock:
            for node_id, agent in list(self._agents.items()):
                if agent.cluster_id == cluster_id and node_id not in nodes:
                    del self._agents[node_id]
                    agent.close()
        if loops_of is not None:
            loops_of.passes.wake_at(min([loops_of.controllers_due, *(a.next_due for a in agents)]))
            loops_of.services.wake()

    def _sync_vips(self) -> None:
        """The VIPs of every load balancer on the host (checked again every 30 s even when
        nothing changed, in case someone removed one)."""
        with self._vips_lock:
            self._sync_vips_locked()

    def _sync_vips_locked(self) -> None:
        with self.store.session() as s:
            want = traffic_net.desired(s, self.cloud.site)
        now = time.monotonic()
        if want == self._vips and now - self._vips_checked < 30:
            return
        try:
            traffic_net.sync(self.cloud.site, *want)
        except CloudError as exc:
            log_event(log, "vip sync failed", error=exc.message[-300:])
            self._vips = None
            return
        self._vips, self._vips_checked = want, now

    def _sync_services(self, cluster_id: str) -> None:
        """Service addresses to ready endpoints, on the host and in every machine: cluster
        IPs, load balancer VIPs and node ports."""
        with self._lock:
            loops_of = self._clusters.get(cluster_id)
        generation, now = self.generation(cluster_id), time.monotonic()
        if loops_of is not None:
            if generation == loops_of.services_seen and now < loops_of.services_full_at:
                return
            loops_of.services_seen = None
        ports: list[ServicePort] = []
        records: dict[str, str] = {}
        with self.store.session() as s:
            cluster = s.get(Cluster, cluster_id)
            if cluster is None:
                return
            nodes = list(
                s.scalars(
                    select(Instance.id).where(
                        Instance.cluster_id == cluster_id, Instance.state == "Running"
                    )
                )
            )
            vpc_id, service_cidr = cluster.vpc_id, cluster.service_cidr
            lbs = {
                lb.service_id: lb
                for lb in s.scalars(
                    select(LoadBalancer).where(
                        LoadBalancer.cluster_id == cluster_id,
                        LoadBalancer.service_id.is_not(None),
                    )
                )
            }
            creating = [lb.id for lb in lbs.values() if lb.status != "Running"]
            endpoints = _ready_ips(s, cluster_id)
            for svc in s.scalars(
                select(Service).where(
                    Service.cluster_id == cluster_id,
                    Service.cluster_ip.is_not(None),
                    Service.deleting.is_(False),
                )
            ):
                ready = sorted(endpoints.get(svc.id, ()))
                records[f"{svc.name}.{svc.namespace}.svc.{dns.DOMAIN}"] = str(svc.cluster_ip)
                lb = lbs.get(svc.id)
                vips = (lb.vip,) if lb is not None else ()
                with_node_ports = svc.spec.get("accessType") in NODE_PORT_TYPES
                for pm in svc.spec.get("portMappings", []):
                    ports.append(
                        ServicePort(
                            key=f"{cluster_id}/{svc.namespace}/{svc.name}/{pm['lbPort']}/"
                            f"{pm['protocol']}",
                            cluster_ip=str(svc.cluster_ip),
                            port=int(pm["lbPort"]),
                            protocol=pm["protocol"],
                            target_port=int(pm["containerPort"]),
                            endpoints=tuple(ready),
                            vips=vips,
                            node_port=int(pm.get("nodePort") or 0) if with_node_ports else 0,
                        )
                    )
        site = self.cloud.site
        host_ok = self.proxy.sync(
            cluster_id, ports, [None, *(naming.netns(site, n) for n in nodes)]
        )
        if creating and host_ok and self._vips is not None:
            with self.store.session() as s:
                public, inner, _ = self._vips
                held = public.union(*inner.values())
                for lb_id in creating:
                    lb = s.get(LoadBalancer, lb_id)
                    if lb is not None and lb.vip in held:
                        lb.status = "Running"
            log_event(log, "load balancers running", cluster=cluster_id, ids=",".join(creating))
        try:
            self.dns.sync(cluster_id, vpc_id, dns.dns_ip(service_cidr), records)
        except (CloudError, OSError, subprocess.SubprocessError) as exc:
            log_event(log, "cluster dns failed", cluster=cluster_id, error=str(exc)[-300:])
            return
        if loops_of is not None and host_ok and not creating:
            loops_of.services_seen = generation
            loops_of.services_full_at = now + loops_of.full_every

    def forget_cluster(self, cluster_id: str, vpc_id: str, service_cidr: str) -> None:
        """What a deleted cluster leaves on the host: service rules and its DNS."""
        with self._lock:
            loops_of = self._clusters.pop(cluster_id, None)
        if loops_of is not None:  # their last pass must not put the rules back
            loops_of.cancel()
            loops_of.join(30)
        self.proxy.forget(cluster_id)
        self.dns.stop(cluster_id, vpc_id, dns.dns_ip(service_cidr))

    def _sync_node(self, cluster_id: str, node_id: str, full: bool) -> NodeAgent | None:
        agent = self._agents.get(node_id)
        if agent is None or agent.cluster_id != cluster_id:
            if agent is not None:
                agent.close()
            with self.store.session() as s:
                cluster = s.get(Cluster, cluster_id)
                if cluster is None:
                    return None
                dns_ip = dns.dns_ip(cluster.service_cidr)
            agent = NodeAgent(
                node_id=node_id,
                cluster_id=cluster_id,
                socket=self.cloud.engine.docker_socket(node_id),
                root_dir=self.cloud.root_dir(node_id),
                resolve_image=self.resolve_image,
                dns_ip=dns_ip,
                notify=lambda: self.wake(cluster_id),
                write_lock=self._writes,
            )
            with self._lock:
                self._agents[node_id] = agent
            agent.watch()
        # Read before the agent reads the database: a change committed meanwhile makes the
        # next pass work.
        generation = self.machine_generation(cluster_id, node_id)
        try:
            agent.sync(self.store, generation, full)
        except Exception as exc:
            log_event(log, "node agent pass failed", node=node_id, error=str(exc)[:300])
        return agent

    def resolve_image(self, pod: Pod, image: str) -> tuple[str, dict[str, str] | None]:
        """The name a node pulls `image` by, and the credentials it pulls with: openccs's
        registry through the node's subnet gateway with the cluster's pull credential, a
        third-party registry with the cluster's AddHubInfo credentials, or anonymously."""
        from openccs.domain.cloud import gateway_of
        from openccs.registry.clusters import pull_auth_for_cluster
        from openccs.registry.machines import image_for_machine, is_ours, registry_endpoint_for
        from openccs.store.models import HubInfo, Subnet

        registry = self.services.subsystems.registry
        rt = registry.rt if registry is not None else None
        with self.store.session() as s:
            if rt is not None and pod.node_id:
                node = s.get(Instance, pod.node_id)
                subnet = s.get(Subnet, node.subnet_id) if node else None
                if subnet is not None:
                    gateway = str(gateway_of(subnet.cidr).ip)
                    if is_ours(rt, image):
                        endpoint = registry_endpoint_for(rt, gateway)
                        auth = pull_auth_for_cluster(s, self.services.box, pod.cluster_id, endpoint)
                        return image_for_machine(rt, image, gateway), auth
            host = image.split("/", 1)[0] if "/" in image else ""
            if host and ("." in host or ":" in host):
                for hub in s.scalars(select(HubInfo).where(HubInfo.cluster_id == pod.cluster_id)):
                    if hub.domain == host and (
                        not hub.namespaces or pod.namespace in hub.namespaces
                    ):
                        return image, {
                            "username": hub.username,
                            "password": self.services.box.decrypt(hub.password_enc),
                            "serveraddress": hub.domain,
                        }
        return image, None

    def _node_lifecycle(self, s: Session, cluster_id: str) -> float:
        """Seconds until a NotReady node's grace period ends (engine/lifecycle.py)."""
        return lifecycle.node_lifecycle(
            s, cluster_id, self._not_ready_since, self.settings.node_grace, time.monotonic()
        )


def _ready_ips(s: Session, cluster_id: str) -> dict[int, list[str]]:
    """The addresses of the cluster's ready pods, by service: two columns, the statuses'
    two keys read by the database (not every pod's status parsed here)."""
    ip = Pod.status["ip"].as_string()
    ready = func.coalesce(Pod.status["ready"].as_boolean(), False)
    out: dict[int, list[str]] = {}
    for service_id, addr in s.execute(
        select(Pod.service_id, ip).where(
            Pod.cluster_id == cluster_id,
            Pod.service_id.is_not(None),
            Pod.deleting.is_(False),
            ready,
        )
    ):
        if addr:
            out.setdefault(service_id, []).append(addr)
    return out


@dataclass
class _ClusterLoops:
    """A cluster's two loops: its passes, and its service addresses (woken by each pass),
    with what each last worked from (the cluster's generation) and when it works anyway."""

    passes: PassLoop
    services: PassLoop
    full_every: float = FULL_RESYNC_MIN
    full_at: float = 0.0
    controllers_seen: tuple[int, int] | None = None
    controllers_due: float = 0.0
    services_seen: tuple[int, int] | None = None
    services_full_at: float = 0.0

    def start(self) -> None:
        self.passes.start()
        self.services.start()

    def wake(self) -> None:
        self.passes.wake()

    def cancel(self) -> None:
        self.passes.cancel()
        self.services.cancel()

    def join(self, timeout: float) -> None:
        self.passes.join(timeout)
        self.services.join(timeout)


def component(services: Services) -> Engine:
    engine = Engine(services)
    services.subsystems.engine = engine
    return engine


def wake(services: Any, cluster_id: str | None = None) -> None:
    """Wake the engine's passes (of one cluster, or all). A committed change of a cluster's
    rows wakes its pass anyway; this is for what the database does not show."""
    engine = services.subsystems.engine
    if engine is not None:
        engine.wake(cluster_id)
