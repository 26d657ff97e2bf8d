"""What a fault did, read from the store: for each service it touched, the pods lost and
started in the fault's window, the warnings seen, and when the service was back at full
strength (every replica ready again); and, when openccs ran a probe loop through the
fault, the requests sent to the load balancer, those that failed, and when they stopped
failing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.faults.component import describe
from openccs.faults.models import Fault, FaultSample
from openccs.store.models import Event, Pod, Service
from openccs.timeutil import fmt_time

# Event reasons that mean a pod (or its container) was lost.
LOST = ("NodeNotReady", "Killing")


def fault_report(s: Session, fault: Fault) -> dict[str, Any]:
    start = fault.started_at
    services = _touched(s, fault)
    rows = [_service_report(s, fault, ns, name, start) for ns, name in services]
    return {**describe(fault), "services": rows, "probe": _probe_report(s, fault)}


def _probe_report(s: Session, fault: Fault) -> dict[str, Any] | None:
    url = fault.params.get("probeUrl")
    if not url:
        return None
    seconds = list(
        s.scalars(
            select(FaultSample).where(FaultSample.fault_id == fault.id).order_by(FaultSample.at)
        )
    )
    failed = [x for x in seconds if x.failed]
    last = failed[-1] if failed else None
    return {
        "url": url,
        "running": not fault.params.get("probeDone"),
        "requests": sum(x.sent for x in seconds),
        "failed": sum(x.failed for x in seconds),
        "firstFailedTime": fmt_time(failed[0].at) if failed else "",
        "lastFailedTime": fmt_time(last.at) if last else "",
        "lastError": last.error if last else "",
        # From the fault's start to the end of the last second with a failed request.
        "secondsToRecovery": round((last.at - fault.started_at).total_seconds() + 1, 1)
        if last
        else 0.0,
    }


def _touched(s: Session, fault: Fault) -> list[tuple[str, str]]:
    found = {(str(a), str(b)) for a, b in fault.params.get("services", [])}
    if fault.pod:
        name = s.scalars(
            select(Event.service).where(
                Event.cluster_id == fault.cluster_id,
                Event.namespace == fault.namespace,
                Event.obj_name == fault.pod,
                Event.service != "",
            )
        ).first()
        if name:
            found.add((fault.namespace, name))
    return sorted(found)


def _service_report(
    s: Session, fault: Fault, ns: str, name: str, start: datetime
) -> dict[str, Any]:
    events = list(
        s.scalars(
            select(Event).where(
                Event.cluster_id == fault.cluster_id,
                Event.namespace == ns,
                Event.service == name,
                Event.last_seen >= start,
            )
        )
    )
    reasons = Counter(e.reason for e in events for _ in range(_count_in(e, start)))
    # A node's own events (NodeNotReady...) are not pods lost.
    lost = Counter(
        e.reason for e in events if e.obj_type == "Pod" for _ in range(_count_in(e, start))
    )
    svc = s.scalars(
        select(Service).where(
            Service.cluster_id == fault.cluster_id, Service.namespace == ns, Service.name == name
        )
    ).first()
    entry: dict[str, Any] = {
        "namespace": ns,
        "serviceName": name,
        "podsLost": sum(lost[r] for r in LOST),
        "podsStarted": 0,
        "restarts": reasons["Started"],
        "warnings": {r: n for r, n in sorted(reasons.items()) if r not in ("Created", "Started")},
        "recoveredTime": "",
        "secondsToRecovery": None,
    }
    if svc is None:
        entry["state"] = "deleted"
        return entry
    pods = list(s.scalars(select(Pod).where(Pod.service_id == svc.id, Pod.deleting.is_(False))))
    entry["podsStarted"] = sum(1 for p in pods if p.created_at >= start)
    ready = [p for p in pods if p.status.get("ready") and p.ready_since is not None]
    if len(ready) < svc.replicas:
        entry["state"] = "degraded"
        return entry
    back = max((p.ready_since for p in ready if p.ready_since is not None), default=start)
    entry["state"] = "full strength"
    if back > start:
        entry["recoveredTime"] = fmt_time(back)
        entry["secondsToRecovery"] = round((back - start).total_seconds(), 1)
    else:
        entry["secondsToRecovery"] = 0.0
    return entry


def _count_in(event: Event, start: datetime) -> int:
    # A de-duplicated event counts its repeats; those before the fault are not the fault's.
    return event.count if event.first_seen >= start else 1
