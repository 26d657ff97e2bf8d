"""The autoscaler's what-if placement, on the scheduler's own predicates: binpacking on a
group's template machine, the expanders, utilization and what keeps a machine."""

from __future__ import annotations

import random
from typing import Any

from openccs.autoscaler import simulate as sim
from openccs.autoscaler.models import ClusterAsg
from openccs.store.models import Instance, Pod

_ids = iter(range(1, 10_000))


def group(cpu: int, mem: int, labels: dict[str, str] | None = None, gid: str = "asg-a") -> Any:
    return ClusterAsg(
        id=gid,
        labels=labels or {},
        launch={"cpu": cpu, "mem": mem, "instance_type": f"S2.X{cpu}"},
    )


def pod(cpu: int = 0, mem: int = 0, namespace: str = "default", **template: Any) -> Pod:
    containers = [{"cpu": cpu, "memory": mem}]
    return Pod(
        id=next(_ids),
        name=f"p{next(_ids)}",
        namespace=namespace,
        service_id=1,
        template={"containers": containers, **template},
    )


def node(cpu: int, mem: int, **labels: str) -> Instance:
    return Instance(id=f"ins-{next(_ids)}", cpu=cpu, mem=mem, labels=labels, is_normal=True,
                    unschedulable=False, lan_ip="10.0.0.9")  # fmt: skip


def test_binpacking_counts_the_machines_a_group_needs() -> None:
    # 2-core machines keep 100 m for themselves: two 900 m pods per machine.
    pods = [pod(900, 64) for _ in range(5)]
    option, why = sim.estimate(group(2, 2), pods, room=10)
    assert option is not None and option.count == 3 and len(option.pods) == 5 and not why
    capped, _ = sim.estimate(group(2, 2), pods, room=1)
    assert capped is not None and capped.count == 1 and len(capped.pods) == 2


def test_pods_no_template_can_host_say_why() -> None:
    big = pod(5000, 64)
    picky = pod(100, 64, nodeAffinity=[{"key": "gpu", "operator": "In", "values": ["yes"]}])
    option, why = sim.estimate(group(2, 2), [big, picky], room=3)
    assert option is None
    assert why == {big.id: "Insufficient cpu", picky.id: "node(s) didn't match node selector"}
    # A group with the label hosts the picky pod.
    option, why = sim.estimate(group(2, 2, {"gpu": "yes"}), [picky], room=3)
    assert option is not None and option.count == 1 and not why


def test_pod_affinity_to_a_pending_pod_is_met_on_the_same_new_machine() -> None:
    leader = pod(200, 64, labels={"app": "db"})
    follower = pod(100, 64, podAffinity=[{"key": "app", "operator": "In", "values": ["db"]}])
    option, _ = sim.estimate(group(2, 2), [leader, follower], room=2)
    assert option is not None and option.count == 1 and len(option.pods) == 2


def test_expanders() -> None:
    pods = [pod(900, 64) for _ in range(4)]
    small, _ = sim.estimate(group(1, 1, gid="asg-small"), pods, room=1)
    large, _ = sim.estimate(group(4, 8, gid="asg-large"), pods, room=1)
    assert small is not None and large is not None
    assert sim.expand([small, large], "most-pods").group.id == "asg-large"
    # One 900 m pod on a 1-core machine wastes less than four on a 4-core one with 8 GiB.
    assert sim.expand([small, large], "least-waste").group.id == "asg-small"
    picks = {sim.expand([small, large], "random", random.Random(i)).group.id for i in range(20)}
    assert picks == {"asg-small", "asg-large"}


def test_utilization_and_what_keeps_a_machine() -> None:
    n = node(2, 2)
    assert round(sim.utilization(n, [pod(950, 0)])) == 50
    assert round(sim.utilization(n, [pod(0, 1536)])) == 80
    system = pod(100, 0, namespace="kube-system")
    local = pod(100, 0, volumes=[{"name": "v", "volumeType": "hostPath", "hostPath": ""}])
    bare = pod(100, 0)
    bare.service_id = None
    assert "kube-system" in sim.blocker(system, skip_system=True, skip_local=True)
    assert sim.blocker(system, skip_system=False, skip_local=True) == ""
    assert "local storage" in sim.blocker(local, skip_system=True, skip_local=True)
    assert sim.blocker(local, skip_system=True, skip_local=False) == ""
    assert "not replicated" in sim.blocker(bare, skip_system=False, skip_local=False)


def test_pods_fit_elsewhere_only_with_room() -> None:
    other = sim.with_pods(node(2, 2), [pod(1000, 0)])
    assert sim.fits_elsewhere([pod(800, 0)], sim.copy_sims([other]))
    assert not sim.fits_elsewhere([pod(800, 0), pod(800, 0)], sim.copy_sims([other]))
