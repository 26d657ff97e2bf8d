"""The autoscaling backend's rules on a real database without machines: what a group may be
made from and become, what deleting one leaves to a task, what the describers count, and
the effects each change declares. The end-to-end tests (test_asg.py) prove the same through
the v2 actions with real machines; the autoscaler's own choices are in test_controllers.py."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from openccs.autoscaler.domain import DELETE, SCALE_IN
from openccs.autoscaler.models import AutoscalerSettings, ClusterAsg
from openccs.backends import Work
from openccs.backends import autoscaling as backend
from openccs.backends.autoscaling import NewGroup, RangeChange, ScaleDown
from openccs.domain import accounts
from openccs.errors import ApiError
from openccs.server import Services
from openccs.store.models import Cluster, Instance, Task
from openccs.tasks.runner import create_task
from tests.conftest import UNIT_CLUSTER as CLUSTER
from tests.conftest import UNIT_SUBNET

_ips = itertools.count(10)


def _node(s: Session, account: int, name: str, **extra: Any) -> Instance:
    fields: dict[str, Any] = {
        "id": f"ins-{name}",
        "account_id": account,
        "vpc_id": "vpc-unit0001",
        "subnet_id": UNIT_SUBNET,
        "zone": "ap-guangzhou-3",
        "lan_ip": f"10.0.1.{next(_ips)}",
        "cluster_id": CLUSTER,
        "instance_type": "S2.MEDIUM4",
        "cpu": 2,
        "mem": 4,
        "state": "Running",
        "is_normal": True,
        "password_hash": "node-hash",
        "settings": {"adopted": True, "dockerGraphPath": "/d"},
    }
    node = Instance(**{**fields, **extra})
    s.add(node)
    s.flush()
    return node


def _refused(call: Callable[[], object], code: int, where: str) -> None:
    with pytest.raises(ApiError) as err:
        call()
    assert err.value.code == code and where in err.value.message, err.value.message


def test_a_group_is_made_like_its_model_node_and_wakes_the_autoscaler(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        _node(s, account, "model")
        group = backend.create_group(w, CLUSTER, NewGroup("ins-model", 1, 3, {"tier": "web"}))
        assert w.effects.wake_autoscaler and not w.effects.tasks
        assert group.name.startswith(f"{CLUSTER}-g") and group.launch_config_name.startswith(
            f"{CLUSTER}-c"
        )
        assert (group.status, group.desired_capacity, group.labels) == (
            "enabled",
            1,
            {"tier": "web"},
        )
        launch = group.launch
        assert (launch["instance_type"], launch["password_hash"]) == ("S2.MEDIUM4", "node-hash")
        assert launch["settings"] == {"dockerGraphPath": "/d"}  # "adopted" is the node's own
        assert s.get(AutoscalerSettings, CLUSTER) is not None
        # A login of its own; names unique in the account.
        keyed = backend.create_group(w, CLUSTER, NewGroup("ins-model", 0, 1, name="keyed",
                                     key_id="skey-abcd1234"))  # fmt: skip
        assert (keyed.launch["password_hash"], keyed.launch["key_id"]) == ("", "skey-abcd1234")
        _refused(lambda: backend.create_group(w, CLUSTER, NewGroup("ins-model", 0, 1,
                 name="keyed")), 4000, "autoScalingGroupName")  # fmt: skip
        taken = NewGroup("ins-model", 0, 1, launch_name=keyed.launch_config_name)
        _refused(lambda: backend.create_group(w, CLUSTER, taken), 4000, "launchConfigurationName")
        _refused(lambda: backend.create_group(w, CLUSTER, NewGroup("ins-model", 2, 1)), 4000,
                 "minSize")  # fmt: skip
        _refused(lambda: backend.create_group(w, CLUSTER, NewGroup("ins-model", 0, 1,
                 password="Passw0rd!", key_id="skey-abcd1234")), 4000, "keyId")  # fmt: skip
        _refused(lambda: backend.create_group(w, CLUSTER, NewGroup("ins-nothere", 0, 1)), 5000,
                 "ins-nothere")  # fmt: skip
        cluster = s.get(Cluster, CLUSTER)
        assert cluster is not None
        cluster.status = "Creating"
        _refused(lambda: backend.create_group(w, CLUSTER, NewGroup("ins-model", 0, 1)), 5100,
                 "Creating")  # fmt: skip
        assert len(backend.groups(w, None, None, None, lambda _: True)) == 2


def test_range_labels_and_status_change_only_the_callers_groups(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        _node(s, account, "model")
        gid = backend.create_group(w, CLUSTER, NewGroup("ins-model", 2, 4, {"a": "1"})).id
        group = s.get(ClusterAsg, gid)
        assert group is not None
        w.effects.wake_autoscaler = False
        # The desired capacity stays within the range; a bad range names the side given.
        backend.set_range(w, CLUSTER, gid, RangeChange(max_size=1, min_size=0))
        assert (group.min_size, group.max_size, group.desired_capacity) == (0, 1, 1)
        assert w.effects.wake_autoscaler
        _refused(lambda: backend.set_range(w, CLUSTER, gid, RangeChange(min_size=3)), 4000,
                 "minSize")  # fmt: skip
        _refused(lambda: backend.set_range(w, CLUSTER, gid, RangeChange(max_size=-1)), 4000,
                 "maxSize")  # fmt: skip
        assert (group.min_size, group.max_size, group.labels) == (0, 1, {"a": "1"})
        backend.add_labels(w, CLUSTER, gid, {"b": "2"})
        backend.set_range(w, CLUSTER, gid, RangeChange(labels={"c": "3", "d": "4"}))
        assert group.labels == {"c": "3", "d": "4"}
        backend.delete_labels(w, CLUSTER, gid, ["c", "absent"])
        backend.add_labels(w, CLUSTER, gid, {"d": "5"})
        assert group.labels == {"d": "5"}
        backend.reset_labels(w, CLUSTER, gid, {})
        assert group.labels == {}
        backend.set_enabled(w, CLUSTER, [gid], False)
        assert group.status == "disabled"
        _refused(lambda: backend.set_enabled(w, CLUSTER, [gid, gid], True), 4000,
                 "autoScalingGroupIds")  # fmt: skip
        _refused(lambda: backend.set_enabled(w, CLUSTER, [gid, "asg-nothere"], True), 5000,
                 "autoScalingGroupIds.1")  # fmt: skip
        assert group.status == "disabled"
        # Another account's work sees neither the cluster nor the group.
        stranger = Work(s, accounts.create_account(s).id, services)
        _refused(lambda: backend.add_labels(stranger, CLUSTER, gid, {"x": "1"}), 5000, CLUSTER)
        assert backend.groups(stranger, None, gid, None, lambda _: True) == []
        # The caller's listing: by status, and only clusters it may see.
        assert [g.id for g in backend.groups(w, CLUSTER, None, "disabled", lambda _: True)] == [gid]
        assert backend.groups(w, CLUSTER, None, "enabled", lambda _: True) == []
        assert backend.groups(w, None, None, None, lambda c: c != CLUSTER) == []


def test_deleting_groups_leaves_their_machines_to_a_task_each(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        _node(s, account, "model")
        one = backend.create_group(w, CLUSTER, NewGroup("ins-model", 0, 3)).id
        two = backend.create_group(w, CLUSTER, NewGroup("ins-model", 0, 3)).id
        running = _node(s, account, "g1", autoscaling_group_id=one)
        going = _node(s, account, "g22", autoscaling_group_id=one)
        creating = _node(s, account, "g333", autoscaling_group_id=one, state="Creating")
        # A running scale-in task removes `going`: the describers no longer count it.
        create_task(s, account, SCALE_IN, {"instanceIds": [going.id]}, CLUSTER)
        found = backend.groups(w, CLUSTER, None, None, lambda _: True)
        states = {st.group.id: st for st in backend.group_states(w, found)}
        assert (states[one].instance_num, states[two].instance_num) == (2, 0)
        assert not states[one].scale_down_enabled
        _refused(lambda: backend.delete_groups(w, CLUSTER, [one, "asg-nothere"]), 5000,
                 "asg-nothere")  # fmt: skip
        assert not w.effects.tasks and s.get(ClusterAsg, one) is not None
        ids = backend.delete_groups(w, CLUSTER, [one, two])
        assert ids == w.effects.tasks and len(ids) == 2
        tasks = [s.get(Task, i) for i in ids]
        assert [(t.type, t.params) for t in tasks if t] == [
            (DELETE, {"clusterId": CLUSTER, "asgId": one}),
            (DELETE, {"clusterId": CLUSTER, "asgId": two}),
        ]
        assert backend.groups(w, CLUSTER, None, None, lambda _: True) == []
        # Running machines are cordoned at once; one still being made is left to the task.
        assert (running.unschedulable, running.drain_status) == (True, "draining")
        assert (creating.unschedulable, creating.drain_status) == (False, "")


def test_scale_down_settings_change_what_is_given(services: Services, account: int) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        backend.set_scale_down(w, CLUSTER, ScaleDown(True, expander="most-pods",
                               scale_down_delay=0, skip_nodes_with_system_pods=False))  # fmt: skip
        st = s.get(AutoscalerSettings, CLUSTER)
        assert st is not None and w.effects.wake_autoscaler
        unneeded = st.scale_down_unneeded_time
        assert (st.scale_down_enabled, st.expander, st.scale_down_delay) == (True, "most-pods", 0)
        assert st.skip_nodes_with_system_pods is False
        backend.set_scale_down(w, CLUSTER, ScaleDown(False))
        assert (st.scale_down_enabled, st.expander, st.scale_down_delay) == (False, "most-pods", 0)
        assert st.scale_down_unneeded_time == unneeded
        _refused(lambda: backend.set_scale_down(w, "cls-nothere", ScaleDown(True)), 5000,
                 "cls-nothere")  # fmt: skip
