"""The fault records: what was broken, on what, until when, and how it ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class Fault(Base):
    """One injected fault. `state`: active (in force), ended (restored), failed (could not be
    injected; whatever it had changed was restored)."""

    __tablename__ = "faults"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # flt-xxxxxxxx
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    cluster_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    instance_id: Mapped[str] = mapped_column(String(32), default="")
    namespace: Mapped[str] = mapped_column(String(63), default="")
    pod: Mapped[str] = mapped_column(String(253), default="")
    # Kind-specific settings (direction, percent...), as given.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duration: Mapped[int] = mapped_column(Integer)  # seconds
    state: Mapped[str] = mapped_column(String(16), default="active", index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class FaultSample(Base):
    """One second of a fault's probe loop: the requests sent to the probed URL (a load
    balancer of the account) and those that failed (no answer, or a 5xx)."""

    __tablename__ = "fault_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fault_id: Mapped[str] = mapped_column(ForeignKey("faults.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)  # the second's start
    sent: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")  # the second's last failure
