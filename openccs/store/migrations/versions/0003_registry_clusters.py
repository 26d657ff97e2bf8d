"""registry: pull credentials of clusters

Revision ID: 0003_registry_clusters
Revises: 0002_registry
Depends on: 0002_cloud (the clusters table)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_registry_clusters"
down_revision: str | None = "0002_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0002_cloud"


def upgrade() -> None:
    op.create_table(
        "ccr_cluster_credentials",
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id"),
    )


def downgrade() -> None:
    op.drop_table("ccr_cluster_credentials")
