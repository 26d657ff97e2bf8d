"""Log collection as a server component: keeps one shipper running on every machine of every
cluster that has collection rules (machines that join later get one too), and stops a
cluster's shippers when its last rule is deleted."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.routing import BaseRoute

from openccs.components import PassLoop
from openccs.log import get_logger, log_event
from openccs.logs.rules import Rule, load_rules
from openccs.logs.shipper import MachineShipper
from openccs.store.models import Instance
from openccs.subsystems import need

if TYPE_CHECKING:
    from openccs.cloud.component import Cloud
    from openccs.server import Services

log = get_logger("openccs.logs")
# The Kafka client logs every connection, and every refused one as an error: the shipper
# logs what matters (a batch that failed, and when it retries).
logging.getLogger("kafka").setLevel(logging.CRITICAL)

PASS_INTERVAL = 1.0


class LogsComponent:
    name = "logs"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self._rules: dict[str, list[Rule]] = {}
        self._shippers: dict[str, MachineShipper] = {}
        self._lock = threading.Lock()
        self._loop = PassLoop("logs", self.run_pass, PASS_INTERVAL, log)

    @property
    def cloud(self) -> Cloud:
        return need(self.services.subsystems.cloud, "cloud")

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop(timeout=10)
        with self._lock:
            shippers = list(self._shippers.values())
            self._shippers.clear()
        for sh in shippers:
            sh.stop()
        for sh in shippers:
            await asyncio.to_thread(sh.thread.join, 15)

    def wake(self) -> None:
        self._loop.wake()

    def backlog(self) -> dict[str, int]:
        """Per machine, the bytes of logs not yet shipped (the shippers' lag)."""
        with self._lock:
            shippers = dict(self._shippers)
        return {node: sh.backlog_bytes() for node, sh in shippers.items()}

    def rules_for(self, cluster_id: str) -> list[Rule]:
        return list(self._rules.get(cluster_id, []))

    def machine_status(self, nodes: list[str]) -> tuple[int, list[str]]:
        """How many of `nodes` run a shipper that can read their logs, and what is wrong."""
        running = 0
        problems = []
        with self._lock:
            shippers = {n: self._shippers.get(n) for n in nodes}
        for node, sh in shippers.items():
            if sh is None or not sh.alive:
                problems.append(f"{node}: log shipper not running yet")
                continue
            if sh.reading:
                running += 1
            problems.extend(f"{node}: {p}" for p in sorted(list(sh.problems.values())))
        return running, problems

    def run_pass(self) -> None:
        with self.store.session() as s:
            rules = load_rules(s)
            wanted: dict[str, str] = {}
            if rules:
                for node in s.scalars(
                    select(Instance).where(
                        Instance.cluster_id.in_(list(rules)), Instance.state == "Running"
                    )
                ):
                    wanted[node.id] = str(node.cluster_id)
        self._rules = rules
        with self._lock:
            for node_id, sh in list(self._shippers.items()):
                if wanted.get(node_id) != sh.cluster_id or not sh.alive:
                    sh.stop()
                    del self._shippers[node_id]
            for node_id, cluster_id in wanted.items():
                if node_id in self._shippers:
                    self._shippers[node_id].wake_event.set()
                    continue
                sh = MachineShipper(
                    node_id=node_id,
                    cluster_id=cluster_id,
                    socket=self.cloud.engine.docker_socket(node_id),
                    root_dir=self.cloud.root_dir(node_id),
                    store=self.store,
                    rules=self.rules_for,
                )
                self._shippers[node_id] = sh
                sh.start()
                log_event(log, "log shipper scheduled", node=node_id, cluster=cluster_id)


def component(services: Services) -> LogsComponent:
    logs = LogsComponent(services)
    services.subsystems.logs = logs
    return logs
