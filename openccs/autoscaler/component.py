"""The cluster autoscaler as a server component: a loop that runs one autoscaler pass every
scan interval (`--asg-scan-interval`), beside the workload engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from openccs.autoscaler import tasks  # noqa: F401  (registers the task types)
from openccs.autoscaler.controller import Autoscaler
from openccs.components import PassLoop
from openccs.log import get_logger

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.autoscaler")


class AutoscalerComponent:
    name = "autoscaler"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.autoscaler = Autoscaler(services)
        interval = max(0.2, services.settings.asg_scan_interval)
        self._loop = PassLoop("autoscaler", self.autoscaler.run_once, interval, log)

    def routes(self) -> list[BaseRoute]:
        return []

    def wake(self) -> None:
        """A pass now (a group or the settings changed), not at the next scan."""
        self._loop.wake()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


def component(services: Services) -> AutoscalerComponent:
    comp = AutoscalerComponent(services)
    services.subsystems.autoscaler = comp
    return comp
