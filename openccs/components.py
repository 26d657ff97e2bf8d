"""Subsystems that live beside the API (registry, cloud, engine...): their HTTP routes,
their background work, started with the server and stopped with it.

A subsystem's module exposes `component(services) -> Component`; `COMPONENT_MODULES` lists
those modules, in start order.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

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
