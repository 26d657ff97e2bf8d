"""Rules of the registry's resources, on the database only (no HTTP, no registry calls)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openccs.domain.accounts import quota
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.timeutil import utcnow

from .models import (
    CcrFavor,
    CcrNamespace,
    CcrRepository,
    CcrRetention,
    CcrTag,
    CcrTrigger,
    CcrTriggerLog,
    CcrUser,
)

# A path component of an image name, as Distribution's grammar has it.
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
NAMESPACE_RE = re.compile(rf"^{COMPONENT}$")
REPOSITORY_RE = re.compile(rf"^{COMPONENT}(?:/{COMPONENT})+$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
NAMESPACE_LEN = (2, 30)
REPOSITORY_MAX = 200

# Names the operator keeps for itself; nobody can create them as namespaces.
RESERVED_NAMESPACES = frozenset(
    {"library", "qcloud", "tencentyun", "tencent", "ccr", "openccs", "admin", "root", "docker"}
)

QUOTA_NAMESPACES = "ccrNamespaces"
QUOTA_REPOSITORIES = "ccrRepositories"
QUOTA_TAGS = "ccrTagsPerRepository"
QUOTA_TRIGGERS = "ccrTriggers"

REPOTYPE = "QCLOUD HUB"


def already_exists(kind: str, name: str) -> ApiError:
    return ApiError(5100, "ResourceAlreadyExists", f"{kind} {name} already exists")


def quota_refused(quota_name: str, limit: int, what: str) -> ApiError:
    return ApiError(
        4400,
        "QuotaExceeded",
        f"Quota {quota_name} ({limit}) reached: {what}; delete some or ask the operator"
        " to raise it",
    )


def check_namespace_name(name: str, param: str = "namespace") -> None:
    lo, hi = NAMESPACE_LEN
    if not lo <= len(name) <= hi or not NAMESPACE_RE.match(name):
        raise invalid_parameter(
            param,
            f"{name!r} is not a namespace name: {lo}-{hi} lower-case letters and digits,"
            " separated by single '.', '_' or '-'",
        )


def check_repository_name(name: str, param: str = "reponame") -> None:
    if len(name) > REPOSITORY_MAX or not REPOSITORY_RE.match(name):
        raise invalid_parameter(
            param,
            f"{name!r} is not a repository name: NAMESPACE/NAME, lower-case letters and digits"
            f" separated by '.', '_' or '-', at most {REPOSITORY_MAX} characters",
        )
    check_namespace_name(name.split("/", 1)[0], param)


def check_tag_name(name: str, param: str = "tag") -> None:
    if not TAG_RE.match(name):
        raise invalid_parameter(
            param, f"{name!r} is not a tag: up to 128 letters, digits, '_', '.' or '-'"
        )


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str


def parse_image(value: str, param: str) -> ImageRef:
    """`namespace/name:tag` without the registry's domain."""
    repo, sep, tag = value.rpartition(":")
    if not sep or "/" in tag:
        raise invalid_parameter(param, f"{value!r} is not NAMESPACE/NAME:TAG")
    check_repository_name(repo, param)
    check_tag_name(tag, param)
    return ImageRef(repo, tag)


# --- lookups -------------------------------------------------------------------------------
def namespace_by_name(s: Session, name: str) -> CcrNamespace | None:
    return s.scalars(select(CcrNamespace).where(CcrNamespace.name == name)).first()


def own_namespace(s: Session, account_id: int, name: str) -> CcrNamespace:
    ns = namespace_by_name(s, name)
    if ns is None or ns.account_id != account_id:
        raise not_found("Namespace", name)
    return ns


def repository_by_name(s: Session, name: str) -> CcrRepository | None:
    return s.scalars(select(CcrRepository).where(CcrRepository.name == name)).first()


def own_repository(s: Session, account_id: int, name: str) -> CcrRepository:
    repo = repository_by_name(s, name)
    if repo is None or repo.account_id != account_id:
        raise not_found("Repository", name)
    return repo


def visible_repository(s: Session, account_id: int, name: str) -> CcrRepository:
    """Own repositories and everyone's public ones; another's private one does not exist."""
    repo = repository_by_name(s, name)
    if repo is None or (repo.account_id != account_id and not repo.public):
        raise not_found("Repository", name)
    return repo


def tag_count(s: Session, repository_id: int) -> int:
    return s.scalar(select(func.count()).where(CcrTag.repository_id == repository_id)) or 0


