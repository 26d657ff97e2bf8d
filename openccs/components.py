"""Subsystems that live beside the API (registry, cloud, engine...): their HTTP routes,
their background work, started with the server and stopped with it.

A subsystem's module exposes `component(services) -> Component`; `COMPONENT_MODULES` lists
those modules, in start order.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import threading
import time
from collections.abc import Callable
from logging import Logger
from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

from openccs.instruments import PASSES

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
    "openccs.console.component",
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
    "openccs.console.models",
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
    whose work is level-triggered passes (engine, ingress, log shippers, autoscaler).

    A wake that arrives while a pass runs (the pass itself changed something, or someone
    did meanwhile) starts the next pass at once, up to `MAX_CHAINED` in a row; then passes
    are spaced by at least 50 ms, so a pass that always finds work cannot spin."""

    MAX_CHAINED = 20

    def __init__(self, name: str, step: Callable[[], None], interval: float, log: Logger) -> None:
        self.name, self.step, self.interval, self.log = name, step, interval, log
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._deadline = math.inf  # an earlier pass asked for one at this monotonic time
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def wake_at(self, when: float) -> None:
        """Run a pass no later than `when` (time.monotonic()), e.g. when a probe is due."""
        with self._lock:
            self._deadline = min(self._deadline, when)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        """Stop without waiting: the pass under way ends, no other starts."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    async def stop(self, timeout: float = 30) -> None:
        self.cancel()
        await asyncio.to_thread(self.join, timeout)

    def _run(self) -> None:
        chained = 0
        while not self._stop.is_set():
            started = time.monotonic()
            self._wake.clear()
            with self._lock:
                self._deadline = math.inf
            try:
                self.step()
            except Exception:
                self.log.exception(f"{self.name} pass failed")
            PASSES.observe(self.name, seconds=time.monotonic() - started)
            if self._wake.is_set() and chained < self.MAX_CHAINED:
                chained += 1
                continue
            chained = 0
            now = time.monotonic()
            with self._lock:
                deadline = self._deadline
            wait = min(self.interval - (now - started), deadline - now)
            self._wake.wait(max(0.05, wait))
