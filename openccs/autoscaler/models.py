"""Tables of the autoscaler: the groups (with their launch configuration) and each cluster's
autoscaler settings (ModifyClusterAsgScaleDown)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class ClusterAsg(Base):
    """An autoscaling group: machines made from one launch configuration, kept between
    min_size and max_size by the cluster autoscaler."""

    __tablename__ = "cluster_asgs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # asg-xxxxxxxx
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    launch_config_id: Mapped[str] = mapped_column(String(32), unique=True)  # asc-xxxxxxxx
    launch_config_name: Mapped[str] = mapped_column(String(64))
    # enabled or disabled (the document's transitional states are never long here).
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    min_size: Mapped[int] = mapped_column(Integer, default=0)
    max_size: Mapped[int] = mapped_column(Integer, default=0)
    desired_capacity: Mapped[int] = mapped_column(Integer, default=0)
    # Labels of the group's machines (applied to machines made from now on).
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The launch configuration: what the model node was made of (zone, subnet_id,
    # instance_type, cpu, mem, os_name, password_hash, key_id, user_script, settings).
    launch: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("account_id", "name", name="uq_cluster_asgs_name"),
        UniqueConstraint("account_id", "launch_config_name", name="uq_cluster_asgs_lc_name"),
    )


class AutoscalerSettings(Base):
    """A cluster's autoscaler parameters, with cluster-autoscaler's defaults; times are in
    minutes, as the document gives them."""

    __tablename__ = "cluster_autoscalers"
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    scale_down_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    expander: Mapped[str] = mapped_column(String(16), default="random")
    max_empty_bulk_delete: Mapped[int] = mapped_column(Integer, default=10)
    max_total_unready_percentage: Mapped[int] = mapped_column(Integer, default=45)
    ok_total_unready_count: Mapped[int] = mapped_column(Integer, default=3)
    scale_down_delay: Mapped[int] = mapped_column(Integer, default=10)
    scale_down_unneeded_time: Mapped[int] = mapped_column(Integer, default=10)
    scale_down_unready_time: Mapped[int] = mapped_column(Integer, default=20)
    skip_nodes_with_local_storage: Mapped[bool] = mapped_column(Boolean, default=True)
    skip_nodes_with_system_pods: Mapped[bool] = mapped_column(Boolean, default=True)
    unregistered_node_removal_time: Mapped[int] = mapped_column(Integer, default=15)
    scale_down_utilization_threshold: Mapped[int] = mapped_column(Integer, default=50)
    last_scale_up_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_scale_down_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
