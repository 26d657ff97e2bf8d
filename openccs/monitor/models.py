"""Tables of the monitor: raw counter samples, rollups per period, `/metrics` tokens.

Rows name their cluster but carry no foreign key (they are written in bulk every few
seconds); rows of clusters that no longer exist are pruned with the expired ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class MonitorSample(Base):
    """One sampling pass over one cluster: the raw counters read (cumulative CPU time,
    memory, disk and network counters per container, pod and node), so that rates go on
    from the last pass after a restart, and for inspection."""

    __tablename__ = "monitor_samples"
    cluster_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch milliseconds
    counters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_monitor_samples_ts", "ts"),)


class MonitorRollup(Base):
    """The samples of one object within one period bucket: {metric: [sum, count]}.

    `obj` names the object inside its cluster: "" (the cluster), "ns/service",
    "ns/service/pod", "ns/service/pod/containerId12". `bucket` is the epoch second the
    period starts (local midnight for 86400)."""

    __tablename__ = "monitor_rollups"
    cluster_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    obj: Mapped[str] = mapped_column(String(400), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_monitor_rollups_period_bucket", "period", "bucket"),)


class MetricsToken(Base):
    """A bearer token for `/metrics` (only its SHA-256 is kept)."""

    __tablename__ = "metrics_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # mtk-xxxxxxxx
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
