"""Autoscaling groups as the autoscaler and the autoscaling backend both see them: the
cluster's settings, a group's machines and state, and the two ways a group changes size
(machines added by a scale-out task, machines drained and removed by a scale-in task). What
a tenant may do to a group is the backend's (`backends/autoscaling.py`). Nothing here
touches the host."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.autoscaler.models import AutoscalerSettings, ClusterAsg
from openccs.config import Settings
from openccs.domain import clusters as dom
from openccs.store.models import Cluster, Instance, Task, Vpc
from openccs.tasks.runner import create_task
from openccs.timeutil import utcnow

EXPANDERS = ("random", "most-pods", "least-waste")
SCALE_OUT = "cluster.scale_out"
SCALE_IN = "asg.scale_in"
DELETE = "asg.delete"


def settings_of(s: Session, cluster_id: str) -> AutoscalerSettings:
    """The cluster's autoscaler settings, made with the defaults the first time."""
    row = s.get(AutoscalerSettings, cluster_id)
    if row is None:
        row = AutoscalerSettings(cluster_id=cluster_id)
        s.add(row)
        s.flush()
    return row


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


@dataclass(frozen=True)
class GroupState:
    """A group as its describers show it: the row, the cluster's scale-down switch and the
    machines it has (those a scale-in is removing left out)."""

    group: ClusterAsg
    scale_down_enabled: bool
    instance_num: int


def group_states(s: Session, groups: list[ClusterAsg]) -> list[GroupState]:
    states = []
    for group in groups:
        st = s.get(AutoscalerSettings, group.cluster_id)
        gone = removing(s, group.cluster_id)
        count = sum(1 for n in group_nodes(s, group.id) if n.id not in gone)
        enabled = bool(st.scale_down_enabled) if st is not None else False
        states.append(GroupState(group, enabled, count))
    return states


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


def minutes(settings: Settings, value: int) -> float:
    """A duration of the document (minutes) in seconds of this server."""
    return value * settings.asg_minute_seconds


def since(moment: datetime | None) -> float:
    if moment is None:
        return float("inf")
    return (utcnow() - moment).total_seconds()
