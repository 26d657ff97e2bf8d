"""What the Kubernetes API keeps of its own: annotations and managed fields of the objects
it serves. (A cluster's endpoint row, `KubeEndpoint`, is the store's: the cluster actions
read it too.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base


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
