"""faults: the seconds of a fault's probe loop (requests sent and failed)

Revision ID: 0005_fault_samples
Revises: 0004_faults
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_fault_samples"
down_revision: str | None = "0004_faults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fault_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fault_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["fault_id"], ["faults.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("fault_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fault_samples_fault_id"), ["fault_id"])


def downgrade() -> None:
    with op.batch_alter_table("fault_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fault_samples_fault_id"))
    op.drop_table("fault_samples")
