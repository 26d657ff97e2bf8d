"""Tables of load balancers, ingresses and the certificates ingresses terminate TLS with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class LoadBalancer(Base):
    """A virtual IP of a service (accessType LoadBalancer / SvcLBTypeInner) or an ingress.

    `network` is "public" (the VIP comes from the host's public pool) or "inner" (from
    `subnet_id`'s subnet). `status` is Creating until the VIP answers, then Running."""

    __tablename__ = "load_balancers"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    ingress_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingresses.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    network: Mapped[str] = mapped_column(String(8))
    subnet_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    vip: Mapped[str] = mapped_column(String(45), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="Creating")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Ingress(Base):
    __tablename__ = "ingresses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    cert_id: Mapped[str] = mapped_column(String(32), default="")
    # The document's rule objects as given (url, domain, protocol, serviceName, servicePort,
    # LoadBalancePort).
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    subnet_id: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("cluster_id", "namespace", "name"),)


class Certificate(Base):
    """A server certificate (PEM chain) and its key (encrypted), uploaded with the CLI."""

    __tablename__ = "certificates"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128), default="")
    cert_pem: Mapped[str] = mapped_column(Text)
    key_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
