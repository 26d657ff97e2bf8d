"""The registry backend: logins, namespaces, repositories, tags, retention, triggers and
favourites of the image registry (`ccr`).

Every front end calls these (today the v2 actions, `actions/registry.py`). Inputs are typed
(names, numbers, a `TriggerTarget`); answers are rows or small typed results
(`RepositoryInfo`, `NamespaceInfo`), which each front end encodes in its own wire format.
The queries stay in `registry/domain.py`; the registry's half of a change (copying an image,
removing tags and repositories) runs in `Work.outside()`, between a reading and a writing
transaction, never while one is open.

A listing takes what the caller may see (`Visible`: a sub-account's allow-list, None for
the owner, who sees everything); errors are the document's (`openccs.errors`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from openccs.backends import Work
from openccs.domain.accounts import quota
from openccs.errors import (
    ApiError,
    invalid_parameter,
    not_found,
    resource_not_allowed,
    unavailable,
)
from openccs.registry import domain, index, triggers
from openccs.registry.client import RegistryClient, RegistryError
from openccs.registry.domain import Page, TriggerTarget, Visible
from openccs.registry.models import CcrRepository, CcrRetention, CcrTag, CcrTrigger, CcrTriggerLog
from openccs.registry.runtime import RegistryRuntime
from openccs.registry.token import hash_password
from openccs.subsystems import need
from openccs.timeutil import utcnow

REPOTYPE = domain.REPOTYPE
HUB_REPOTYPE = "DOCKER HUB"
# A Docker Hub repository's name, for favourites of images kept elsewhere.
_HUB_NAME = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")

R = TypeVar("R")


def _runtime(w: Work) -> RegistryRuntime:
    return need(w.services.subsystems.registry, "registry").rt


def _registry_call(fn: Callable[..., R], *args: Any) -> R:
    """A call to the registry (in `Work.outside()`); its failure is the document's 5100."""
    try:
        return fn(*args)
    except RegistryError as exc:
        raise unavailable("RegistryUnavailable", f"The image registry failed: {exc}") from None


def check_repository(name: str, param: str = "reponame") -> str:
    domain.check_repository_name(name, param)
    return name


# --- logins and quotas ---------------------------------------------------------------------
@dataclass(frozen=True)
class Login:
    """Who a registry login belongs to: a sub-account logs in as its own uin, the owner as
    the account's."""

    user: str
    subuser_id: int | None = None


def register_login(w: Work, login: Login, password: str) -> None:
    domain.register_user(w.db, login.user, w.account_id, login.subuser_id, hash_password(password))


def change_password(w: Work, login: Login, password: str) -> None:
    domain.change_password(w.db, login.user, hash_password(password))


# The quotas GetLimit shows, by the name it shows them under.
LIMIT_TYPES = (
    ("namespace", domain.QUOTA_NAMESPACES),
    ("repo", domain.QUOTA_REPOSITORIES),
    ("tag", domain.QUOTA_TAGS),
    ("triggers", domain.QUOTA_TRIGGERS),
)


@dataclass(frozen=True)
class Limit:
    kind: str
    value: int


def limits(w: Work) -> list[Limit]:
    return [Limit(kind, quota(w.db, w.account_id, q)) for kind, q in LIMIT_TYPES]


# --- namespaces ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    created_at: datetime
    repo_count: int


def create_namespace(w: Work, name: str) -> None:
    domain.create_namespace(w.db, w.account_id, name)


def namespaces(
    w: Work, contains: str | None, offset: int, limit: int, visible: Visible
) -> Page[NamespaceInfo]:
    page, counts = domain.list_namespaces(w.db, w.account_id, contains, offset, limit, visible)
    rows = [NamespaceInfo(n.name, n.created_at, counts.get(n.id, 0)) for n in page.rows]
    return Page(page.total, rows, page.filtered)


@dataclass(frozen=True)
class NameTaken:
    exists: bool  # some account holds it (namespaces are unique across accounts)
    reserved: bool  # the operator keeps it


def namespace_taken(w: Work, name: str) -> NameTaken:
    return NameTaken(
        domain.namespace_by_name(w.db, name) is not None, name in domain.RESERVED_NAMESPACES
    )


def delete_namespace(w: Work, name: str) -> None:
    domain.delete_namespace(w.db, w.account_id, name)


