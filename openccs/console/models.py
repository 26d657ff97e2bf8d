"""Tables of the console: console passwords (scrypt hashes) and signed-in sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openccs.store.models import Base
from openccs.timeutil import utcnow


class ConsolePassword(Base):
    """The console password of an account (subuser_id None) or of one of its sub-accounts."""

    __tablename__ = "console_passwords"
    # The uin signs in: accounts' and sub-accounts' uins never collide.
    uin: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subuser_id: Mapped[int | None] = mapped_column(
        ForeignKey("subusers.id", ondelete="CASCADE"), nullable=True
    )
    password_hash: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsoleSession(Base):
    """A signed-in browser. Only the token's SHA-256 is kept; a session signed in with a
    SecretId ends with that key."""

    __tablename__ = "console_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subuser_id: Mapped[int | None] = mapped_column(
        ForeignKey("subusers.id", ondelete="CASCADE"), nullable=True
    )
    secret_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_keys.secret_id", ondelete="CASCADE"), nullable=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
