"""The cluster autoscaler, after Kubernetes' cluster-autoscaler, for the clusters that have
autoscaling groups. Each pass, per cluster:

1. If too many machines are unready (more than okTotalUnreadyCount and more than
   maxTotalUnreadyPercentage of them), do nothing.
2. A group with fewer machines than its minSize grows to it.
3. Pods the scheduler could not place (Unschedulable) that would not fit on the machines
   there are or are being made are binpacked on each enabled group's template machine;
   the expander (random, most-pods, least-waste) picks one group, which grows (up to its
   maxSize and the cluster's node quota). Pods no group could host get NotTriggerScaleUp
   with the reasons, the others TriggeredScaleUp.
4. Without a scale-up in this pass, with scale-down enabled, scaleDownDelay after the last
   scale-up and no scale-down under way: a group machine whose requested share stays below
   the threshold for scaleDownUnneededTime and whose pods all fit elsewhere (and are not
   kept by the skipNodesWith* rules) is drained and removed; empty ones up to
   maxEmptyBulkDelete at once, others one at a time; unready ones after
   scaleDownUnreadyTime, never registered ones after unregisteredNodeRemovalTime; never
   below a group's minSize. A group above its maxSize sheds machines.

Machines come and go through durable tasks (the cluster's scale-out task; the autoscaler's
drain-and-remove task), created in the same transaction as the decision, so a killed
server resumes them. What the autoscaler keeps in memory (since when a machine has been
unneeded, groups in back-off) is rebuilt by observation after a restart, as
cluster-autoscaler's is.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.autoscaler import domain as asg
from openccs.autoscaler import simulate as sim
from openccs.autoscaler.models import AutoscalerSettings, ClusterAsg
from openccs.domain.accounts import quota
from openccs.domain.clusters import cluster_nodes, count_nodes
from openccs.domain.workloads import record_event
from openccs.errors import ApiError
from openccs.log import get_logger, log_event
from openccs.store.models import Cluster, Instance, Pod, Service, Task
from openccs.timeutil import utcnow

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.autoscaler")

# Where cluster-autoscaler reports what it does: events on its status config map.
STATUS_NAMESPACE = "kube-system"
STATUS_KIND = "ConfigMap"
STATUS_NAME = "cluster-autoscaler-status"
NODE_NAMESPACE = "default"
# A group whose scale-up failed is left alone for this many minutes (cluster-autoscaler's
# initial node group back-off).
BACKOFF_MINUTES = 5
REASONS = (
    "TriggeredScaleUp",
    "NotTriggerScaleUp",
    "ScaledUpGroup",
    "ScaleDown",
    "ScaleDownEmpty",
    "FailedToScaleUpGroup",
    "ClusterUnhealthy",
)
_NOT_FITTING = (
    "max node group size reached",
    "disabled node group",
    "node group in back-off",
    "max cluster size reached",
)


def status_event(
    s: Session, cluster_id: str, reason: str, message: str, level: str = "Normal"
) -> None:
    record_event(
        s, cluster_id, STATUS_NAMESPACE, "", STATUS_KIND, STATUS_NAME, reason, message, level
    )


def pod_event(s: Session, pod: Pod, reason: str, message: str) -> None:
    svc = s.get(Service, pod.service_id) if pod.service_id else None
    record_event(
        s, pod.cluster_id, pod.namespace, svc.name if svc else "", "Pod", pod.name, reason, message
    )


class Autoscaler:
    def __init__(self, services: Services, rng: random.Random | None = None) -> None:
        self.services = services
        self.store = services.store
        self.settings = services.settings
        self.rng = rng or random.Random()
        self._unneeded: dict[str, float] = {}
        self._unready: dict[str, float] = {}
        self._unregistered: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._scale_ups: dict[int, str] = {}

    def minutes(self, value: int) -> float:
        return asg.minutes(self.settings, value)

    def run_once(self) -> None:
        self._watch_scale_ups()
        with self.store.session() as s:
            clusters = sorted(
                set(
                    s.scalars(
                        select(ClusterAsg.cluster_id)
                        .join(Cluster, Cluster.id == ClusterAsg.cluster_id)
                        .where(Cluster.status.in_(("Running", "Scaling", "Abnormal")))
                    )
                )
            )
        seen: set[str] = set()
        for cluster_id in clusters:
            submit: list[int] = []
            try:
                with self.store.session() as s:
                    submit = self._cluster_pass(s, cluster_id, seen)
            except Exception:
                log.exception("autoscaler pass failed", extra={"fields": {"cluster": cluster_id}})
            for task_id in submit:
                self.services.tasks.submit(task_id)
        for timers in (self._unneeded, self._unready, self._unregistered):
            for node_id in [n for n in timers if n not in seen]:
                del timers[node_id]

    def _watch_scale_ups(self) -> None:
        if not self._scale_ups:
            return
        with self.store.session() as s:
            for task_id, group_id in list(self._scale_ups.items()):
                task = s.get(Task, task_id)
                if task is None or task.status == "succ":
                    del self._scale_ups[task_id]
                elif task.status == "fail":
                    del self._scale_ups[task_id]
                    self._backoff[group_id] = time.monotonic() + self.minutes(BACKOFF_MINUTES)
                    if task.resource_id:
                        status_event(
                            s,
                            task.resource_id,
                            "FailedToScaleUpGroup",
                            f"Scale-up of group {group_id} failed: {task.reason}",
                            "Warning",
                        )

    def _in_backoff(self, group_id: str) -> bool:
        return self._backoff.get(group_id, 0.0) > time.monotonic()

    def _cluster_pass(self, s: Session, cluster_id: str, seen: set[str]) -> list[int]:
        cluster = s.get(Cluster, cluster_id)
        if cluster is None:
            return []
        st = asg.settings_of(s, cluster_id)
        groups = list(
            s.scalars(
                select(ClusterAsg)
                .where(ClusterAsg.cluster_id == cluster_id)
                .order_by(ClusterAsg.created_at)
            )
        )
        nodes = cluster_nodes(s, cluster_id)
        seen.update(n.id for n in nodes)
        pods = list(s.scalars(select(Pod).where(Pod.cluster_id == cluster_id)))
        gone = asg.removing(s, cluster_id)

        registered = [n for n in nodes if n.state == "Running"]
        unready = [n for n in registered if not n.is_normal]
        if len(unready) > st.ok_total_unready_count and len(
            unready
        ) * 100 > st.max_total_unready_percentage * len(registered):
            status_event(
                s,
                cluster_id,
                "ClusterUnhealthy",
                f"{len(unready)} of {len(registered)} nodes are unready: the autoscaler"
                " waits for the cluster to recover",
                "Warning",
            )
            return []

        members = {
            g.id: [n for n in nodes if n.autoscaling_group_id == g.id and n.id not in gone]
            for g in groups
        }
        enabled = [g for g in groups if g.status == "enabled"]
        for g in enabled:
            have = len(members[g.id])
            if have < g.min_size and not self._in_backoff(g.id):
                task_id = self._grow(s, cluster, st, g, have, g.min_size - have, [])
                if task_id is not None:
                    return [task_id]
        task_id = self._scale_up(s, cluster, st, groups, members, nodes, pods, gone)
        if task_id is not None:
            return [task_id]
        task_id = self._scale_down(s, cluster, st, enabled, members, nodes, pods, gone)
        return [task_id] if task_id is not None else []

    # -- scale-up ------------------------------------------------------------------------

    def _grow(
        self,
        s: Session,
        cluster: Cluster,
        st: AutoscalerSettings,
        group: ClusterAsg,
        have: int,
        count: int,
        pods: list[Pod],
    ) -> int | None:
        room = quota(s, cluster.account_id, "nodesPerCluster") - count_nodes(s, cluster.id)
        count = min(count, room)
        if count <= 0:
            for pod in pods:
                pod_event(
                    s,
                    pod,
                    "NotTriggerScaleUp",
                    "pod didn't trigger scale-up: max cluster size reached",
                )
            return None
        try:
            with s.begin_nested():
                task_id = asg.scale_out(s, self.settings, group, cluster, count)
        except ApiError as exc:
            self._backoff[group.id] = time.monotonic() + self.minutes(BACKOFF_MINUTES)
            status_event(
                s,
                cluster.id,
                "FailedToScaleUpGroup",
                f"Scale-up of group {group.id} failed: {exc.message}",
                "Warning",
            )
            return None
        size = have + count
        group.desired_capacity = size
        st.last_scale_up_at = utcnow()
        self._scale_ups[task_id] = group.id
        status_event(
            s,
            cluster.id,
            "ScaledUpGroup",
            f"Scale-up: setting group {group.id} size to {size} (max: {group.max_size})",
        )
        for pod in pods:
            pod_event(
                s,
                pod,
                "TriggeredScaleUp",
                f"pod triggered scale-up: [{{{group.id} {have}->{size} (max: {group.max_size})}}]",
            )
        log_event(log, "scale-up", cluster=cluster.id, group=group.id, size=size, task=task_id)
        return task_id

    def _scale_up(
        self,
        s: Session,
        cluster: Cluster,
        st: AutoscalerSettings,
        groups: list[ClusterAsg],
        members: dict[str, list[Instance]],
        nodes: list[Instance],
        pods: list[Pod],
        gone: set[str],
    ) -> int | None:
        pending = sorted(
            (
                p
                for p in pods
                if p.node_id is None
                and not p.deleting
                and p.status.get("reason") == "Unschedulable"
            ),
            key=lambda p: p.created_at,
        )
        if not pending:
            return None
        placed = [p for p in pods if p.node_id is not None and not p.deleting]
        there: list[sim.SimNode] = []
        for n in nodes:
            if n.id in gone:
                continue
            if n.state == "Running":
                there.append(sim.with_pods(n, [p for p in placed if p.node_id == n.id]))
            elif n.state == "Creating":
                there.append(sim.SimNode(sim.as_ready(n)))
        # Pods that fit on a machine there is, or one being made, are the scheduler's.
        left = sim.place_first_fit(pending, there)
        if not left:
            return None
        reasons: dict[int, Counter[str]] = {p.id: Counter() for p in left}
        options: list[sim.Option] = []
        for g in groups:
            if g.status != "enabled":
                for p in left:
                    reasons[p.id]["disabled node group"] += 1
                continue
            if self._in_backoff(g.id):
                for p in left:
                    reasons[p.id]["node group in back-off"] += 1
                continue
            option, why = sim.estimate(g, left, g.max_size - len(members[g.id]))
            helped = {p.id for p in option.pods} if option else set()
            for p in left:
                if p.id in why:
                    reasons[p.id][why[p.id]] += 1
                elif p.id not in helped:
                    reasons[p.id]["max node group size reached"] += 1
            if option is not None:
                options.append(option)
        task_id = None
        helped_any: set[int] = set()
        if options:
            best = sim.expand(options, st.expander, self.rng)
            helped_any = {p.id for o in options for p in o.pods}
            task_id = self._grow(
                s, cluster, st, best.group, len(members[best.group.id]), best.count, best.pods
            )
        for p in left:
            if p.id in helped_any:
                continue
            counts = reasons[p.id]
            fits_nowhere = any(r not in _NOT_FITTING for r in counts)
            head = "pod didn't trigger scale-up"
            if fits_nowhere:
                head += " (it wouldn't fit if a new node is added)"
            detail = sim.describe_reasons(dict(counts)) or "no node group"
            pod_event(s, p, "NotTriggerScaleUp", f"{head}: {detail}")
        return task_id

    # -- scale-down ----------------------------------------------------------------------

    def _scale_down(
        self,
        s: Session,
        cluster: Cluster,
        st: AutoscalerSettings,
        enabled: list[ClusterAsg],
        members: dict[str, list[Instance]],
        nodes: list[Instance],
        pods: list[Pod],
        gone: set[str],
    ) -> int | None:
        by_id = {g.id: g for g in enabled}
        candidates = [
            n
            for n in nodes
            if n.autoscaling_group_id in by_id and n.id not in gone and n.task_id is None
        ]
        if gone:
            return None  # one scale-down at a time
        # A group above its maximum sheds machines whatever their use.
        here = {n.id: [p for p in pods if p.node_id == n.id and not p.deleting] for n in nodes}
        for g in enabled:
            excess = len(members[g.id]) - g.max_size
            if excess > 0:
                settled = [n for n in members[g.id] if n.task_id is None]
                order = sorted(settled, key=lambda n: (n.state == "Running", len(here[n.id])))
                if order:
                    return self._shrink(s, cluster, st, order[:excess], here, "above maxSize")
        if not st.scale_down_enabled:
            self._unneeded.clear()
            return None
        if asg.since(st.last_scale_up_at) < self.minutes(st.scale_down_delay):
            return None
        now = time.monotonic()
        ready = [
            n
            for n in nodes
            if n.state == "Running" and n.is_normal and not n.unschedulable and n.id not in gone
        ]
        unneeded: list[Instance] = []
        broken: list[Instance] = []
        for n in candidates:
            if n.state != "Running":
                first = self._unregistered.setdefault(n.id, now)
                if now - first >= self.minutes(st.unregistered_node_removal_time):
                    broken.append(n)
                continue
            self._unregistered.pop(n.id, None)
            if not n.is_normal:
                first = self._unready.setdefault(n.id, now)
                if now - first >= self.minutes(st.scale_down_unready_time):
                    broken.append(n)
                continue
            self._unready.pop(n.id, None)
            if not self._removable(n, here[n.id], st, ready, here):
                self._unneeded.pop(n.id, None)
                continue
            first = self._unneeded.setdefault(n.id, now)
            if now - first >= self.minutes(st.scale_down_unneeded_time):
                unneeded.append(n)
        left = {g.id: len(members[g.id]) for g in enabled}

        def allowed(n: Instance) -> bool:
            g = by_id[n.autoscaling_group_id]
            if left[g.id] - 1 < g.min_size:
                return False
            left[g.id] -= 1
            return True

        victims = [n for n in broken if allowed(n)]
        if victims:
            return self._shrink(
                s, cluster, st, victims, here, "unready or unregistered", drain=False
            )
        empty: list[Instance] = []
        for n in unneeded:
            if len(empty) >= st.max_empty_bulk_delete:
                break
            if not here[n.id] and allowed(n):
                empty.append(n)
        if empty:
            return self._shrink(s, cluster, st, empty, here, "empty")
        for n in unneeded:
            if here[n.id] and allowed(n):
                return self._shrink(s, cluster, st, [n], here, "underutilized")
        return None

    def _removable(
        self,
        node: Instance,
        pods: list[Pod],
        st: AutoscalerSettings,
        ready: list[Instance],
        here: dict[str, list[Pod]],
    ) -> bool:
        if sim.utilization(node, pods) >= st.scale_down_utilization_threshold:
            return False
        skip_system, skip_local = st.skip_nodes_with_system_pods, st.skip_nodes_with_local_storage
        if any(sim.blocker(p, skip_system, skip_local) for p in pods):
            return False
        others = [sim.with_pods(m, here[m.id]) for m in ready if m.id != node.id]
        return sim.fits_elsewhere(pods, others)

    def _shrink(
        self,
        s: Session,
        cluster: Cluster,
        st: AutoscalerSettings,
        victims: list[Instance],
        here: dict[str, list[Pod]],
        why: str,
        drain: bool = True,
    ) -> int:
        task_id = asg.scale_in(s, cluster, [n.id for n in victims], drain, why)
        for n in victims:
            group = s.get(ClusterAsg, n.autoscaling_group_id)
            if group is not None:
                group.desired_capacity = max(0, group.desired_capacity - 1)
            pods = here.get(n.id, [])
            util = sim.utilization(n, pods)
            if pods:
                names = ",".join(p.name for p in pods)
                status_event(
                    s,
                    cluster.id,
                    "ScaleDown",
                    f"Scale-down: removing node {n.lan_ip} ({n.id}, {why}), "
                    f"utilization: {util:.0f}%, pods to reschedule: {names}",
                )
            else:
                status_event(
                    s,
                    cluster.id,
                    "ScaleDownEmpty",
                    f"Scale-down: removing empty node {n.lan_ip} ({n.id}, {why})",
                )
            record_event(
                s,
                cluster.id,
                NODE_NAMESPACE,
                "",
                "Node",
                n.lan_ip,
                "ScaleDown",
                "node removed by cluster autoscaler",
            )
            self._unneeded.pop(n.id, None)
            self._unready.pop(n.id, None)
            self._unregistered.pop(n.id, None)
        st.last_scale_down_at = utcnow()
        log_event(
            log,
            "scale-down",
            cluster=cluster.id,
            nodes=",".join(n.id for n in victims),
            reason=why,
            task=task_id,
        )
        return task_id
