"""The image registry's actions (`ccr.api.qcloud.com`): accounts, namespaces, repositories,
tags, retention, triggers and favourites.

Repository lists answer the document's `repotype` and also `reptype` (the two spellings
the document's tables and examples use).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Array, Params
from openccs.api.registry import action
from openccs.domain.accounts import quota
from openccs.errors import ApiError, invalid_parameter, not_found, resource_not_allowed
from openccs.registry import domain, index, triggers
from openccs.registry.client import RegistryClient, RegistryError
from openccs.registry.models import CcrRepository
from openccs.registry.runtime import RegistryRuntime
from openccs.registry.token import hash_password
from openccs.subsystems import need
from openccs.timeutil import fmt_time, utcnow

HOST = "ccr.api.qcloud.com"
# Reasons of the actions that name no resource (see openccs.api.registry.Action.unscoped).
LISTS_ALLOWED = "lists the account's own, filtered by a sub-account's allow-list"
OWN_LOGIN = "acts on the caller's own registry login, not on a resource"
REPOTYPES = Literal["QCLOUD HUB", "DOCKER HUB"]

Offset = Field(default=0, ge=0)
Limit = Field(default=20, ge=1, le=100)
Password = Field(min_length=8, max_length=16)
RepoName = Field(min_length=1, max_length=domain.REPOSITORY_MAX)
K8sName = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _rt(ctx: RequestContext) -> RegistryRuntime:
    rt = need(ctx.subsystems.registry, "registry").rt
    return rt


def _client(ctx: RequestContext) -> RegistryClient:
    return _rt(ctx).need_client()


def _registry_call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except RegistryError as exc:
        raise ApiError(5100, "RegistryUnavailable", f"The image registry failed: {exc}") from None


def _visible(ctx: RequestContext) -> Callable[[str], bool] | None:
    """What a listing shows: a sub-account sees what its allow-list names, the owner all."""
    return ctx.caller.may_use if ctx.caller.is_subuser else None


def _registry_user(ctx: RequestContext) -> str:
    return ctx.caller.subuser_uin or ctx.caller.uin


# --- accounts ------------------------------------------------------------------------------
class PasswordParams(Params):
    password: str = Password


@action("RegisterRepositoryAccountNew", PasswordParams, unscoped=OWN_LOGIN)
def register_account(ctx: RequestContext, p: PasswordParams) -> dict[str, Any]:
    domain.register_user(
        ctx.db,
        _registry_user(ctx),
        ctx.account_id,
        ctx.caller.subuser_id,
        hash_password(p.password),
    )
    return {}


@action("ChangePassword", PasswordParams, unscoped=OWN_LOGIN)
def change_password(ctx: RequestContext, p: PasswordParams) -> dict[str, Any]:
    domain.change_password(ctx.db, _registry_user(ctx), hash_password(p.password))
    return {}


LIMIT_TYPES = (
    ("namespace", domain.QUOTA_NAMESPACES),
    ("repo", domain.QUOTA_REPOSITORIES),
    ("tag", domain.QUOTA_TAGS),
    ("triggers", domain.QUOTA_TRIGGERS),
)


@action("GetLimit", unscoped="shows the account's registry quotas")
def get_limit(ctx: RequestContext, p: Params) -> dict[str, Any]:
    return {
        "limitInfo": [
            {"username": ctx.caller.uin, "type": kind, "value": quota(ctx.db, ctx.account_id, q)}
            for kind, q in LIMIT_TYPES
        ]
    }


# --- namespaces ----------------------------------------------------------------------------
class NamespaceParams(Params):
    # The document marks it optional; without it there is nothing to act on.
    namespace: str = Field(min_length=1, max_length=64)


@action("CreateCCRNamespace", NamespaceParams, resources=("namespace",))
def create_namespace(ctx: RequestContext, p: NamespaceParams) -> dict[str, Any]:
    domain.create_namespace(ctx.db, ctx.account_id, p.namespace)
    return {}


class GetNamespaceInfoParams(Params):
    namespace: str | None = Field(default=None, max_length=64)
    offset: int = Offset
    limit: int = Limit


@action("GetNamespaceInfo", GetNamespaceInfoParams, unscoped=LISTS_ALLOWED)
def get_namespace_info(ctx: RequestContext, p: GetNamespaceInfoParams) -> dict[str, Any]:
    page, counts = domain.list_namespaces(
        ctx.db, ctx.account_id, p.namespace, p.offset, p.limit, _visible(ctx)
    )
    return {
        "namespaceCount": page.total,
        "namespaceInfo": [
            {
                "namespace": n.name,
                "creationTime": fmt_time(n.created_at),
                "repoCount": counts.get(n.id, 0),
            }
            for n in page.rows
        ],
    }


@action(
    "NamespaceIsExists",
    NamespaceParams,
    unscoped="tells whether a name is taken in any account; shows no resource of the caller's",
)
def namespace_is_exists(ctx: RequestContext, p: NamespaceParams) -> dict[str, Any]:
    # Namespaces are unique across accounts: "exists" tells whether the name is taken.
    return {
        "isExist": domain.namespace_by_name(ctx.db, p.namespace) is not None,
        "isPreserved": p.namespace in domain.RESERVED_NAMESPACES,
    }


@action("DeleteUserNamespace", NamespaceParams, resources=("namespace",))
def delete_namespace(ctx: RequestContext, p: NamespaceParams) -> dict[str, Any]:
    domain.delete_namespace(ctx.db, ctx.account_id, p.namespace)
    return {}


# --- repositories --------------------------------------------------------------------------
def _check_repo(name: str, param: str = "reponame") -> str:
    domain.check_repository_name(name, param)
    return name


class CreateRepositoryParams(Params):
    reponame: str = RepoName
    public: int = Field(ge=0, le=1)
    description: str = Field(default="", max_length=1000)


@action("CreateRepository", CreateRepositoryParams, resources=("reponame",))
def create_repository(ctx: RequestContext, p: CreateRepositoryParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    ns = domain.own_namespace(ctx.db, ctx.account_id, p.reponame.split("/", 1)[0])
    domain.create_repository(ctx.db, ns, p.reponame, bool(p.public), p.description)
    return {}


class RepoNamesParams(Params):
    reponames: Array[str] = Field(min_length=1, max_length=100)


@action("BatchDeleteRepository", RepoNamesParams, resources=("reponames",))
def batch_delete_repository(ctx: RequestContext, p: RepoNamesParams) -> dict[str, Any]:
    doomed: dict[int, str] = {}
    for i, name in enumerate(p.reponames):
        _check_repo(name, f"reponames.{i}")
        repo = domain.own_repository(ctx.db, ctx.account_id, name)
        doomed[repo.id] = repo.name
    rt = _rt(ctx)
    rt.need_client()
    with ctx.outside():
        for name in doomed.values():
            _registry_call(index.purge_repository, rt, name)
    for repo_id in doomed:
        index.forget_repository(rt, ctx.db, repo_id)
    return {}


class RepoParams(Params):
    reponame: str = RepoName


def _repo_infos(
    ctx: RequestContext, repos: list[CcrRepository], full: bool = True
) -> list[dict[str, Any]]:
    s = ctx.db
    names = [r.name for r in repos]
    tags = domain.tag_counts(s, [r.id for r in repos])
    favors = domain.favor_counts(s, names)
    mine = domain.user_favors(s, ctx.account_id, names)
    official = domain.official_namespaces(s, list({r.namespace_id for r in repos}))
    out = []
    for r in repos:
        info: dict[str, Any] = {
            "reponame": r.name,
            "repotype": domain.REPOTYPE,
            "reptype": domain.REPOTYPE,
            "tagCount": tags.get(r.id, 0),
            "public": int(r.public),
            "isQcloudOfficial": r.namespace_id in official,
            "favorCount": favors.get(r.name, 0),
        }
        if full:
            info.update(
                isUserFavor=r.name in mine,
                pullCount=r.pull_count,
                description=r.description,
                creationTime=fmt_time(r.created_at),
                updateTime=fmt_time(r.updated_at),
            )
        out.append(info)
    return out


@action("GetRepositoryInfo", RepoParams, resources=("reponame",))
def get_repository_info(ctx: RequestContext, p: RepoParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    repo = domain.visible_repository(ctx.db, ctx.account_id, p.reponame)
    info = _repo_infos(ctx, [repo])[0]
    del info["tagCount"], info["updateTime"]
    return info


@action("RepositoryIsExists", RepoParams, resources=("reponame",))
def repository_is_exists(ctx: RequestContext, p: RepoParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    try:
        domain.visible_repository(ctx.db, ctx.account_id, p.reponame)
    except ApiError:
        return {"isExist": False}
    return {"isExist": True}


class GetRepositoryListParams(Params):
    offset: int = Offset
    limit: int = Limit
    reponame: str | None = Field(default=None, max_length=domain.REPOSITORY_MAX)
    orderby: Literal["official", "pullCount"] | None = None
    order: Literal["desc", "asc"] = "desc"


@action(
    "GetRepositoryList",
    GetRepositoryListParams,
    unscoped="lists the public repositories of every account (the public catalogue)",
)
def get_repository_list(ctx: RequestContext, p: GetRepositoryListParams) -> dict[str, Any]:
    page = domain.public_repositories(
        ctx.db, p.reponame, p.orderby, p.order == "desc", p.offset, p.limit
    )
    return {
        "totalCount": page.total,
        "privilegeFiltered": False,
        "repoInfo": _repo_infos(ctx, page.rows),
    }


class SearchUserRepositoryParams(Params):
    offset: int = Offset
    limit: int = Limit
    reponame: str | None = Field(default=None, max_length=domain.REPOSITORY_MAX)
    public: Literal["0", "1"] | None = None
    namespace: str | None = Field(default=None, max_length=64)


@action("SearchUserRepository", SearchUserRepositoryParams, unscoped=LISTS_ALLOWED)
def search_user_repository(ctx: RequestContext, p: SearchUserRepositoryParams) -> dict[str, Any]:
    page = domain.search_repositories(
        ctx.db,
        ctx.account_id,
        p.reponame,
        None if p.public is None else p.public == "1",
        p.namespace,
        p.offset,
        p.limit,
        _visible(ctx),
    )
    return {
        "totalCount": page.total,
        "privilegeFiltered": page.filtered,
        "repoInfo": _repo_infos(ctx, page.rows),
    }


class UpdateDescParams(Params):
    reponame: str = RepoName
    description: str = Field(max_length=1000)


@action("UpdateRepositoryDesc", UpdateDescParams, resources=("reponame",))
def update_repository_desc(ctx: RequestContext, p: UpdateDescParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    domain.update_repository(ctx.db, ctx.account_id, p.reponame, description=p.description)
    return {}


class UpdatePublicParams(Params):
    reponame: str = RepoName
    public: int = Field(ge=0, le=1)


@action("UpdateRepositoryPublic", UpdatePublicParams, resources=("reponame",))
def update_repository_public(ctx: RequestContext, p: UpdatePublicParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    domain.update_repository(ctx.db, ctx.account_id, p.reponame, public=bool(p.public))
    return {}


# --- tags ----------------------------------------------------------------------------------
def human_size(n: int) -> str:
    """Decimal units as the document shows them (`59 MB` for 59229024 bytes)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            text = f"{value:.0f}" if value >= 10 or unit == "B" else f"{value:.1f}"
            return f"{text} {unit}"
        value /= 1000
    return f"{n} B"


