"""The fault keeper: starts faults (record first, then the break), ends them on time or on
demand, and after a restart ends what came due while openccs was down. Every start and end
is an event of the services it touches."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from openccs.cloud.host import CloudError
from openccs.components import PassLoop
from openccs.domain.workloads import record_event, record_node_event, services_on
from openccs.faults.backend import (
    MACHINE_KINDS,
    ONE_SHOT,
    Backend,
    FaultError,
    PodRef,
    sync_liveness,
)
from openccs.faults.models import Fault
from openccs.faults.probe import ProbeLoop, probe_over
from openccs.ids import new_id
from openccs.log import get_logger, log_event
from openccs.store.models import Instance, Pod, Service
from openccs.subsystems import need
from openccs.timeutil import fmt_time, utcnow

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.faults")
INTERVAL = 1.0
# The settings of a fault a client sees (the others are the keeper's own notes).
SHOWN = ("direction", "percent", "machines", "probeUrl", "which", "fillBytes")


@dataclass
class FaultSpec:
    account_id: int
    kind: str
    duration: int
    cluster_id: str = ""
    instance_id: str = ""
    namespace: str = ""
    pod: str = ""
    params: dict[str, Any] | None = None


class Faults:
    name = "faults"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self._lock = threading.Lock()
        self._loop = PassLoop("faults", self.run_pass, INTERVAL, log)
        self._probes: dict[str, ProbeLoop] = {}

    @property
    def backend(self) -> Backend:
        registry = self.services.subsystems.registry
        rt = registry.rt if registry is not None else None
        port = rt.daemon.port if rt is not None else None
        return Backend(need(self.services.subsystems.cloud, "cloud"), registry_port=port)

    # -- the component ---------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        self._loop.start()  # its first pass ends what came due while openccs was down

    async def stop(self) -> None:
        await self._loop.stop()
        for loop in list(self._probes.values()):
            loop.stop()
        self._probes.clear()

    # -- starting and ending ---------------------------------------------------------------
    def start_fault(self, spec: FaultSpec) -> str:
        """Record the fault, then inject it; a failed injection is undone and raised."""
        with self._lock:
            prepared = self._prepare(spec)
            with self.store.session() as s:
                clash = _clash(s, spec)
                if clash is not None:
                    raise FaultError(
                        f"{spec.instance_id or spec.pod} already has the active fault {clash}:"
                        " end it first"
                    )
                params = dict(spec.params or {})
                if spec.instance_id and not spec.pod:
                    params["services"] = [list(r) for r in services_on(s, spec.instance_id)]
                params.update(prepared)
                now = utcnow()
                fault = Fault(
                    id=new_id("flt"), account_id=spec.account_id, kind=spec.kind,
                    cluster_id=spec.cluster_id, instance_id=spec.instance_id,
                    namespace=spec.namespace, pod=spec.pod, params=params,
                    duration=spec.duration, state="active", started_at=now,
                    ends_at=now + timedelta(seconds=spec.duration),
                )  # fmt: skip
                s.add(fault)
                fault_id = fault.id
            # Committed before anything is broken: a crash from here on is repaired on time.
            with self.store.session() as s:
                fault = _get(s, fault_id)
                try:
                    self.backend.inject(s, fault)
                except (FaultError, CloudError, OSError) as exc:
                    why = exc.message if isinstance(exc, CloudError) else str(exc)
                    self._finish(s, fault, "failed", f"not injected: {why}")
                    raise FaultError(why) from exc
                _events(s, fault, "FaultInjected", f"{_what(fault)} for {fault.duration} s")
                if fault.kind in ONE_SHOT:
                    self._finish(s, fault, "ended", "done")
        self._loop.wake()
        return fault_id

    def _prepare(self, spec: FaultSpec) -> dict[str, Any]:
        """What the backend records with the fault, read from the machine outside any
        transaction (read, work, write)."""
        params = spec.params or {}
        pod = None
        if "podId" in params:
            with self.store.session() as s:
                pod = PodRef.of(s, int(params["podId"]))
        try:
            return self.backend.prepare(spec.kind, params, pod)
        except CloudError as exc:
            raise FaultError(exc.message) from exc

    def end_fault(self, fault_id: str) -> None:
        with self._lock, self.store.session() as s:
            fault = _get(s, fault_id)
            if fault.state == "active":
                self._restore(s, fault, "ended before its time")

    def run_pass(self) -> None:
        now = utcnow()
        with self.store.session() as s:
            due = list(
                s.scalars(select(Fault.id).where(Fault.state == "active", Fault.ends_at <= now))
            )
            sync_liveness(s)  # also after a restart: the prober's set lives in memory
        self._run_probes()
        for fault_id in due:
            with self._lock, self.store.session() as s:
                fault = _get(s, fault_id)
                if fault.state == "active":
                    self._restore(s, fault, "ended on time")

    def _run_probes(self) -> None:
        """A probe loop for each fault that asked for one and whose loop is not over (a
        restart of openccs resumes them; one that came due meanwhile is closed)."""
        with self.store.session() as s:
            wanted = {}
            for fault in s.scalars(select(Fault).where(Fault.state != "failed")):
                url = fault.params.get("probeUrl")
                if not url or fault.params.get("probeDone"):
                    continue
                if fault.state != "active" and probe_over(fault):
                    fault.params = {**fault.params, "probeDone": True}
                    continue
                wanted[fault.id] = str(url)
        for fault_id, url in wanted.items():
            loop = self._probes.get(fault_id)
            if loop is None or not loop.alive():
                self._probes[fault_id] = loop = ProbeLoop(self.store, fault_id, url)
                loop.start()
        for fault_id in [f for f, loop in self._probes.items() if not loop.alive()]:
            del self._probes[fault_id]

    def _restore(self, s: Session, fault: Fault, how: str) -> None:
        try:
            self.backend.restore(s, fault)
        except (FaultError, CloudError, OSError) as exc:
            # Stays active: the next pass tries again (restoring is idempotent).
            why = exc.message if isinstance(exc, CloudError) else str(exc)
            log_event(log, "fault restore failed", fault=fault.id, error=why[-300:])
            fault.message = f"restore failed, retrying: {why[-300:]}"
            return
        self._finish(s, fault, "ended", how)
        _events(s, fault, "FaultEnded", f"{_what(fault)}: {how}")

    @staticmethod
    def _finish(s: Session, fault: Fault, state: str, message: str) -> None:
        fault.state, fault.message, fault.ended_at = state, message, utcnow()
        log_event(log, "fault " + state, fault=fault.id, kind=fault.kind, message=message)


def _get(s: Session, fault_id: str) -> Fault:
    fault = s.get(Fault, fault_id)
    assert fault is not None
    return fault


def _clash(s: Session, spec: FaultSpec) -> str | None:
    """An active fault of the same kind on the same target; or, for the kinds that take a
    machine down, any of them (two would undo each other)."""
    q = select(Fault).where(
        Fault.state == "active",
        Fault.instance_id == spec.instance_id,
        Fault.cluster_id == spec.cluster_id,
    )
    for other in s.scalars(q):
        if other.kind == spec.kind and other.pod == spec.pod:
            return other.id
        if other.kind in MACHINE_KINDS and spec.kind in MACHINE_KINDS:
            return other.id
    return None


def _what(fault: Fault) -> str:
    if fault.pod:
        target = f"pod {fault.pod}"
    elif fault.instance_id:
        target = f"machine {fault.instance_id}"
    else:
        target = f"the machines of {fault.cluster_id}"
    extra = ", ".join(f"{k}={v}" for k, v in sorted(fault.params.items()) if k in SHOWN)
    return f"fault {fault.id} ({fault.kind}{', ' + extra if extra else ''}) on {target}"


def _events(s: Session, fault: Fault, reason: str, message: str) -> None:
    """One event per service the fault touches (its pods' services), on the node or pod."""
    if not fault.cluster_id:
        return
    level = "Warning" if reason == "FaultInjected" else "Normal"
    if fault.pod:
        pod = s.scalars(
            select(Pod).where(
                Pod.cluster_id == fault.cluster_id,
                Pod.namespace == fault.namespace,
                Pod.name == fault.pod,
            )
        ).first()
        svc = s.get(Service, pod.service_id) if pod is not None and pod.service_id else None
        record_event(s, fault.cluster_id, fault.namespace, svc.name if svc else "", "Pod",
                     fault.pod, reason, message, level)  # fmt: skip
        return
    ins = s.get(Instance, fault.instance_id)
    node = ins.lan_ip if ins is not None else fault.instance_id or fault.cluster_id
    # The services of the fault's start too: their pods may have been replaced since.
    machines = fault.params.get("machines") or [fault.instance_id]
    touched = {row for m in machines for row in services_on(s, m)}
    touched |= {(str(a), str(b)) for a, b in fault.params.get("services", [])}
    if fault.instance_id:
        record_node_event(s, fault.cluster_id, node, touched, reason, message, level)
        return
    for ns, svc_name in sorted(touched or {("default", "")}):
        text = f"{message} (service {svc_name})" if svc_name else message
        record_event(s, fault.cluster_id, ns, svc_name, "Cluster", node, reason, text, level)


def describe(fault: Fault) -> dict[str, Any]:
    return {
        "faultId": fault.id,
        "kind": fault.kind,
        "clusterId": fault.cluster_id,
        "instanceId": fault.instance_id,
        "namespace": fault.namespace,
        "podName": fault.pod,
        "params": {k: v for k, v in fault.params.items() if k in SHOWN},
        "duration": fault.duration,
        "state": fault.state,
        "message": fault.message,
        "startTime": fmt_time(fault.started_at),
        "endTime": fmt_time(fault.ends_at),
        "endedTime": fmt_time(fault.ended_at) if fault.ended_at else "",
    }


def component(services: Services) -> Faults:
    faults = Faults(services)
    services.subsystems.faults = faults
    return faults
