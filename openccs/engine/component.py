"""The workload engine as a server component: one loop that, for every cluster, runs the
deployment controller, the scheduler, the node lifecycle and every node's agent.

Level-triggered: each pass compares what the database wants with what the machines run
and takes a step. A pass runs every second, and at once when an action changed something
(`wake()`). Node agents of a cluster run in parallel threads; everything else is quick
database work.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from openccs.cloud import naming
from openccs.cloud.host import CloudError
from openccs.components import PassLoop
from openccs.domain.workloads import pod_is_ready, record_event, service_pods
from openccs.engine import deployment, dns, scheduler
from openccs.engine.agent import NodeAgent
from openccs.engine.dns import ClusterDns
from openccs.engine.proxy import Proxy, ServicePort
from openccs.log import get_logger, log_event
from openccs.store.models import Cluster, Event, Instance, Pod, Service
from openccs.timeutil import utcnow
from openccs.traffic import net as traffic_net
from openccs.traffic.lb import NODE_PORT_TYPES
from openccs.traffic.models import LoadBalancer

if TYPE_CHECKING:
    from openccs.cloud.component import Cloud
    from openccs.server import Services

log = get_logger("openccs.engine")

PASS_INTERVAL = 1.0
EVENT_PRUNE_EVERY = 600.0
EVENT_RETENTION = timedelta(hours=6)


class Engine:
    name = "engine"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.settings = services.settings
        self._loop = PassLoop("engine", self.run_pass, PASS_INTERVAL, log)
        self._agents: dict[str, NodeAgent] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="agent")
        self._not_ready_since: dict[str, float] = {}
        self._pruned = 0.0
        self._proxy: Proxy | None = None
        self._vips: traffic_net.Wanted | None = None
        self._vips_checked = 0.0
        self._dns: ClusterDns | None = None

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
        cloud: Cloud = self.services.extra["cloud"]
        return cloud

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._loop.wake()

    def run_pass(self) -> None:
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
        seen: set[str] = set()
        for cluster_id in clusters:
            with self.store.session() as s:
                self._node_lifecycle(s, cluster_id)
                deployment.reconcile_cluster(s, cluster_id)
                scheduler.schedule_cluster(s, cluster_id)
                nodes = [
                    n.id
                    for n in s.scalars(
                        select(Instance).where(
                            Instance.cluster_id == cluster_id, Instance.state == "Running"
                        )
                    )
                ]
            list(self._pool.map(self._sync_node, nodes))
            seen.update(nodes)
            self._sync_services(cluster_id, nodes)
        # A machine that left its cluster gets a fresh agent if it joins another.
        for node_id in [n for n in self._agents if n not in seen]:
            del self._agents[node_id]

    def _sync_vips(self) -> None:
        """The VIPs of every load balancer on the host (checked again every 30 s even when
        nothing changed, in case someone removed one)."""
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

    def _sync_services(self, cluster_id: str, nodes: list[str]) -> None:
        """Service addresses to ready endpoints, on the host and in every machine: cluster
        IPs, load balancer VIPs and node ports."""
        ports: list[ServicePort] = []
        records: dict[str, str] = {}
        with self.store.session() as s:
            cluster = s.get(Cluster, cluster_id)
            if cluster is None:
                return
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
            for svc in s.scalars(
                select(Service).where(
                    Service.cluster_id == cluster_id,
                    Service.cluster_ip.is_not(None),
                    Service.deleting.is_(False),
                )
            ):
                ready = sorted(
                    p.status.get("ip", "")
                    for p in service_pods(s, svc)
                    if pod_is_ready(p) and p.status.get("ip")
                )
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

    def forget_cluster(self, cluster_id: str, vpc_id: str, service_cidr: str) -> None:
        """What a deleted cluster leaves on the host: service rules and its DNS."""
        self.proxy.forget(cluster_id)
        self.dns.stop(cluster_id, vpc_id, dns.dns_ip(service_cidr))

    def _sync_node(self, node_id: str) -> None:
        agent = self._agents.get(node_id)
        if agent is None:
            with self.store.session() as s:
                node = s.get(Instance, node_id)
                cluster = s.get(Cluster, node.cluster_id) if node and node.cluster_id else None
                if cluster is None:
                    return
                dns_ip = dns.dns_ip(cluster.service_cidr)
            agent = self._agents[node_id] = NodeAgent(
                node_id=node_id,
                socket=self.cloud.engine.docker_socket(node_id),
                root_dir=self.cloud.root_dir(node_id),
                resolve_image=self.resolve_image,
                dns_ip=dns_ip,
            )
        try:
            agent.sync(self.store)
        except Exception as exc:
            log_event(log, "node agent pass failed", node=node_id, error=str(exc)[:300])

    def resolve_image(self, pod: Pod, image: str) -> tuple[str, dict[str, str] | None]:
        """The name a node pulls `image` by, and the credentials it pulls with: openccs's
        registry through the node's subnet gateway with the cluster's pull credential, a
        third-party registry with the cluster's AddHubInfo credentials, or anonymously."""
        from openccs.domain.cloud import gateway_of
        from openccs.registry.clusters import pull_auth_for_cluster
        from openccs.registry.machines import image_for_machine, is_ours, registry_endpoint_for
        from openccs.store.models import HubInfo, Subnet

        rt = self.services.extra.get("registry")
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

    def _node_lifecycle(self, s: Session, cluster_id: str) -> None:
        """Pods of a machine that stopped answering are replaced elsewhere after a grace
        period, as the node lifecycle controller evicts pods of a NotReady node."""
        now = time.monotonic()
        for node in s.scalars(select(Instance).where(Instance.cluster_id == cluster_id)):
            if node.state == "Running" and node.is_normal:
                self._not_ready_since.pop(node.id, None)
                continue
            since = self._not_ready_since.setdefault(node.id, now)
            if now - since < self.settings.node_grace:
                continue
            for pod in s.scalars(select(Pod).where(Pod.node_id == node.id)):
                svc = s.get(Service, pod.service_id) if pod.service_id else None
                record_event(
                    s, cluster_id, pod.namespace, svc.name if svc else "", "Pod", pod.name,
                    "NodeNotReady", f"Node {node.lan_ip} is not ready: pod evicted", "Warning",
                )  # fmt: skip
                s.delete(pod)


def component(services: Services) -> Engine:
    engine = Engine(services)
    services.extra["engine"] = engine
    return engine


def wake(services: Any) -> None:
    engine = services.extra.get("engine")
    if engine is not None:
        engine.wake()
