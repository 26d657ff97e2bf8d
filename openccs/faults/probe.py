"""A fault's probe loop: openccs GETs a URL of the account's load balancers through the
fault's window, one request at a time, and writes each second's requests sent and failed to
the store, so that a report can say what the service's users saw, also across a restart.

The loop runs while the fault is in force and on after it ends, until the URL has answered
for TAIL_OK seconds in a row (the service may heal only once the fault is gone) or TAIL_MAX
seconds have passed."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from openccs.faults.models import Fault, FaultSample
from openccs.log import get_logger, log_event
from openccs.store.db import Store
from openccs.timeutil import utcnow

log = get_logger("openccs.faults")
EVERY = 0.2  # seconds between requests
TIMEOUT = 2.0  # a request not answered by then failed
TAIL_OK = 5  # seconds of answers in a row after the fault's end that close the loop
TAIL_MAX = 120  # seconds after the fault's end the loop runs at most


@dataclass
class _Second:
    at: datetime
    sent: int = 0
    failed: int = 0
    error: str = ""


@dataclass
class ProbeLoop:
    """The probe loop of one fault, on a thread of its own."""

    store: Store
    fault_id: str
    url: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"probe-{self.fault_id}", daemon=True
        )
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        log_event(log, "fault probe started", fault=self.fault_id, url=self.url)
        current = _Second(at=_second(utcnow()))
        ok_since: datetime | None = None
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            while not self._stop.is_set():
                ok, error = _get(client, self.url)
                now = utcnow()
                if _second(now) != current.at:
                    if not self._flush(current, ok_since):
                        break
                    current = _Second(at=_second(now))
                current.sent += 1
                if not ok:
                    current.failed, current.error = current.failed + 1, error
                    ok_since = None
                elif ok_since is None:
                    ok_since = now
                self._stop.wait(EVERY)
        log_event(log, "fault probe stopped", fault=self.fault_id)

    def _flush(self, second: _Second, ok_since: datetime | None) -> bool:
        """Write a finished second; whether the loop goes on."""
        with self.store.session() as s:
            if second.sent:
                s.add(FaultSample(fault_id=self.fault_id, at=second.at, sent=second.sent,
                                  failed=second.failed, error=second.error[-300:]))  # fmt: skip
            fault = s.get(Fault, self.fault_id)
            if fault is None:
                return False
            if fault.state == "active" or fault.ended_at is None:
                return True
            healed = ok_since is not None and utcnow() - max(ok_since, fault.ended_at) >= (
                timedelta(seconds=TAIL_OK)
            )
            if healed or probe_over(fault):
                fault.params = {**fault.params, "probeDone": True}
                return False
        return True


def probe_over(fault: Fault) -> bool:
    """The fault has ended longer ago than a probe loop runs after it."""
    return fault.ended_at is not None and utcnow() - fault.ended_at >= timedelta(seconds=TAIL_MAX)


def _get(client: httpx.Client, url: str) -> tuple[bool, str]:
    try:
        r = client.get(url)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if r.status_code >= 500:
        return False, f"HTTP {r.status_code}"
    return True, ""


def _second(at: datetime) -> datetime:
    return at.replace(microsecond=0)
