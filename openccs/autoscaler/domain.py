"""Autoscaling groups: their rules, their launch configuration, how the API shows them, and
the two ways a group changes size (machines added by a scale-out task, machines drained and
removed by a scale-in task). Nothing here touches the host."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.autoscaler.models import AutoscalerSettings, ClusterAsg
from openccs.config import Settings
from openccs.domain import cloud
from openccs.domain import clusters as dom
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.ids import new_id
from openccs.store.models import Cluster, Instance, Task, Vpc
from openccs.tasks.runner import create_task
from openccs.timeutil import fmt_time, utcnow

STATUSES = ("enabled", "enabling", "disabled", "disabling", "updating")
EXPANDERS = ("random", "most-pods", "least-waste")
SCALE_OUT = "cluster.scale_out"
SCALE_IN = "asg.scale_in"
DELETE = "asg.delete"
# Settings a launch configuration does not carry over from its model node.
_TRANSIENT_SETTINGS = ("adopted", "reinstall")


def settings_of(s: Session, cluster_id: str) -> AutoscalerSettings:
    """The cluster's autoscaler settings, made with the defaults the first time."""
    row = s.get(AutoscalerSettings, cluster_id)
    if row is None:
        row = AutoscalerSettings(cluster_id=cluster_id)
        s.add(row)
        s.flush()
    return row


def _generated(cluster_id: str, letter: str) -> str:
    # The product's generated names: `cls-xxxxxxxx-g1867619587`, `cls-xxxxxxxx-c123109984`.
    return f"{cluster_id}-{letter}{secrets.randbelow(9_000_000_000) + 1_000_000_000}"


def _check_unique(s: Session, account_id: int, column: Any, value: str, param: str) -> None:
    taken = s.scalars(
        select(ClusterAsg.id).where(ClusterAsg.account_id == account_id, column == value)
    ).first()
    if taken is not None:
        raise ApiError(4000, "NameExists", f"Invalid parameter {param}: {value!r} is already used")


def check_range(min_size: int, max_size: int) -> None:
    if min_size > max_size:
        raise invalid_parameter(
            "minSize", f"must not exceed maxSize (minSize {min_size} > maxSize {max_size})"
        )


def launch_configuration(
    cluster: Cluster, node: Instance, password: str | None, key_id: str | None
) -> dict[str, Any]:
    """What the group's machines are made of: the model node's machine settings, with the
    given login (or the node's own when none is given)."""
    if password:
        password_hash, key = cloud.hash_password(password), ""
    elif key_id:
        password_hash, key = "", key_id
    else:
        password_hash, key = node.password_hash, node.key_id
    return {
        "zone": node.zone,
        "subnet_id": node.subnet_id,
        "instance_type": node.instance_type,
        "cpu": node.cpu,
        "mem": node.mem,
        "os_name": cluster.os_name or node.os_name,
        "password_hash": password_hash,
        "key_id": key,
        "user_script": node.user_script,
        "settings": {k: v for k, v in node.settings.items() if k not in _TRANSIENT_SETTINGS},
        "model_instance": node.id,
    }


def create_group(
    s: Session,
    cluster: Cluster,
    node: Instance,
    *,
    min_size: int,
    max_size: int,
    labels: dict[str, str],
    name: str | None,
    launch_name: str | None,
    password: str | None,
    key_id: str | None,
) -> ClusterAsg:
    check_range(min_size, max_size)
    name = name or _generated(cluster.id, "g")
    launch_name = launch_name or _generated(cluster.id, "c")
    _check_unique(s, cluster.account_id, ClusterAsg.name, name, "autoScalingGroupName")
    _check_unique(
        s, cluster.account_id, ClusterAsg.launch_config_name, launch_name, "launchConfigurationName"
    )
    group = ClusterAsg(
        id=new_id("asg"),
        account_id=cluster.account_id,
        cluster_id=cluster.id,
        name=name,
        launch_config_id=new_id("asc"),
        launch_config_name=launch_name,
        status="enabled",
        min_size=min_size,
        max_size=max_size,
        desired_capacity=min_size,
        labels=dict(labels),
        launch=launch_configuration(cluster, node, password, key_id),
    )
    s.add(group)
    settings_of(s, cluster.id)
    s.flush()
    return group


def get_group(s: Session, cluster: Cluster, group_id: str, param: str) -> ClusterAsg:
    group = s.get(ClusterAsg, group_id)
    if group is None or group.account_id != cluster.account_id:
        raise not_found(f"autoscaling group ({param})", group_id)
    if group.cluster_id != cluster.id:
        raise ApiError(
            5000,
            "ResourceNotFound",
            f"autoscaling group {group_id} ({param}) is not a group of cluster {cluster.id}",
        )
    return group


def get_groups(s: Session, cluster: Cluster, group_ids: list[str]) -> list[ClusterAsg]:
    if len(set(group_ids)) != len(group_ids):
        raise invalid_parameter("autoScalingGroupIds", "a group is named twice")
    return [
        get_group(s, cluster, gid, f"autoScalingGroupIds.{i}") for i, gid in enumerate(group_ids)
    ]


