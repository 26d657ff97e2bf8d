"""monitor: raw samples, rollups per period, /metrics tokens

Revision ID: 0004_monitor
Revises: 0003_workloads
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_monitor"
down_revision: str | None = "0003_workloads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitor_samples",
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("cluster_id", "ts"),
    )
    op.create_index("ix_monitor_samples_ts", "monitor_samples", ["ts"], unique=False)
    op.create_table(
        "monitor_rollups",
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("obj", sa.String(length=400), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("cluster_id", "obj", "period", "bucket"),
    )
    op.create_index(
        "ix_monitor_rollups_period_bucket", "monitor_rollups", ["period", "bucket"], unique=False
    )
    op.create_table(
        "metrics_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("metrics_tokens")
    op.drop_index("ix_monitor_rollups_period_bucket", table_name="monitor_rollups")
    op.drop_table("monitor_rollups")
    op.drop_index("ix_monitor_samples_ts", table_name="monitor_samples")
    op.drop_table("monitor_samples")
