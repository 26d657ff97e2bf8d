"""Autoscaling group actions: groups made from a node's launch configuration, their range
and labels, and the cluster autoscaler's settings (ModifyClusterAsgScaleDown)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from openccs.api.context import RequestContext
from openccs.api.params import Array, Flag, Paged, Params
from openccs.api.registry import action
from openccs.autoscaler import domain as asg
from openccs.autoscaler import tasks  # noqa: F401  (registers the task types)
from openccs.autoscaler.models import ClusterAsg
from openccs.backends.inputs import LABEL_KEY
from openccs.domain import cloud
from openccs.domain import clusters as dom
from openccs.errors import invalid_parameter
from openccs.ids import parse_number

LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# The document gives no bounds; these are the autoscaling service's group limits.
MAX_GROUP_SIZE = 200
LIVE_CLUSTER = ("Running", "Scaling", "Abnormal")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    # `label.app.kubernetes.io/name=x` decodes to nested objects: join the key back.
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _labels_in(value: Any) -> Any:
    """`label.key=value` (the document's examples) or `label.0.key=k&label.0.value=v`."""
    if value is None:
        return {}
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for i, item in enumerate(value):
            if not isinstance(item, dict) or "key" not in item:
                raise ValueError(f"label.{i} needs a key (and a value)")
            out[str(item["key"])] = item.get("value", "")
        return out
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        _flatten("", value, flat)
        return flat
    return value


def _labels_ok(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if len(key) > 253 or not re.fullmatch(LABEL_KEY, key):
            raise ValueError(f"{key!r} is not a label key")
        if len(val) > 63 or not re.fullmatch(LABEL_VALUE, val):
            raise ValueError(f"{val!r} is not a label value (key {key!r})")
    return value


LabelMap = Annotated[dict[str, str], BeforeValidator(_labels_in), AfterValidator(_labels_ok)]
GroupSize = Annotated[int, Field(ge=0, le=MAX_GROUP_SIZE)]
GROUP_NAME = Field(default=None, min_length=1, max_length=55, pattern=r"^[^\s].*$")


def _expander_in(value: Any) -> Any:
    # The document types `expander` as Int while listing names: accept either, by position.
    index = parse_number(value) if isinstance(value, str) else None
    if index is not None and index < len(asg.EXPANDERS):
        return asg.EXPANDERS[index]
    return value


Expander = Annotated[Literal["random", "most-pods", "least-waste"], BeforeValidator(_expander_in)]


def _cluster(ctx: RequestContext, cluster_id: str) -> Any:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, cluster_id)
    dom.precondition(cluster, LIVE_CLUSTER, "changing its autoscaling groups")
    return cluster


def _submit(ctx: RequestContext, task_id: int) -> None:
    runner = ctx.services.tasks
    ctx.on_commit(lambda: runner.submit(task_id))


class CreateClusterAsgParams(Params):
    clusterId: str
    instanceId: str
    minSize: GroupSize
    maxSize: GroupSize
    password: str | None = None
    keyId: str | None = None
    label: LabelMap = {}
    autoScalingGroupName: str | None = GROUP_NAME
    launchConfigurationName: str | None = GROUP_NAME


@action("CreateClusterAsg", CreateClusterAsgParams, resources=("clusterId", "instanceId"))
def create_cluster_asg(ctx: RequestContext, p: CreateClusterAsgParams) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId)
    node = dom.get_node(ctx.db, cluster, p.instanceId)
    cloud.check_login(p.password, p.keyId)
    group = asg.create_group(
        ctx.db,
        cluster,
        node,
        min_size=p.minSize,
        max_size=p.maxSize,
        labels=p.label,
        name=p.autoScalingGroupName,
        launch_name=p.launchConfigurationName,
        password=p.password,
        key_id=p.keyId,
    )
    return {
        "autoScalingGroupId": group.id,
        "autoScalingGroupName": group.name,
        "launchConfigurationId": group.launch_config_id,
        "launchConfigurationName": group.launch_config_name,
    }


class GroupsParams(Params):
    clusterId: str
    autoScalingGroupIds: Array[str] = Field(min_length=1, max_length=100)


def _set_status(ctx: RequestContext, p: GroupsParams, status: str) -> None:
    cluster = _cluster(ctx, p.clusterId)
    for group in asg.get_groups(ctx.db, cluster, p.autoScalingGroupIds):
        group.status = status
        asg.touch(group)


@action("EnableClusterAsg", GroupsParams, resources=("clusterId", "autoScalingGroupIds"))
def enable_cluster_asg(ctx: RequestContext, p: GroupsParams) -> None:
    _set_status(ctx, p, "enabled")


@action("DisableClusterAsg", GroupsParams, resources=("clusterId", "autoScalingGroupIds"))
def disable_cluster_asg(ctx: RequestContext, p: GroupsParams) -> None:
    _set_status(ctx, p, "disabled")


@action("DeleteClusterAsg", GroupsParams, resources=("clusterId", "autoScalingGroupIds"))
def delete_cluster_asg(ctx: RequestContext, p: GroupsParams) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId)
    ids = []
    for group in asg.get_groups(ctx.db, cluster, p.autoScalingGroupIds):
        task_id = asg.delete_group(ctx.db, cluster, group)
        _submit(ctx, task_id)
        ids.append(task_id)
    return {"requestId": ids[0], "requestIds": ids}


class DescribeClusterAsgParams(Paged):
    clusterId: str | None = None
    autoScalingGroupId: str | None = None
    status: Literal["enabled", "enabling", "disabled", "disabling", "updating"] | None = None


