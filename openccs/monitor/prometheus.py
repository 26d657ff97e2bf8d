"""`/metrics`: the sampler's last pass in the Prometheus text format, for bearer tokens
made with `openccs metrics-token create`.

Every metric of GetMonitorData is a gauge `openccs_<name>` labelled with cluster,
namespace, service, pod and container (the 12-character id, and container_name), holding
the value of the last sampling pass (flux metrics: the bytes of that pass's interval).
Node utilisation and the sampler's own cost are exported beside them.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.ids import new_id
from openccs.monitor.metrics import METRICS
from openccs.monitor.models import MetricsToken
from openccs.monitor.sampler import Sampler, Series
from openccs.timeutil import fmt_time_zoned

TOKEN_PREFIX = "occm_"
PREFIX = "openccs_"
EXTRA = {
    "node_cpu_usage": ("%", "CPU utilisation of the node (machine)"),
    "node_mem_usage": ("%", "memory utilisation of the node (machine)"),
}


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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _num(value: float) -> str:
    return repr(float(value))


def render(sampler: Sampler) -> str:
    series: list[Series] = sampler.latest
    by_metric: dict[str, list[tuple[dict[str, str], float]]] = {}
    for one in series:
        for name, value in one.values.items():
            by_metric.setdefault(name, []).append((one.labels, value))
    lines: list[str] = []
    described = {n: (m.unit, m.help) for n, m in METRICS.items()} | EXTRA
    for name, (unit, help_) in described.items():
        samples = by_metric.get(name)
        if not samples:
            continue
        full = PREFIX + name
        lines.append(f"# HELP {full} {help_} ({unit})")
        lines.append(f"# TYPE {full} gauge")
        for labels, value in samples:
            lines.append(f"{full}{{{_labels(labels)}}} {_num(value)}")
    stamp = sampler.latest_ts
    lines += [
        "# HELP openccs_monitor_sample_timestamp_seconds when the last sampling pass ran",
        "# TYPE openccs_monitor_sample_timestamp_seconds gauge",
        f"openccs_monitor_sample_timestamp_seconds {_num(stamp)}",
        "# HELP openccs_monitor_sampler_cpu_seconds_total CPU time the sampler thread used",
        "# TYPE openccs_monitor_sampler_cpu_seconds_total counter",
        f"openccs_monitor_sampler_cpu_seconds_total {_num(sampler.cpu_seconds)}",
        "# HELP openccs_monitor_sampler_passes_total sampling passes run",
        "# TYPE openccs_monitor_sampler_passes_total counter",
        f"openccs_monitor_sampler_passes_total {sampler.passes}",
        "# HELP openccs_monitor_sampler_last_pass_seconds wall time of the last pass",
        "# TYPE openccs_monitor_sampler_last_pass_seconds gauge",
        f"openccs_monitor_sampler_last_pass_seconds {_num(sampler.last_pass_ms / 1000)}",
        "# HELP openccs_monitor_objects objects (nodes, clusters, services, pods, containers)"
        " in the last pass",
        "# TYPE openccs_monitor_objects gauge",
        f"openccs_monitor_objects {len(series)}",
    ]
    return "\n".join(lines) + "\n"


def token_row_view(row: MetricsToken) -> dict[str, str]:
    return {"id": row.id, "note": row.note, "created": fmt_time_zoned(row.created_at)}
