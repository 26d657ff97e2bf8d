"""The sampler: every `sample_interval` seconds, the counters of every machine of every
cluster become the values of the document's metrics per container, pod, service and
cluster; they are added to the open bucket of each period and written after the raw
counters, a few hundred buckets per transaction (`write_pass`), so no signed request's
nonce commit waits long behind the sampler's writes.

The database is read first (which machines, pods and services exist), the machines are
read with no transaction open, then everything is written: the SQLite writer is never held
during a docker call. The open buckets are written whole on every pass, so a killed server
loses at most one pass (of some objects' buckets, when it was killed while writing); at
start they are loaded again, and the last raw counters let rates go on from where they
were.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from openccs.domain.spec import ContainerSpec
from openccs.log import get_logger, log_event
from openccs.monitor import collect
from openccs.monitor.metrics import PERIODS
from openccs.monitor.models import MonitorRollup, MonitorSample
from openccs.monitor.rollup import bucket_start
from openccs.store.db import Store
from openccs.store.models import Cluster, Instance, Pod, Service

log = get_logger("openccs.monitor")

MiB = 1024 * 1024
GiB = 1024 * MiB
PRUNE_EVERY = 300.0
# Open buckets written per transaction (see `write_pass`): each holds SQLite's writer for a
# few milliseconds.
ROLLUP_CHUNK = 250

# Default retention, seconds: raw counters, then the rollups of each period.
DEFAULT_RETENTION: dict[str, int] = {
    "raw": 3600,
    "60": 2 * 86400,
    "300": 15 * 86400,
    "3600": 62 * 86400,
    "86400": 400 * 86400,
}


@dataclass
class Series:
    """The values of one object in one pass, with its Prometheus labels."""

    level: str
    labels: dict[str, str]
    values: dict[str, float]


@dataclass
class _Acc:
    bucket: int
    level: str
    data: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class _PodInfo:
    name: str
    namespace: str
    service_id: int | None
    specs: dict[str, ContainerSpec]  # by container name


@dataclass
class _Topology:
    # cluster -> [(node id, cores, memory bytes)]
    nodes: dict[str, list[tuple[str, float, int]]] = field(default_factory=dict)
    # cluster -> {service id: (namespace, name)}
    services: dict[str, dict[int, tuple[str, str]]] = field(default_factory=dict)
    pods: dict[str, _PodInfo] = field(default_factory=dict)  # uid -> pod


class Sampler:
    def __init__(
        self,
        store: Store,
        machine: Callable[[str], tuple[str, Path, Path]],
        interval: float = 10.0,
        retention: dict[str, int] | None = None,
    ) -> None:
        """`machine(node_id)`: the machine's cgroup, docker socket and data directory."""
        self.store = store
        self.machine = machine
        self.interval = interval
        self.retention = {**DEFAULT_RETENTION, **(retention or {})}
        self._prev: dict[str, tuple[float, tuple[int, ...]]] = {}
        self._acc: dict[tuple[str, str, int], _Acc] = {}
        self._specs: dict[str, dict[str, ContainerSpec]] = {}
        self._known_clusters: set[str] = set()
        self._accounted: set[str] = set()
        self._disks: dict[str, str | None] = {}
        self._pruned = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.latest: list[Series] = []
        self.latest_ts = 0.0
        # The last pass's raw readings and pods, for the cumulative series of /metrics.
        self.latest_readings: dict[str, list[collect.MachineReading]] = {}
        self.latest_pods: dict[str, tuple[str, str]] = {}  # pod uid -> (namespace, name)
        self.cpu_seconds = 0.0
        self.passes = 0
        self.last_pass_ms = 0.0

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self.interval <= 0:
            log_event(log, "sampler disabled")
            return
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            cpu = time.thread_time()
            try:
                self.run_pass()
            except Exception:
                log.exception("monitor pass failed")
            self.cpu_seconds += time.thread_time() - cpu
            self.last_pass_ms = (time.monotonic() - started) * 1000
            self.passes += 1
            self._stop.wait(max(0.05, self.interval - (time.monotonic() - started)))

    def recover(self) -> None:
        """The open buckets and the last counters a previous run wrote."""
        now = time.time()
        with self.store.session() as s:
            for period in PERIODS:
                b = bucket_start(now, period)
                for r in s.scalars(
                    select(MonitorRollup).where(
                        MonitorRollup.period == period, MonitorRollup.bucket == b
                    )
                ):
                    self._acc[(r.cluster_id, r.obj, period)] = _Acc(
                        b, r.level, {k: list(v) for k, v in r.data.items()}
                    )
            recent = int((now - 3 * self.interval - 5) * 1000)
            last = (
                select(MonitorSample.cluster_id, func.max(MonitorSample.ts))
                .where(MonitorSample.ts > recent)
                .group_by(MonitorSample.cluster_id)
            )
            for cluster_id, ts in s.execute(last).all():
                row = s.get(MonitorSample, (cluster_id, ts))
                if row is not None:
                    self._prime(ts / 1000, row.counters)
            self._known_clusters = set(s.scalars(select(MonitorRollup.cluster_id).distinct()))
        log_event(log, "sampler recovered", buckets=len(self._acc), counters=len(self._prev))

    def _prime(self, ts: float, counters: dict[str, dict[str, list[int | None]]]) -> None:
        for kind, entries in counters.items():
            for key, values in entries.items():
                known = [int(v) for v in values if v is not None]
                if len(known) == len(values):
                    self._prev[f"{kind}:{key}"] = (ts, tuple(known))

    # -- one pass --------------------------------------------------------------------------
    def run_pass(self, now: float | None = None) -> None:
        topo = self._topology()
        readings: dict[str, list[collect.MachineReading]] = {}
        for cluster_id, nodes in topo.nodes.items():
            for node_id, _cores, _mem in nodes:
                cgroup, sock, root = self.machine(node_id)
                if node_id not in self._disks:
                    self._disks[node_id] = collect.whole_disk(root)
                disk = self._disks[node_id]
                readings.setdefault(cluster_id, []).append(
                    collect.read_machine(node_id, cgroup, sock, disk, self._accounted)
                )
        self._accounted &= {
            c.container_id
            for machines in readings.values()
            for m in machines
            for p in m.pods.values()
            for c in p.containers
        }
        ts = time.time() if now is None else now
        series: list[Series] = []
        rows: list[dict[str, Any]] = []
        samples: list[dict[str, Any]] = []
        for cluster_id, nodes in topo.nodes.items():
            found, counters = self._compute(
                cluster_id, nodes, topo, readings.get(cluster_id, []), ts
            )
            samples.append({"cluster_id": cluster_id, "ts": int(ts * 1000), "counters": counters})
            for obj, one in found.items():
                series.append(one)
                rows.extend(self._accumulate(cluster_id, obj, one, ts))
        write_pass(self.store, samples, rows)
        if time.monotonic() - self._pruned > PRUNE_EVERY:
            self._pruned = time.monotonic()
            with self.store.session() as s:
                self._prune(s, ts, set(topo.nodes))
        self._forget_closed(ts)
        self.latest, self.latest_ts = series, ts
        self.latest_readings = readings
        self.latest_pods = {uid: (p.namespace, p.name) for uid, p in topo.pods.items()}

    def _topology(self) -> _Topology:
        topo = _Topology()
        with self.store.session() as s:
            for node_id, cluster_id, cpu, mem in s.execute(
                select(Instance.id, Instance.cluster_id, Instance.cpu, Instance.mem).where(
                    Instance.cluster_id.is_not(None), Instance.state == "Running"
                )
            ):
                topo.nodes.setdefault(str(cluster_id), []).append(
                    (node_id, float(cpu), int(mem) * GiB)
                )
            if not topo.nodes:
                return topo
            clusters = list(topo.nodes)
            for sid, cluster_id, ns, name in s.execute(
                select(Service.id, Service.cluster_id, Service.namespace, Service.name).where(
                    Service.cluster_id.in_(clusters)
                )
            ):
                topo.services.setdefault(cluster_id, {})[sid] = (ns, name)
            rows = s.execute(
                select(Pod.uid, Pod.name, Pod.namespace, Pod.service_id).where(
                    Pod.cluster_id.in_(clusters)
                )
            ).all()
            new = [r[0] for r in rows if r[0] not in self._specs]
            if new:
                for uid, template in s.execute(
                    select(Pod.uid, Pod.template).where(Pod.uid.in_(new))
                ):
                    containers = template.get("containers") or []
                    self._specs[uid] = {c.name: c for c in map(ContainerSpec.from_v2, containers)}
        for uid, name, ns, service_id in rows:
            topo.pods[uid] = _PodInfo(name, ns, service_id, self._specs.get(uid, {}))
        self._specs = {uid: v for uid, v in self._specs.items() if uid in topo.pods}
        return topo

    def _delta(
        self, key: str, ts: float, counters: tuple[int, ...] | None
    ) -> tuple[float, tuple[int, ...]] | None:
        """Seconds since the previous pass and each counter's increase (None the first time,
        or when a counter went backwards)."""
        if counters is None:
            self._prev.pop(key, None)
            return None
        prev = self._prev.get(key)
        self._prev[key] = (ts, counters)
        if prev is None:
            return None
        dt = ts - prev[0]
        if dt <= 0 or len(prev[1]) != len(counters):
            return None
        deltas = tuple(b - a for a, b in zip(prev[1], counters, strict=True))
        if any(d < 0 for d in deltas):
            return None
        return dt, deltas

    def _compute(
        self,
        cluster_id: str,
        nodes: list[tuple[str, float, int]],
        topo: _Topology,
        readings: list[collect.MachineReading],
        ts: float,
    ) -> tuple[dict[str, Series], dict[str, Any]]:
        """The values of every object of a cluster in this pass, and the raw counters."""
        capacity = {n: (cores, mem) for n, cores, mem in nodes}
        cluster_cores = sum(c for c, _ in capacity.values()) or 1.0
        cluster_mem = sum(m for _, m in capacity.values()) or 1
        out: dict[str, Series] = {}
        counters: dict[str, dict[str, list[int | None]]] = {"n": {}, "c": {}, "b": {}, "p": {}}
        cpu_pct: list[float] = []
        mem_pct: list[float] = []
        services = topo.services.get(cluster_id, {})
        # service id -> metric -> sum over its pods and containers
        sums: dict[int, dict[str, float]] = {sid: {} for sid in services}
        with_pods: set[int] = set()

        def add(sid: int, metric: str, value: float) -> None:
            sums[sid][metric] = sums[sid].get(metric, 0.0) + value

        for m in readings:
            cores, mem_cap = capacity.get(m.node_id, (1.0, GiB))
            counters["n"][m.node_id] = [m.cpu_ns]
            node_values: dict[str, float] = {}
            d = self._delta(f"n:{m.node_id}", ts, None if m.cpu_ns is None else (m.cpu_ns,))
            if d is not None:
                node_values["node_cpu_usage"] = d[1][0] / 1e9 / d[0] / cores * 100
                cpu_pct.append(node_values["node_cpu_usage"])
            if m.mem is not None:
                node_values["node_mem_usage"] = m.mem / mem_cap * 100
                mem_pct.append(node_values["node_mem_usage"])
            out[f"node:{m.node_id}"] = Series(
                "node", {"cluster": cluster_id, "node": m.node_id}, node_values
            )
            for uid, pod in m.pods.items():
                info = topo.pods.get(uid)
                if info is None or info.service_id is None or info.service_id not in services:
                    continue
                sid = info.service_id
                with_pods.add(sid)
                ns, svc = services[sid]
                pod_obj = f"{ns}/{svc}/{info.name}"
                base = {"cluster": cluster_id, "namespace": ns, "service": svc, "pod": info.name}
                counters["p"][uid] = list(pod.net) if pod.net else [None] * 4
                pod_values: dict[str, float] = {}
                d = self._delta(f"p:{uid}", ts, pod.net)
                if d is not None:
                    dt, (rx_b, rx_p, tx_b, tx_p) = d
                    pod_values = {
                        "pod_in_bandwidth": rx_b * 8 / dt / 1e6,
                        "pod_out_bandwidth": tx_b * 8 / dt / 1e6,
                        "pod_in_flux": rx_b / 1e6,
                        "pod_out_flux": tx_b / 1e6,
                        "pod_in_packets": rx_p / dt,
                        "pod_out_packets": tx_p / dt,
                    }
                    for metric, value in pod_values.items():
                        add(sid, "service" + metric[3:], value)
                out[pod_obj] = Series("pod", base, pod_values)
                for c in pod.containers:
                    spec = info.specs.get(c.name)
                    cid = c.container_id[:12]
                    counters["c"][cid] = [c.cpu_ns]
                    counters["b"][cid] = list(c.blkio) if c.blkio else [None] * 4
                    values = self._container_values(c, spec, cores, mem_cap, ts)
                    if "container_cpu_used" in values:
                        add(sid, "service_cpu_used", values["container_cpu_used"])
                    if "container_mem_used" in values:
                        add(sid, "service_mem_used", values["container_mem_used"])
                    labels = {**base, "container": cid, "container_name": c.name}
                    out[f"{pod_obj}/{cid}"] = Series("container", labels, values)
        for sid, (ns, svc) in services.items():
            # A service without running pods uses nothing; one whose pods were just seen
            # for the first time has no rates yet (left out rather than counted as 0).
            values = dict(sums[sid]) if sid in with_pods else dict.fromkeys(_SERVICE_METRICS, 0.0)
            if "service_cpu_used" in values:
                values["service_cpu_usage_for_cluster"] = (
                    values["service_cpu_used"] / cluster_cores * 100
                )
            if "service_mem_used" in values:
                values["service_mem_usage_for_cluster"] = (
                    values["service_mem_used"] * MiB / cluster_mem * 100
                )
            out[f"{ns}/{svc}"] = Series(
                "service", {"cluster": cluster_id, "namespace": ns, "service": svc}, values
            )
        cluster_values: dict[str, float] = {}
        if cpu_pct:
            cluster_values["dc_cpu_usage"] = sum(cpu_pct) / len(cpu_pct)
        if mem_pct:
            cluster_values["dc_mem_usage"] = sum(mem_pct) / len(mem_pct)
        out[""] = Series("cluster", {"cluster": cluster_id}, cluster_values)
        return out, counters

    def _container_values(
        self,
        c: collect.ContainerReading,
        spec: ContainerSpec | None,
        node_cores: float,
        node_mem: int,
        ts: float,
    ) -> dict[str, float]:
        values: dict[str, float] = {}
        cid = c.container_id[:12]
        d = self._delta(f"c:{cid}", ts, None if c.cpu_ns is None else (c.cpu_ns,))
        if d is not None:
            cores = d[1][0] / 1e9 / d[0]
            request = (spec.cpu if spec else 0) / 1000
            limit = (spec.cpu_limit if spec else 0) / 1000 or node_cores
            values["container_cpu_used"] = cores
            values["container_cpu_usage_for_node"] = cores / node_cores * 100
            if request:
                values["container_cpu_usage_for_request"] = cores / request * 100
            values["container_cpu_usage_for_limit"] = cores / min(limit, node_cores) * 100
        if c.mem is not None:
            request_b = (spec.memory if spec else 0) * MiB
            limit_b = (spec.effective_memory_limit if spec else 0) * MiB or node_mem
            values["container_mem_used"] = c.mem / MiB
            values["container_mem_usage_for_node"] = c.mem / node_mem * 100
            if request_b:
                values["container_mem_usage_for_request"] = c.mem / request_b * 100
            values["container_mem_usage_for_limit"] = c.mem / min(limit_b, node_mem) * 100
        d = self._delta(f"b:{cid}", ts, c.blkio)
        if d is not None:
            dt, (rb, wb, rio, wio) = d
            values["container_disk_read_traffic"] = rb / dt / 1000
            values["container_disk_write_traffic"] = wb / dt / 1000
            values["container_disk_read"] = rio / dt
            values["container_disk_write"] = wio / dt
        return values

    # -- rollups ---------------------------------------------------------------------------
    def _accumulate(
        self, cluster_id: str, obj: str, one: Series, ts: float
    ) -> list[dict[str, Any]]:
        rows = []
        for period in PERIODS:
            b = bucket_start(ts, period)
            key = (cluster_id, obj, period)
            acc = self._acc.get(key)
            if acc is None or acc.bucket != b:
                acc = self._acc[key] = _Acc(b, one.level)
            for metric, value in one.values.items():
                entry = acc.data.setdefault(metric, [0.0, 0])
                entry[0] += value
                entry[1] += 1
            rows.append(
                {"cluster_id": cluster_id, "obj": obj, "period": period, "bucket": b,
                 "level": one.level, "data": acc.data}
            )  # fmt: skip
        return rows

    def _forget_closed(self, ts: float) -> None:
        """Buckets that closed were written whole on their last pass: drop them."""
        current = {p: bucket_start(ts, p) for p in PERIODS}
        self._acc = {k: a for k, a in self._acc.items() if a.bucket == current[k[2]]}
        live = {k for k in self._prev if k[2:] and True}
        del live

    def _prune(self, s: Session, ts: float, active: set[str]) -> None:
        """Expired rows, and every row of clusters that no longer exist."""
        s.execute(
            delete(MonitorSample).where(MonitorSample.ts < int((ts - self.retention["raw"]) * 1000))
        )
        for period in PERIODS:
            s.execute(
                delete(MonitorRollup).where(
                    MonitorRollup.period == period,
                    MonitorRollup.bucket < int(ts - self.retention[str(period)]),
                )
            )
        self._known_clusters |= active
        existing = set(s.scalars(select(Cluster.id)))
        for gone in self._known_clusters - existing:
            s.execute(delete(MonitorRollup).where(MonitorRollup.cluster_id == gone))
            s.execute(delete(MonitorSample).where(MonitorSample.cluster_id == gone))
        self._known_clusters &= existing
        # Counters of containers and pods that are gone.
        seen = {k for k in self._prev if self._prev[k][0] >= ts - 3 * max(self.interval, 1)}
        self._prev = {k: v for k, v in self._prev.items() if k in seen}


