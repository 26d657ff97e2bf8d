"""kube: managed fields (server-side apply) kept with an object's annotations

Revision ID: 0005_kube_fields
Revises: 0004_kube
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_kube_fields"
down_revision: str | None = "0004_kube"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kube_annotations") as batch:
        batch.add_column(sa.Column("managed_fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kube_annotations") as batch:
        batch.drop_column("managed_fields")
