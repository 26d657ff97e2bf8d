"""The ingress controller as a server component: a loop (every second, and at once after an
ingress action) that renders every cluster's ingresses and keeps its nginx serving them.

Service load balancers and node ports need no loop of their own: the engine's service pass
applies them (openccs.engine.component) with the VIPs of openccs.traffic.net.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.routing import BaseRoute

from openccs.cloud import naming
from openccs.components import PassLoop
from openccs.log import get_logger, log_event
from openccs.store.models import Service
from openccs.subsystems import need
from openccs.traffic import net as traffic_net
from openccs.traffic.ingress import IngressRule, Nginx, Route, Site, render, split_url
from openccs.traffic.models import Certificate, Ingress, LoadBalancer

if TYPE_CHECKING:
    from openccs.cloud.component import Cloud
    from openccs.server import Services

log = get_logger("openccs.traffic")

PASS_INTERVAL = 1.0
RECHECK_EVERY = 15.0


class Traffic:
    name = "traffic"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self._loop = PassLoop("ingress", self.run_pass, PASS_INTERVAL, log)
        # cluster -> (configuration served, when checked)
        self._applied: dict[str, tuple[str, float]] = {}

    @property
    def cloud(self) -> Cloud:
        cloud: Cloud = need(self.services.subsystems.cloud, "cloud")
        return cloud

    @property
    def base(self) -> Path:
        return naming.site_runtime_dir(self.cloud.site)

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def wake(self) -> None:
        self._loop.wake()

    def run_pass(self) -> None:
        per_cluster: dict[str, list[Site]] = {}
        waiting: dict[str, list[str]] = {}  # cluster -> balancer ids served once applied
        with self.store.session() as s:
            ingresses = list(s.scalars(select(Ingress).order_by(Ingress.id)))
        if ingresses:
            self._collect(ingresses, per_cluster, waiting)
        for cluster_id, sites in per_cluster.items():
            if sites:
                self._serve(cluster_id, sites, waiting.get(cluster_id, []))
        # Clusters whose last ingress went: their nginx goes too.
        for workdir in self.base.glob("ingress-*"):
            cluster_id = workdir.name.removeprefix("ingress-")
            if not per_cluster.get(cluster_id):
                Nginx(workdir).stop()
                self._applied.pop(cluster_id, None)

    def _collect(
        self,
        ingresses: list[Ingress],
        per_cluster: dict[str, list[Site]],
        waiting: dict[str, list[str]],
    ) -> None:
        """Each cluster's ingresses as nginx sites, with the balancers not yet Running."""
        held = traffic_net.host_addresses()
        with self.store.session() as s:
            lbs = {
                lb.ingress_id: lb
                for lb in s.scalars(
                    select(LoadBalancer).where(LoadBalancer.ingress_id.is_not(None))
                )
            }
            backends = {
                (svc.cluster_id, svc.namespace, svc.name): svc
                for svc in s.scalars(select(Service).where(Service.deleting.is_(False)))
                if svc.cluster_ip
            }
            for ing in ingresses:
                per_cluster.setdefault(ing.cluster_id, [])
                lb = lbs.get(ing.id)
                if lb is None or lb.vip not in held:
                    continue  # the engine has not put the VIP on the host yet
                workdir = self.base / f"ingress-{ing.cluster_id}"
                cert = None
                rules = [IngressRule.from_v2(r) for r in ing.rules]
                if ing.cert_id and any(r.protocol == "https" for r in rules):
                    row = s.get(Certificate, ing.cert_id)
                    if row is not None:
                        cert = self._cert_files(workdir, row)
                listeners: dict[tuple[int, str], dict[str, list[Route]]] = {}
                for rule in rules:
                    svc = backends.get((ing.cluster_id, ing.namespace, rule.service_name))
                    ports = {
                        int(pm["lbPort"])
                        for pm in (svc.spec.get("portMappings", []) if svc else [])
                        if pm["protocol"] == "TCP"
                    }
                    backend = (
                        f"{svc.cluster_ip}:{rule.service_port}"
                        if svc is not None and rule.service_port in ports
                        else ""
                    )
                    key = (rule.lb_port, rule.protocol)
                    routes = listeners.setdefault(key, {}).setdefault(rule.domain, [])
                    routes.append(Route(rule.url, backend))
                for domains in listeners.values():
                    for routes in domains.values():
                        # Exact and prefix matches are chosen by nginx whatever the order;
                        # regular expressions in the order given.
                        routes.sort(key=lambda r: split_url(r.url)[0] in ("~", "~*"))
                per_cluster[ing.cluster_id].append(
                    Site(f"{ing.cluster_id}/{ing.namespace}/{ing.name}", lb.vip, listeners, cert)
                )
                if lb.status != "Running":
                    waiting.setdefault(ing.cluster_id, []).append(lb.id)

    def _cert_files(self, workdir: Path, row: Certificate) -> tuple[Path, Path]:
        certs = workdir / "certs"
        certs.mkdir(parents=True, exist_ok=True, mode=0o700)
        chain, key = certs / f"{row.id}.pem", certs / f"{row.id}.key"
        if not chain.exists() or chain.read_text() != row.cert_pem:
            chain.write_text(row.cert_pem)
        secret = self.services.box.decrypt(row.key_enc)
        if not key.exists() or key.read_text() != secret:
            key.touch(mode=0o600)
            key.write_text(secret)
        return chain, key

    def _serve(self, cluster_id: str, sites: list[Site], waiting: list[str]) -> None:
        workdir = self.base / f"ingress-{cluster_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        nginx = Nginx(workdir)
        text = render(sites, workdir)
        last = self._applied.get(cluster_id)
        now = time.monotonic()
        if last is not None and last[0] == text and not waiting:
            if now - last[1] < RECHECK_EVERY:
                return
            if nginx.pid() is not None:
                self._applied[cluster_id] = (text, now)
                return
        current = nginx.conf.read_text() if nginx.conf.exists() else None
        # Found serving this already (after an openccs restart), or applied now.
        if not (current == text and nginx.pid() is not None) and not nginx.apply(text):
            return
        self._applied[cluster_id] = (text, now)
        if waiting:
            with self.store.session() as s:
                for lb_id in waiting:
                    lb = s.get(LoadBalancer, lb_id)
                    if lb is not None:
                        lb.status = "Running"
            log_event(log, "ingresses running", cluster=cluster_id, lbs=",".join(waiting))

    def forget_cluster(self, cluster_id: str) -> None:
        workdir = self.base / f"ingress-{cluster_id}"
        if workdir.exists():
            Nginx(workdir).stop()
        shutil.rmtree(workdir, ignore_errors=True)


def component(services: Services) -> Traffic:
    traffic = Traffic(services)
    services.subsystems.traffic = traffic
    return traffic
