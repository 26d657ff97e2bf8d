"""The node agent (kubelet) of one machine: makes its dockerd run the pods assigned to it.

A pod is a pause container holding the network namespace (and so the pod IP, from the
node's pod CIDR on docker0) plus one container per `containers.n`, joined to it, as
dockershim did. Containers carry labels naming their pod, so after a restart of openccs
the agent finds them again instead of starting them twice. Exited containers are started
again with exponential back-off (CrashLoopBackOff); images are pulled when missing, with
back-off on failure (ErrImagePull, ImagePullBackOff).

Volumes are resolved inside their root (the machine's disk for a hostPath) by
`cloud.safepath` and handed to dockerd as bind mounts under the machine's runtime dir, so a
link a tenant puts on the disk never leads dockerd out of it; a volume that would leave its
root keeps the container from starting (a FailedMount event says why).

The agent does not wait for the next pass to notice a change: dockerd's event stream (a pod
container started, died, was OOM-killed or removed), a finished probe and a finished stop
call `notify`, which wakes the passes of the machine's cluster; each pass also says when
the next one is due at the latest (a probe or a back-off that expires). A pass that finds
nothing changed (the machine's generation: its pods, its row, its cluster's row; the
machine's containers) and nothing due ends after listing the containers. It does not even
list them when nothing can have changed them: its machine's generation is that of the last
complete pass, nothing is due or being stopped, and the event stream has been connected
without a break since the last list with no event since (dockerd reports what happens to a
pod's containers: started, died, removed). A stream that broke, is down or has not
connected yet makes the pass list (and its reconnection makes the next pass work), a death
or removal an event reported that the list does not show yet (dockerd sends the event
first) makes the pass look again a moment later, and a full pass (no generation) always
lists, so what no event reports (an event dockerd dropped for a reader that fell behind) is
still caught within a full resync. So a quiet machine's resync, and a pod starting on
another machine of the cluster, cost no Engine API call at all
(`openccs_agent_passes_total` counts the three kinds of passes: worked, quiet, skipped).

A pod starts in as few round trips as dockerd allows: the pause container is created and
started in the background while the app containers are created (they name the pause
container, which dockerd resolves when they start), its address is read while they start,
images already seen on the machine are not asked for again. Pods that need starting go a
few at a time in parallel, in batches, on threads of the machine's own.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.backoff import Backoff, Policy
from openccs.cloud import safepath
from openccs.cloud.host import CloudError
from openccs.domain.spec import ContainerSpec
from openccs.domain.workloads import record_event
from openccs.engine import dns, docker
from openccs.engine.docker import POD_LABEL, DockerError
from openccs.engine.probes import ContainerProbes, liveness_failure, probes_for
from openccs.instruments import AGENT_PASSES
from openccs.log import get_logger, log_event
from openccs.store.models import Pod, Service
from openccs.timeutil import utcnow

log = get_logger("openccs.engine.agent")

PAUSE_IMAGE = "openccs/pause:1"
BUILTIN_IMAGES = {PAUSE_IMAGE: ['CMD ["sleep", "2147483647"]'], "openccs/busybox:latest": []}
# A crashed container restarts, a failed pull is tried again, after 10 s, 20 s... 300 s.
CRASH_BACKOFF = PULL_BACKOFF = Policy(start=10.0, cap=300.0)
# Pause containers are created and started here while the agent creates the pod's other
# containers (a task never waits for another of this pool, so it cannot run dry).
_STARTS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="sandbox")
STOP_GRACE = 5
# Per machine: pods started at once in a pass (kubelet's pod workers), stops waiting out
# their grace period. Each machine has its own threads, so one tenant's hundred pods never
# queue another tenant's pod behind them.
POD_STARTS, POD_STOPS = 4, 8
START_BATCH = 16  # pods started by one pass of a machine; the next pass starts the rest
RESOLVE_RETRY = 5.0  # an image whose pull address is not known yet is looked up again
# dockerd reports a container's death before its container list shows it: a pass that
# still finds a dead container running (or a removed one listed) looks again this soon,
# for at most LAG_FOR seconds after the event.
LAG_RETRY, LAG_FOR = 0.1, 10.0


@dataclass
class NodeAgent:
    node_id: str
    cluster_id: str
    socket: Path
    root_dir: Path
    # (pod, image) -> (the name this machine pulls it by, credentials or None)
    resolve_image: Any
    dns_ip: str
    pulls: dict[tuple[str, str], Backoff] = field(default_factory=dict)
    pulled: set[tuple[str, str]] = field(default_factory=set)
    probes: dict[str, ContainerProbes] = field(default_factory=dict)
    killing: dict[str, Future[None]] = field(default_factory=dict)
    seen_containers: set[str] = field(default_factory=set)
    images_ready: bool = False
    # Wakes the passes of the machine's cluster (called from any thread).
    notify: Callable[[], None] = lambda: None
    # Images seen on the machine: a pod start asks dockerd once per image, not per pod.
    images: set[str] = field(default_factory=set)
    # time.monotonic() by which a pass is needed (a probe due, a back-off over), or inf.
    next_due: float = math.inf
    closed: bool = False
    # Set by whatever may change what a pass would do (a dockerd event, a probe result, a
    # finished stop): the next pass works even if the database and the containers look
    # the same as at the last one.
    dirty: bool = True
    # What the last complete pass worked from: the machine's generation (committed changes
    # of what a pass reads) and the containers (id, state, address); a pass that finds both
    # unchanged, nothing due and nothing pending ends after listing the containers.
    synced: tuple[Any, ...] | None = None
    # The event stream: (connected, breaks so far), one tuple so that a pass reads both at
    # once (the stream's thread sets it); and what it was when the pass last listed the
    # containers. A pass skips the list only when they are the same and connected.
    stream: tuple[bool, int] = (False, 0)
    listed_with: tuple[bool, int] | None = None
    # Containers that died or were removed, as the events said: id -> (event, when); a
    # pass whose list does not show it yet looks again shortly (LAG_RETRY).
    reported: dict[str, tuple[str, float]] = field(default_factory=dict)
    # Held while the pass writes (the engine's writers queue here rather than in SQLite's
    # busy handler, which lets a waiting writer starve).
    write_lock: Any = field(default_factory=threading.Lock)
    _due_lock: threading.Lock = field(default_factory=threading.Lock)
    _starts: ThreadPoolExecutor | None = None
    _stops: ThreadPoolExecutor | None = None

    # -- dockerd's events ------------------------------------------------------------------
    def watch(self) -> None:
        """Follow the machine's dockerd events in a thread of its own until `close()`."""
        threading.Thread(
            target=docker.watch_events,
            args=(self.socket, self._event_seen, lambda: self.closed, self._stream),
            name=f"events-{self.node_id}",
            daemon=True,
        ).start()

    def _event_seen(self, event: dict[str, Any]) -> None:
        """A pod container's event: the next pass works, and runs at once."""
        cid = str(event.get("id") or "")
        action = str(event.get("Action") or event.get("status") or "")
        with self._due_lock:
            if action in ("die", "destroy") and cid:
                self.reported[cid] = (action, time.monotonic())
            elif action == "start":  # started again (by hand): no longer dead
                self.reported.pop(cid, None)
        self.poke()

    def _lagging(self, listed: list[dict[str, Any]]) -> bool:
        """Whether the list does not show yet what the events reported (a dead container
        still running, a removed one still there)."""
        states = {c["Id"]: c.get("State") for c in listed}
        now = time.monotonic()
        with self._due_lock:
            for cid, (action, when) in list(self.reported.items()):
                shown = cid not in states or (action == "die" and states[cid] != "running")
                if shown or now - when > LAG_FOR:
                    del self.reported[cid]
            return bool(self.reported)

    def _stream(self, up: bool) -> None:
        """The event stream opened (`up`) or broke. One that opens after a break or for the
        first time may have missed events: the next pass works, and runs at once."""
        was_up, breaks = self.stream
        if up:
            self.stream = (True, breaks)
            if not was_up:
                self.poke()
        else:
            self.stream = (False, breaks + 1)

    def poke(self) -> None:
        """Something of this machine changed: its next pass works, and it runs at once."""
        self.dirty = True
        self.notify()

    def close(self) -> None:
        with self._due_lock:  # no pass under way counts after its series are gone
            self.closed = True
            AGENT_PASSES.forget(self.node_id)
        for pool in (self._starts, self._stops):
            if pool is not None:
                pool.shutdown(wait=False)

    def _pool(self, kind: str) -> ThreadPoolExecutor:
        if kind == "starts":
            if self._starts is None:
                self._starts = ThreadPoolExecutor(POD_STARTS, f"pods-{self.node_id}")
            return self._starts
        if self._stops is None:
            self._stops = ThreadPoolExecutor(POD_STOPS, f"stops-{self.node_id}")
        return self._stops

    def _count(self, outcome: str) -> None:
        with self._due_lock:
            if not self.closed:
                AGENT_PASSES.inc(self.node_id, outcome)

    def _due_in(self, seconds: float) -> None:
        with self._due_lock:  # pods of a pass run in several threads
            self.next_due = min(self.next_due, time.monotonic() + max(0.0, seconds))

    # -- the whole node ----------------------------------------------------------------
    def sync(self, store: Any, generation: Any = None, full: bool = False) -> None:
        """One pass. The database is read, then the machine is worked on with no transaction
        open (docker calls can take seconds), then what changed is written in one go.

        `generation` names the state of what a pass reads in the database (the machine's
        generation, `Engine.machine_generation`, read before the pass; None when unknown). A
        `full` pass lists and works whatever it says, and leaves it as the one it worked
        from, so the pass after a full one skips again when nothing changed. A pass that
        finds it as the last complete pass left it, with nothing due, nothing poked and no
        stop under way, ends without a call when the event stream says the containers cannot
        have changed (`_skips`), else after the container list when it finds them unchanged
        too."""
        if self.closed:  # its machine left the engine while this pass was on its way
            return
        if not self.images_ready:
            self._ensure_builtin_images()
        poked, self.dirty = self.dirty, False
        stream = self.stream  # before the list: a break during it makes the next pass list
        unchanged = (
            not full
            and not poked
            and generation is not None
            and self.synced is not None
            and generation == self.synced[0]
            and not self.killing
            and time.monotonic() < self.next_due
        )
        if unchanged and self._skips(stream):
            self._count("skipped")
            return
        try:
            listed = docker.pod_containers(self.socket)
        except BaseException:
            self.dirty = True
            raise
        self.listed_with = stream
        seen = (generation, _fingerprint(listed))
        lagging = self._lagging(listed)
        if unchanged and seen == self.synced:
            self._count("quiet")
        else:
            self._count("worked")
            self.synced = None
            try:
                if self._sync(store, listed):
                    self.synced = seen
            except BaseException:
                self.dirty = True
                raise
        if lagging:
            self._due_in(LAG_RETRY)

    def _skips(self, stream: tuple[bool, int]) -> bool:
        """Whether the containers need no list, the rest being as the last pass left it:
        the event stream connected, and without a break since the last list (every
        change of a pod container since then came as an event, which pokes the agent)."""
        return stream[0] and stream == self.listed_with

    def _sync(self, store: Any, listed: list[dict[str, Any]]) -> bool:
        """The pass proper; False when pods were left for the next one."""
        found: dict[str, list[dict[str, Any]]] = {}
        for c in listed:
            found.setdefault(c["Labels"][POD_LABEL], []).append(c)
        with store.session() as s:
            pods = list(s.scalars(select(Pod).where(Pod.node_id == self.node_id)))
            names = {
                svc.id: svc.name
                for svc in s.scalars(
                    select(Service).where(Service.id.in_({p.service_id for p in pods}))
                )
            }
        work = _Work(names)
        self.seen_containers = set()
        self.next_due = math.inf

        def one(pod: Pod) -> None:
            before = (dict(pod.status), pod.ready_since)
            try:
                if pod.deleting:
                    if self._kill(work, pod, found.get(pod.uid, [])):
                        work.gone.append(pod.id)
                else:
                    self._sync_pod(work, pod, found.get(pod.uid, []))
                    if (pod.status, pod.ready_since) != before:
                        work.updates[pod.id] = (pod.status, pod.ready_since)
            except CloudError as exc:
                log_event(
                    log, "pod sync failed", pod=pod.name, node=self.node_id, error=exc.message
                )

        # Pods that need containers started go in parallel (a few at a time), at most a
        # batch per pass, so statuses reach the database while a hundred pods start.
        starting = [p for p in pods if not p.deleting and _needs_start(p, found.get(p.uid, []))]
        later = starting[START_BATCH:]
        starting = starting[:START_BATCH]
        busy = {p.id for p in starting} | {p.id for p in later}
        for pod in pods:
            if pod.id not in busy:
                one(pod)
        if len(starting) == 1:
            one(starting[0])
        elif starting:
            list(self._pool("starts").map(one, starting))
        with self.write_lock, store.session() as s:
            work.apply(s)
        self.probes = {k: v for k, v in self.probes.items() if k in self.seen_containers}
        known = {p.uid for p in pods}
        self.pulled = {k for k in self.pulled if k[0] in known}
        self.pulls = {k: v for k, v in self.pulls.items() if k[0] in known}
        for uid, containers in found.items():
            if uid not in known:  # a pod that no longer exists (deleted while we were away)
                for c in containers:
                    docker.remove(self.socket, c["Id"])
                self._remove_pod_dirs(uid)
        if self._binds_area.exists():
            for uid in set(os.listdir(self._binds_area)) - known - set(found):
                safepath.release(self._binds_area / uid)  # left by a pass that crashed
        if later:
            self.poke()
        return not later

    def _ensure_builtin_images(self) -> None:
        from openccs.cloud.images import import_busybox_image

        for ref, changes in BUILTIN_IMAGES.items():
            if not docker.image_present(self.socket, ref):
                import_busybox_image(self.socket, ref, changes)
        self.images_ready = True

    def _pod_dir(self, uid: str) -> Path:
        return self.root_dir / "pods" / uid

    @property
    def _binds_area(self) -> Path:
        # In the machine's runtime dir (beside its docker socket): no tenant writes there,
        # and a machine's destroy and the sweep unmount everything below it.
        return self.socket.parent / "binds"

    def _remove_pod_dirs(self, uid: str) -> None:
        safepath.release(self._binds_area / uid)  # before anything is deleted
        shutil.rmtree(self._pod_dir(uid), ignore_errors=True)

    # -- one pod -------------------------------------------------------------------------
    def _kill(self, s: _Work, pod: Pod, containers: list[dict[str, Any]]) -> bool:
        """Stop a pod's containers (with the grace period) in the background, so one slow
        stop never holds up the node; True once everything of the pod is gone."""
        running = self.killing.get(pod.uid)
        if running is None:
            for c in containers:
                if c["Labels"].get("openccs.role") != "pause" and c["State"] == "running":
                    name = c["Labels"].get("openccs.container")
                    self._event(s, pod, "Killing", f"Stopping container {name}")
            ids = [c["Id"] for c in containers]
            self.killing[pod.uid] = self._pool("stops").submit(self._stop_and_remove, pod.uid, ids)
            self.killing[pod.uid].add_done_callback(lambda _f: self.poke())
            return False
        if not running.done():
            return False
        del self.killing[pod.uid]
        running.result()  # a failure raises here and the next pass tries again
        return True

    def _stop_and_remove(self, uid: str, ids: list[str]) -> None:
        for cid in ids:  # apps first (the pause container was created first, so it is last)
            docker.stop(self.socket, cid, STOP_GRACE)
        for cid in ids:
            docker.remove(self.socket, cid)
        self._remove_pod_dirs(uid)

    def _sync_pod(self, s: _Work, pod: Pod, containers: list[dict[str, Any]]) -> None:
        pause = next((c for c in containers if c["Labels"].get("openccs.role") == "pause"), None)
        if pause is not None and pause["State"] != "running":
            # The sandbox died: the pod starts over, as kubelet recreates a dead sandbox.
            for c in containers:
                docker.remove(self.socket, c["Id"])
            containers, pause = [], None
        sandbox: Future[str] | None = None
        started: Future[None] | None = None
        if pause is None:
            # dockerd creates and starts the sandbox while the app containers are created
            # (they join it by name); they start once it runs.
            pause_id, started, sandbox = self._launch_sandbox(pod)
            ip = ""
        else:
            # The container list carries the address: no inspect per pod and pass.
            pause_id = pause["Id"]
            networks = (pause.get("NetworkSettings") or {}).get("Networks") or {}
            ip = (networks.get("bridge") or {}).get("IPAddress", "")
        statuses = []
        for spec in pod.template.get("containers", []):
            mine = [
                c
                for c in containers
                if c["Labels"].get("openccs.container") == spec["containerName"]
            ]
            statuses.append(
                self._sync_container(s, pod, spec, mine, pause_id, ip, _waiter(started))
            )
        if sandbox is not None:
            ip = sandbox.result()
        ready = bool(statuses) and all(st["ready"] for st in statuses)
        status = {"ip": ip, "ready": ready, "containers": statuses, "reason": ""}
        waiting = [st for st in statuses if st["status"] != "Running"]
        if waiting:
            status["reason"] = waiting[0]["reason"]
        if ready and not pod.status.get("ready"):
            pod.ready_since = utcnow()
        elif not ready:
            pod.ready_since = None
        if status != pod.status:
            pod.status = status

    def _labels(self, pod: Pod, **extra: str) -> dict[str, str]:
        return {
            POD_LABEL: pod.uid,
            "openccs.pod": pod.name,
            "openccs.namespace": pod.namespace,
            "openccs.cluster": pod.cluster_id,
            **extra,
        }

    def _launch_sandbox(self, pod: Pod) -> tuple[str, Future[None], Future[str]]:
        """Create and start the pod's pause container in the background: its name (what the
        pod's containers join: dockerd resolves it when they start), a future done once it
        runs, and one with its IP address (asked for while the app containers start)."""
        name = f"k8s_POD_{pod.name}_{pod.namespace}_{pod.uid[:8]}"
        started: Future[None] = Future()

        def run() -> str:
            try:
                cid = self._create_pause(pod, name)
                docker.start(self.socket, cid)
            except BaseException as exc:
                started.set_exception(exc)
                raise
            started.set_result(None)
            info = docker.inspect(self.socket, cid) or {}
            return str((info.get("NetworkSettings") or {}).get("IPAddress", ""))

        return name, started, _STARTS.submit(run)

    def _create_pause(self, pod: Pod, name: str) -> str:
        cid = docker.create(
            self.socket,
            name,
            {
                "Image": PAUSE_IMAGE,
                "Hostname": pod.name[:63],
                "Labels": self._labels(pod, **{"openccs.role": "pause"}),
                "HostConfig": {
                    "NetworkMode": "bridge",
                    # The pod's resolver: the cluster DNS, with the namespace's search path.
                    "Dns": [self.dns_ip],
                    "DnsSearch": dns.search_domains(pod.namespace),
                    "DnsOptions": ["ndots:5"],
                },
                "StopSignal": "SIGKILL",
            },
        )
        return cid

    def _sync_container(
        self,
        s: _Work,
        pod: Pod,
        spec: dict[str, Any],
        mine: list[dict[str, Any]],
        pause_id: str,
        ip: str,
        sandbox_ready: Callable[[], None],
    ) -> dict[str, Any]:
        """One container's status, after starting it if it is not running. A container
        joins the pod's network, so it starts once `sandbox_ready()` returned."""
        cname = spec["containerName"]
        image = spec["image"]
        mine.sort(key=lambda c: int(c["Labels"].get("openccs.restart", "0")))
        latest = mine[-1] if mine else None
        base = {"name": cname, "image": image, "containerId": "", "restartCount": 0}
        if latest is not None:
            restarts = int(latest["Labels"].get("openccs.restart", "0"))
            base.update(containerId=latest["Id"], restartCount=restarts)
            if latest["State"] == "running":
                return self._probe(s, pod, spec, latest, ip, base)
            details = docker.inspect(self.socket, latest["Id"]) or {}
            state = details.get("State") or {}
            finished = _parse_time(state.get("FinishedAt"))
            # Recomputed at each pass: the same jitter for one exited container.
            delay = CRASH_BACKOFF.stable_delay(restarts + 1, latest["Id"])
            if finished is not None and (time.time() - finished) < delay:
                self._due_in(finished + delay - time.time())
                self._event(
                    s, pod, "BackOff", f"Back-off restarting failed container {cname}", "Warning"
                )
                return {**base, "status": "Waiting", "reason": "CrashLoopBackOff", "ready": False}
            for old in mine[:-1]:  # keep only the last exited container (for its logs)
                docker.remove(self.socket, old["Id"])
            next_restart = restarts + 1
        else:
            next_restart = 0
        try:
            ref, auth = self.resolve_image(pod, image)
        except Exception as exc:  # e.g. the registry not yet served on this subnet
            # Nothing in the database says when that changes: the pass asks to come back.
            self._due_in(RESOLVE_RETRY)
            self._event(s, pod, "Failed", f'Failed to pull image "{image}": {exc}', "Warning")
            return {**base, "status": "Waiting", "reason": "ErrImagePull", "ready": False}
        pulled = self._ensure_image(s, pod, ref, auth)
        if pulled is not None:
            return {**base, "status": "Waiting", "reason": pulled, "ready": False}
        try:
            binds = self._binds(pod, spec)
        except VolumeError as exc:
            self._event(s, pod, "FailedMount", str(exc), "Warning")
            return {**base, "status": "Waiting", "reason": "CreateContainerConfigError",
                    "ready": False}  # fmt: skip
        try:
            cid = docker.create(
                self.socket,
                f"k8s_{cname}_{pod.name}_{pod.namespace}_{pod.uid[:8]}_{next_restart}",
                self._container_config(pod, {**spec, "image": ref}, pause_id, next_restart, binds),
            )
            self._event(s, pod, "Created", f"Created container {cname}")
            sandbox_ready()
            docker.start(self.socket, cid)
        except CloudError as exc:
            if "No such image" in exc.message:  # removed behind our back: pull it again
                self.images.discard(ref)
            self._event(s, pod, "Failed", f"Error: {exc.message[-300:]}", "Warning")
            return {**base, "status": "Waiting", "reason": "CreateContainerError", "ready": False}
        self._event(s, pod, "Started", f"Started container {cname}")
        return {
            **base,
            "containerId": cid,
            "restartCount": next_restart,
            "status": "Running",
            "reason": "",
            "ready": True,
        }

    def _probe(
        self,
        s: _Work,
        pod: Pod,
        spec: dict[str, Any],
        container: dict[str, Any],
        ip: str,
        base: dict[str, Any],
    ) -> dict[str, Any]:
        """A running container's readiness, and its restart when its liveness fails."""
        cid = container["Id"]
        checks = self.probes.get(cid)
        if checks is None:
            checks = self.probes[cid] = probes_for(spec, float(container.get("Created") or 0))
        self.seen_containers.add(cid)
        failing = liveness_failure(pod.uid)  # a fault in force
        for kind, message in checks.step(ip, self.socket, cid, self.poke, failing):
            self._event(s, pod, "Unhealthy", f"{kind} probe failed: {message}", "Warning")
        if checks.dead:
            name = spec["containerName"]
            self._event(
                s, pod, "Killing", f"Container {name} failed liveness probe, will be restarted"
            )
            docker.stop(self.socket, cid, STOP_GRACE)
            self.probes.pop(cid, None)
            return {**base, "status": "Waiting", "reason": "Unhealthy", "ready": False}
        self._due_in(checks.next_due() - time.time())
        return {**base, "status": "Running", "reason": "", "ready": checks.ready_now}

    def _ensure_image(
        self, s: _Work, pod: Pod, image: str, auth: dict[str, str] | None
    ) -> str | None:
        """None when the image is on the machine; else the waiting reason. A redeployed
        service's pods (restartedAt in the template) pull their images again, once."""
        repull = (
            bool(pod.template.get("restartedAt"))
            and image not in BUILTIN_IMAGES
            and (pod.uid, image) not in self.pulled
        )
        if not repull and (image in self.images or docker.image_present(self.socket, image)):
            self.images.add(image)
            return None
        backoff = self.pulls.setdefault((pod.uid, image), Backoff(PULL_BACKOFF))
        if backoff.waiting:
            self._due_in(backoff.remaining)
            return "ImagePullBackOff"
        self._event(s, pod, "Pulling", f'pulling image "{image}"')
        try:
            docker.pull(self.socket, image, auth)
        except DockerError as exc:
            backoff.fail()
            self._event(
                s, pod, "Failed", f'Failed to pull image "{image}": {exc.message}', "Warning"
            )
            return "ErrImagePull"
        self.pulls.pop((pod.uid, image), None)
        self.pulled.add((pod.uid, image))
        self.images.add(image)
        self._event(s, pod, "Pulled", f'Successfully pulled image "{image}"')
        return None

    def _container_config(
        self, pod: Pod, spec: dict[str, Any], pause_id: str, restart: int, binds: list[str]
    ) -> dict[str, Any]:
        c = ContainerSpec.from_v2(spec)
        host: dict[str, Any] = {
            "NetworkMode": f"container:{pause_id}",
            "Privileged": c.privileged,
            "Binds": binds,
        }
        if c.cpu:
            host["CpuShares"] = max(2, c.cpu * 1024 // 1000)
        if c.cpu_limit:
            host["CpuPeriod"] = 100_000
            host["CpuQuota"] = c.cpu_limit * 100
        if c.effective_memory_limit:
            host["Memory"] = c.effective_memory_limit * 1024 * 1024
        config: dict[str, Any] = {
            "Image": c.image,
            "Env": [f"{e.name}={e.value}" for e in c.envs],
            "Labels": self._labels(
                pod,
                **{
                    "openccs.container": c.name,
                    "openccs.restart": str(restart),
                    "openccs.role": "app",
                },
            ),
            "HostConfig": host,
        }
        for key, value, given in (
            ("Entrypoint", c.entrypoint, c.command),  # a blank command: no entrypoint at all
            ("Cmd", list(c.args), c.args),
            ("WorkingDir", c.working_dir, c.working_dir),
        ):
            if given:
                config[key] = value
        return config

    def _binds(self, pod: Pod, spec: dict[str, Any]) -> list[str]:
        volumes = {v["name"]: v for v in pod.template.get("volumes") or []}
        binds = []
        for m in spec.get("volumeMounts") or []:
            src = self._volume_source(pod, volumes[m["volumeName"]])
            binds.append(f"{src}:{m['mountPath']}:{m.get('mode') or 'rw'}")
        return binds

    def _volume_source(self, pod: Pod, vol: dict[str, Any]) -> Path:
        """The path dockerd binds for a volume: the volume resolved inside its root (a
        hostPath inside the machine's disk, made when missing; any other volume in the pod's
        own directory) and mounted, as the descriptor resolution gave, in the binds area."""
        if vol.get("hostPath"):
            root, path, what = self.root_dir / "rootfs", vol["hostPath"], "hostPath"
        else:
            root, path, what = self._pod_dir(pod.uid) / "volumes", vol["name"], "directory"
            root.mkdir(parents=True, exist_ok=True)
        try:
            return safepath.stage(root, path, self._binds_area, f"{pod.uid}/{vol['name']}")
        except safepath.UnsafePath as exc:
            raise VolumeError(
                f'MountVolume.SetUp failed for volume "{vol["name"]}": {what} {path!r} leaves'
                f" the machine's disk: {exc}"
            ) from exc
        except OSError as exc:
            raise VolumeError(
                f'MountVolume.SetUp failed for volume "{vol["name"]}": {what} {path!r}:'
                f" {exc.strerror or exc}"
            ) from exc

    def _event(self, s: _Work, pod: Pod, reason: str, message: str, level: str = "Normal") -> None:
        s.events.append((pod, reason, message, level))


class VolumeError(Exception):
    """A volume that cannot be given to a container; the message is the pod's event."""


@dataclass
class _Work:
    """What a pass of the agent changes, written to the database at its end."""

    service_names: dict[int, str]
    events: list[tuple[Pod, str, str, str]] = field(default_factory=list)
    updates: dict[int, tuple[dict[str, Any], datetime | None]] = field(default_factory=dict)
    gone: list[int] = field(default_factory=list)

    def apply(self, s: Session) -> None:
        for pod_id, (status, ready_since) in self.updates.items():
            row = s.get(Pod, pod_id)
            if row is not None:
                row.status, row.ready_since = status, ready_since
        for pod_id in self.gone:
            row = s.get(Pod, pod_id)
            if row is not None:
                s.delete(row)
        for pod, reason, message, level in self.events:
            service = self.service_names.get(pod.service_id or -1, "")
            record_event(s, pod.cluster_id, pod.namespace, service, "Pod", pod.name, reason,
                         message, level)  # fmt: skip


def _fingerprint(listed: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """What a pass works from in a container list: each container's id, state and address."""
    return tuple(
        sorted(
            (
                c["Id"],
                str(c.get("State")),
                str(
                    (
                        ((c.get("NetworkSettings") or {}).get("Networks") or {}).get("bridge") or {}
                    ).get("IPAddress", "")
                ),
            )
            for c in listed
        )
    )


def _needs_start(pod: Pod, containers: list[dict[str, Any]]) -> bool:
    """Whether a pass creates or starts containers of the pod (or finds it crash-looping)."""
    running = {
        c["Labels"].get("openccs.container") if c["Labels"].get("openccs.role") != "pause" else ""
        for c in containers
        if c["State"] == "running"
    }
    if "" not in running:
        return True
    return any(spec["containerName"] not in running for spec in pod.template.get("containers", []))


def _waiter(sandbox: Future[Any] | None) -> Callable[[], None]:
    """Waits for a sandbox being started (a failure raises here); nothing to wait for
    when the pod's sandbox was already running."""

    def wait() -> None:
        if sandbox is not None:
            sandbox.result()

    return wait


def _parse_time(value: str | None) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    main = value.rstrip("Z").split(".")[0]
    return datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
