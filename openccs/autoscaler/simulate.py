"""What-if placement for the autoscaler, with the scheduler's own predicates: would pending
pods fit on the machines there are (and those being made), how many machines of a group's
template would host them (cluster-autoscaler's binpacking estimator), which option the
expander picks, and whether a machine's pods would fit elsewhere if it went away."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from openccs.autoscaler.models import ClusterAsg
from openccs.domain.clusters import INSTANCE_TYPE_LABEL
from openccs.engine.scheduler import _unfit as unfit  # the scheduler's own predicates
from openccs.engine.scheduler import allocatable, requests_of
from openccs.store.models import Instance, Pod

SYSTEM_NAMESPACE = "kube-system"


@dataclass
class SimNode:
    """A machine in a simulation: what it is, and the pods placed on it so far."""

    node: Instance
    used: list[int] = field(default_factory=lambda: [0, 0])
    labels_here: list[dict[str, str]] = field(default_factory=list)
    pods: int = 0

    def why_not(self, pod: Pod) -> str:
        cpu, mem = requests_of(pod.template)
        return unfit(self.node, pod, cpu, mem, self.used, self.labels_here)

    def place(self, pod: Pod) -> None:
        cpu, mem = requests_of(pod.template)
        self.used[0] += cpu
        self.used[1] += mem
        self.labels_here.append(pod.template.get("labels") or {})
        self.pods += 1

    def try_place(self, pod: Pod) -> bool:
        if self.why_not(pod):
            return False
        self.place(pod)
        return True


def as_ready(node: Instance) -> Instance:
    """A detached copy of a machine that is still being made, as it will be once up."""
    return Instance(
        id=node.id,
        cpu=node.cpu,
        mem=node.mem,
        labels=dict(node.labels),
        is_normal=True,
        unschedulable=False,
        lan_ip=node.lan_ip,
    )


def template_node(group: ClusterAsg) -> Instance:
    """The machine a group would add, as the scheduler would see it."""
    launch = group.launch
    return Instance(
        id=f"template-{group.id}",
        cpu=int(launch["cpu"]),
        mem=int(launch["mem"]),
        labels={INSTANCE_TYPE_LABEL: launch["instance_type"], **group.labels},
        is_normal=True,
        unschedulable=False,
        lan_ip="",
    )


def with_pods(node: Instance, pods: Iterable[Pod]) -> SimNode:
    sim = SimNode(node)
    for p in pods:
        sim.place(p)
    return sim


def place_first_fit(pods: list[Pod], nodes: list[SimNode]) -> list[Pod]:
    """Place what fits (first fit, in the given order); the pods left over."""
    left = []
    for pod in pods:
        if not any(n.try_place(pod) for n in nodes):
            left.append(pod)
    return left


def _size(pod: Pod, template: Instance) -> float:
    cpu, mem = requests_of(pod.template)
    cap_cpu, cap_mem = allocatable(template)
    return cpu / max(1, cap_cpu) + mem / max(1, cap_mem)


@dataclass
class Option:
    """Adding `count` machines to `group` would host `pods`."""

    group: ClusterAsg
    count: int
    pods: list[Pod]
    template: Instance

    def waste(self) -> float:
        """cluster-autoscaler's least-waste score: idle share of CPU plus of memory."""
        cap_cpu, cap_mem = allocatable(self.template)
        cpu = sum(requests_of(p.template)[0] for p in self.pods)
        mem = sum(requests_of(p.template)[1] for p in self.pods)
        total_cpu, total_mem = cap_cpu * self.count, cap_mem * self.count
        return (total_cpu - cpu) / max(1, total_cpu) + (total_mem - mem) / max(1, total_mem)


def estimate(group: ClusterAsg, pods: list[Pod], room: int) -> tuple[Option | None, dict[int, str]]:
    """Binpack the pods on new machines of the group (largest first, first fit), at most
    `room` of them; the option, and why each pod that fits no new machine does not."""
    template = template_node(group)
    why: dict[int, str] = {}
    fitting = []
    for pod in pods:
        reason = SimNode(template).why_not(pod)
        # Pod affinity can still be met on a new machine by a pending pod placed with it.
        if reason and "pod affinity" not in reason:
            why[pod.id] = reason
        else:
            fitting.append(pod)
    fitting.sort(key=lambda p: -_size(p, template))
    new: list[SimNode] = []
    placed: list[Pod] = []
    for pod in fitting:
        if any(n.try_place(pod) for n in new):
            placed.append(pod)
            continue
        if len(new) >= room:
            continue
        fresh = SimNode(template)
        if fresh.try_place(pod):
            new.append(fresh)
            placed.append(pod)
        else:
            why[pod.id] = fresh.why_not(pod)
    if not new:
        return None, why
    return Option(group, len(new), placed, template), why


def expand(options: list[Option], expander: str, rng: random.Random | None = None) -> Option:
    """The option the expander picks (ties at random, as cluster-autoscaler)."""
    rng = rng or random.Random()
    if expander == "most-pods":
        best = max(len(o.pods) for o in options)
        options = [o for o in options if len(o.pods) == best]
    elif expander == "least-waste":
        low = min(o.waste() for o in options)
        options = [o for o in options if o.waste() <= low + 1e-9]
    return rng.choice(options)


def utilization(node: Instance, pods: list[Pod]) -> float:
    """The larger of the node's requested CPU and memory shares, in percent."""
    cpu = sum(requests_of(p.template)[0] for p in pods)
    mem = sum(requests_of(p.template)[1] for p in pods)
    cap_cpu, cap_mem = allocatable(node)
    return 100.0 * max(cpu / max(1, cap_cpu), mem / max(1, cap_mem))


def has_local_storage(pod: Pod) -> bool:
    return bool(pod.template.get("volumes"))


def blocker(pod: Pod, skip_system: bool, skip_local: bool) -> str:
    """Why this pod keeps its machine (cluster-autoscaler's drain rules), or ""."""
    if pod.service_id is None:
        return f"pod {pod.namespace}/{pod.name} is not replicated"
    if skip_system and pod.namespace == SYSTEM_NAMESPACE:
        return f"non-daemonset, non-mirror kube-system pod present: {pod.name}"
    if skip_local and has_local_storage(pod):
        return f"pod with local storage present: {pod.name}"
    return ""


def fits_elsewhere(pods: list[Pod], others: list[SimNode]) -> bool:
    """Would every pod find a place on the other machines (which keep the placement)?"""
    order = sorted(pods, key=lambda p: -sum(requests_of(p.template)))
    return not place_first_fit(order, others)


def describe_reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in sorted(counts.items()))


def copy_sims(sims: list[SimNode]) -> list[SimNode]:
    return [SimNode(s.node, list(s.used), list(s.labels_here), s.pods) for s in sims]
