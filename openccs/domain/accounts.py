"""Accounts, their API keys, sub-accounts and quotas."""

from __future__ import annotations

import fnmatch
import os
import string
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from openccs.config import DEFAULT_QUOTAS
from openccs.crypto import SecretBox
from openccs.ids import random_token
from openccs.store.models import Account, ApiKey, Quota, SubUser

# The document: "a developer account may hold at most two SecretId/SecretKey pairs".
MAX_KEYS = 2
FIRST_APP_ID = 1250000000
FIRST_UIN = 100000000001


class AccountError(Exception):
    """A rule of accounts was broken; the message says which."""


@dataclass(frozen=True)
class NewKey:
    secret_id: str
    secret_key: str


@dataclass
class Caller:
    """Who signed a request."""

    account_id: int
    app_id: int
    uin: str
    account_enabled: bool
    secret_id: str
    secret_key: str
    key_enabled: bool
    subuser_id: int | None = None
    subuser_uin: str | None = None
    allowed_actions: list[str] = field(default_factory=list)
    allowed_resources: list[str] = field(default_factory=list)

    @property
    def is_subuser(self) -> bool:
        return self.subuser_id is not None

    def may_call(self, action: str) -> bool:
        return not self.is_subuser or _matches(self.allowed_actions, action)

    def may_use(self, resource: str) -> bool:
        return not self.is_subuser or _matches(self.allowed_resources, resource)


def _matches(patterns: list[str], value: str) -> bool:
    return any(p == "*" or fnmatch.fnmatchcase(value, p) for p in patterns)


def create_account(s: Session, name: str = "") -> Account:
    max_app, max_uin = s.execute(select(func.max(Account.app_id), func.max(Account.uin))).one()
    app_id = (max_app or FIRST_APP_ID - 1) + 1
    uin = str(int(max_uin or FIRST_UIN - 1) + 1)
    account = Account(app_id=app_id, uin=uin, name=name, enabled=True)
    s.add(account)
    s.flush()
    return account


def get_account(s: Session, ref: str | int) -> Account:
    """Find an account by appId, uin or name."""
    text = str(ref)
    q = select(Account).where(
        (Account.uin == text)
        | (Account.name == text)
        | (Account.app_id == (int(text) if text.isdigit() else -1))
    )
    account = s.scalars(q).first()
    if account is None:
        raise AccountError(f"no account {ref!r}")
    return account


def create_key(
    s: Session, box: SecretBox, account: Account, subuser: SubUser | None = None
) -> NewKey:
    owner_filter = (
        ApiKey.subuser_id == subuser.id
        if subuser is not None
        else (ApiKey.account_id == account.id) & ApiKey.subuser_id.is_(None)
    )
    count = s.scalar(select(func.count()).select_from(ApiKey).where(owner_filter)) or 0
    if count >= MAX_KEYS:
        who = f"sub-account {subuser.uin}" if subuser else f"account {account.uin}"
        raise AccountError(
            f"{who} already has {MAX_KEYS} keys (the most allowed): delete one first"
        )
    key = NewKey(
        secret_id="AKID" + random_token(32),
        secret_key=random_token(32, string.ascii_letters + string.digits),
    )
    s.add(
        ApiKey(
            secret_id=key.secret_id,
            account_id=account.id,
            subuser_id=subuser.id if subuser else None,
            secret_key_enc=box.encrypt(key.secret_key),
            enabled=True,
        )
    )
    s.flush()
    return key


def get_key(s: Session, secret_id: str) -> ApiKey:
    key = s.get(ApiKey, secret_id)
    if key is None:
        raise AccountError(f"no key {secret_id!r}")
    return key


def set_key_enabled(s: Session, secret_id: str, enabled: bool) -> None:
    get_key(s, secret_id).enabled = enabled


def delete_key(s: Session, secret_id: str) -> None:
    s.delete(get_key(s, secret_id))


def create_subuser(
    s: Session,
    account: Account,
    name: str = "",
    actions: list[str] | None = None,
    resources: list[str] | None = None,
) -> SubUser:
    max_uin = s.scalar(select(func.max(SubUser.uin)))
    base = max(int(max_uin or 0), 200000000000)
    sub = SubUser(
        account_id=account.id,
        uin=str(base + 1),
        name=name,
        allowed_actions=list(actions or []),
        allowed_resources=list(resources or []),
    )
    s.add(sub)
    s.flush()
    return sub


