"""The server's subsystems, typed: how one finds another.

Each component's `component(services)` puts itself here when the server makes it, in the
start order of `components.COMPONENT_MODULES`; a field stays None where that component is
not part of the server (a tool or a test that builds only some of them). `need` says which
one is missing instead of failing on None later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from openccs.autoscaler.component import AutoscalerComponent
    from openccs.cloud.component import Cloud
    from openccs.engine.component import Engine
    from openccs.faults.component import Faults
    from openccs.kube.component import KubeComponent
    from openccs.logs.component import LogsComponent
    from openccs.monitor.component import Monitor
    from openccs.registry.component import RegistryComponent
    from openccs.traffic.component import Traffic

T = TypeVar("T")


@dataclass
class Subsystems:
    cloud: Cloud | None = None
    engine: Engine | None = None
    registry: RegistryComponent | None = None
    traffic: Traffic | None = None
    autoscaler: AutoscalerComponent | None = None
    logs: LogsComponent | None = None
    monitor: Monitor | None = None
    kube: KubeComponent | None = None
    faults: Faults | None = None


def need(subsystem: T | None, name: str) -> T:
    """The subsystem, which this caller cannot do without."""
    if subsystem is None:
        raise RuntimeError(f"the {name} subsystem is not part of this server")
    return subsystem
