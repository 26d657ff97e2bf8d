"""The monitor as a server component: the sampler thread, and `/metrics` on the API
listeners."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from openccs.cloud import naming
from openccs.monitor import prometheus
from openccs.monitor.sampler import Sampler
from openccs.store.models import Instance
from openccs.subsystems import need

if TYPE_CHECKING:
    from openccs.cloud.component import Cloud
    from openccs.server import Services


class Monitor:
    name = "monitor"

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.sampler = Sampler(
            services.store,
            self._machine,
            interval=settings.sample_interval,
            retention=settings.monitor_retention,
        )

    def _machine(self, node_id: str) -> tuple[str, Path, Path]:
        cloud: Cloud = need(self.services.subsystems.cloud, "cloud")
        return (
            naming.cgroup(cloud.site, node_id),
            cloud.engine.docker_socket(node_id),
            cloud.root_dir(node_id),
        )

    def routes(self) -> list[BaseRoute]:
        return [Route("/metrics", self.metrics, methods=["GET"])]

    async def metrics(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("a bearer token is required (openccs metrics-token create)")
        if not await asyncio.to_thread(self._check, token.strip()):
            return _unauthorized("unknown or revoked token")
        text = await asyncio.to_thread(self._render)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    def _render(self) -> str:
        with self.services.store.session() as s:
            nodes = dict(s.execute(select(Instance.id, Instance.lan_ip)).all())
        logs = self.services.subsystems.logs
        return prometheus.render(self.sampler, nodes, logs.backlog() if logs else None)

    def _check(self, token: str) -> bool:
        with self.services.store.session() as s:
            return prometheus.token_valid(s, token)

    async def start(self) -> None:
        await asyncio.to_thread(self.sampler.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.sampler.stop)


def _unauthorized(why: str) -> Response:
    return PlainTextResponse(
        why + "\n", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="openccs"'}
    )


def component(services: Services) -> Monitor:
    monitor = Monitor(services)
    services.subsystems.monitor = monitor
    return monitor