def tag_counts(s: Session, repository_ids: list[int]) -> dict[int, int]:
    if not repository_ids:
        return {}
    rows = s.execute(
        select(CcrTag.repository_id, func.count())
        .where(CcrTag.repository_id.in_(repository_ids))
        .group_by(CcrTag.repository_id)
    )
    return {rid: n for rid, n in rows}


def favor_counts(s: Session, names: list[str], repotype: str = REPOTYPE) -> dict[str, int]:
    if not names:
        return {}
    rows = s.execute(
        select(CcrFavor.reponame, func.count())
        .where(CcrFavor.repotype == repotype, CcrFavor.reponame.in_(names))
        .group_by(CcrFavor.reponame)
    )
    return {n: c for n, c in rows}


def user_favors(s: Session, account_id: int, names: list[str]) -> set[str]:
    if not names:
        return set()
    return set(
        s.scalars(
            select(CcrFavor.reponame).where(
                CcrFavor.account_id == account_id,
                CcrFavor.repotype == REPOTYPE,
                CcrFavor.reponame.in_(names),
            )
        )
    )


def official_namespaces(s: Session, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    return set(
        s.scalars(select(CcrNamespace.id).where(CcrNamespace.id.in_(ids), CcrNamespace.official))
    )


def has_strategy(s: Session, repository_id: int) -> bool:
    row = s.get(CcrRetention, repository_id)
    return row is not None and row.valid


# --- creation --------------------------------------------------------------------------------
def create_namespace(s: Session, account_id: int, name: str) -> CcrNamespace:
    check_namespace_name(name)
    if name in RESERVED_NAMESPACES:
        raise ApiError(5100, "NamespaceReserved", f"Namespace {name} is reserved")
    if namespace_by_name(s, name) is not None:
        raise already_exists("Namespace", name)
    limit = quota(s, account_id, QUOTA_NAMESPACES)
    count = s.scalar(select(func.count()).where(CcrNamespace.account_id == account_id)) or 0
    if count >= limit:
        raise quota_refused(QUOTA_NAMESPACES, limit, f"this account has {count} namespaces")
    ns = CcrNamespace(name=name, account_id=account_id, created_at=utcnow())
    s.add(ns)
    s.flush()
    return ns


def repository_quota_check(s: Session, account_id: int) -> None:
    limit = quota(s, account_id, QUOTA_REPOSITORIES)
    count = s.scalar(select(func.count()).where(CcrRepository.account_id == account_id)) or 0
    if count >= limit:
        raise quota_refused(QUOTA_REPOSITORIES, limit, f"this account has {count} repositories")


def create_repository(
    s: Session,
    ns: CcrNamespace,
    name: str,
    public: bool = False,
    description: str = "",
    check_quota: bool = True,
) -> CcrRepository:
    if repository_by_name(s, name) is not None:
        raise already_exists("Repository", name)
    if check_quota:
        repository_quota_check(s, ns.account_id)
    now = utcnow()
    repo = CcrRepository(
        name=name,
        namespace_id=ns.id,
        account_id=ns.account_id,
        public=public,
        description=description,
        pull_count=0,
        created_at=now,
        updated_at=now,
    )
    s.add(repo)
    s.flush()
    return repo


def repository_for_push(s: Session, ns: CcrNamespace, name: str) -> CcrRepository:
    """The repository a push lands in, made if missing (its quota was checked when the push
    was allowed). The registry's push notification may make the same one at the same
    moment: then its row is the one."""
    repo = repository_by_name(s, name)
    if repo is not None:
        return repo
    try:
        with s.begin_nested():
            return create_repository(s, ns, name, check_quota=False)
    except (IntegrityError, ApiError):  # made meanwhile: a unique key, or "already exists"
        found = repository_by_name(s, name)
        if found is None:
            raise
        return found


def delete_repository_rows(s: Session, repo: CcrRepository) -> None:
    s.execute(delete(CcrTag).where(CcrTag.repository_id == repo.id))
    s.execute(delete(CcrRetention).where(CcrRetention.repository_id == repo.id))
    s.execute(delete(CcrTrigger).where(CcrTrigger.repository_id == repo.id))
    s.execute(delete(CcrFavor).where(CcrFavor.repotype == REPOTYPE, CcrFavor.reponame == repo.name))
    s.delete(repo)


# --- the tag index -------------------------------------------------------------------------
@dataclass
class TagDetails:
    digest: str
    media_type: str = ""
    image_id: str = ""
    architecture: str = ""
    os: str = ""
    author: str = ""
    docker_version: str = ""
    created: datetime | None = None
    size_bytes: int = 0

    @classmethod
    def of(cls, tag: CcrTag) -> TagDetails:
        """What a recorded tag says of its image (to record it again under another name)."""
        return cls(**{f.name: getattr(tag, f.name) for f in fields(cls)})


def record_tag(
    s: Session, repo: CcrRepository, tag: str, details: TagDetails, push_time: datetime
) -> CcrTag:
    """Insert or update a tag in one statement: the registry's push notification and the
    action that pushed (DuplicateImage) may record the same tag at the same moment."""
    now = utcnow()
    values = {**details.__dict__, "push_time": push_time, "updated_at": now}
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(
        insert(CcrTag)
        .values(repository_id=repo.id, name=tag, **values)
        .on_conflict_do_update(index_elements=["repository_id", "name"], set_=values)
    )
    repo.updated_at = now
    s.flush()
    return s.scalars(
        select(CcrTag)
        .where(CcrTag.repository_id == repo.id, CcrTag.name == tag)
        .execution_options(populate_existing=True)
    ).one()


# --- what the actions read and write ---------------------------------------------------------
# A listing a sub-account sees: its allow-list filters the rows (None: the owner, sees all).
Visible = Callable[[str], bool] | None

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    total: int
    rows: list[T]
    # Whether a sub-account's allow-list hid some of the rows.
    filtered: bool = False


def _count(s: Session, q: Select[Any] | Any) -> int:
    return s.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0


def _page(
    s: Session,
    q: Select[Any],
    offset: int,
    limit: int,
    visible: Visible = None,
    name_of: Callable[[Any], str] = str,
) -> Page[Any]:
    if visible is None:
        return Page(_count(s, q), list(s.scalars(q.offset(offset).limit(limit))))
    everything = list(s.scalars(q))
    shown = [r for r in everything if visible(name_of(r))]
    return Page(len(shown), shown[offset : offset + limit], len(shown) != len(everything))


def register_user(
    s: Session, uin: str, account_id: int, subuser_id: int | None, password_hash: str
) -> CcrUser:
    if s.get(CcrUser, uin) is not None:
        raise ApiError(
            5100,
            "AccountAlreadyRegistered",
            f"Registry user {uin} is already registered: use ChangePassword",
        )
    now = utcnow()
    user = CcrUser(
        uin=uin,
        account_id=account_id,
        subuser_id=subuser_id,
        password_hash=password_hash,
        created_at=now,
        updated_at=now,
    )
    s.add(user)
    return user


def change_password(s: Session, uin: str, password_hash: str) -> None:
    user = s.get(CcrUser, uin)
    if user is None:
        raise not_found("Registry user", f"{uin} (call RegisterRepositoryAccountNew)")
    user.password_hash = password_hash
    user.updated_at = utcnow()


def list_namespaces(
    s: Session, account_id: int, contains: str | None, offset: int, limit: int, visible: Visible
) -> tuple[Page[CcrNamespace], dict[int, int]]:
    """A page of the account's namespaces, and how many repositories each holds."""
    q = select(CcrNamespace).where(CcrNamespace.account_id == account_id)
    if contains:
        q = q.where(CcrNamespace.name.contains(contains, autoescape=True))
    page = _page(s, q.order_by(CcrNamespace.name), offset, limit, visible, lambda n: n.name)
    rows = s.execute(
        select(CcrRepository.namespace_id, func.count())
        .where(CcrRepository.namespace_id.in_([n.id for n in page.rows]))
        .group_by(CcrRepository.namespace_id)
    )
    counts = {nid: n for nid, n in rows}
    return page, counts


def delete_namespace(s: Session, account_id: int, name: str) -> None:
    ns = own_namespace(s, account_id, name)
    repos = s.scalar(select(func.count()).where(CcrRepository.namespace_id == ns.id)) or 0
    if repos:
        raise ApiError(
            5100,
            "NamespaceNotEmpty",
            f"Namespace {ns.name} still holds {repos} repositories: delete them first",
        )
    s.delete(ns)


def public_repositories(
    s: Session, name: str | None, orderby: str | None, desc: bool, offset: int, limit: int
) -> Page[CcrRepository]:
    """The public catalogue (every account's public repositories)."""
    q = (
        select(CcrRepository)
        .join(CcrNamespace, CcrNamespace.id == CcrRepository.namespace_id)
        .where(CcrRepository.public)
    )
    if name:
        q = q.where(CcrRepository.name == name)
    total = _count(s, q)
    key: Any = {"official": CcrNamespace.official, "pullCount": CcrRepository.pull_count}.get(
        orderby or "", CcrRepository.id
    )
    q = q.order_by(key.desc() if desc else key.asc(), CcrRepository.id)
    return Page(total, list(s.scalars(q.offset(offset).limit(limit))))


def search_repositories(
    s: Session,
    account_id: int,
    name: str | None,
    public: bool | None,
    namespace: str | None,
    offset: int,
    limit: int,
    visible: Visible,
) -> Page[CcrRepository]:
    q = select(CcrRepository).where(CcrRepository.account_id == account_id)
    if name:
        q = q.where(CcrRepository.name == name)
    if public is not None:
        q = q.where(CcrRepository.public == public)
    if namespace:
        q = q.join(CcrNamespace, CcrNamespace.id == CcrRepository.namespace_id).where(
            CcrNamespace.name == namespace
        )
    return _page(s, q.order_by(CcrRepository.name), offset, limit, visible, lambda r: r.name)


def repositories_by_names(s: Session, names: list[str]) -> list[CcrRepository]:
    if not names:
        return []
    return list(s.scalars(select(CcrRepository).where(CcrRepository.name.in_(names))))


def update_repository(
    s: Session,
    account_id: int,
    name: str,
    description: str | None = None,
    public: bool | None = None,
) -> None:
    repo = own_repository(s, account_id, name)
    if description is not None:
        repo.description = description
    if public is not None:
        repo.public = public
    repo.updated_at = utcnow()


def tag_by_name(s: Session, repository_id: int, name: str) -> CcrTag | None:
    return s.scalars(
        select(CcrTag).where(CcrTag.repository_id == repository_id, CcrTag.name == name)
    ).first()


def list_tags(
    s: Session, repository_id: int, contains: str | None, offset: int, limit: int
) -> Page[CcrTag]:
    """A repository's tags, newest push first."""
    q = select(CcrTag).where(CcrTag.repository_id == repository_id)
    if contains:
        q = q.where(CcrTag.name.contains(contains, autoescape=True))
    total = _count(s, q)
    q = q.order_by(CcrTag.push_time.desc(), CcrTag.id.desc())
    return Page(total, list(s.scalars(q.offset(offset).limit(limit))))


def check_tag_room(s: Session, account_id: int, repo: CcrRepository, tag: str) -> None:
    """A new tag must fit the repository's tag quota, unless a retention strategy makes room."""
    if tag_by_name(s, repo.id, tag) is not None:
        return
    limit = quota(s, account_id, QUOTA_TAGS)
    count = tag_count(s, repo.id)
    if count >= limit and not has_strategy(s, repo.id):
        raise quota_refused(QUOTA_TAGS, limit, f"repository {repo.name} has {count} tags")


def set_retention(s: Session, account_id: int, name: str, kind: str, value: int) -> None:
    repo = own_repository(s, account_id, name)
    row = s.get(CcrRetention, repo.id)
    if row is None:
        row = CcrRetention(repository_id=repo.id)
        s.add(row)
    row.type, row.value, row.valid, row.created_at = kind, value, True, utcnow()


def retention_of(s: Session, account_id: int, name: str) -> CcrRetention | None:
    return s.get(CcrRetention, own_repository(s, account_id, name).id)


def close_retention(s: Session, account_id: int, name: str) -> None:
    repo = own_repository(s, account_id, name)
    row = s.get(CcrRetention, repo.id)
    if row is None:
        raise not_found("Retention strategy of repository", repo.name)
    s.delete(row)


@dataclass
class TriggerTarget:
    """What a trigger updates: a container of a service in a cluster."""

    cluster_id: str | None = None
    namespace: str | None = None
    service_name: str | None = None
    container_name: str | None = None
    cluster_region: int | None = None


def own_trigger(s: Session, account_id: int, name: str) -> CcrTrigger:
    row = s.scalars(
        select(CcrTrigger).where(CcrTrigger.account_id == account_id, CcrTrigger.name == name)
    ).first()
    if row is None:
        raise not_found("Trigger", name)
    return row


def _trigger_name_free(s: Session, account_id: int, name: str) -> None:
    taken = s.scalars(
        select(CcrTrigger.id).where(CcrTrigger.account_id == account_id, CcrTrigger.name == name)
    ).first()
    if taken is not None:
        raise already_exists("Trigger", name)


def add_trigger(
    s: Session,
    account_id: int,
    name: str,
    repository: str,
    method: str,
    expr: str,
    target: TriggerTarget,
) -> CcrTrigger:
    repo = own_repository(s, account_id, repository)
    _trigger_name_free(s, account_id, name)
    limit = quota(s, account_id, QUOTA_TRIGGERS)
    count = s.scalar(select(func.count()).where(CcrTrigger.account_id == account_id)) or 0
    if count >= limit:
        raise quota_refused(QUOTA_TRIGGERS, limit, f"this account has {count} triggers")
    now = utcnow()
    row = CcrTrigger(
        account_id=account_id,
        name=name,
        repository_id=repo.id,
        invoke_method=method,
        invoke_expr=expr,
        created_at=now,
        updated_at=now,
        **target.__dict__,
    )
    s.add(row)
    return row


def modify_trigger(
    s: Session,
    row: CcrTrigger,
    new_name: str | None,
    repository: str | None,
    method: str,
    expr: str,
    target: TriggerTarget,
) -> None:
    if repository:
        row.repository_id = own_repository(s, row.account_id, repository).id
    if new_name and new_name != row.name:
        _trigger_name_free(s, row.account_id, new_name)
        row.name = new_name
    row.invoke_method, row.invoke_expr = method, expr
    for attr, value in target.__dict__.items():
        if value is not None:
            setattr(row, attr, value)
    row.updated_at = utcnow()


def trigger_repository_name(s: Session, row: CcrTrigger) -> str:
    repo = s.get(CcrRepository, row.repository_id)
    return repo.name if repo else ""


def list_triggers(
    s: Session,
    account_id: int,
    name: str | None,
    repository: str | None,
    offset: int,
    limit: int,
    visible: Visible,
) -> Page[tuple[CcrTrigger, str]]:
    """A page of (trigger, its repository's name)."""
    q = (
        select(CcrTrigger, CcrRepository.name)
        .join(CcrRepository, CcrRepository.id == CcrTrigger.repository_id)
        .where(CcrTrigger.account_id == account_id)
        .order_by(CcrTrigger.id)
    )
    if name:
        q = q.where(CcrTrigger.name == name)
    if repository:
        q = q.where(CcrRepository.name == repository)
    if visible is None:
        rows = [(t, n) for t, n in s.execute(q.offset(offset).limit(limit))]
        return Page(_count(s, q), rows)
    everything = [(t, n) for t, n in s.execute(q)]
    shown = [r for r in everything if visible(r[1])]
    return Page(len(shown), shown[offset : offset + limit], len(shown) != len(everything))


TRIGGER_LOG_ORDER = ("invoke_time", "trigger_name", "repo_name")


def list_trigger_log(
    s: Session, account_id: int, repository: str, orderby: str, desc: bool, offset: int, limit: int
) -> Page[CcrTriggerLog]:
    own_repository(s, account_id, repository)
    q = select(CcrTriggerLog).where(
        CcrTriggerLog.account_id == account_id, CcrTriggerLog.repo_name == repository
    )
    total = _count(s, q)
    col: Any = {
        "invoke_time": CcrTriggerLog.invoke_time,
        "trigger_name": CcrTriggerLog.trigger_name,
        "repo_name": CcrTriggerLog.repo_name,
    }[orderby]
    tie = CcrTriggerLog.id.desc() if desc else CcrTriggerLog.id.asc()
    q = q.order_by(col.desc() if desc else col.asc(), tie)
    return Page(total, list(s.scalars(q.offset(offset).limit(limit))))


def favor_of(s: Session, account_id: int, repotype: str, name: str) -> CcrFavor | None:
    return s.get(CcrFavor, (account_id, repotype, name))


def add_favor(s: Session, account_id: int, repotype: str, name: str) -> None:
    if favor_of(s, account_id, repotype, name) is None:
        s.add(
            CcrFavor(account_id=account_id, repotype=repotype, reponame=name, created_at=utcnow())
        )


def delete_favors(s: Session, account_id: int, favors: Sequence[tuple[str, str, str]]) -> None:
    """Delete (repotype, name, parameter) favourites: all of them, or none if one is missing."""
    rows: dict[int, CcrFavor] = {}
    for repotype, name, param in favors:
        row = favor_of(s, account_id, repotype, name)
        if row is None:
            raise not_found(f"Favourite{param}", name)
        rows[id(row)] = row
    for row in rows.values():
        s.delete(row)


def list_favors(
    s: Session, account_id: int, offset: int, limit: int, visible: Visible
) -> Page[CcrFavor]:
    q = select(CcrFavor).where(CcrFavor.account_id == account_id)
    q = q.order_by(CcrFavor.created_at, CcrFavor.reponame)
    return _page(s, q, offset, limit, visible, lambda f: f.reponame)


def delete_trigger(s: Session, row: CcrTrigger) -> None:
    s.delete(row)
