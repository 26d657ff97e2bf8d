"""Subsystems that live beside the API (registry, cloud, engine...): their HTTP routes,
their background work, started with the server and stopped with it.

A subsystem's module exposes `component(services) -> Component`; `COMPONENT_MODULES` lists
those modules, in start order.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Callable
from logging import Logger
from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

from openccs.monitor.exposition import PASSES

if TYPE_CHECKING:
    from openccs.server import Services

COMPONENT_MODULES: list[str] = [
    "openccs.cloud.component",
    "openccs.engine.component",
    "openccs.registry.component",
    "openccs.traffic.component",
    "openccs.autoscaler.component",
    "openccs.logs.component",
    "openccs.monitor.component",
    "openccs.kube.component",
    "openccs.faults.component",
]

# Modules defining SQLAlchemy tables on `openccs.store.models.Base`, imported before migrations.
MODEL_MODULES: list[str] = [
    "openccs.store.models",
    "openccs.registry.models",
    "openccs.traffic.models",
    "openccs.autoscaler.models",
    "openccs.logs.models",
    "openccs.monitor.models",
    "openccs.kube.models",
    "openccs.faults.models",
]


class Component(Protocol):
    name: str

    def routes(self) -> list[BaseRoute]:
        """Extra HTTP routes on the API listeners (e.g. the registry's token endpoint)."""
        ...

    async def start(self) -> None:
        """Start background work; find again what a previous run left running."""
        ...

    async def stop(self) -> None:
        """Stop background work (the daemons of machines may keep running)."""
        ...


def load_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def load_components(services: Services) -> list[Component]:
    return [importlib.import_module(m).component(services) for m in COMPONENT_MODULES]


class PassLoop:
    """A daemon thread running `step` every `interval` seconds, at once after `wake()`; a
    failing pass is logged and the next one runs as usual. The loop of the components
    whose work is level-triggered passes (engine, ingress, log shippers, autoscaler)."""

    def __init__(self, name: str, step: Callable[[], None], interval: float, log: Logger) -> None:
        self.name, self.step, self.interval, self.log = name, step, interval, log
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception:
                self.log.exception(f"{self.name} pass failed")
            PASSES.observe(self.name, seconds=time.monotonic() - started)
            self._wake.wait(max(0.05, self.interval - (time.monotonic() - started)))
            self._wake.clear()