def tag_time(value: datetime | None, zone: ZoneInfo) -> str:
    """GetTagList's time format: `2017-09-12 15:30:23 +0800 CST`."""
    if value is None:
        return ""
    return value.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %z %Z")


class GetTagListParams(Params):
    reponame: str = RepoName
    offset: int = Offset
    limit: int = Limit
    tag: str | None = Field(default=None, max_length=128)


@action("GetTagList", GetTagListParams, resources=("reponame",))
def get_tag_list(ctx: RequestContext, p: GetTagListParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    repo = domain.visible_repository(ctx.db, ctx.account_id, p.reponame)
    page = domain.list_tags(ctx.db, repo.id, p.tag, p.offset, p.limit)
    zone = ZoneInfo(ctx.services.settings.timezone)
    short = repo.name.split("/", 1)[1]
    return {
        "reponame": repo.name,
        "server": _rt(ctx).host,
        "tagCount": page.total,
        "tagInfo": [
            {
                "repo_name": short,
                "tagName": t.name,
                "tagId": t.digest,
                "imageId": t.image_id,
                "size": human_size(t.size_bytes),
                "creationTime": tag_time(t.created, zone),
                "updateTime": tag_time(t.updated_at, zone),
                "author": t.author,
                "architecture": t.architecture,
                "dockerVersion": t.docker_version,
                "os": t.os,
                "pushTime": tag_time(t.push_time, zone),
                "sizeByte": t.size_bytes,
            }
            for t in page.rows
        ],
    }


class BatchDeleteTagParams(Params):
    reponame: str = RepoName
    tags: Array[str] = Field(min_length=1, max_length=100)


@action("BatchDeleteTag", BatchDeleteTagParams, resources=("reponame",))
def batch_delete_tag(ctx: RequestContext, p: BatchDeleteTagParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    repo = domain.own_repository(ctx.db, ctx.account_id, p.reponame)
    rows = []
    for i, name in enumerate(p.tags):
        domain.check_tag_name(name, f"tags.{i}")
        row = domain.tag_by_name(ctx.db, repo.id, name)
        if row is None:
            raise not_found("Tag", f"{repo.name}:{name}")
        rows.append(row)
    rt = _rt(ctx)
    rt.need_client()
    removal = index.plan_tag_removal(ctx.db, repo, rows)
    with ctx.outside():
        _registry_call(index.untag_in_registry, rt, removal)
    index.forget_tags(rt, ctx.db, removal)
    return {}


class DuplicateImageParams(Params):
    src_image: str = Field(min_length=1, max_length=300)
    dest_image: str = Field(min_length=1, max_length=300)


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


@action("DuplicateImage", DuplicateImageParams, resources=("src_image", "dest_image"))
def duplicate_image(ctx: RequestContext, p: DuplicateImageParams) -> dict[str, Any]:
    src = domain.parse_image(p.src_image, "src_image")
    dest = domain.parse_image(p.dest_image, "dest_image")
    # Read: the source tag, and whether the destination may take it.
    s = ctx.db
    src_repo = domain.visible_repository(s, ctx.account_id, src.repository)
    src_tag = domain.tag_by_name(s, src_repo.id, src.tag)
    if src_tag is None:
        raise not_found("Image", p.src_image)
    domain.own_namespace(s, ctx.account_id, dest.repository.split("/", 1)[0])
    dest_repo = domain.repository_by_name(s, dest.repository)
    if dest_repo is None:
        domain.repository_quota_check(s, ctx.account_id)
    else:
        domain.check_tag_room(s, ctx.account_id, dest_repo, dest.tag)
    details = domain.TagDetails.of(src_tag)
    client = _client(ctx)
    # Work: the registry copies the image (blob mounts, manifests), no transaction open.
    with ctx.outside():
        manifest = _registry_call(
            _copy_manifest, client, src.repository, dest.repository, details.digest
        )
        _registry_call(client.put_manifest, dest.repository, dest.tag, manifest)
    # Write: the index. The registry holds the image now, and its push notification records
    # it (making the repository if need be) whatever this transaction does, maybe at this
    # very moment; recording it here makes it visible at once (the quota was checked above).
    ns = domain.own_namespace(s, ctx.account_id, dest.repository.split("/", 1)[0])
    dest_repo = domain.repository_for_push(s, ns, dest.repository)
    domain.record_tag(s, dest_repo, dest.tag, details, utcnow())
    return {}


# --- retention -----------------------------------------------------------------------------
class SetAutoDelParams(Params):
    reponame: str = RepoName
    type: Literal["keep_last_days", "keep_last_nums"]
    val: int = Field(ge=1, le=100000)


@action("SetAutoDelStrategy", SetAutoDelParams, resources=("reponame",))
def set_auto_del_strategy(ctx: RequestContext, p: SetAutoDelParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    domain.set_retention(ctx.db, ctx.account_id, p.reponame, p.type, p.val)
    return {}


@action("GetAutoDelStrategy", RepoParams, resources=("reponame",))
def get_auto_del_strategy(ctx: RequestContext, p: RepoParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    row = domain.retention_of(ctx.db, ctx.account_id, p.reponame)
    infos = []
    if row is not None:
        zone = ZoneInfo(ctx.services.settings.timezone)
        created = row.created_at.replace(tzinfo=UTC).astimezone(zone)
        infos.append(
            {
                "username": ctx.caller.uin,
                "reponame": p.reponame,
                "repo_name": p.reponame,
                "type": row.type,
                "value": row.value,
                "valid": int(row.valid),
                "creation_time": created.isoformat(timespec="seconds"),
            }
        )
    return {"totalCount": len(infos), "strategyInfo": infos}


@action("CloseAutoDelStrategy", RepoParams, resources=("reponame",))
def close_auto_del_strategy(ctx: RequestContext, p: RepoParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    domain.close_retention(ctx.db, ctx.account_id, p.reponame)
    return {}


# --- triggers ------------------------------------------------------------------------------
TriggerName = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TriggerTarget(Params):
    serviceName: str = Field(max_length=63, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    clusterId: str = Field(pattern=r"^cls-[a-z0-9]{8}$")
    namespace: str = Field(max_length=63, pattern=K8sName)
    containerName: str = Field(max_length=63, pattern=K8sName)
    clusterRegion: int


class AddTriggerParams(TriggerTarget):
    triggerName: str = TriggerName
    reponame: str = RepoName
    invokeMethod: Literal["all", "taglist", "regex"]
    invokeExpr: str = Field(default="", max_length=1024)


def _check_trigger(ctx: RequestContext, method: str, expr: str, region: int | None) -> str:
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
        known = {r.region_id for r in ctx.services.settings.regions}
        if region not in known:
            raise invalid_parameter(
                "clusterRegion", f"unknown region {region} (known: {sorted(known)})"
            )
    return "" if method == "all" else expr


@action("AddUpdateServiceTrigger", AddTriggerParams, resources=("reponame", "clusterId"))
def add_trigger(ctx: RequestContext, p: AddTriggerParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    expr = _check_trigger(ctx, p.invokeMethod, p.invokeExpr, p.clusterRegion)
    target = domain.TriggerTarget(
        cluster_id=p.clusterId,
        namespace=p.namespace,
        service_name=p.serviceName,
        container_name=p.containerName,
        cluster_region=p.clusterRegion,
    )
    domain.add_trigger(
        ctx.db, ctx.account_id, p.triggerName, p.reponame, p.invokeMethod, expr, target
    )
    return {}


class ModifyTriggerParams(Params):
    triggerName: str = TriggerName
    reponame: str | None = Field(default=None, max_length=domain.REPOSITORY_MAX)
    newTriggerName: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )
    invokeMethod: Literal["all", "taglist", "regex"] | None = None
    invokeExpr: str | None = Field(default=None, max_length=1024)
    serviceName: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
    )
    clusterId: str | None = Field(default=None, pattern=r"^cls-[a-z0-9]{8}$")
    namespace: str | None = Field(default=None, max_length=63, pattern=K8sName)
    containerName: str | None = Field(default=None, max_length=63, pattern=K8sName)
    clusterRegion: int | None = None


@action("ModifyUpdateServiceTrigger", ModifyTriggerParams, resources=("reponame", "clusterId"))
def modify_trigger(ctx: RequestContext, p: ModifyTriggerParams) -> dict[str, Any]:
    row = domain.own_trigger(ctx.db, ctx.account_id, p.triggerName)
    method = p.invokeMethod or row.invoke_method
    expr = p.invokeExpr if p.invokeExpr is not None else row.invoke_expr
    if p.invokeMethod is not None and p.invokeExpr is None and method != row.invoke_method:
        expr = ""
    expr = _check_trigger(ctx, method, expr, p.clusterRegion)
    if p.reponame:
        _check_repo(p.reponame)
    target = domain.TriggerTarget(
        cluster_id=p.clusterId,
        namespace=p.namespace,
        service_name=p.serviceName,
        container_name=p.containerName,
        cluster_region=p.clusterRegion,
    )
    domain.modify_trigger(ctx.db, row, p.newTriggerName, p.reponame, method, expr, target)
    return {}


class TriggerNameParams(Params):
    triggerName: str = TriggerName


@action(
    "DeleteUpdateServiceTrigger",
    TriggerNameParams,
    unscoped="the handler checks the repository and cluster of the named trigger",
)
def delete_trigger(ctx: RequestContext, p: TriggerNameParams) -> dict[str, Any]:
    row = domain.own_trigger(ctx.db, ctx.account_id, p.triggerName)
    for resource in (domain.trigger_repository_name(ctx.db, row), row.cluster_id):
        if resource and not ctx.caller.may_use(resource):
            raise resource_not_allowed(resource)
    domain.delete_trigger(ctx.db, row)
    return {}


class ListTriggerParams(Params):
    triggerName: str | None = Field(default=None, max_length=64)
    offset: int = Offset
    limit: int = Limit
    reponame: str | None = Field(default=None, max_length=domain.REPOSITORY_MAX)


@action("ListTrigger", ListTriggerParams, unscoped=LISTS_ALLOWED)
def list_trigger(ctx: RequestContext, p: ListTriggerParams) -> dict[str, Any]:
    page = domain.list_triggers(
        ctx.db, ctx.account_id, p.triggerName, p.reponame, p.offset, p.limit, _visible(ctx)
    )
    return {
        "totalCount": page.total,
        "triggerInfo": [
            {
                "triggerName": t.name,
                "repoName": repo_name,
                "invokeSource": "IMAGE_PUSH",
                "invokeAction": "SERVICE_UPDATE",
                "createTime": fmt_time(t.created_at),
                "updateTime": fmt_time(t.updated_at),
                "invokeCondition": {"invokeMethod": t.invoke_method, "invokeExpr": t.invoke_expr},
                "invokePara": triggers.invoke_para(t, ctx.caller.app_id),
            }
            for t, repo_name in page.rows
        ],
    }


class ListTriggerLogParams(Params):
    reponame: str = RepoName
    offset: int = Offset
    limit: int = Limit
    order: Literal["desc", "asc"] = "desc"
    orderby: Literal["invoke_time", "trigger_name", "repo_name"] = "invoke_time"


@action("ListTriggerLog", ListTriggerLogParams, resources=("reponame",))
def list_trigger_log(ctx: RequestContext, p: ListTriggerLogParams) -> dict[str, Any]:
    _check_repo(p.reponame)
    page = domain.list_trigger_log(
        ctx.db, ctx.account_id, p.reponame, p.orderby, p.order == "desc", p.offset, p.limit
    )
    return {
        "totalCount": page.total,
        "logInfo": [
            {
                "triggerName": r.trigger_name,
                "repoName": r.repo_name,
                "tagName": r.tag_name,
                "invokeSource": "IMAGE_PUSH",
                "invokeAction": "SERVICE_UPDATE",
                "invokeTime": fmt_time(r.invoke_time),
                "invokeCondition": {"invokeMethod": r.invoke_method, "invokeExpr": r.invoke_expr},
                "invokePara": r.invoke_para,
                "invokeResult": {"returnCode": r.return_code, "returnMsg": r.return_msg},
            }
            for r in page.rows
        ],
    }


# --- favourites ----------------------------------------------------------------------------
class FavorParams(Params):
    reponame: str = RepoName
    repotype: REPOTYPES


def _check_favor(ctx: RequestContext, reponame: str, repotype: str, param: str) -> None:
    if repotype == domain.REPOTYPE:
        _check_repo(reponame, param)
        domain.visible_repository(ctx.db, ctx.account_id, reponame)
    elif not re.match(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$", reponame):
        raise invalid_parameter(param, f"{reponame!r} is not a Docker Hub repository name")


@action("AddFavor", FavorParams, resources=("reponame",))
def add_favor(ctx: RequestContext, p: FavorParams) -> dict[str, Any]:
    _check_favor(ctx, p.reponame, p.repotype, "reponame")
    domain.add_favor(ctx.db, ctx.account_id, p.repotype, p.reponame)
    return {}


@action("DeleteFavor", FavorParams, resources=("reponame",))
def delete_favor(ctx: RequestContext, p: FavorParams) -> dict[str, Any]:
    domain.delete_favors(ctx.db, ctx.account_id, [(p.repotype, p.reponame, "")])
    return {}


class FavorItem(Params):
    reponame: str = RepoName
    repotype: REPOTYPES
    regionId: int | None = None


class BatchDeleteFavorParams(Params):
    favors: Array[FavorItem] = Field(min_length=1, max_length=100)


@action("BatchDeleteFavor", BatchDeleteFavorParams, resources=("favors.reponame",))
def batch_delete_favor(ctx: RequestContext, p: BatchDeleteFavorParams) -> dict[str, Any]:
    favors = [(f.repotype, f.reponame, f" (favors.{i})") for i, f in enumerate(p.favors)]
    domain.delete_favors(ctx.db, ctx.account_id, favors)
    return {}


class GetFavorParams(Params):
    offset: int = Offset
    limit: int = Limit


@action("GetFavor", GetFavorParams, unscoped=LISTS_ALLOWED)
def get_favor(ctx: RequestContext, p: GetFavorParams) -> dict[str, Any]:
    page = domain.list_favors(ctx.db, ctx.account_id, p.offset, p.limit, _visible(ctx))
    total, favs = page.total, page.rows
    names = [f.reponame for f in favs if f.repotype == domain.REPOTYPE]
    repos = {r.name: r for r in domain.repositories_by_names(ctx.db, names)}
    infos = {i["reponame"]: i for i in _repo_infos(ctx, list(repos.values()), full=False)}
    hub_counts = domain.favor_counts(
        ctx.db, [f.reponame for f in favs if f.repotype != domain.REPOTYPE], "DOCKER HUB"
    )
    out = []
    for f in favs:
        if f.repotype == domain.REPOTYPE and f.reponame in infos:
            out.append(infos[f.reponame])
        elif f.repotype != domain.REPOTYPE:
            out.append(
                {
                    "reponame": f.reponame,
                    "repotype": f.repotype,
                    "reptype": f.repotype,
                    "tagCount": 0,
                    "public": 1,
                    "isQcloudOfficial": False,
                    "favorCount": hub_counts.get(f.reponame, 0),
                }
            )
    return {"totalCount": total, "repoInfo": out}


# --- test-only -----------------------------------------------------------------------------
class MaintainParams(Params):
    gc: bool = False


@action(
    "OpenccsRegistryMaintain",
    MaintainParams,
    host=HOST,
    test_only=True,
    unscoped="test-only maintenance of the whole registry",
)
def maintain(ctx: RequestContext, p: MaintainParams) -> dict[str, Any]:
    """Run the periodic registry pass now (reconcile, retention, garbage collection): it
    talks to the registry and runs its garbage collector, in transactions of its own."""
    registry = need(ctx.subsystems.registry, "registry")
    with ctx.outside():
        result: dict[str, int] = registry.maintain(force_gc=p.gc)
    return result
