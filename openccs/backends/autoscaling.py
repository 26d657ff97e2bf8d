"""The autoscaling backend: a cluster's autoscaling groups (made from a node's launch
configuration), their range and labels, and the cluster autoscaler's settings.

The v2 actions (`actions/asg.py`) call these (and the console through them). Inputs are
typed (`NewGroup`, `RangeChange`, `ScaleDown`); a change the autoscaler acts on declares
it (`Effects.wake_autoscaler`: its next pass comes at once instead of at the next scan),
and deleting a group declares the task that drains and removes its machines. The
autoscaler's own decisions are in `autoscaler/controller.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import select

from openccs.autoscaler import domain as asg
from openccs.autoscaler import tasks  # noqa: F401  (registers the task types)
from openccs.autoscaler.domain import GroupState
from openccs.autoscaler.models import ClusterAsg
from openccs.backends import Work
from openccs.domain import cloud
from openccs.domain import clusters as dom
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.ids import new_id
from openccs.store.models import Cluster, Instance
from openccs.tasks.runner import create_task
from openccs.timeutil import utcnow

__all__ = ["GroupState", "NewGroup", "RangeChange", "ScaleDown"]

# A cluster's groups change while it runs (also while it scales or is abnormal).
LIVE_CLUSTER = ("Running", "Scaling", "Abnormal")
# Settings a launch configuration does not carry over from its model node.
_TRANSIENT_SETTINGS = ("adopted", "reinstall")


@dataclass(frozen=True)
class NewGroup:
    """CreateClusterAsg's input: a group whose machines are made like the node
    `instance_id`, with the login given (or the node's own), named or with generated names."""

    instance_id: str
    min_size: int
    max_size: int
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    launch_name: str | None = None
    password: str | None = None
    key_id: str | None = None


@dataclass(frozen=True)
class RangeChange:
    """ModifyClusterAsgRange's input: each field given (None keeps it); labels replace."""

    min_size: int | None = None
    max_size: int | None = None
    labels: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ScaleDown:
    """The cluster autoscaler's settings (ModifyClusterAsgScaleDown): the switch, and each
    other setting given (None keeps it). Durations are the document's minutes."""

    enabled: bool
    expander: str | None = None
    max_empty_bulk_delete: int | None = None
    max_total_unready_percentage: int | None = None
    ok_total_unready_count: int | None = None
    scale_down_delay: int | None = None
    scale_down_unneeded_time: int | None = None
    scale_down_unready_time: int | None = None
    skip_nodes_with_local_storage: bool | None = None
    skip_nodes_with_system_pods: bool | None = None
    unregistered_node_removal_time: int | None = None
    scale_down_utilization_threshold: int | None = None


def _cluster(w: Work, cluster_id: str) -> Cluster:
    """A cluster of the caller whose groups may change now."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    dom.precondition(cluster, LIVE_CLUSTER, "changing its autoscaling groups")
    return cluster


def _generated(cluster_id: str, letter: str) -> str:
    # The product's generated names: `cls-xxxxxxxx-g1867619587`, `cls-xxxxxxxx-c123109984`.
    return f"{cluster_id}-{letter}{secrets.randbelow(9_000_000_000) + 1_000_000_000}"


def _check_unique(w: Work, column: Any, value: str, param: str) -> None:
    taken = w.db.scalars(
        select(ClusterAsg.id).where(ClusterAsg.account_id == w.account_id, column == value)
    ).first()
    if taken is not None:
        raise ApiError(4000, "NameExists", f"Invalid parameter {param}: {value!r} is already used")


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


def create_group(w: Work, cluster_id: str, new: NewGroup) -> ClusterAsg:
    """A group of the cluster, enabled, at its minSize (the autoscaler makes the machines);
    names are unique in the account."""
    cluster = _cluster(w, cluster_id)
    node = dom.get_node(w.db, cluster, new.instance_id)
    cloud.check_login(new.password, new.key_id)
    if new.min_size > new.max_size:
        raise invalid_parameter(
            "minSize", f"must not exceed maxSize (minSize {new.min_size} > maxSize {new.max_size})"
        )
    name = new.name or _generated(cluster.id, "g")
    launch_name = new.launch_name or _generated(cluster.id, "c")
    _check_unique(w, ClusterAsg.name, name, "autoScalingGroupName")
    _check_unique(w, ClusterAsg.launch_config_name, launch_name, "launchConfigurationName")
    group = ClusterAsg(
        id=new_id("asg"),
        account_id=cluster.account_id,
        cluster_id=cluster.id,
        name=name,
        launch_config_id=new_id("asc"),
        launch_config_name=launch_name,
        status="enabled",
        min_size=new.min_size,
        max_size=new.max_size,
        desired_capacity=new.min_size,
        labels=dict(new.labels),
        launch=launch_configuration(cluster, node, new.password, new.key_id),
    )
    w.db.add(group)
    asg.settings_of(w.db, cluster.id)
    w.db.flush()
    w.effects.wake_autoscaler = True
    return group


def _group(w: Work, cluster: Cluster, group_id: str, param: str) -> ClusterAsg:
    group = w.db.get(ClusterAsg, group_id)
    if group is None or group.account_id != cluster.account_id:
        raise not_found(f"autoscaling group ({param})", group_id)
    if group.cluster_id != cluster.id:
        raise ApiError(
            5000,
            "ResourceNotFound",
            f"autoscaling group {group_id} ({param}) is not a group of cluster {cluster.id}",
        )
    return group


def _groups(w: Work, cluster_id: str, group_ids: Sequence[str]) -> list[ClusterAsg]:
    """Groups of the cluster (the parameter `autoScalingGroupIds.n`), each named once."""
    cluster = _cluster(w, cluster_id)
    if len(set(group_ids)) != len(group_ids):
        raise invalid_parameter("autoScalingGroupIds", "a group is named twice")
    return [_group(w, cluster, gid, f"autoScalingGroupIds.{i}") for i, gid in enumerate(group_ids)]


def _one(w: Work, cluster_id: str, group_id: str) -> ClusterAsg:
    """A group of the cluster (the parameter `autoScalingGroupId`)."""
    return _group(w, _cluster(w, cluster_id), group_id, "autoScalingGroupId")


def _touch(group: ClusterAsg) -> None:
    group.updated_at = utcnow()


def set_enabled(w: Work, cluster_id: str, group_ids: Sequence[str], enabled: bool) -> None:
    """Groups the autoscaler may grow (enabled) or leaves as they are (disabled)."""
    for group in _groups(w, cluster_id, group_ids):
        group.status = "enabled" if enabled else "disabled"
        _touch(group)
    w.effects.wake_autoscaler = True


def delete_groups(w: Work, cluster_id: str, group_ids: Sequence[str]) -> list[int]:
    """The groups are forgotten now; a task per group drains and destroys its machines
    (cordoned at once): the tasks' ids."""
    ids = []
    for group in _groups(w, cluster_id, group_ids):
        for ins in asg.group_nodes(w.db, group.id):
            if ins.state == "Running":
                ins.unschedulable = True
                ins.drain_status = "draining"
        task = create_task(
            w.db,
            group.account_id,
            asg.DELETE,
            {"clusterId": group.cluster_id, "asgId": group.id},
            group.cluster_id,
        )
        w.db.delete(group)
        w.effects.tasks.append(task.id)
        ids.append(task.id)
    return ids


def groups(
    w: Work,
    cluster_id: str | None,
    group_id: str | None,
    status: str | None,
    visible: Callable[[str], bool],
) -> list[ClusterAsg]:
    """The account's groups (of one cluster, which must be the caller's; one id; one
    status), oldest first; `visible` says which clusters the caller may see."""
    q = select(ClusterAsg).where(ClusterAsg.account_id == w.account_id)
    if cluster_id:
        cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
        q = q.where(ClusterAsg.cluster_id == cluster.id)
    if group_id:
        q = q.where(ClusterAsg.id == group_id)
    if status:
        q = q.where(ClusterAsg.status == status)
    return [
        g
        for g in w.db.scalars(q.order_by(ClusterAsg.created_at, ClusterAsg.id))
        if visible(g.cluster_id)
    ]


def group_states(w: Work, found: list[ClusterAsg]) -> list[GroupState]:
    return asg.group_states(w.db, found)


def set_scale_down(w: Work, cluster_id: str, scale_down: ScaleDown) -> None:
    """The cluster autoscaler's settings: the switch, and each other setting given."""
    cluster = _cluster(w, cluster_id)
    st = asg.settings_of(w.db, cluster.id)
    st.scale_down_enabled = scale_down.enabled
    for f in fields(scale_down):
        value = getattr(scale_down, f.name)
        if f.name != "enabled" and value is not None:
            setattr(st, f.name, value)
    w.effects.wake_autoscaler = True


def set_range(w: Work, cluster_id: str, group_id: str, change: RangeChange) -> None:
    """A group's minSize and maxSize (its desired capacity kept within them), and with
    labels given, its labels (for the machines made from now on)."""
    group = _one(w, cluster_id, group_id)
    low = group.min_size if change.min_size is None else change.min_size
    high = group.max_size if change.max_size is None else change.max_size
    if low > high:
        name = "minSize" if change.min_size is not None else "maxSize"
        raise invalid_parameter(
            name, f"minSize ({low}) must not exceed maxSize ({high}) of group {group.id}"
        )
    group.min_size, group.max_size = low, high
    group.desired_capacity = min(max(group.desired_capacity, low), high)
    if change.labels is not None:
        group.labels = dict(change.labels)
    _touch(group)
    w.effects.wake_autoscaler = True


def add_labels(w: Work, cluster_id: str, group_id: str, labels: Mapping[str, str]) -> None:
    """Labels added to (or changed in) the group's; they go on the machines made from now."""
    group = _one(w, cluster_id, group_id)
    group.labels = {**group.labels, **labels}
    _touch(group)


def reset_labels(w: Work, cluster_id: str, group_id: str, labels: Mapping[str, str]) -> None:
    group = _one(w, cluster_id, group_id)
    group.labels = dict(labels)
    _touch(group)


def delete_labels(w: Work, cluster_id: str, group_id: str, keys: Sequence[str]) -> None:
    group = _one(w, cluster_id, group_id)
    gone = set(keys)
    group.labels = {k: v for k, v in group.labels.items() if k not in gone}
    _touch(group)
