"""faults: injected faults and how they ended

Revision ID: 0004_faults
Revises: 0003_workloads
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_faults"
down_revision: str | None = "0003_workloads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "faults",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("pod", sa.String(length=253), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("faults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faults_cluster_id"), ["cluster_id"])
        batch_op.create_index(batch_op.f("ix_faults_state"), ["state"])


def downgrade() -> None:
    with op.batch_alter_table("faults", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_faults_state"))
        batch_op.drop_index(batch_op.f("ix_faults_cluster_id"))
    op.drop_table("faults")
