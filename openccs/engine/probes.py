"""Liveness and readiness probes, as kubelet's prober: HTTP (a status from 200 to 399), TCP
(a connection) or a command (exit 0), every intervalTime after delayTime, healthNum
successes in a row to pass and unhealthNum failures in a row to fail.

Probes run in a pool of their own, so a slow one never holds up a node's pass; the agent
reads each container's latest verdict. A finished probe that may change the verdict (or
records a failure) wakes the node's cluster at once, through `notify`."""

from __future__ import annotations

import math
import shlex
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openccs.cloud.host import CloudError
from openccs.domain.spec import ContainerSpec, Probe
from openccs.engine import docker

_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="probe")
# Pods whose liveness probes fail on purpose (a fault in force), by uid: why they fail. Set
# as a whole by the fault keeper on each of its passes, read by the probes as they start.
_failing_liveness: dict[str, str] = {}


def fail_liveness(failing: dict[str, str]) -> None:
    """From now on the liveness probes of these pods (uid -> why) fail, and no others."""
    global _failing_liveness
    _failing_liveness = dict(failing)


def liveness_failure(uid: str) -> str | None:
    return _failing_liveness.get(uid)


def run_probe(probe: Probe, ip: str, sock: Path, container_id: str) -> tuple[bool, str]:
    """(passed, what happened) of one probe."""
    timeout = float(probe.timeout or 2)
    method = probe.method
    try:
        if method == "methodHttp":
            scheme = "https" if probe.protocol == "HTTPS" else "http"
            path = probe.path or "/"
            url = f"{scheme}://{ip}:{probe.port}{path if path.startswith('/') else '/' + path}"
            # As kubelet, HTTPS probes do not verify the certificate.
            r = httpx.get(url, timeout=timeout, verify=False)
            return 200 <= r.status_code < 400, f"HTTP probe failed with statuscode: {r.status_code}"
        if method == "methodTcp":
            with socket.create_connection((ip, int(probe.port)), timeout=timeout):
                return True, ""
        cmd = probe.cmd
        code = docker.exec_run(sock, container_id, ["sh", "-c", cmd], timeout=timeout)
        return code == 0, f"command {shlex.quote(cmd)} exited with {code}"
    except (OSError, httpx.HTTPError) as exc:
        return False, f"{method} to {ip} failed: {exc}"
    except CloudError as exc:
        return False, f"command probe failed: {exc.message[-200:]}"


@dataclass
class ProbeState:
    """One probe of one container instance (a restarted container starts afresh)."""

    probe: Probe
    started: float  # when the container started (epoch seconds)
    passing: bool = False
    successes: int = 0
    failures: int = 0
    last_run: float = 0.0
    last_message: str = ""
    running: Future[tuple[bool, str]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self, now: float) -> bool:
        return now >= self.next_run() and self.running is None

    def next_run(self) -> float:
        """When (epoch seconds) the next probe is due; inf while one runs."""
        if self.running is not None:
            return math.inf
        p = self.probe
        return max(self.started + float(p.delay or 0), self.last_run + float(p.interval or 10))

    def collect(self) -> str | None:
        """Take a finished probe's result into the counts; the failure message, if any."""
        fut = self.running
        if fut is None or not fut.done():
            return None
        self.running = None
        ok, message = fut.result()
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= (self.probe.health_num or 1):
                self.passing = True
            return None
        self.failures, self.successes = self.failures + 1, 0
        self.last_message = message
        if self.failures >= (self.probe.unhealth_num or 3):
            self.passing = False
        return message

    def start(
        self,
        ip: str,
        sock: Path,
        container_id: str,
        notify: Callable[[], None],
        failing: str | None = None,
    ) -> None:
        self.last_run = time.time()
        if failing is not None:
            self.running = _POOL.submit(lambda: (False, failing))
        else:
            self.running = _POOL.submit(run_probe, self.probe, ip, sock, container_id)

        def done(fut: Future[tuple[bool, str]]) -> None:
            ok = not fut.cancelled() and fut.exception() is None and fut.result()[0]
            # A pass of a passing probe that stays passing changes nothing: no wake.
            if not ok or not self.passing:
                notify()

        self.running.add_done_callback(done)


@dataclass
class ContainerProbes:
    live: ProbeState | None
    ready: ProbeState | None

    def step(
        self,
        ip: str,
        sock: Path,
        container_id: str,
        notify: Callable[[], None],
        live_failing: str | None = None,
    ) -> list[tuple[str, str]]:
        """Collect finished probes and start due ones; (kind, failure message) pairs.
        `live_failing`: the liveness probe fails with this message, whatever it checks."""
        now = time.time()
        failures = []
        for kind, st in (("Liveness", self.live), ("Readiness", self.ready)):
            if st is None:
                continue
            message = st.collect()
            if message:
                failures.append((kind, message))
            if st.due(now) and ip:
                failing = live_failing if st is self.live else None
                st.start(ip, sock, container_id, notify, failing)
        return failures

    def next_due(self) -> float:
        """When (epoch seconds) a pass should start the next probe."""
        return min((st.next_run() for st in (self.live, self.ready) if st), default=math.inf)

    @property
    def ready_now(self) -> bool:
        return self.ready is None or self.ready.passing

    @property
    def dead(self) -> bool:
        """The liveness probe failed unhealthNum times in a row."""
        return self.live is not None and not self.live.passing


def probes_for(container: Mapping[str, Any], started: float) -> ContainerProbes:
    """The probes of a container instance started at `started`; `container` is the
    container as the pod's template stores it (read once, by `ContainerSpec.from_v2`)."""
    spec = ContainerSpec.from_v2(container)
    live, ready = spec.live_probe, spec.ready_probe
    live_state = ProbeState(live, started, passing=True) if live else None
    return ContainerProbes(live=live_state, ready=ProbeState(ready, started) if ready else None)
