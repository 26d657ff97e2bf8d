"""The Kubernetes endpoint of a cluster: its CA, the admin secret, and its listeners' ports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class KubeEndpoint(Base):
    __tablename__ = "kube_endpoints"
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    # The cluster CA (certificate in clear, key encrypted like SecretKeys).
    ca_cert: Mapped[str] = mapped_column(Text)
    ca_key_enc: Mapped[str] = mapped_column(Text)
    # The `admin` secret: bearer token and basic-auth password.
    password_enc: Mapped[str] = mapped_column(Text)
    # Port on the VPC gateway addresses (always open while the cluster exists).
    internal_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # OperateClusterVip: whether the external address is wanted, and its port.
    external_open: Mapped[bool] = mapped_column(Boolean, default=False)
    external_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    external_host: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class KubeAnnotations(Base):
    """What the service model has no place for, kept by the object's uid: annotations given
    through the Kubernetes API (kubectl apply's last-applied-configuration, a revision's
    change-cause) and who manages which field (managedFields)."""

    __tablename__ = "kube_annotations"
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    managed_fields: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
