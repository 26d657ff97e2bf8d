"""kube: each cluster's Kubernetes endpoint (CA, admin secret, listener ports)

Revision ID: 0004_kube
Revises: 0003_workloads
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_kube"
down_revision: str | None = "0003_workloads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kube_endpoints",
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("ca_cert", sa.Text(), nullable=False),
        sa.Column("ca_key_enc", sa.Text(), nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column("internal_port", sa.Integer(), nullable=True),
        sa.Column("external_open", sa.Boolean(), nullable=False),
        sa.Column("external_port", sa.Integer(), nullable=True),
        sa.Column("external_host", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id"),
    )

    op.create_table(
        "kube_annotations",
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id", "uid"),
    )


def downgrade() -> None:
    op.drop_table("kube_annotations")
    op.drop_table("kube_endpoints")
