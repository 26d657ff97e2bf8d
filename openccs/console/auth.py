"""Console sign-in: console passwords (scrypt, as the registry's), SecretId/SecretKey pairs
checked against the key store, and sessions kept as hashes of their tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openccs.crypto import SecretBox
from openccs.domain.accounts import AccountError, Caller, get_account, get_subuser, lookup_caller
from openccs.registry.token import check_password, hash_password
from openccs.store.models import Account, SubUser
from openccs.timeutil import utcnow

from .models import ConsolePassword, ConsoleSession

MIN_PASSWORD = 8
# Checked when nobody has that uin, so an unknown name costs as much as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf: str


def set_password(s: Session, ref: str, password: str, subuser: bool = False) -> str:
    """Set the console password of an account (appId, uin or name) or a sub-account."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a console password needs at least {MIN_PASSWORD} characters")
    if subuser:
        sub = get_subuser(s, ref)
        uin, account_id, subuser_id = sub.uin, sub.account_id, sub.id
    else:
        account = get_account(s, ref)
        uin, account_id, subuser_id = account.uin, account.id, None
    row = s.get(ConsolePassword, uin)
    if row is None:
        row = ConsolePassword(uin=uin, account_id=account_id, subuser_id=subuser_id)
        s.add(row)
    row.password_hash = hash_password(password)
    row.updated_at = utcnow()
    # A new password ends the sessions signed in with the old one.
    q = delete(ConsoleSession).where(
        ConsoleSession.account_id == account_id, ConsoleSession.secret_id.is_(None)
    )
    q = q.where(
        ConsoleSession.subuser_id == subuser_id
        if subuser_id is not None
        else ConsoleSession.subuser_id.is_(None)
    )
    s.execute(q)
    return uin


def check_console_password(s: Session, uin: str, password: str) -> ConsolePassword | None:
    row = s.get(ConsolePassword, uin.strip())
    if row is None:
        check_password(password, _DUMMY_HASH)
        return None
    return row if check_password(password, row.password_hash) else None


def check_key(s: Session, box: SecretBox, secret_id: str, secret_key: str) -> Caller | None:
    caller = lookup_caller(s, box, secret_id.strip())
    if caller is None or not caller.key_enabled:
        return None
    if not hmac.compare_digest(caller.secret_key.encode(), secret_key.strip().encode()):
        return None
    return caller


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    s: Session, account_id: int, subuser_id: int | None, secret_id: str | None, ttl: float
) -> NewSession:
    now = utcnow()
    s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    new = NewSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    s.add(
        ConsoleSession(
            token_hash=_hash(new.token),
            account_id=account_id,
            subuser_id=subuser_id,
            secret_id=secret_id,
            csrf_token=new.csrf,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return new


def find_session(s: Session, token: str) -> ConsoleSession | None:
    """The live session of a cookie's token (None when unknown or expired)."""
    if not token:
        return None
    row = s.get(ConsoleSession, _hash(token))
    if row is None or row.expires_at <= utcnow():
        return None
    return row


def close_session(s: Session, token: str) -> None:
    s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))


def session_caller(s: Session, box: SecretBox, sess: ConsoleSession) -> Caller | None:
    """Who a session acts as, read afresh (a disabled account, key or a changed allow-list
    takes effect on the next page)."""
    if sess.secret_id is not None:
        caller = lookup_caller(s, box, sess.secret_id)
        if caller is None or not caller.key_enabled or not caller.account_enabled:
            return None
        return caller
    account = s.get(Account, sess.account_id)
    if account is None or not account.enabled:
        return None
    caller = Caller(
        account_id=account.id,
        app_id=account.app_id,
        uin=account.uin,
        account_enabled=account.enabled,
        secret_id="",
        secret_key="",
        key_enabled=True,
    )
    if sess.subuser_id is not None:
        sub = s.scalars(select(SubUser).where(SubUser.id == sess.subuser_id)).first()
        if sub is None:
            return None
        caller.subuser_id = sub.id
        caller.subuser_uin = sub.uin
        caller.allowed_actions = list(sub.allowed_actions or [])
        caller.allowed_resources = list(sub.allowed_resources or [])
    return caller