# --- repositories --------------------------------------------------------------------------
@dataclass(frozen=True)
class RepositoryInfo:
    """A repository as the listings show it (also a Docker Hub favourite's short form)."""

    name: str
    repotype: str
    tag_count: int
    public: bool
    official: bool
    favor_count: int
    user_favor: bool = False
    pull_count: int = 0
    description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


def repository_infos(w: Work, repos: Sequence[CcrRepository]) -> list[RepositoryInfo]:
    """Each repository with its counts, in a handful of queries whatever their number."""
    s = w.db
    names = [r.name for r in repos]
    tags = domain.tag_counts(s, [r.id for r in repos])
    favors = domain.favor_counts(s, names)
    mine = domain.user_favors(s, w.account_id, names)
    official = domain.official_namespaces(s, list({r.namespace_id for r in repos}))
    return [
        RepositoryInfo(
            name=r.name,
            repotype=REPOTYPE,
            tag_count=tags.get(r.id, 0),
            public=bool(r.public),
            official=r.namespace_id in official,
            favor_count=favors.get(r.name, 0),
            user_favor=r.name in mine,
            pull_count=r.pull_count,
            description=r.description,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in repos
    ]


def create_repository(w: Work, name: str, public: bool, description: str) -> CcrRepository:
    check_repository(name)
    ns = domain.own_namespace(w.db, w.account_id, name.split("/", 1)[0])
    return domain.create_repository(w.db, ns, name, public, description)


def delete_repositories(w: Work, names: Sequence[str]) -> None:
    """Each repository (`reponames.n`) with its tags, retention, triggers and favourites:
    read which, purge them from the registry outside any transaction, then forget them."""
    doomed: dict[int, str] = {}
    for i, name in enumerate(names):
        check_repository(name, f"reponames.{i}")
        repo = domain.own_repository(w.db, w.account_id, name)
        doomed[repo.id] = repo.name
    rt = _runtime(w)
    rt.need_client()
    with w.outside():
        for name in doomed.values():
            _registry_call(index.purge_repository, rt, name)
    for repo_id in doomed:
        index.forget_repository(rt, w.db, repo_id)


def repository(w: Work, name: str) -> RepositoryInfo:
    """An own repository or anyone's public one (5000 for another's private one)."""
    check_repository(name)
    return repository_infos(w, [domain.visible_repository(w.db, w.account_id, name)])[0]


def repository_exists(w: Work, name: str) -> bool:
    check_repository(name)
    try:
        domain.visible_repository(w.db, w.account_id, name)
    except ApiError:
        return False
    return True


def public_repositories(
    w: Work, name: str | None, orderby: str | None, desc: bool, offset: int, limit: int
) -> Page[RepositoryInfo]:
    """The public catalogue: every account's public repositories."""
    page = domain.public_repositories(w.db, name, orderby, desc, offset, limit)
    return Page(page.total, repository_infos(w, page.rows), page.filtered)


def own_repositories(
    w: Work,
    name: str | None,
    public: bool | None,
    namespace: str | None,
    offset: int,
    limit: int,
    visible: Visible,
) -> Page[RepositoryInfo]:
    page = domain.search_repositories(
        w.db, w.account_id, name, public, namespace, offset, limit, visible
    )
    return Page(page.total, repository_infos(w, page.rows), page.filtered)


def update_repository(
    w: Work, name: str, description: str | None = None, public: bool | None = None
) -> None:
    check_repository(name)
    domain.update_repository(w.db, w.account_id, name, description=description, public=public)


# --- tags ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TagList:
    repository: str  # NAMESPACE/NAME
    server: str  # the registry's host, to pull from
    page: Page[CcrTag]  # newest push first


def tags(w: Work, name: str, contains: str | None, offset: int, limit: int) -> TagList:
    check_repository(name)
    repo = domain.visible_repository(w.db, w.account_id, name)
    page = domain.list_tags(w.db, repo.id, contains, offset, limit)
    return TagList(repo.name, _runtime(w).host, page)


def delete_tags(w: Work, name: str, tag_names: Sequence[str]) -> None:
    """Each tag (`tags.n`), all or none: untagged in the registry (and the manifests no
    other tag uses deleted) outside any transaction, then forgotten."""
    check_repository(name)
    repo = domain.own_repository(w.db, w.account_id, name)
    rows = []
    for i, tag in enumerate(tag_names):
        domain.check_tag_name(tag, f"tags.{i}")
        row = domain.tag_by_name(w.db, repo.id, tag)
        if row is None:
            raise not_found("Tag", f"{repo.name}:{tag}")
        rows.append(row)
    rt = _runtime(w)
    rt.need_client()
    removal = index.plan_tag_removal(w.db, repo, rows)
    with w.outside():
        _registry_call(index.untag_in_registry, rt, removal)
    index.forget_tags(rt, w.db, removal)


def _copy_manifest(client: RegistryClient, src: str, dest: str, digest: str) -> Any:
    """Mount a manifest's blobs (and an index's manifests) from `src` into `dest`."""
    manifest = client.get_manifest(src, digest)
    if manifest is None:
        raise not_found("Image", f"{src}@{digest}")
    body = manifest.json()
    if src != dest:
        for child in body.get("manifests", []):
            client.put_manifest(
                dest, child["digest"], _copy_manifest(client, src, dest, child["digest"])
            )
        blobs = [body["config"]] if "config" in body else []
        for blob in blobs + list(body.get("layers", [])):
            client.mount_blob(dest, blob["digest"], src)
    return manifest


def duplicate_image(w: Work, src_image: str, dest_image: str) -> CcrTag:
    """Tag `src_image` (NAMESPACE/NAME:TAG, own or public) as `dest_image` (in an own
    namespace; the repository is made if missing, within the quotas)."""
    src = domain.parse_image(src_image, "src_image")
    dest = domain.parse_image(dest_image, "dest_image")
    # Read: the source tag, and whether the destination may take it.
    s = w.db
    src_repo = domain.visible_repository(s, w.account_id, src.repository)
    src_tag = domain.tag_by_name(s, src_repo.id, src.tag)
    if src_tag is None:
        raise not_found("Image", src_image)
    domain.own_namespace(s, w.account_id, dest.repository.split("/", 1)[0])
    dest_repo = domain.repository_by_name(s, dest.repository)
    if dest_repo is None:
        domain.repository_quota_check(s, w.account_id)
    else:
        domain.check_tag_room(s, w.account_id, dest_repo, dest.tag)
    details = domain.TagDetails.of(src_tag)
    client = _runtime(w).need_client()
    # Work: the registry copies the image (blob mounts, manifests), no transaction open.
    with w.outside():
        manifest = _registry_call(
            _copy_manifest, client, src.repository, dest.repository, details.digest
        )
        _registry_call(client.put_manifest, dest.repository, dest.tag, manifest)
    # Write: the index. The registry holds the image now, and its push notification records
    # it (making the repository if need be) whatever this transaction does, maybe at this
    # very moment; recording it here makes it visible at once (the quota was checked above).
    ns = domain.own_namespace(s, w.account_id, dest.repository.split("/", 1)[0])
    dest_repo = domain.repository_for_push(s, ns, dest.repository)
    return domain.record_tag(s, dest_repo, dest.tag, details, utcnow())


# --- retention -----------------------------------------------------------------------------
def set_retention(w: Work, name: str, kind: str, value: int) -> None:
    """Keep the last `value` days (`keep_last_days`) or tags (`keep_last_nums`)."""
    check_repository(name)
    domain.set_retention(w.db, w.account_id, name, kind, value)


def retention(w: Work, name: str) -> CcrRetention | None:
    check_repository(name)
    return domain.retention_of(w.db, w.account_id, name)


def close_retention(w: Work, name: str) -> None:
    check_repository(name)
    domain.close_retention(w.db, w.account_id, name)


# --- triggers ------------------------------------------------------------------------------
def _check_condition(w: Work, method: str, expr: str, region: int | None) -> str:
    """A trigger's condition and region; the expression it keeps (none for `all`)."""
    if method in ("taglist", "regex") and not expr.strip():
        raise invalid_parameter("invokeExpr", f"required when invokeMethod is {method}")
    if method == "taglist":
        for t in triggers.taglist(expr):
            domain.check_tag_name(t, "invokeExpr")
    if method == "regex":
        try:
            re.compile(expr)
        except re.error as exc:
            raise invalid_parameter("invokeExpr", f"not a regular expression: {exc}") from None
    if region is not None:
        known = {r.region_id for r in w.services.settings.regions}
        if region not in known:
            raise invalid_parameter(
                "clusterRegion", f"unknown region {region} (known: {sorted(known)})"
            )
    return "" if method == "all" else expr


def add_trigger(
    w: Work, name: str, repository: str, method: str, expr: str, target: TriggerTarget
) -> CcrTrigger:
    """A trigger updating `target`'s image when a tag matching (method, expr) is pushed."""
    check_repository(repository)
    kept = _check_condition(w, method, expr, target.cluster_region)
    return domain.add_trigger(w.db, w.account_id, name, repository, method, kept, target)


def modify_trigger(
    w: Work,
    name: str,
    new_name: str | None,
    repository: str | None,
    method: str | None,
    expr: str | None,
    target: TriggerTarget,
) -> None:
    """What is given changes (None keeps it); a new method without an expression drops the
    old expression."""
    row = domain.own_trigger(w.db, w.account_id, name)
    new_method = method or row.invoke_method
    new_expr = expr if expr is not None else row.invoke_expr
    if method is not None and expr is None and new_method != row.invoke_method:
        new_expr = ""
    new_expr = _check_condition(w, new_method, new_expr, target.cluster_region)
    if repository:
        check_repository(repository)
    domain.modify_trigger(w.db, row, new_name, repository, new_method, new_expr, target)


def delete_trigger(w: Work, name: str, may_use: Callable[[str], bool]) -> None:
    """The caller must be allowed the trigger's repository and cluster (`may_use`)."""
    row = domain.own_trigger(w.db, w.account_id, name)
    for resource in (domain.trigger_repository_name(w.db, row), row.cluster_id):
        if resource and not may_use(resource):
            raise resource_not_allowed(resource)
    domain.delete_trigger(w.db, row)


def list_triggers(
    w: Work,
    name: str | None,
    repository: str | None,
    offset: int,
    limit: int,
    visible: Visible,
) -> Page[tuple[CcrTrigger, str]]:
    """A page of (trigger, its repository's name)."""
    return domain.list_triggers(w.db, w.account_id, name, repository, offset, limit, visible)


def trigger_log(
    w: Work, repository: str, orderby: str, desc: bool, offset: int, limit: int
) -> Page[CcrTriggerLog]:
    check_repository(repository)
    return domain.list_trigger_log(w.db, w.account_id, repository, orderby, desc, offset, limit)


# --- favourites ----------------------------------------------------------------------------
def add_favor(w: Work, repotype: str, name: str) -> None:
    """A repository of this registry (own or public) or a Docker Hub one, by name."""
    if repotype == REPOTYPE:
        check_repository(name)
        domain.visible_repository(w.db, w.account_id, name)
    elif not _HUB_NAME.match(name):
        raise invalid_parameter("reponame", f"{name!r} is not a Docker Hub repository name")
    domain.add_favor(w.db, w.account_id, repotype, name)


@dataclass(frozen=True)
class Favor:
    repotype: str
    name: str
    param: str = ""  # the parameter that named it, for the error (` (favors.0)`)


def delete_favors(w: Work, favors: Sequence[Favor]) -> None:
    """All of them, or none if one is missing."""
    domain.delete_favors(w.db, w.account_id, [(f.repotype, f.name, f.param) for f in favors])


def favors(w: Work, offset: int, limit: int, visible: Visible) -> Page[RepositoryInfo]:
    """A page of favourites, oldest first; a repository of this registry that is gone
    meanwhile is left out (the total still counts it)."""
    page = domain.list_favors(w.db, w.account_id, offset, limit, visible)
    names = [f.reponame for f in page.rows if f.repotype == REPOTYPE]
    repos = domain.repositories_by_names(w.db, names)
    infos = {i.name: i for i in repository_infos(w, repos)}
    hub_counts = domain.favor_counts(
        w.db, [f.reponame for f in page.rows if f.repotype != REPOTYPE], HUB_REPOTYPE
    )
    out = []
    for f in page.rows:
        if f.repotype == REPOTYPE and f.reponame in infos:
            out.append(infos[f.reponame])
        elif f.repotype != REPOTYPE:
            out.append(
                RepositoryInfo(
                    name=f.reponame,
                    repotype=f.repotype,
                    tag_count=0,
                    public=True,
                    official=False,
                    favor_count=hub_counts.get(f.reponame, 0),
                )
            )
    return Page(page.total, out, page.filtered)


# --- maintenance ---------------------------------------------------------------------------
def maintain(w: Work, force_gc: bool = False) -> dict[str, int]:
    """The periodic registry pass now (reconcile, retention, garbage collection): it talks
    to the registry and runs its garbage collector, in transactions of its own."""
    registry = need(w.services.subsystems.registry, "registry")
    with w.outside():
        return registry.maintain(force_gc=force_gc)
