"""`/metrics`: the sampler's last pass in the Prometheus text format, for bearer tokens
made with `openccs metrics-token create`.

Two sets of series. The conventional ones, in base units, named and labelled as cAdvisor
and the kubelet name them (`container_cpu_usage_seconds_total`,
`container_memory_working_set_bytes`, `container_network_receive_bytes_total`...; labels
cluster, namespace, pod, container = the container's name, node = the machine's LAN
address as kubectl shows it): counters are the kernel's cumulative counters, so `rate()`
is right at any scrape interval. And the document's metrics as gauges `openccs_<name>` in
the document's units (%, MiB, Mbps...), the value of the last sampling pass, kept for
dashboards built on GetMonitorData's figures; its per-pass traffic amounts (`*_flux`) are
left out, being wrong at any other interval. openccs's own counters follow (API requests,
tasks, controller passes, log shipping, registry).
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.ids import new_id
from openccs.instruments import family, render_own
from openccs.monitor.metrics import METRICS
from openccs.monitor.models import MetricsToken
from openccs.monitor.sampler import Sampler, Series
from openccs.timeutil import fmt_time_zoned

TOKEN_PREFIX = "occm_"
PREFIX = "openccs_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(s: Session, note: str = "") -> tuple[str, str]:
    """(id, token): the token is shown once; only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = MetricsToken(id=new_id("mtk"), token_hash=hash_token(token), note=note)
    s.add(row)
    return row.id, token


def list_tokens(s: Session) -> list[MetricsToken]:
    return list(s.scalars(select(MetricsToken).order_by(MetricsToken.created_at)))


def revoke_token(s: Session, token_id: str) -> bool:
    row = s.get(MetricsToken, token_id)
    if row is None:
        return False
    s.delete(row)
    return True


def token_valid(s: Session, token: str) -> bool:
    if not token.startswith(TOKEN_PREFIX):
        return False
    found = s.scalars(
        select(MetricsToken.id).where(MetricsToken.token_hash == hash_token(token))
    ).first()
    return found is not None


# The document's per-pass traffic amounts: a scrape at another interval would lose or
# double them, so /metrics leaves them out (rate() of the *_bytes_total counters instead).
PER_PASS = frozenset({"pod_in_flux", "pod_out_flux", "service_in_flux", "service_out_flux"})

Samples = list[tuple[dict[str, str], float]]


class _Families:
    """Metric families in the order first seen, each with its type, help and samples."""

    def __init__(self) -> None:
        self.kinds: dict[str, tuple[str, str]] = {}
        self.samples: dict[str, Samples] = {}

    def add(self, name: str, kind: str, help_: str, labels: dict[str, str], value: float) -> None:
        self.kinds.setdefault(name, (kind, help_))
        self.samples.setdefault(name, []).append((labels, value))

    def lines(self) -> list[str]:
        out: list[str] = []
        for name, (kind, help_) in self.kinds.items():
            out += family(name, kind, help_, self.samples[name])
        return out


_CONTAINER_COUNTERS = (
    ("container_fs_reads_bytes_total", "Bytes the container read from disk"),
    ("container_fs_writes_bytes_total", "Bytes the container wrote to disk"),
    ("container_fs_reads_total", "Disk reads the container completed"),
    ("container_fs_writes_total", "Disk writes the container completed"),
)
_POD_NETWORK = (
    ("container_network_receive_bytes_total", "Bytes the pod received"),
    ("container_network_receive_packets_total", "Packets the pod received"),
    ("container_network_transmit_bytes_total", "Bytes the pod sent"),
    ("container_network_transmit_packets_total", "Packets the pod sent"),
)


