"""The image registry's actions (`ccr.api.qcloud.com`): accounts, namespaces, repositories,
tags, retention, triggers and favourites. Each decodes its parameters, calls the registry
backend (`backends/registry.py`) and encodes the answer.

Repository lists answer the document's `repotype` and also `reptype` (the two spellings
the document's tables and examples use).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Array, Params
from openccs.api.registry import action
from openccs.backends import registry as backend
from openccs.registry import domain, triggers
from openccs.timeutil import fmt_time

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


def _visible(ctx: RequestContext) -> backend.Visible:
    """What a listing shows: a sub-account sees what its allow-list names, the owner all."""
    return ctx.caller.may_use if ctx.caller.is_subuser else None


def _login(ctx: RequestContext) -> backend.Login:
    return backend.Login(ctx.caller.subuser_uin or ctx.caller.uin, ctx.caller.subuser_id)


def _repo_info(info: backend.RepositoryInfo, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reponame": info.name,
        "repotype": info.repotype,
        "reptype": info.repotype,
        "tagCount": info.tag_count,
        "public": int(info.public),
        "isQcloudOfficial": info.official,
        "favorCount": info.favor_count,
    }
    if full:
        out.update(
            isUserFavor=info.user_favor,
            pullCount=info.pull_count,
            description=info.description,
            creationTime=fmt_time(info.created_at),
            updateTime=fmt_time(info.updated_at),
        )
    return out


# --- accounts ------------------------------------------------------------------------------
class PasswordParams(Params):
    password: str = Password


@action("RegisterRepositoryAccountNew", PasswordParams, unscoped=OWN_LOGIN)
def register_account(ctx: RequestContext, p: PasswordParams) -> dict[str, Any]:
    backend.register_login(ctx.work(), _login(ctx), p.password)
    return {}


@action("ChangePassword", PasswordParams, unscoped=OWN_LOGIN)
def change_password(ctx: RequestContext, p: PasswordParams) -> dict[str, Any]:
    backend.change_password(ctx.work(), _login(ctx), p.password)
    return {}


@action("GetLimit", unscoped="shows the account's registry quotas")
def get_limit(ctx: RequestContext, p: Params) -> dict[str, Any]:
    return {
        "limitInfo": [
            {"username": ctx.caller.uin, "type": q.kind, "value": q.value}
            for q in backend.limits(ctx.work())
        ]
    }


# --- namespaces ----------------------------------------------------------------------------
class NamespaceParams(Params):
    # The document marks it optional; without it there is nothing to act on.
    namespace: str = Field(min_length=1, max_length=64)


@action("CreateCCRNamespace", NamespaceParams, resources=("namespace",))
def create_namespace(ctx: RequestContext, p: NamespaceParams) -> dict[str, Any]:
    backend.create_namespace(ctx.work(), p.namespace)
    return {}


class GetNamespaceInfoParams(Params):
    namespace: str | None = Field(default=None, max_length=64)
    offset: int = Offset
    limit: int = Limit


@action("GetNamespaceInfo", GetNamespaceInfoParams, unscoped=LISTS_ALLOWED)
def get_namespace_info(ctx: RequestContext, p: GetNamespaceInfoParams) -> dict[str, Any]:
    page = backend.namespaces(ctx.work(), p.namespace, p.offset, p.limit, _visible(ctx))
    return {
        "namespaceCount": page.total,
        "namespaceInfo": [
            {
                "namespace": n.name,
                "creationTime": fmt_time(n.created_at),
                "repoCount": n.repo_count,
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
    taken = backend.namespace_taken(ctx.work(), p.namespace)
    return {"isExist": taken.exists, "isPreserved": taken.reserved}


@action("DeleteUserNamespace", NamespaceParams, resources=("namespace",))
def delete_namespace(ctx: RequestContext, p: NamespaceParams) -> dict[str, Any]:
    backend.delete_namespace(ctx.work(), p.namespace)
    return {}


# --- repositories --------------------------------------------------------------------------
class CreateRepositoryParams(Params):
    reponame: str = RepoName
    public: int = Field(ge=0, le=1)
    description: str = Field(default="", max_length=1000)


@action("CreateRepository", CreateRepositoryParams, resources=("reponame",))
def create_repository(ctx: RequestContext, p: CreateRepositoryParams) -> dict[str, Any]:
    backend.create_repository(ctx.work(), p.reponame, bool(p.public), p.description)
    return {}


class RepoNamesParams(Params):
    reponames: Array[str] = Field(min_length=1, max_length=100)


@action("BatchDeleteRepository", RepoNamesParams, resources=("reponames",))
def batch_delete_repository(ctx: RequestContext, p: RepoNamesParams) -> dict[str, Any]:
    backend.delete_repositories(ctx.work(), p.reponames)
    return {}


class RepoParams(Params):
    reponame: str = RepoName


@action("GetRepositoryInfo", RepoParams, resources=("reponame",))
def get_repository_info(ctx: RequestContext, p: RepoParams) -> dict[str, Any]:
    info = _repo_info(backend.repository(ctx.work(), p.reponame))
    del info["tagCount"], info["updateTime"]
    return info


@action("RepositoryIsExists", RepoParams, resources=("reponame",))
def repository_is_exists(ctx: RequestContext, p: RepoParams) -> dict[str, Any]:
    return {"isExist": backend.repository_exists(ctx.work(), p.reponame)}


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
    page = backend.public_repositories(
        ctx.work(), p.reponame, p.orderby, p.order == "desc", p.offset, p.limit
    )
    return {
        "totalCount": page.total,
        "privilegeFiltered": False,
        "repoInfo": [_repo_info(r) for r in page.rows],
    }


class SearchUserRepositoryParams(Params):
    offset: int = Offset
    limit: int = Limit
    reponame: str | None = Field(default=None, max_length=domain.REPOSITORY_MAX)
    public: Literal["0", "1"] | None = None
    namespace: str | None = Field(default=None, max_length=64)


@action("SearchUserRepository", SearchUserRepositoryParams, unscoped=LISTS_ALLOWED)
def search_user_repository(ctx: RequestContext, p: SearchUserRepositoryParams) -> dict[str, Any]:
    page = backend.own_repositories(
        ctx.work(),
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
        "repoInfo": [_repo_info(r) for r in page.rows],
    }


class UpdateDescParams(Params):
    reponame: str = RepoName
    description: str = Field(max_length=1000)


@action("UpdateRepositoryDesc", UpdateDescParams, resources=("reponame",))
def update_repository_desc(ctx: RequestContext, p: UpdateDescParams) -> dict[str, Any]:
    backend.update_repository(ctx.work(), p.reponame, description=p.description)
    return {}


class UpdatePublicParams(Params):
    reponame: str = RepoName
    public: int = Field(ge=0, le=1)


@action("UpdateRepositoryPublic", UpdatePublicParams, resources=("reponame",))
def update_repository_public(ctx: RequestContext, p: UpdatePublicParams) -> dict[str, Any]:
    backend.update_repository(ctx.work(), p.reponame, public=bool(p.public))
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
    found = backend.tags(ctx.work(), p.reponame, p.tag, p.offset, p.limit)
    zone = ZoneInfo(ctx.services.settings.timezone)
    short = found.repository.split("/", 1)[1]
    return {
        "reponame": found.repository,
        "server": found.server,
        "tagCount": found.page.total,
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
            for t in found.page.rows
        ],
    }


class BatchDeleteTagParams(Params):
    reponame: str = RepoName
    tags: Array[str] = Field(min_length=1, max_length=100)


@action("BatchDeleteTag", BatchDeleteTagParams, resources=("reponame",))
def batch_delete_tag(ctx: RequestContext, p: BatchDeleteTagParams) -> dict[str, Any]:
    backend.delete_tags(ctx.work(), p.reponame, p.tags)
    return {}


class DuplicateImageParams(Params):
    src_image: str = Field(min_length=1, max_length=300)
    dest_image: str = Field(min_length=1, max_length=300)


@action("DuplicateImage", DuplicateImageParams, resources=("src_image", "dest_image"))
def duplicate_image(ctx: RequestContext, p: DuplicateImageParams) -> dict[str, Any]:
    backend.duplicate_image(ctx.work(), p.src_image, p.dest_image)
    return {}


# --- retention -----------------------------------------------------------------------------
class SetAutoDelParams(Params):
    reponame: str = RepoName
    type: Literal["keep_last_days", "keep_last_nums"]
    val: int = Field(ge=1, le=100000)


@action("SetAutoDelStrategy", SetAutoDelParams, resources=("reponame",))
def set_auto_del_strategy(ctx: RequestContext, p: SetAutoDelParams) -> dict[str, Any]:
    backend.set_retention(ctx.work(), p.reponame, p.type, p.val)
    return {}


@action("GetAutoDelStrategy", RepoParams, resources=("reponame",))
def get_auto_del_strategy(ctx: RequestContext, p: RepoParams) -> dict[str, Any]:
    row = backend.retention(ctx.work(), p.reponame)
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
    backend.close_retention(ctx.work(), p.reponame)
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


@action("AddUpdateServiceTrigger", AddTriggerParams, resources=("reponame", "clusterId"))
def add_trigger(ctx: RequestContext, p: AddTriggerParams) -> dict[str, Any]:
    target = backend.TriggerTarget(
        cluster_id=p.clusterId,
        namespace=p.namespace,
        service_name=p.serviceName,
        container_name=p.containerName,
        cluster_region=p.clusterRegion,
    )
    backend.add_trigger(ctx.work(), p.triggerName, p.reponame, p.invokeMethod, p.invokeExpr, target)
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
    target = backend.TriggerTarget(
        cluster_id=p.clusterId,
        namespace=p.namespace,
        service_name=p.serviceName,
        container_name=p.containerName,
        cluster_region=p.clusterRegion,
    )
    backend.modify_trigger(
        ctx.work(),
        p.triggerName,
        p.newTriggerName,
        p.reponame,
        p.invokeMethod,
        p.invokeExpr,
        target,
    )
    return {}


class TriggerNameParams(Params):
    triggerName: str = TriggerName


@action(
    "DeleteUpdateServiceTrigger",
    TriggerNameParams,
    unscoped="the handler checks the repository and cluster of the named trigger",
)
def delete_trigger(ctx: RequestContext, p: TriggerNameParams) -> dict[str, Any]:
    backend.delete_trigger(ctx.work(), p.triggerName, ctx.caller.may_use)
    return {}


class ListTriggerParams(Params):
    triggerName: str | None = Field(default=None, max_length=64)
    offset: int = Offset
    limit: int = Limit
    reponame: str | None = Field(default=None, max_length=domain.REPOSITORY_MAX)


@action("ListTrigger", ListTriggerParams, unscoped=LISTS_ALLOWED)
def list_trigger(ctx: RequestContext, p: ListTriggerParams) -> dict[str, Any]:
    page = backend.list_triggers(
        ctx.work(), p.triggerName, p.reponame, p.offset, p.limit, _visible(ctx)
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
    page = backend.trigger_log(
        ctx.work(), p.reponame, p.orderby, p.order == "desc", p.offset, p.limit
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


@action("AddFavor", FavorParams, resources=("reponame",))
def add_favor(ctx: RequestContext, p: FavorParams) -> dict[str, Any]:
    backend.add_favor(ctx.work(), p.repotype, p.reponame)
    return {}


@action("DeleteFavor", FavorParams, resources=("reponame",))
def delete_favor(ctx: RequestContext, p: FavorParams) -> dict[str, Any]:
    backend.delete_favors(ctx.work(), [backend.Favor(p.repotype, p.reponame)])
    return {}


class FavorItem(Params):
    reponame: str = RepoName
    repotype: REPOTYPES
    regionId: int | None = None


class BatchDeleteFavorParams(Params):
    favors: Array[FavorItem] = Field(min_length=1, max_length=100)


@action("BatchDeleteFavor", BatchDeleteFavorParams, resources=("favors.reponame",))
def batch_delete_favor(ctx: RequestContext, p: BatchDeleteFavorParams) -> dict[str, Any]:
    favors = [
        backend.Favor(f.repotype, f.reponame, f" (favors.{i})") for i, f in enumerate(p.favors)
    ]
    backend.delete_favors(ctx.work(), favors)
    return {}


class GetFavorParams(Params):
    offset: int = Offset
    limit: int = Limit


@action("GetFavor", GetFavorParams, unscoped=LISTS_ALLOWED)
def get_favor(ctx: RequestContext, p: GetFavorParams) -> dict[str, Any]:
    page = backend.favors(ctx.work(), p.offset, p.limit, _visible(ctx))
    return {"totalCount": page.total, "repoInfo": [_repo_info(r, full=False) for r in page.rows]}


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
def maintain(ctx: RequestContext, p: MaintainParams) -> dict[str, int]:
    """Run the periodic registry pass now (reconcile, retention, garbage collection)."""
    return backend.maintain(ctx.work(), force_gc=p.gc)