_SERVICE_METRICS = (
    "service_cpu_used",
    "service_mem_used",
    "service_in_flux",
    "service_out_flux",
    "service_in_bandwidth",
    "service_out_bandwidth",
    "service_in_packets",
    "service_out_packets",
)


def write_pass(
    store: Store, samples: list[dict[str, Any]], rows: list[dict[str, Any]],
    chunk: int = ROLLUP_CHUNK,
) -> None:  # fmt: skip
    """A pass's raw counters, then its open buckets `chunk` rows per transaction. One
    transaction for all of a large cluster's buckets (8,000 rows at 1,000 pods) held
    SQLite's writer for about 100 ms every pass, and every signed request waited behind it
    for its nonce; now no writer waits longer than one chunk. Counters first: a pass
    killed halfway has recorded where the counters were, so what it did not write of its
    buckets is one observation lost for those objects, as when a whole pass is lost."""
    if samples:
        with store.session() as s:
            s.execute(insert(MonitorSample), samples)
    for start in range(0, len(rows), max(1, chunk)):
        with store.session() as s:
            _upsert_rollups(s, rows[start : start + max(1, chunk)])


def _upsert_rollups(s: Session, rows: list[dict[str, Any]]) -> None:
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(MonitorRollup)
        s.execute(
            pg.on_conflict_do_update(
                index_elements=["cluster_id", "obj", "period", "bucket"],
                set_={"data": pg.excluded.data, "level": pg.excluded.level},
            ),
            rows,
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        lite = lite_insert(MonitorRollup)
        s.execute(
            lite.on_conflict_do_update(
                index_elements=["cluster_id", "obj", "period", "bucket"],
                set_={"data": lite.excluded.data, "level": lite.excluded.level},
            ),
            rows,
        )