def group_nodes(s: Session, group_id: str) -> list[Instance]:
    return list(
        s.scalars(
            select(Instance)
            .where(Instance.autoscaling_group_id == group_id)
            .order_by(Instance.created_at)
        )
    )


def removing(s: Session, cluster_id: str) -> set[str]:
    """Machines that a running scale-in task of the cluster is draining or removing."""
    ids: set[str] = set()
    for task in s.scalars(
        select(Task).where(
            Task.type.in_((SCALE_IN, DELETE)),
            Task.resource_id == cluster_id,
            Task.status == "running",
        )
    ):
        ids.update(task.params.get("instanceIds") or task.state.get("instanceIds") or [])
    return ids


def touch(group: ClusterAsg) -> None:
    group.updated_at = utcnow()


def describe_group(s: Session, group: ClusterAsg, st: AutoscalerSettings | None) -> dict[str, Any]:
    gone = removing(s, group.cluster_id)
    count = sum(1 for n in group_nodes(s, group.id) if n.id not in gone)
    return {
        "autoScalingGroupId": group.id,
        "autoScalingGroupName": group.name,
        "clusterId": group.cluster_id,
        "status": group.status,
        "scaleDownEnabled": bool(st.scale_down_enabled) if st is not None else False,
        "minSize": group.min_size,
        "maxSize": group.max_size,
        "instanceNum": count,
        "desiredCapacity": group.desired_capacity,
        "label": [{"key": k, "value": v} for k, v in sorted(group.labels.items())],
        "launchConfigurationId": group.launch_config_id,
        "launchConfigurationName": group.launch_config_name,
        "createdAt": fmt_time(group.created_at),
        "updatedAt": fmt_time(group.updated_at),
    }


def scale_out(
    s: Session, settings: Settings, group: ClusterAsg, cluster: Cluster, count: int
) -> int:
    """New machines for the group, brought up by a durable scale-out task; the task's id."""
    launch = group.launch
    vpc = s.get(Vpc, cluster.vpc_id)
    assert vpc is not None
    req = dom.MachineRequest(
        zone=launch["zone"],
        subnet_id=launch["subnet_id"],
        instance_type=launch["instance_type"],
        cpu=int(launch["cpu"]),
        mem=int(launch["mem"]),
        os_name=cluster.os_name or launch.get("os_name", ""),
        user_script=launch.get("user_script", ""),
        settings=dict(launch.get("settings") or {}),
    )
    task = create_task(
        s,
        cluster.account_id,
        SCALE_OUT,
        {"clusterId": cluster.id, "autoScalingGroupId": group.id},
        cluster.id,
    )
    rows = dom.new_instances(s, settings, cluster.account_id, vpc, req, count, cluster, task.id)
    for ins in rows:
        ins.password_hash = launch.get("password_hash", "")
        ins.key_id = launch.get("key_id", "")
        ins.labels = {**ins.labels, **group.labels}
        ins.autoscaling_group_id = group.id
    return task.id


def scale_in(
    s: Session, cluster: Cluster, instance_ids: list[str], drain: bool, reason: str
) -> int:
    """Drain then remove machines in a durable task; the task's id. The machines are
    cordoned at once so nothing new lands on them."""
    for iid in instance_ids:
        ins = s.get(Instance, iid)
        if ins is not None:
            ins.unschedulable = True
            ins.drain_status = "draining"
    task = create_task(
        s,
        cluster.account_id,
        SCALE_IN,
        {"clusterId": cluster.id, "instanceIds": instance_ids, "drain": drain, "reason": reason},
        cluster.id,
    )
    return task.id


def delete_group(s: Session, cluster: Cluster, group: ClusterAsg) -> int:
    """Forget the group now; a task drains and destroys its machines."""
    for ins in group_nodes(s, group.id):
        if ins.state == "Running":
            ins.unschedulable = True
            ins.drain_status = "draining"
    task = create_task(
        s, cluster.account_id, DELETE, {"clusterId": cluster.id, "asgId": group.id}, cluster.id
    )
    s.delete(group)
    return task.id


def minutes(settings: Settings, value: int) -> float:
    """A duration of the document (minutes) in seconds of this server."""
    return value * settings.asg_minute_seconds


def since(moment: datetime | None) -> float:
    if moment is None:
        return float("inf")
    return (utcnow() - moment).total_seconds()


def list_groups(
    s: Session,
    account_id: int,
    cluster_id: str | None,
    group_id: str | None,
    status: str | None,
    visible: Callable[[str], bool],
) -> list[ClusterAsg]:
    """An account's groups (of one cluster, one id, one status), oldest first; `visible`
    says which clusters the caller may see."""
    q = select(ClusterAsg).where(ClusterAsg.account_id == account_id)
    if cluster_id:
        q = q.where(ClusterAsg.cluster_id == cluster_id)
    if group_id:
        q = q.where(ClusterAsg.id == group_id)
    if status:
        q = q.where(ClusterAsg.status == status)
    return [
        g
        for g in s.scalars(q.order_by(ClusterAsg.created_at, ClusterAsg.id))
        if visible(g.cluster_id)
    ]


def describe_groups(s: Session, groups: list[ClusterAsg]) -> list[dict[str, Any]]:
    return [describe_group(s, g, s.get(AutoscalerSettings, g.cluster_id)) for g in groups]