def _conventional(sampler: Sampler, nodes: dict[str, str], out: _Families) -> None:
    """Cumulative counters and gauges in base units from the last pass's raw readings."""
    pods = sampler.latest_pods
    for cluster, machines in sorted(sampler.latest_readings.items()):
        for m in machines:
            node = {"cluster": cluster, "node": nodes.get(m.node_id, m.node_id)}
            if m.cpu_ns is not None:
                out.add("node_cpu_usage_seconds_total", "counter",
                        "CPU time the machine used (all its processes), in seconds",
                        node, m.cpu_ns / 1e9)  # fmt: skip
            if m.mem is not None:
                out.add("node_memory_working_set_bytes", "gauge",
                        "Memory the machine uses less its inactive file cache",
                        node, m.mem)  # fmt: skip
            for uid, pod in sorted(m.pods.items()):
                if uid not in pods:
                    continue
                namespace, name = pods[uid]
                where = {"cluster": cluster, "namespace": namespace, "pod": name,
                         "node": node["node"]}  # fmt: skip
                if pod.net is not None:
                    for (metric, help_), value in zip(_POD_NETWORK, pod.net, strict=True):
                        out.add(metric, "counter", help_, {**where, "interface": "eth0"}, value)
                for c in pod.containers:
                    labels = {**where, "container": c.name, "container_id": c.container_id[:12]}
                    if c.cpu_ns is not None:
                        out.add("container_cpu_usage_seconds_total", "counter",
                                "CPU time the container used, in seconds", labels,
                                c.cpu_ns / 1e9)  # fmt: skip
                    if c.mem is not None:
                        out.add("container_memory_working_set_bytes", "gauge",
                                "Memory the container uses less its inactive file cache",
                                labels, c.mem)  # fmt: skip
                    if c.blkio is not None:
                        for (metric, help_), value in zip(_CONTAINER_COUNTERS, c.blkio,
                                                          strict=True):  # fmt: skip
                            out.add(metric, "counter", help_, labels, value)


def _document_series(series: list[Series], nodes: dict[str, str], out: _Families) -> None:
    """The document's metrics, as gauges in its units; labels as the conventional series."""
    described = {n: (m.unit, m.help) for n, m in METRICS.items()}
    by_metric: dict[str, Samples] = {}
    for one in series:
        labels = dict(one.labels)
        if "container_name" in labels:  # the container's name, its id beside it
            labels["container_id"] = labels["container"]
            labels["container"] = labels.pop("container_name")
        if "node" in labels:  # the LAN address, as kubectl names nodes
            labels["instance_id"] = labels["node"]
            labels["node"] = nodes.get(labels["node"], labels["node"])
        for name, value in one.values.items():
            by_metric.setdefault(name, []).append((labels, value))
    for name, (unit, help_) in described.items():
        if name in PER_PASS:
            continue
        for labels, value in by_metric.get(name, []):
            out.add(PREFIX + name, "gauge", f"{help_} ({unit}, last sampling pass)", labels, value)


def render(
    sampler: Sampler, nodes: dict[str, str] | None = None, backlog: dict[str, int] | None = None
) -> str:
    """The exposition: `nodes` maps instance ids to LAN addresses, `backlog` gives each
    machine's unshipped log bytes."""
    nodes = nodes or {}
    out = _Families()
    _conventional(sampler, nodes, out)
    _document_series(sampler.latest, nodes, out)
    for node_id, behind in sorted((backlog or {}).items()):
        out.add("openccs_log_shipper_lag_bytes", "gauge",
                "Bytes of logs written on the machine and not yet acknowledged by the broker",
                {"node": nodes.get(node_id, node_id)}, behind)  # fmt: skip
    lines = out.lines()
    lines += family(
        "openccs_monitor_sample_timestamp_seconds",
        "gauge",
        "When the last sampling pass ran (Unix time)",
        [({}, sampler.latest_ts)],
    )
    lines += family(
        "openccs_monitor_sampler_cpu_seconds_total",
        "counter",
        "CPU time the sampler thread used",
        [({}, sampler.cpu_seconds)],
    )
    lines += family(
        "openccs_monitor_sampler_passes_total",
        "counter",
        "Sampling passes run",
        [({}, sampler.passes)],
    )
    lines += family(
        "openccs_monitor_sampler_last_pass_seconds",
        "gauge",
        "Wall time of the last sampling pass",
        [({}, sampler.last_pass_ms / 1000)],
    )
    lines += family("openccs_monitor_objects", "gauge",
                    "Objects (nodes, clusters, services, pods, containers) in the last pass",
                    [({}, len(sampler.latest))])  # fmt: skip
    lines += render_own()
    return "\n".join(lines) + "\n"


def token_row_view(row: MetricsToken) -> dict[str, str]:
    return {"id": row.id, "note": row.note, "created": fmt_time_zoned(row.created_at)}
