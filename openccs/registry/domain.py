"""Rules of the registry's resources, on the database only (no HTTP, no registry calls)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from openccs.domain.accounts import quota
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.timeutil import utcnow

from .models import CcrFavor, CcrNamespace, CcrRepository, CcrRetention, CcrTag, CcrTrigger

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
