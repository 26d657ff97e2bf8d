"""Tables of log collection: the rules, and how far each machine's shipper has delivered every
file a rule reads (written only after the broker acknowledged)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class LogCollector(Base):
    """A collection rule of a cluster (CreateLogCollector)."""

    __tablename__ = "log_collectors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    input_type: Mapped[str] = mapped_column(String(16))  # container-log, host-log
    output_type: Mapped[str] = mapped_column(String(16))  # kafka, ckafka
    # Normalized option objects, in the API's shape.
    input_option: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    output_option: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("cluster_id", "name"),)


class LogOffset(Base):
    """Up to where one rule's shipper on one machine has delivered one file.

    A file is known by its device and inode, so a renamed (rotated) file keeps its offset;
    `fingerprint` (a hash of its first bytes) tells a reused inode from the file it was."""

    __tablename__ = "log_offsets"
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("log_collectors.id", ondelete="CASCADE"), primary_key=True
    )
    node_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    fingerprint: Mapped[str] = mapped_column(String(80), default="")
    # What the records of this file carry (container: namespace, pod, container...).
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
