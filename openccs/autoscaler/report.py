"""What `openccs asg` prints: a cluster's groups with the autoscaler's settings, and the
autoscaler's decisions (its events on pods, nodes and its status config map)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.autoscaler import domain as asg
from openccs.autoscaler.controller import REASONS
from openccs.autoscaler.models import ClusterAsg
from openccs.store.models import Cluster, Event
from openccs.timeutil import fmt_time_zoned


def asg_groups(s: Session, cluster_id: str) -> list[dict[str, Any]] | None:
    if s.get(Cluster, cluster_id) is None:
        return None
    st = asg.settings_of(s, cluster_id)
    found = s.scalars(
        select(ClusterAsg)
        .where(ClusterAsg.cluster_id == cluster_id)
        .order_by(ClusterAsg.created_at)
    )
    rows = []
    for state in asg.group_states(s, list(found)):
        g = state.group
        rows.append(
            {
                "autoScalingGroupId": g.id,
                "autoScalingGroupName": g.name,
                "status": g.status,
                "minSize": g.min_size,
                "maxSize": g.max_size,
                "instanceNum": state.instance_num,
                "desiredCapacity": g.desired_capacity,
                "label": [{"key": k, "value": v} for k, v in sorted(g.labels.items())],
            }
        )
        rows[-1]["scaleDown"] = (
            f"{'on' if st.scale_down_enabled else 'off'} expander={st.expander}"
            f" threshold={st.scale_down_utilization_threshold}%"
            f" unneeded={st.scale_down_unneeded_time}m delay={st.scale_down_delay}m"
        )
    return rows


def asg_events(s: Session, cluster_id: str) -> list[dict[str, Any]] | None:
    if s.get(Cluster, cluster_id) is None:
        return None
    events = s.scalars(
        select(Event)
        .where(Event.cluster_id == cluster_id, Event.reason.in_(REASONS))
        .order_by(Event.last_seen, Event.id)
    )
    return [
        {
            "lastSeen": fmt_time_zoned(e.last_seen),
            "count": e.count,
            "reason": e.reason,
            "object": f"{e.obj_type}/{e.namespace + '/' if e.obj_type == 'Pod' else ''}"
            f"{e.obj_name}",
            "message": e.message,
        }
        for e in events
    ]