@action(
    "DescribeClusterAsg",
    DescribeClusterAsgParams,
    resources=("clusterId", "autoScalingGroupId"),
    inline=True,
)
def describe_cluster_asg(ctx: RequestContext, p: DescribeClusterAsgParams) -> dict[str, Any]:
    cluster_id = None
    if p.clusterId:
        cluster_id = cloud.get_cluster(ctx.db, ctx.account_id, p.clusterId).id
    groups = asg.list_groups(
        ctx.db, ctx.account_id, cluster_id, p.autoScalingGroupId, p.status, ctx.caller.may_use
    )
    page = groups[p.offset : p.offset + p.limit]
    return {"totalCount": len(groups), "asgInfo": asg.describe_groups(ctx.db, page)}


class ScaleDownParams(Params):
    clusterId: str
    scaleDownEnabled: int = Field(ge=0)
    expander: Expander | None = None
    maxEmptyBulkDelete: int | None = Field(default=None, ge=1, le=100)
    maxTotalUnreadyPercentage: int | None = Field(default=None, ge=0, le=100)
    okTotalUnreadyCount: int | None = Field(default=None, ge=0, le=1000)
    scaleDownDelay: int | None = Field(default=None, ge=0, le=1440)
    scaleDownUnneededTime: int | None = Field(default=None, ge=0, le=1440)
    scaleDownUnreadyTime: int | None = Field(default=None, ge=0, le=1440)
    skipNodesWithLocalStorage: Flag | None = None
    skipNodesWithSystemPods: Flag | None = None
    unregisteredNodeRemovalTime: int | None = Field(default=None, ge=0, le=1440)
    scaleDownUtilizationThreshold: int | None = Field(default=None, ge=0, le=100)


# Wire name -> column of AutoscalerSettings.
_SCALE_DOWN_FIELDS = {
    "expander": "expander",
    "maxEmptyBulkDelete": "max_empty_bulk_delete",
    "maxTotalUnreadyPercentage": "max_total_unready_percentage",
    "okTotalUnreadyCount": "ok_total_unready_count",
    "scaleDownDelay": "scale_down_delay",
    "scaleDownUnneededTime": "scale_down_unneeded_time",
    "scaleDownUnreadyTime": "scale_down_unready_time",
    "skipNodesWithLocalStorage": "skip_nodes_with_local_storage",
    "skipNodesWithSystemPods": "skip_nodes_with_system_pods",
    "unregisteredNodeRemovalTime": "unregistered_node_removal_time",
    "scaleDownUtilizationThreshold": "scale_down_utilization_threshold",
}


@action("ModifyClusterAsgScaleDown", ScaleDownParams, resources=("clusterId",))
def modify_scale_down(ctx: RequestContext, p: ScaleDownParams) -> None:
    cluster = _cluster(ctx, p.clusterId)
    st = asg.settings_of(ctx.db, cluster.id)
    st.scale_down_enabled = p.scaleDownEnabled != 0
    for wire, column in _SCALE_DOWN_FIELDS.items():
        value = getattr(p, wire)
        if value is None:
            continue
        if column.startswith("skip_"):
            value = value != 0
        setattr(st, column, value)


class GroupRef(Params):
    clusterId: str
    autoScalingGroupId: str


def _group(ctx: RequestContext, p: GroupRef) -> ClusterAsg:
    cluster = _cluster(ctx, p.clusterId)
    return asg.get_group(ctx.db, cluster, p.autoScalingGroupId, "autoScalingGroupId")


class RangeParams(GroupRef):
    minSize: GroupSize | None = None
    maxSize: GroupSize | None = None
    label: LabelMap | None = None


@action("ModifyClusterAsgRange", RangeParams, resources=("clusterId", "autoScalingGroupId"))
def modify_range(ctx: RequestContext, p: RangeParams) -> None:
    group = _group(ctx, p)
    low = group.min_size if p.minSize is None else p.minSize
    high = group.max_size if p.maxSize is None else p.maxSize
    if low > high:
        name = "minSize" if p.minSize is not None else "maxSize"
        raise invalid_parameter(
            name, f"minSize ({low}) must not exceed maxSize ({high}) of group {group.id}"
        )
    group.min_size, group.max_size = low, high
    group.desired_capacity = min(max(group.desired_capacity, low), high)
    if p.label is not None:
        group.labels = dict(p.label)
    asg.touch(group)


class LabelParams(GroupRef):
    label: LabelMap = {}


@action("ModifyClusterAsgLabel", LabelParams, resources=("clusterId", "autoScalingGroupId"))
def modify_label(ctx: RequestContext, p: LabelParams) -> None:
    group = _group(ctx, p)
    group.labels = {**group.labels, **p.label}
    asg.touch(group)


@action("ResetClusterAsgLabel", LabelParams, resources=("clusterId", "autoScalingGroupId"))
def reset_label(ctx: RequestContext, p: LabelParams) -> None:
    group = _group(ctx, p)
    group.labels = dict(p.label)
    asg.touch(group)


class DeleteLabelParams(GroupRef):
    labelKeys: Array[str] = Field(min_length=1, max_length=100)


@action("DeleteClusterAsgLabel", DeleteLabelParams, resources=("clusterId", "autoScalingGroupId"))
def delete_label(ctx: RequestContext, p: DeleteLabelParams) -> None:
    group = _group(ctx, p)
    group.labels = {k: v for k, v in group.labels.items() if k not in set(p.labelKeys)}
    asg.touch(group)
