"""Autoscaling group actions: groups made from a node's launch configuration, their range
and labels, and the cluster autoscaler's settings (ModifyClusterAsgScaleDown). Each decodes
its parameters, calls the autoscaling backend and encodes the answer."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from openccs.api.context import RequestContext
from openccs.api.params import Array, Flag, Paged, Params
from openccs.api.registry import action
from openccs.autoscaler.domain import EXPANDERS
from openccs.backends import autoscaling as backend
from openccs.backends.autoscaling import NewGroup, RangeChange, ScaleDown
from openccs.backends.inputs import LABEL_KEY, LABEL_VALUE
from openccs.ids import parse_number
from openccs.timeutil import fmt_time

# The document gives no bounds; these are the autoscaling service's group limits.
MAX_GROUP_SIZE = 200


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
    if index is not None and index < len(EXPANDERS):
        return EXPANDERS[index]
    return value


Expander = Annotated[Literal["random", "most-pods", "least-waste"], BeforeValidator(_expander_in)]


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
    new = NewGroup(
        instance_id=p.instanceId,
        min_size=p.minSize,
        max_size=p.maxSize,
        labels=p.label,
        name=p.autoScalingGroupName,
        launch_name=p.launchConfigurationName,
        password=p.password,
        key_id=p.keyId,
    )
    group = backend.create_group(ctx.work(), p.clusterId, new)
    return {
        "autoScalingGroupId": group.id,
        "autoScalingGroupName": group.name,
        "launchConfigurationId": group.launch_config_id,
        "launchConfigurationName": group.launch_config_name,
    }


class GroupsParams(Params):
    clusterId: str
    autoScalingGroupIds: Array[str] = Field(min_length=1, max_length=100)


@action("EnableClusterAsg", GroupsParams, resources=("clusterId", "autoScalingGroupIds"))
def enable_cluster_asg(ctx: RequestContext, p: GroupsParams) -> None:
    backend.set_enabled(ctx.work(), p.clusterId, p.autoScalingGroupIds, True)


@action("DisableClusterAsg", GroupsParams, resources=("clusterId", "autoScalingGroupIds"))
def disable_cluster_asg(ctx: RequestContext, p: GroupsParams) -> None:
    backend.set_enabled(ctx.work(), p.clusterId, p.autoScalingGroupIds, False)


@action("DeleteClusterAsg", GroupsParams, resources=("clusterId", "autoScalingGroupIds"))
def delete_cluster_asg(ctx: RequestContext, p: GroupsParams) -> dict[str, Any]:
    ids = backend.delete_groups(ctx.work(), p.clusterId, p.autoScalingGroupIds)
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
    w = ctx.work()
    found = backend.groups(w, p.clusterId, p.autoScalingGroupId, p.status, ctx.caller.may_use)
    page = backend.group_states(w, found[p.offset : p.offset + p.limit])
    return {"totalCount": len(found), "asgInfo": [_group_info(state) for state in page]}


def _group_info(state: backend.GroupState) -> dict[str, Any]:
    group = state.group
    return {
        "autoScalingGroupId": group.id,
        "autoScalingGroupName": group.name,
        "clusterId": group.cluster_id,
        "status": group.status,
        "scaleDownEnabled": state.scale_down_enabled,
        "minSize": group.min_size,
        "maxSize": group.max_size,
        "instanceNum": state.instance_num,
        "desiredCapacity": group.desired_capacity,
        "label": [{"key": k, "value": v} for k, v in sorted(group.labels.items())],
        "launchConfigurationId": group.launch_config_id,
        "launchConfigurationName": group.launch_config_name,
        "createdAt": fmt_time(group.created_at),
        "updatedAt": fmt_time(group.updated_at),
    }


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


# Wire name -> field of ScaleDown (a column of AutoscalerSettings).
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
    given: dict[str, Any] = {}
    for wire, name in _SCALE_DOWN_FIELDS.items():
        value = getattr(p, wire)
        if value is not None and name.startswith("skip_"):
            value = value != 0
        given[name] = value
    settings = ScaleDown(enabled=p.scaleDownEnabled != 0, **given)
    backend.set_scale_down(ctx.work(), p.clusterId, settings)


class GroupRef(Params):
    clusterId: str
    autoScalingGroupId: str


class RangeParams(GroupRef):
    minSize: GroupSize | None = None
    maxSize: GroupSize | None = None
    label: LabelMap | None = None


@action("ModifyClusterAsgRange", RangeParams, resources=("clusterId", "autoScalingGroupId"))
def modify_range(ctx: RequestContext, p: RangeParams) -> None:
    change = RangeChange(p.minSize, p.maxSize, p.label)
    backend.set_range(ctx.work(), p.clusterId, p.autoScalingGroupId, change)


class LabelParams(GroupRef):
    label: LabelMap = {}


@action("ModifyClusterAsgLabel", LabelParams, resources=("clusterId", "autoScalingGroupId"))
def modify_label(ctx: RequestContext, p: LabelParams) -> None:
    backend.add_labels(ctx.work(), p.clusterId, p.autoScalingGroupId, p.label)


@action("ResetClusterAsgLabel", LabelParams, resources=("clusterId", "autoScalingGroupId"))
def reset_label(ctx: RequestContext, p: LabelParams) -> None:
    backend.reset_labels(ctx.work(), p.clusterId, p.autoScalingGroupId, p.label)


class DeleteLabelParams(GroupRef):
    labelKeys: Array[str] = Field(min_length=1, max_length=100)


@action("DeleteClusterAsgLabel", DeleteLabelParams, resources=("clusterId", "autoScalingGroupId"))
def delete_label(ctx: RequestContext, p: DeleteLabelParams) -> None:
    backend.delete_labels(ctx.work(), p.clusterId, p.autoScalingGroupId, p.labelKeys)
