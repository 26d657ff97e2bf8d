"""Autoscaling groups on real machines: pods that fit nowhere get machines from a group
(with its labels), idle machines go back down to the minimum, a disabled group and pods no
group can host change nothing, the minimum is kept, deleting a group keeps pods that fit
elsewhere (even across a kill -9 of the server); and bad input that changes nothing.

The server runs with one autoscaler minute = 1 s and a pass every second, so the document's
minute-valued parameters are seconds here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from openccs.client import Client

from .conftest import Server, unique_cluster_cidr
from .workload_helpers import BUSYBOX, Svc, create, make_cluster, until

pytestmark = pytest.mark.xdist_group("asg")

Env = tuple[Server, Client, str, str]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("asg")
    srv = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=("--health-interval", "1", "--asg-minute-seconds", "1",
                    "--asg-scan-interval", "1"),
    )  # fmt: skip
    try:
        srv.start()
        cluster = make_cluster(srv, machines=1)
        c = srv.client()
        (model,) = nodes(c, cluster)
        yield srv, c, cluster, model["instanceId"]
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


def ok(res: dict[str, Any]) -> dict[str, Any]:
    assert res["code"] == 0, res
    return dict(res.get("data") or {})


def refused(res: dict[str, Any], code: int, name: str) -> None:
    assert res["code"] == code and name in res["message"], res


def nodes(c: Client, cluster: str) -> list[dict[str, Any]]:
    return list(ok(c.call("DescribeClusterInstances", {"clusterId": cluster}))["nodes"])


def groups(c: Client, cluster: str, **kw: Any) -> dict[str, Any]:
    return ok(c.call("DescribeClusterAsg", {"clusterId": cluster, **kw}))


def group(c: Client, cluster: str, gid: str) -> dict[str, Any]:
    (g,) = groups(c, cluster, autoScalingGroupId=gid)["asgInfo"]
    return dict(g)


def labels(g: dict[str, Any]) -> dict[str, str]:
    return {x["key"]: x["value"] for x in g["label"]}


def sleeper(name: str, replicas: int, cpu: int, **extra: Any) -> dict[str, Any]:
    return {
        "serviceName": name,
        "replicas": replicas,
        "accessType": "None",
        "containers": [{"containerName": "s", "image": BUSYBOX, "command": "sleep",
                        "arguments": ["100000"], "cpu": cpu, "memory": 64}],
        **extra,
    }  # fmt: skip


def event(svc: Svc, reason: str, *words: str) -> dict[str, Any] | None:
    for e in svc.events():
        if e["reason"] == reason and all(w in e["message"] for w in words):
            return e
    return None


def delete_service(c: Client, svc: Svc) -> None:
    svc.call("DeleteClusterService")
    until(f"{svc.name} deleted", lambda: not [
        s for s in ok(c.call("DescribeClusterService", {"clusterId": svc.cluster}))["services"]
        if s["serviceName"] == svc.name])  # fmt: skip


def test_bad_input_changes_nothing_and_groups_are_described(env: Env) -> None:
    srv, c, cluster, model = env
    base = {"clusterId": cluster, "instanceId": model, "minSize": 0, "maxSize": 2}
    refused(c.call("CreateClusterAsg", {**base, "minSize": 3, "maxSize": 1}), 4000, "minSize")
    refused(c.call("CreateClusterAsg", {**base, "minSize": -1}), 4000, "minSize")
    refused(c.call("CreateClusterAsg", {**base, "maxSize": 201}), 4000, "maxSize")
    refused(c.call("CreateClusterAsg", {**base, "maxSize": "many"}), 4000, "maxSize")
    refused(c.call("CreateClusterAsg", {**base, "instanceId": None}), 4000, "instanceId")
    refused(c.call("CreateClusterAsg", {**base, "instanceId": "ins-nothere"}), 5000, "ins-nothere")
    refused(c.call("CreateClusterAsg", {**base, "clusterId": "cls-nothere"}), 5000, "cls-nothere")
    refused(c.call("CreateClusterAsg", {**base, "password": "Passw0rd!", "keyId": "skey-abcd1234"}),
            4000, "keyId")  # fmt: skip
    refused(c.call("CreateClusterAsg", {**base, "password": "short"}), 4000, "password")
    refused(c.call("CreateClusterAsg", {**base, "label": {"bad key": "x"}}), 4000, "label")
    refused(c.call("CreateClusterAsg", {**base, "label": {"k": "bad value"}}), 4000, "label")
    assert groups(c, cluster)["totalCount"] == 0

    # Both label encodings of the document; names given or generated.
    first = ok(c.call("CreateClusterAsg", {**base, "autoScalingGroupName": "first",
               "label": [{"key": "a", "value": "1"}]}))  # fmt: skip
    second = ok(c.call("CreateClusterAsg", {**base, "label": {"app.example.com/tier": "web"}}))
    g1, g2 = first["autoScalingGroupId"], second["autoScalingGroupId"]
    assert g1.startswith("asg-") and first["launchConfigurationId"].startswith("asc-")
    assert second["autoScalingGroupName"].startswith(f"{cluster}-g")
    assert second["launchConfigurationName"].startswith(f"{cluster}-c")
    refused(c.call("CreateClusterAsg", {**base, "autoScalingGroupName": "first"}), 4000,
            "autoScalingGroupName")  # fmt: skip
    info = group(c, cluster, g1)
    assert info == {**info, "autoScalingGroupName": "first", "clusterId": cluster,
                    "status": "enabled", "scaleDownEnabled": False, "minSize": 0, "maxSize": 2,
                    "instanceNum": 0, "desiredCapacity": 0}  # fmt: skip
    assert labels(info) == {"a": "1"}
    assert labels(group(c, cluster, g2)) == {"app.example.com/tier": "web"}
    listed = groups(c, cluster, offset=1, limit=1)
    assert listed["totalCount"] == 2 and [g["autoScalingGroupId"] for g in listed["asgInfo"]] == [
        g2
    ]

    # Another cluster (empty) does not own these groups.
    vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    other = ok(c.call("CreateEmptyCluster", {"clusterName": "other", "vpcId": vpc,
               "clusterCIDR": unique_cluster_cidr()}))["clusterId"]  # fmt: skip
    until("empty cluster running", lambda: ok(c.call("DescribeCluster", {"clusterIds": [other]}))
          ["clusters"][0]["status"] == "Running")  # fmt: skip
    refused(c.call("EnableClusterAsg", {"clusterId": other, "autoScalingGroupIds": [g1]}), 5000, g1)
    refused(c.call("ModifyClusterAsgRange", {"clusterId": other, "autoScalingGroupId": g1,
            "maxSize": 3}), 5000, g1)  # fmt: skip
    refused(c.call("DeleteClusterAsg", {"clusterId": other, "autoScalingGroupIds": [g1]}), 5000, g1)
    assert groups(c, other)["totalCount"] == 0
    refused(c.call("CreateClusterAsg", {**base, "clusterId": other}), 5000, model)
    # Another account sees nothing.
    stranger = srv.client(srv.new_account())
    refused(stranger.call("DescribeClusterAsg", {"clusterId": cluster}), 5000, cluster)
    assert ok(stranger.call("DescribeClusterAsg"))["totalCount"] == 0

    ids = {"clusterId": cluster, "autoScalingGroupIds": [g1, "asg-nothere"]}
    refused(c.call("DisableClusterAsg", ids), 5000, "autoScalingGroupIds.1")
    refused(c.call("DisableClusterAsg", {"clusterId": cluster}), 4000, "autoScalingGroupIds")
    refused(c.call("DisableClusterAsg", {"clusterId": cluster, "autoScalingGroupIds": [g1, g1]}),
            4000, "autoScalingGroupIds")  # fmt: skip
    ref = {"clusterId": cluster, "autoScalingGroupId": g1}
    refused(c.call("ModifyClusterAsgRange", {**ref, "minSize": 5}), 4000, "minSize")
    refused(c.call("ModifyClusterAsgRange", {**ref, "maxSize": -2}), 4000, "maxSize")
    refused(c.call("ModifyClusterAsgRange", {**ref, "autoScalingGroupId": "asg-nothere"}), 5000,
            "asg-nothere")  # fmt: skip
    refused(c.call("DeleteClusterAsgLabel", ref), 4000, "labelKeys")
    refused(c.call("ModifyClusterAsgLabel", {**ref, "label": {"-x": "1"}}), 4000, "label")
    sd = {"clusterId": cluster, "scaleDownEnabled": 1}
    refused(c.call("ModifyClusterAsgScaleDown", {"clusterId": cluster}), 4000, "scaleDownEnabled")
    refused(c.call("ModifyClusterAsgScaleDown", {**sd, "scaleDownEnabled": "yes"}), 4000,
            "scaleDownEnabled")  # fmt: skip
    for name, bad in [("expander", "fastest"), ("expander", "7"), ("maxEmptyBulkDelete", 0),
                      ("maxTotalUnreadyPercentage", 101), ("okTotalUnreadyCount", -1),
                      ("scaleDownDelay", -1), ("scaleDownUnneededTime", "ten"),
                      ("scaleDownUnreadyTime", 1441), ("skipNodesWithLocalStorage", 2),
                      ("skipNodesWithSystemPods", -1), ("unregisteredNodeRemovalTime", -5),
                      ("scaleDownUtilizationThreshold", 101)]:  # fmt: skip
        refused(c.call("ModifyClusterAsgScaleDown", {**sd, name: bad}), 4000, name)
    refused(c.call("DescribeClusterAsg", {"status": "running"}), 4000, "status")
    refused(c.call("DescribeClusterAsg", {"limit": 0}), 4000, "limit")
    info = group(c, cluster, g1)
    assert (info["status"], info["minSize"], info["maxSize"], info["scaleDownEnabled"]) == (
        "enabled", 0, 2, False)  # fmt: skip
    assert labels(info) == {"a": "1"}

    # Labels: merge, reset, delete, and the range's reset; the document's lower-case name.
    ok(c.call("ModifyClusterAsgLabel", {**ref, "label": {"b": "2"}}))
    assert labels(group(c, cluster, g1)) == {"a": "1", "b": "2"}
    ok(c.call("ResetClusterAsgLabel", {**ref, "label": {"c": "3", "d": "4"}}))
    assert labels(group(c, cluster, g1)) == {"c": "3", "d": "4"}
    ok(c.call("DeleteClusterAsgLabel", {**ref, "labelKeys": ["c", "absent"]}))
    assert labels(group(c, cluster, g1)) == {"d": "4"}
    ok(c.call("ModifyClusterAsgRange", {**ref, "minSize": 0, "maxSize": 1, "label": {"e": "5"}}))
    info = group(c, cluster, g1)
    assert (info["maxSize"], labels(info)) == (1, {"e": "5"})
    ok(c.call("DisableClusterAsg", {"clusterId": cluster, "autoScalingGroupIds": [g1, g2]}))
    assert groups(c, cluster, status="disabled")["totalCount"] == 2
    ok(c.call("enableClusterAsg", {"clusterId": cluster, "autoScalingGroupIds": [g2]}))
    assert [g["autoScalingGroupId"] for g in groups(c, cluster, status="enabled")["asgInfo"]] == [
        g2
    ]
    ok(c.call("ModifyClusterAsgScaleDown", {**sd, "expander": "1", "scaleDownDelay": 0}))
    assert group(c, cluster, g1)["scaleDownEnabled"] is True
    ok(c.call("ModifyClusterAsgScaleDown", {"clusterId": cluster, "scaleDownEnabled": 0}))
    gone = ok(c.call("DeleteClusterAsg", {"clusterId": cluster, "autoScalingGroupIds": [g1, g2]}))
    for rid in gone["requestIds"]:
        assert srv.wait_task(rid)["status"] == "succ"
    assert groups(c, cluster)["totalCount"] == 0 and len(nodes(c, cluster)) == 1
    ok(c.call("DeleteCluster", {"clusterId": other}))


def test_pods_that_fit_nowhere_get_machines_which_go_when_idle(env: Env) -> None:
    srv, c, cluster, model = env
    gid = ok(c.call("CreateClusterAsg", {"clusterId": cluster, "instanceId": model, "minSize": 0,
             "maxSize": 3, "label.role": "burst", "autoScalingGroupName": "burst"})
             )["autoScalingGroupId"]  # fmt: skip
    ok(c.call("ModifyClusterAsgScaleDown", {"clusterId": cluster, "scaleDownEnabled": 1,
              "scaleDownDelay": 2, "scaleDownUnneededTime": 3,
              "scaleDownUtilizationThreshold": 60, "expander": "least-waste"}))  # fmt: skip
    # Each pod asks for a whole core: a 2-core machine (1.9 allocatable) takes one.
    svc = create(c, cluster, sleeper("hungry", 3, cpu=1000))
    pods = svc.wait_normal(3, timeout=240)
    assert len({p["nodeIp"] for p in pods}) == 3
    added = [n for n in nodes(c, cluster) if n["instanceId"] != model]
    assert len(added) == 2
    for n in added:
        assert n["autoScalingGroupId"] == gid and n["labels"]["role"] == "burst"
        assert n["isNormal"] == 1 and n["cpu"] == 2000
    info = group(c, cluster, gid)
    assert info["instanceNum"] == 2 and info["desiredCapacity"] == 2
    triggered = [e for e in svc.events() if e["reason"] == "TriggeredScaleUp"]
    assert triggered and all(gid in e["message"] for e in triggered)
    assert any(f"{gid} 0->2 (max: 3)" in e["message"] for e in triggered)
    out = srv.cli("asg", "ls", cluster).stdout
    assert gid in out and "burst" in out

    # Fewer pods: the idle machines are drained and removed, down to the minimum (0).
    svc.call("ModifyServiceReplicas", scaleTo=1)
    until("group back to 0", lambda: group(c, cluster, gid)["instanceNum"] == 0, timeout=180)
    until("only the model node", lambda: [n["instanceId"] for n in nodes(c, cluster)] == [model],
          timeout=120)  # fmt: skip
    svc.wait_normal(1, timeout=120)
    assert group(c, cluster, gid)["desiredCapacity"] == 0
    events = srv.cli("asg", "events", cluster).stdout
    assert "TriggeredScaleUp" in events and "ScaledUpGroup" in events
    assert "ScaleDown" in events and "node removed by cluster autoscaler" in events
    delete_service(c, svc)


def test_a_disabled_group_and_pods_no_group_can_host_add_nothing(env: Env) -> None:
    _, c, cluster, _ = env
    (g,) = groups(c, cluster)["asgInfo"]
    gid = g["autoScalingGroupId"]
    ok(c.call("DisableClusterAsg", {"clusterId": cluster, "autoScalingGroupIds": [gid]}))
    svc = create(c, cluster, sleeper("waiting", 2, cpu=1000))
    until("NotTriggerScaleUp (disabled)",
          lambda: event(svc, "NotTriggerScaleUp", "disabled node group"), timeout=60)  # fmt: skip
    assert len(nodes(c, cluster)) == 1
    until("one pod running", lambda: len(svc.running()) == 1)
    assert group(c, cluster, gid)["instanceNum"] == 0 and len(nodes(c, cluster)) == 1
    delete_service(c, svc)

    ok(c.call("EnableClusterAsg", {"clusterId": cluster, "autoScalingGroupIds": [gid]}))
    picky = create(c, cluster, sleeper("picky", 1, cpu=100, nodeAffinity=[
        {"key": "gpu", "operator": "In", "values": ["yes"]}]))  # fmt: skip
    hit = until("NotTriggerScaleUp (affinity)", lambda: event(
        picky, "NotTriggerScaleUp", "wouldn't fit if a new node is added",
        "didn't match node selector"), timeout=60)  # fmt: skip
    assert hit["objType"] == "Pod"
    too_big = create(c, cluster, sleeper("too-big", 1, cpu=3000))
    until("NotTriggerScaleUp (cpu)", lambda: event(too_big, "NotTriggerScaleUp",
          "Insufficient cpu"), timeout=60)  # fmt: skip
    assert len(nodes(c, cluster)) == 1 and group(c, cluster, gid)["instanceNum"] == 0
    delete_service(c, picky)
    delete_service(c, too_big)


def test_min_size_is_kept_and_deleting_the_group_keeps_pods_that_fit(env: Env) -> None:
    srv, c, cluster, model = env
    (g,) = groups(c, cluster)["asgInfo"]
    gid = g["autoScalingGroupId"]
    ref = {"clusterId": cluster, "autoScalingGroupId": gid}
    ok(c.call("ModifyClusterAsgLabel", {**ref, "label": {"tier": "extra"}}))
    ok(c.call("ModifyClusterAsgRange", {**ref, "minSize": 1}))
    (added,) = until("a machine for minSize 1", lambda: [
        n for n in nodes(c, cluster) if n["autoScalingGroupId"] == gid and n["isNormal"] == 1],
        timeout=120)  # fmt: skip
    assert added["labels"]["role"] == "burst" and added["labels"]["tier"] == "extra"
    info = group(c, cluster, gid)
    assert info["instanceNum"] == 1 and info["desiredCapacity"] == 1
    # One pod per machine (spread); both fit on the model node once the group goes.
    svc = create(c, cluster, sleeper("stay", 2, cpu=800))
    pods = svc.wait_normal(2)
    assert len({p["nodeIp"] for p in pods}) == 2
    # scale-down is on, but the minimum keeps the machine.
    assert group(c, cluster, gid)["instanceNum"] == 1
    rid = ok(c.call("DeleteClusterAsg", {"clusterId": cluster, "autoScalingGroupIds": [gid]}))[
        "requestId"
    ]
    assert groups(c, cluster)["totalCount"] == 0
    # Killed while it drains: the task resumes after the restart.
    srv.kill9()
    srv.start()
    assert srv.wait_task(rid, timeout=180)["status"] == "succ"
    assert [n["instanceId"] for n in nodes(c, cluster)] == [model]
    moved = svc.wait_normal(2)
    model_ip = nodes(c, cluster)[0]["lanIp"]
    assert {p["nodeIp"] for p in moved} == {model_ip}
    assert event(svc, "ScaleDown", "deleting pod for node scale down")
    delete_service(c, svc)
