"""Tables of the image registry: users, namespaces, repositories, tags, favourites,
retention strategies, triggers and their log, clusters' pull credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class CcrUser(Base):
    """A registry login: the account's uin (or a sub-account's) and a slow password hash."""

    __tablename__ = "ccr_users"
    uin: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subuser_id: Mapped[int | None] = mapped_column(
        ForeignKey("subusers.id", ondelete="CASCADE"), nullable=True
    )
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CcrNamespace(Base):
    __tablename__ = "ccr_namespaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique across all accounts: the namespace is the first path component of an image.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    official: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_ccr_namespaces_account", "account_id"),)


class CcrRepository(Base):
    __tablename__ = "ccr_repositories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The full name, `namespace/name`.
    name: Mapped[str] = mapped_column(String(255), unique=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("ccr_namespaces.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    pull_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_ccr_repositories_account", "account_id"),
        Index("ix_ccr_repositories_namespace", "namespace_id"),
    )


class CcrTag(Base):
    """A tag as the registry holds it, indexed from push notifications and reconciliation."""

    __tablename__ = "ccr_tags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("ccr_repositories.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(80))
    media_type: Mapped[str] = mapped_column(String(128), default="")
    image_id: Mapped[str] = mapped_column(String(80), default="")
    architecture: Mapped[str] = mapped_column(String(32), default="")
    os: Mapped[str] = mapped_column(String(32), default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    docker_version: Mapped[str] = mapped_column(String(64), default="")
    created: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    push_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("repository_id", "name", name="uq_ccr_tags_repository_name"),
    )


class CcrFavor(Base):
    __tablename__ = "ccr_favors"
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    repotype: Mapped[str] = mapped_column(String(16), primary_key=True)
    reponame: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_ccr_favors_repo", "repotype", "reponame"),)


class CcrRetention(Base):
    __tablename__ = "ccr_retention"
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("ccr_repositories.id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[int] = mapped_column(Integer)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CcrTrigger(Base):
    __tablename__ = "ccr_triggers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("ccr_repositories.id", ondelete="CASCADE")
    )
    invoke_method: Mapped[str] = mapped_column(String(16))
    invoke_expr: Mapped[str] = mapped_column(String(1024), default="")
    cluster_id: Mapped[str] = mapped_column(String(32))
    namespace: Mapped[str] = mapped_column(String(64))
    service_name: Mapped[str] = mapped_column(String(64))
    container_name: Mapped[str] = mapped_column(String(64))
    cluster_region: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_ccr_triggers_name"),)


class CcrTriggerLog(Base):
    """One firing of a trigger; kept after the trigger itself is deleted."""

    __tablename__ = "ccr_trigger_logs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    trigger_name: Mapped[str] = mapped_column(String(64))
    repo_name: Mapped[str] = mapped_column(String(255))
    tag_name: Mapped[str] = mapped_column(String(128))
    invoke_method: Mapped[str] = mapped_column(String(16))
    invoke_expr: Mapped[str] = mapped_column(String(1024), default="")
    invoke_para: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    return_code: Mapped[int] = mapped_column(Integer)
    return_msg: Mapped[str] = mapped_column(Text, default="")
    invoke_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_ccr_trigger_logs_repo", "account_id", "repo_name"),)


class CcrClusterCredential(Base):
    """The pull credential of a cluster's machines (user `cluster-<clusterId>`).

    The password is random and kept encrypted (not hashed): the node agents hand it to
    dockerd at every pull. The row goes with its cluster (ON DELETE CASCADE).
    """

    __tablename__ = "ccr_cluster_credentials"
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    password_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
