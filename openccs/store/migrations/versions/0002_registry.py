"""registry (CCR): users, namespaces, repositories, tags, favourites, retention, triggers

Revision ID: 0002_registry
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_registry"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ccr_favors",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("repotype", sa.String(length=16), nullable=False),
        sa.Column("reponame", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "repotype", "reponame"),
    )
    op.create_index("ix_ccr_favors_repo", "ccr_favors", ["repotype", "reponame"], unique=False)
    op.create_table(
        "ccr_namespaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("official", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_ccr_namespaces_account", "ccr_namespaces", ["account_id"], unique=False)
    op.create_table(
        "ccr_trigger_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("trigger_name", sa.String(length=64), nullable=False),
        sa.Column("repo_name", sa.String(length=255), nullable=False),
        sa.Column("tag_name", sa.String(length=128), nullable=False),
        sa.Column("invoke_method", sa.String(length=16), nullable=False),
        sa.Column("invoke_expr", sa.String(length=1024), nullable=False),
        sa.Column("invoke_para", sa.JSON(), nullable=False),
        sa.Column("return_code", sa.Integer(), nullable=False),
        sa.Column("return_msg", sa.Text(), nullable=False),
        sa.Column("invoke_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_ccr_trigger_logs_repo", "ccr_trigger_logs", ["account_id", "repo_name"], unique=False
    )
    op.create_table(
        "ccr_repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("pull_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["namespace_id"], ["ccr_namespaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_ccr_repositories_account", "ccr_repositories", ["account_id"], unique=False)
    op.create_index(
        "ix_ccr_repositories_namespace", "ccr_repositories", ["namespace_id"], unique=False
    )
    op.create_table(
        "ccr_users",
        sa.Column("uin", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("subuser_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subuser_id"], ["subusers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("uin"),
    )
    op.create_table(
        "ccr_retention",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["ccr_repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repository_id"),
    )
    op.create_table(
        "ccr_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("media_type", sa.String(length=128), nullable=False),
        sa.Column("image_id", sa.String(length=80), nullable=False),
        sa.Column("architecture", sa.String(length=32), nullable=False),
        sa.Column("os", sa.String(length=32), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("docker_version", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("push_time", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["ccr_repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "name", name="uq_ccr_tags_repository_name"),
    )
    op.create_table(
        "ccr_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("invoke_method", sa.String(length=16), nullable=False),
        sa.Column("invoke_expr", sa.String(length=1024), nullable=False),
        sa.Column("cluster_id", sa.String(length=32), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("service_name", sa.String(length=64), nullable=False),
        sa.Column("container_name", sa.String(length=64), nullable=False),
        sa.Column("cluster_region", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repository_id"], ["ccr_repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "name", name="uq_ccr_triggers_name"),
    )


def downgrade() -> None:
    op.drop_table("ccr_triggers")
    op.drop_table("ccr_tags")
    op.drop_table("ccr_retention")
    op.drop_table("ccr_users")
    op.drop_index("ix_ccr_repositories_namespace", table_name="ccr_repositories")
    op.drop_index("ix_ccr_repositories_account", table_name="ccr_repositories")
    op.drop_table("ccr_repositories")
    op.drop_index("ix_ccr_trigger_logs_repo", table_name="ccr_trigger_logs")
    op.drop_table("ccr_trigger_logs")
    op.drop_index("ix_ccr_namespaces_account", table_name="ccr_namespaces")
    op.drop_table("ccr_namespaces")
    op.drop_index("ix_ccr_favors_repo", table_name="ccr_favors")
    op.drop_table("ccr_favors")
