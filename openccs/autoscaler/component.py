"""The cluster autoscaler as a server component: a loop that runs one autoscaler pass every
scan interval (`--asg-scan-interval`), beside the workload engine."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from openccs.autoscaler import tasks  # noqa: F401  (registers the task types)
from openccs.autoscaler.controller import Autoscaler
from openccs.log import get_logger

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.autoscaler")


class AutoscalerComponent:
    name = "autoscaler"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.autoscaler = Autoscaler(services)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="autoscaler", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)

    def _loop(self) -> None:
        interval = max(0.2, self.services.settings.asg_scan_interval)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.autoscaler.run_once()
            except Exception:
                log.exception("autoscaler pass failed")
            self._stop.wait(max(0.05, interval - (time.monotonic() - started)))


def component(services: Services) -> AutoscalerComponent:
    comp = AutoscalerComponent(services)
    services.extra["autoscaler"] = comp
    return comp
