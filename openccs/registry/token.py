"""The registry's token server: who may pull or push which repository.

Registry users are the account's uin (or a sub-account's) with the password of
RegisterRepositoryAccountNew / ChangePassword, kept as an scrypt hash, and the clusters'
pull-only robot users (`openccs.registry.clusters`). Rights come from ownership of the
namespace, the repository being public, a sub-account's allow-lists and the quotas;
anonymous users may pull public repositories only.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openccs.domain.accounts import quota
from openccs.log import get_logger, log_event
from openccs.store.models import Account, SubUser

from . import domain
from .models import CcrRepository, CcrUser

log = get_logger("openccs.registry.token")

TOKEN_TTL = 900
# scrypt cost as OWASP advises (N=2^17, r=8, p=1): 128 MiB and a few hundred ms per hash.
# Hashes of a lower cost are replaced at the next successful login.
_N, _R, _P = 2**17, 8, 1
_MAXMEM = 129 * _R * _N + 2**20
# At most two hashes at once: failed logins in parallel cannot take gigabytes.
_HASHING = threading.BoundedSemaphore(2)

# A sub-account's registry rights follow the API actions it may call.
PULL_ACTION = "GetTagList"
PUSH_ACTION = "DuplicateImage"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _HASHING:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=_MAXMEM)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    encoded = [base64.b64encode(v).decode() for v in (salt, digest)]
    return "$".join(["scrypt", str(_N), str(_R), str(_P), *encoded])


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash is of another cost than the current one."""
    return stored.split("$")[1:4] != [str(_N), str(_R), str(_P)]


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or not all(x.isascii() and x.isdigit() for x in (n, r, p)):
            return False
        # Never above the current cost: a stored hash cannot make a check take more.
        if int(n) > _N or int(r) > _R or int(p) > _P:
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@dataclass(frozen=True)
class Principal:
    """A registry user: the account it acts for, and a sub-account's limits."""

    uin: str
    account_id: int
    is_subuser: bool = False
    allowed_actions: tuple[str, ...] = ()
    allowed_resources: tuple[str, ...] = ()
    # A cluster's machines read what the owner may read and never write.
    pull_only: bool = False

    def may(self, action: str, resource: str) -> bool:
        if not self.is_subuser:
            return True

        def ok(patterns: tuple[str, ...], value: str) -> bool:
            return any(p == "*" or fnmatch.fnmatchcase(value, p) for p in patterns)

        return ok(self.allowed_actions, action) and ok(self.allowed_resources, resource)


@dataclass
class _Verified:
    stored_hash: str
    until: float


@dataclass
class Authenticator:
    """Checks Basic credentials; remembers successful checks briefly, keyed by the stored hash
    (a password change invalidates them at once)."""

    ttl: float = 60.0
    _cache: dict[str, _Verified] = field(default_factory=dict)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(self, s: Session, uin: str, password: str) -> Principal | None:
        row = s.execute(
            select(CcrUser, Account.enabled, SubUser)
            .join(Account, Account.id == CcrUser.account_id)
            .outerjoin(SubUser, SubUser.id == CcrUser.subuser_id)
            .where(CcrUser.uin == uin)
        ).first()
        if row is None:
            return None
        user, enabled, sub = row
        if not enabled:
            return None
        key = hmac.new(self._key, f"{uin}\0{password}".encode(), "sha256").hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if not (hit and hit.stored_hash == user.password_hash and hit.until > now):
            if not check_password(password, user.password_hash):
                return None
            if needs_rehash(user.password_hash):
                # The password is known right now: store it at the current cost.
                user.password_hash = hash_password(password)
                log_event(log, "registry password rehashed", uin=uin)
            with self._lock:
                if len(self._cache) > 10000:
                    self._cache.clear()
                self._cache[key] = _Verified(user.password_hash, now + self.ttl)
        if sub is not None:
            return Principal(
                uin=uin,
                account_id=user.account_id,
                is_subuser=True,
                allowed_actions=tuple(sub.allowed_actions or ()),
                allowed_resources=tuple(sub.allowed_resources or ()),
            )
        return Principal(uin=uin, account_id=user.account_id)


def parse_scopes(values: list[str]) -> list[tuple[str, str, list[str]]]:
    """`type:name:actions` scopes; several may be given, also space separated.

    The type is split off the left and the actions off the right: names may contain ':'.
    """
    out: list[tuple[str, str, list[str]]] = []
    for value in values:
        for scope in value.split():
            kind, sep, rest = scope.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not name:
                continue
            out.append((kind, name, [a for a in actions.split(",") if a]))
    return out


def _push_allowed(s: Session, principal: Principal, name: str) -> bool:
    repo = domain.repository_by_name(s, name)
    if repo is None:
        limit = quota(s, principal.account_id, domain.QUOTA_REPOSITORIES)
        count = s.scalar(
            select(func.count()).where(CcrRepository.account_id == principal.account_id)
        )
        return (count or 0) < limit
    limit = quota(s, principal.account_id, domain.QUOTA_TAGS)
    # A repository at its tag quota takes pushes only if a retention strategy makes room.
    return domain.tag_count(s, repo.id) < limit or domain.has_strategy(s, repo.id)


def grant(
    s: Session, principal: Principal | None, kind: str, name: str, wanted: list[str]
) -> list[str]:
    """The subset of `wanted` actions the principal gets on a resource."""
    if kind != "repository" or not domain.REPOSITORY_RE.match(name):
        return []
    wanted_set = {"pull", "push"} if "*" in wanted else set(wanted)
    ns = domain.namespace_by_name(s, name.split("/", 1)[0])
    repo = domain.repository_by_name(s, name)
    granted: list[str] = []
    owner = principal is not None and ns is not None and ns.account_id == principal.account_id
    if "pull" in wanted_set and (
        (repo is not None and repo.public)
        or (owner and principal is not None and principal.may(PULL_ACTION, name))
    ):
        granted.append("pull")
    if (
        "push" in wanted_set
        and owner
        and principal is not None
        and not principal.pull_only
        and principal.may(PUSH_ACTION, name)
        and _push_allowed(s, principal, name)
    ):
        granted.append("push")
    return granted


def missing_namespace(s: Session, scopes: list[tuple[str, str, list[str]]]) -> str | None:
    """The namespace a push is aimed at that does not exist (Distribution would only say
    `denied`; the token server can say why)."""
    for kind, name, wanted in scopes:
        if kind != "repository" or not ({"push", "*"} & set(wanted)):
            continue
        if domain.REPOSITORY_RE.match(name):
            ns = name.split("/", 1)[0]
            if domain.namespace_by_name(s, ns) is None:
                return ns
    return None


def issued_at(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
