"""autoscaling groups and the cluster autoscaler's settings

Revision ID: 0004_asg
Revises: 0003_workloads
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_asg"
down_revision: str | None = "0003_workloads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cluster_asgs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("launch_config_id", sa.String(length=32), nullable=False),
        sa.Column("launch_config_name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("min_size", sa.Integer(), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        sa.Column("desired_capacity", sa.Integer(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("launch", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("launch_config_id"),
        sa.UniqueConstraint("account_id", "name", name="uq_cluster_asgs_name"),
        sa.UniqueConstraint("account_id", "launch_config_name", name="uq_cluster_asgs_lc_name"),
    )
    with op.batch_alter_table("cluster_asgs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cluster_asgs_cluster_id"), ["cluster_id"])
    op.create_table(
        "cluster_autoscalers",
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("scale_down_enabled", sa.Boolean(), nullable=False),
        sa.Column("expander", sa.String(length=16), nullable=False),
        sa.Column("max_empty_bulk_delete", sa.Integer(), nullable=False),
        sa.Column("max_total_unready_percentage", sa.Integer(), nullable=False),
        sa.Column("ok_total_unready_count", sa.Integer(), nullable=False),
        sa.Column("scale_down_delay", sa.Integer(), nullable=False),
        sa.Column("scale_down_unneeded_time", sa.Integer(), nullable=False),
        sa.Column("scale_down_unready_time", sa.Integer(), nullable=False),
        sa.Column("skip_nodes_with_local_storage", sa.Boolean(), nullable=False),
        sa.Column("skip_nodes_with_system_pods", sa.Boolean(), nullable=False),
        sa.Column("unregistered_node_removal_time", sa.Integer(), nullable=False),
        sa.Column("scale_down_utilization_threshold", sa.Integer(), nullable=False),
        sa.Column("last_scale_up_at", sa.DateTime(), nullable=True),
        sa.Column("last_scale_down_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id"),
    )


def downgrade() -> None:
    op.drop_table("cluster_autoscalers")
    with op.batch_alter_table("cluster_asgs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cluster_asgs_cluster_id"))
    op.drop_table("cluster_asgs")