def get_subuser(s: Session, ref: str) -> SubUser:
    sub = s.scalars(select(SubUser).where((SubUser.uin == ref) | (SubUser.name == ref))).first()
    if sub is None:
        raise AccountError(f"no sub-account {ref!r}")
    return sub


def quota(s: Session, account_id: int, name: str) -> int:
    value = s.scalar(select(Quota.value).where(Quota.account_id == account_id, Quota.name == name))
    if value is not None:
        return value
    if name not in DEFAULT_QUOTAS:
        raise AccountError(f"unknown quota {name!r}; known: {', '.join(sorted(DEFAULT_QUOTAS))}")
    return DEFAULT_QUOTAS[name]


def set_quota(s: Session, account_id: int, name: str, value: int) -> None:
    if name not in DEFAULT_QUOTAS:
        raise AccountError(f"unknown quota {name!r}; known: {', '.join(sorted(DEFAULT_QUOTAS))}")
    if value < 0:
        raise AccountError("a quota cannot be negative")
    row = s.get(Quota, (account_id, name))
    if row is None:
        s.add(Quota(account_id=account_id, name=name, value=value))
    else:
        row.value = value


def all_quotas(s: Session, account_id: int) -> dict[str, int]:
    return {name: quota(s, account_id, name) for name in DEFAULT_QUOTAS}


def lookup_caller(s: Session, box: SecretBox, secret_id: str) -> Caller | None:
    """The signer of a request, in one query on the hot path."""
    row = s.execute(
        select(
            ApiKey.secret_key_enc,
            ApiKey.enabled,
            Account.id,
            Account.app_id,
            Account.uin,
            Account.enabled,
            SubUser.id,
            SubUser.uin,
            SubUser.allowed_actions,
            SubUser.allowed_resources,
        )
        .join(Account, Account.id == ApiKey.account_id)
        .outerjoin(SubUser, SubUser.id == ApiKey.subuser_id)
        .where(ApiKey.secret_id == secret_id)
    ).first()
    if row is None:
        return None
    return Caller(
        account_id=row[2],
        app_id=row[3],
        uin=row[4],
        account_enabled=row[5],
        secret_id=secret_id,
        secret_key=box.decrypt(row[0]),
        key_enabled=row[1],
        subuser_id=row[6],
        subuser_uin=row[7],
        allowed_actions=list(row[8] or []),
        allowed_resources=list(row[9] or []),
    )


# Credentials change rarely and are read on every request: the server keeps callers in
# memory, and every committed change of an account, key or sub-account replaces a small
# file in the data directory, which the cache checks (one stat) before each lookup. The
# CLI changes credentials in its own process, so the file is the signal that crosses over.
_AUTH_TYPES = (Account, ApiKey, SubUser)


@event.listens_for(Session, "before_flush")
def _note_auth_change(session: Session, _ctx: Any, _instances: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, _AUTH_TYPES) for obj in changed):
        session.info["auth_changed"] = True


@event.listens_for(Session, "after_commit")
def _announce_auth_change(session: Session) -> None:
    if session.info.pop("auth_changed", False) and session.info.get("auth_epoch"):
        bump_auth_epoch(Path(session.info["auth_epoch"]))


@event.listens_for(Session, "after_rollback")
def _forget_auth_change(session: Session) -> None:
    session.info.pop("auth_changed", None)


def bump_auth_epoch(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(uuid.uuid4().hex)
    os.replace(tmp, path)  # a new inode: the stamp changes even within one clock tick


class CallerCache:
    """Callers by SecretId, dropped whenever the auth epoch file is replaced."""

    MAX = 10_000

    def __init__(self, store: Any, box: SecretBox, epoch: Path) -> None:
        self.store = store
        self.box = box
        self.epoch = epoch
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._callers: dict[str, Caller | None] = {}

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.epoch)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def peek(self, secret_id: str) -> tuple[bool, Caller | None]:
        """(found, caller) from memory only: found is False when the store must be asked."""
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp or len(self._callers) > self.MAX:
                return False, None
            if secret_id in self._callers:
                return True, self._callers[secret_id]
        return False, None

    def get(self, secret_id: str) -> Caller | None:
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp or len(self._callers) > self.MAX:
                self._callers.clear()
                self._stamp = stamp
            if secret_id in self._callers:
                return self._callers[secret_id]
        with self.store.session() as s:
            caller = lookup_caller(s, self.box, secret_id)
        with self._lock:
            if self._stamp == stamp:
                self._callers[secret_id] = caller
        return caller
