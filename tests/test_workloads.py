"""Services with real pods on real machines: reachability by pod IP, ClusterIP and name,
logs, scaling, rolling updates (never fewer ready pods than desired), pause, resume,
rollback, Recreate, Redeploy, crash loops, image pull errors, scheduling and affinity."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from QcloudApi.modules.ccs import Ccs
from QcloudApi.qcloudapi import QcloudApi

from openccs.client import Client

from .conftest import Server
from .workload_helpers import (
    BUSYBOX,
    Svc,
    agent_passes,
    cluster_env,
    create,
    exec_in_pod,
    http_get,
    in_machine,
    metrics_token,
    node_of,
    ready_while_file,
    until,
    web,
)

pytestmark = pytest.mark.xdist_group("workloads")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("workloads")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--health-interval", "1"))
    with cluster_env(srv, machines=2) as env:
        yield env


def test_web_service_reachable_by_pod_ip_cluster_ip_and_name(
    env: tuple[Server, Client, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, c, cluster = env
    # Created through the official client, as a user would.
    monkeypatch.setattr(Ccs, "requestHost", f"127.0.0.1:{srv.https_port}")
    monkeypatch.setenv("SSL_CERT_FILE", str(srv.ca))
    api = QcloudApi("ccs", {"Region": "gz", "secretId": srv.default.secret_id,
                            "secretKey": srv.default.secret_key, "method": "POST"})  # fmt: skip
    res = json.loads(api.call("CreateClusterService", {"clusterId": cluster, **web("web")}))
    assert res["code"] == 0, res
    svc = Svc(c, cluster, "web")
    pods = svc.wait_normal(3)
    nodes = {p["nodeIp"] for p in pods}
    assert len(nodes) == 2  # replicas spread over both machines
    for p in pods:
        assert http_get(p["ip"]) == p["name"]
    info = svc.info()
    assert info["currentReplicas"] == info["desiredReplicas"] == 3
    cluster_ip = info["serviceIp"]
    # The ClusterIP balances over the pods, from the host and from every machine.
    seen = {http_get(cluster_ip, 8080) for _ in range(30)}
    assert seen == {p["name"] for p in pods}
    for lan_ip in nodes:
        iid = node_of(c, cluster, lan_ip)
        code = (f"import urllib.request as u; print(u.urlopen('http://{cluster_ip}:8080/"
                "index.html', timeout=3).read().decode().strip())")  # fmt: skip
        assert in_machine(srv, iid, code) in {p["name"] for p in pods}
    # Another service's pod reaches it by name (cluster DNS).
    client = create(c, cluster, {"serviceName": "client", "replicas": 1, "accessType": "None",
                    "containers": [{"containerName": "c", "image": BUSYBOX, "command": "sleep",
                                    "arguments": ["100000"]}]})  # fmt: skip
    (cp,) = client.wait_normal(1)
    request = "GET /index.html HTTP/1.0\r\n\r\n"
    for name in ("web", "web.default", "web.default.svc.cluster.local"):
        out = exec_in_pod(srv, node_of(c, cluster, cp["nodeIp"]), cp["name"], "sh", "-c",
                          f"printf '{request}' | nc -w 3 {name} 8080")  # fmt: skip
        assert out.splitlines()[-1] in {p["name"] for p in pods}, (name, out)
    reasons = {e["reason"] for e in svc.events()}
    assert {"Scheduled", "Created", "Started", "ScalingReplicaSet", "SuccessfulCreate"} <= reasons
    text = svc.call("DescribeClusterServiceText")
    docs = list(yaml.safe_load_all(text["servicePureText"]))
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    assert docs[0]["spec"]["replicas"] == 3 and docs[1]["spec"]["clusterIP"] == cluster_ip
    full = list(yaml.safe_load_all(text["serviceText"]))
    assert full[0]["status"]["readyReplicas"] == 3 and "metadata" in full[0]
    svc.call("DeleteClusterService")
    client.call("DeleteClusterService")
    until("web deleted", lambda: c.call("DescribeClusterService", {"clusterId": cluster})["data"]
          ["totalCount"] == 0)  # fmt: skip


def test_logs_with_tail_and_since_time(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    svc = create(c, cluster, {"serviceName": "talker", "replicas": 1, "accessType": "None",
                 "containers": [{"containerName": "t", "image": BUSYBOX, "command": "sh",
                                 "arguments": ["-c", "i=0; while true; do echo line $i;"
                                               " i=$((i+1)); sleep 0.2; done"]}]})  # fmt: skip
    (pod,) = svc.wait_normal(1)
    time.sleep(2)
    everything = svc.call("DescribeInstanceLog")["podLog"][0]["containerLog"][0]["log"]
    assert everything.startswith("line 0\nline 1\n")
    tail = svc.call("DescribeInstanceLog", podName=pod["name"], containerName="t", tail=3)
    assert len(tail["podLog"][0]["containerLog"][0]["log"].splitlines()) == 3
    now = datetime.datetime.now(datetime.UTC).astimezone(
        datetime.timezone(datetime.timedelta(hours=8))
    )
    time.sleep(1.2)
    since = svc.call("DescribeInstanceLog", sinceTime=now.strftime("%Y-%m-%d %H:%M:%S"))
    recent = since["podLog"][0]["containerLog"][0]["log"].splitlines()
    assert 0 < len(recent) < len(everything.splitlines()) + 10
    assert "line 0" not in recent
    later = (now + datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    res = c.call("DescribeInstanceLog", svc.ref(sinceTime=later))
    assert res["code"] == 4000 and "sinceTime" in res["message"]
    svc.call("DeleteClusterService")


def test_scaling_and_deleted_instances_are_replaced(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    svc = create(c, cluster, web("scaled", replicas=2))
    svc.wait_normal(2)
    svc.call("ModifyServiceReplicas", scaleTo=4)
    pods = svc.wait_normal(4)
    svc.call("ModifyServiceReplicas", scaleTo=1)
    (kept,) = svc.wait_normal(1)
    res = c.call("DeleteInstances", {"clusterId": cluster, "instances": [kept["name"], "nope-1"]})
    assert res["code"] == 0
    assert res["data"]["successList"] == [kept["name"]] and "nope-1" in res["data"]["failedMap"]
    (fresh,) = until("a replacement pod", lambda: [p for p in svc.running()
                     if p["name"] != kept["name"]])  # fmt: skip
    assert fresh["name"] not in {p["name"] for p in pods} | {kept["name"]}
    svc.call("DeleteClusterService")


def test_a_quiet_clusters_agents_mostly_skip_their_container_lists(
    env: tuple[Server, Client, str],
) -> None:
    """At the default resync (a pass a second), the agents of a cluster whose pods just run
    list their machines' containers only in the full passes: the others are skipped (their
    dockerd's event stream says nothing happened), and the pods stay Running."""
    srv, c, cluster = env
    svc = create(c, cluster, web("idle", replicas=2))
    try:
        pods = svc.wait_normal(2)
        nodes = [n["instanceId"] for n in c.call("DescribeClusterInstances",
                 {"clusterId": cluster})["data"]["nodes"]]  # fmt: skip
        with metrics_token(srv, "idle passes") as token:

            def totals() -> dict[str, float]:
                passes = agent_passes(srv, token)
                out: dict[str, float] = {}
                for (machine, outcome), n in passes.items():
                    if machine in nodes:
                        out[outcome] = out.get(outcome, 0.0) + n
                return out

            def skipping() -> bool:  # the passes of the pods' starts are over
                first = totals()
                time.sleep(1.5)
                return totals().get("skipped", 0.0) > first.get("skipped", 0.0)

            until("the agents skipping", skipping, 60)
            before = totals()
            time.sleep(8)  # a window of about eight passes, at most one of them full
            after = totals()
        grew = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in ("worked", "quiet", "skipped")}
        assert grew["skipped"] > grew["worked"] + grew["quiet"], grew
        running = svc.running()
        assert sorted(p["name"] for p in running) == sorted(p["name"] for p in pods)
        assert all(http_get(p["ip"]) == p["name"] for p in running)
    finally:
        svc.call("DeleteClusterService")


def _version(svc: Svc, version: str, **extra: Any) -> dict[str, Any]:
    spec = web(svc.name, replicas=3, text=version, **extra)
    return {"clusterId": svc.cluster, **spec}


def test_rolling_update_pause_resume_and_rollback(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    svc = create(c, cluster, web("roll", replicas=3, text="v1", minReadySeconds=1))
    svc.wait_normal(3)
    assert c.call("ModifyClusterService", _version(svc, "v2", minReadySeconds=1))["code"] == 0
    samples = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = svc.pods()
        samples.append(sum(1 for p in pods if p["status"] == "Running"))
        running = [p for p in pods if p["status"] == "Running"]
        if len(pods) == 3 and len(running) == 3 and all(http_get(p["ip"]) == "v2" for p in running):
            break
        time.sleep(0.1)
    assert min(samples) >= 3, samples  # never fewer ready pods than desired
    assert max(len(svc.pods()), 3) == 3
    until("roll Normal", lambda: svc.info()["status"] == "Normal")
    text = yaml.safe_load_all(svc.call("DescribeClusterServiceText")["serviceText"])
    assert next(text)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    # Pause half way through the next update: it stops where it is; resume finishes it.
    assert c.call("ModifyClusterService", _version(svc, "v3", minReadySeconds=3))["code"] == 0
    until("a v3 pod", lambda: any(http_get(p["ip"]) == "v3" for p in svc.running()), 60, 0.1)
    svc.call("PauseClusterService")
    assert svc.info()["status"] == "Paused"
    frozen = sorted(p["name"] for p in svc.pods())
    time.sleep(4)
    assert sorted(p["name"] for p in svc.pods()) == frozen
    svc.call("ResumeClusterService")
    until("all v3", lambda: len(svc.running()) == 3 and len(svc.pods()) == 3
          and all(http_get(p["ip"]) == "v3" for p in svc.running()), 120)  # fmt: skip

    # Roll back to the revision before: v2 again.
    svc.call("RollBackClusterService")
    assert svc.info()["status"] in ("RollingBack", "Normal")
    until("back to v2", lambda: len(svc.running()) == 3 and len(svc.pods()) == 3
          and all(http_get(p["ip"]) == "v2" for p in svc.running()), 120)  # fmt: skip
    until("Normal after rollback", lambda: svc.info()["status"] == "Normal")
    assert "Scaled down replica set" in json.dumps(svc.events())
    svc.call("DeleteClusterService")


def test_recreate_removes_old_pods_before_new_ones(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    svc = create(c, cluster, web("recreate", replicas=2, text="a", strategy="Recreate"))
    old = {p["name"] for p in svc.wait_normal(2)}
    spec = {"clusterId": cluster, **web("recreate", replicas=2, text="b", strategy="Recreate")}
    assert c.call("ModifyClusterService", spec)["code"] == 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        names = {p["name"] for p in svc.pods() if p["status"] != "Terminating"}
        assert not (names & old and names - old), names  # never old and new at once
        if names and not names & old and len(svc.running()) == 2:
            break
        time.sleep(0.1)
    assert all(http_get(p["ip"]) == "b" for p in svc.running())
    svc.call("DeleteClusterService")


def test_redeploy_replaces_every_pod(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    svc = create(c, cluster, web("redeploy", replicas=2))
    before = {p["name"] for p in svc.wait_normal(2)}
    svc.call("RedeployClusterService")
    after = until("new pods", lambda: {p["name"] for p in svc.running()} - before
                  if len(svc.running()) == 2 and not {p["name"] for p in svc.pods()} & before
                  else None, 90)  # fmt: skip
    assert len(after) == 2
    svc.call("DeleteClusterService")


def test_crash_loop_and_bad_image(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    crash = create(c, cluster, {"serviceName": "crash", "replicas": 1, "accessType": "None",
                   "containers": [{"containerName": "c", "image": BUSYBOX, "command": "sh",
                                   "arguments": ["-c", "echo dying; exit 3"]}]})  # fmt: skip
    pod = until("CrashLoopBackOff", lambda: next((p for p in crash.pods() if p["containers"]
                and p["containers"][0]["reason"] == "CrashLoopBackOff"), None))  # fmt: skip
    assert pod["status"] == "Waiting"
    until("restarted", lambda: any(p["restartCount"] >= 1 for p in crash.pods()), 40)
    until("Abnormal", lambda: crash.info()["status"] == "Abnormal")
    assert "BackOff" in {e["reason"] for e in crash.events()}
    crash.call("DeleteClusterService")

    bad = create(c, cluster, {"serviceName": "badimage", "replicas": 1, "accessType": "None",
                 "containers": [{"containerName": "c",
                                 "image": "127.0.0.1:1/nothing/here:v1"}]})  # fmt: skip
    until("image pull failure", lambda: any(
        p["containers"] and p["containers"][0]["reason"] in ("ErrImagePull", "ImagePullBackOff")
        for p in bad.pods()))  # fmt: skip
    info = bad.info()
    assert info["status"] == "Abnormal" and info["reasonMap"]
    failed = [e for e in bad.events() if e["reason"] == "Failed"]
    assert failed and "Failed to pull image" in failed[0]["message"]
    bad.call("DeleteClusterService")


def test_scheduling_resources_and_affinity(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    big = create(c, cluster, {"serviceName": "big", "replicas": 1, "accessType": "None",
                 "containers": [{"containerName": "c", "image": BUSYBOX, "command": "sleep",
                                 "arguments": ["1000"], "cpu": 64000}]})  # fmt: skip
    until("FailedScheduling", lambda: any(e["reason"] == "FailedScheduling" and
          "Insufficient cpu" in e["message"] for e in big.events()))  # fmt: skip
    (pending,) = big.pods()
    assert pending["status"] == "Waiting" and pending["nodeIp"] == ""
    big.call("DeleteClusterService")

    nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    target = nodes[1]
    label = {"key": "team", "value": "blue"}
    labelled = c.call("ModifyClusterNodeLabel", {"clusterId": cluster,
                      "instanceId": target["instanceId"], "labels": [label]})  # fmt: skip
    assert labelled["code"] == 0
    pinned = create(c, cluster, web("pinned", replicas=3, nodeAffinity=[
        {"key": "team", "operator": "In", "values": ["blue"]}]))  # fmt: skip
    assert {p["nodeIp"] for p in pinned.wait_normal(3)} == {target["lanIp"]}
    follower = create(c, cluster, web("follower", replicas=2, podAffinity=[
        {"key": "qcloud-app", "operator": "In", "values": ["pinned"]}]))  # fmt: skip
    assert {p["nodeIp"] for p in follower.wait_normal(2)} == {target["lanIp"]}
    nowhere = create(c, cluster, web("nowhere", replicas=1, nodeAffinity=[
        {"key": "team", "operator": "In", "values": ["red"]}]))  # fmt: skip
    until("no node matches", lambda: any("didn't match node selector" in e["message"]
          for e in nowhere.events()))  # fmt: skip
    for s in (pinned, follower, nowhere):
        s.call("DeleteClusterService")


def test_namespaces(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    names = {n["name"] for n in c.call("DescribeClusterNameSpaces", {"clusterId": cluster})
             ["data"]["namespaces"]}  # fmt: skip
    assert {"default", "kube-system"} <= names
    assert c.call("CreateClusterNamespace", {"clusterId": cluster, "name": "team-a",
                  "description": "A"})["code"] == 0  # fmt: skip
    again = c.call("CreateClusterNamespace", {"clusterId": cluster, "name": "team-a",
                   "description": "A"})  # fmt: skip
    assert again["code"] == 4000
    svc = create(c, cluster, web("inns", replicas=1), namespace="team-a")
    svc.wait_normal(1)
    listed = c.call("DescribeClusterService", {"clusterId": cluster, "allnamespace": 1})["data"]
    assert any(s["namespace"] == "team-a" for s in listed["services"])
    assert (
        c.call("DeleteClusterNamespace", {"clusterId": cluster, "names": ["team-a"]})["code"] == 0
    )

    def namespaces() -> set[str]:
        data = c.call("DescribeClusterNameSpaces", {"clusterId": cluster})["data"]
        return {n["name"] for n in data["namespaces"]}

    until("namespace gone", lambda: "team-a" not in namespaces(), 60)
    res = c.call("DeleteClusterNamespace", {"clusterId": cluster, "names": ["default"]})
    assert res["code"] == 4000 and "names.0" in res["message"]


def test_readiness_takes_a_pod_out_of_rotation_without_restarting_it(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    spec = ready_while_file(
        web("probed", replicas=2), {"checkMethod": "methodCmd", "cmd": "test -f /ready"}
    )
    svc = create(c, cluster, spec)
    a, b = svc.wait_normal(2)
    assert svc.info()["containers"][0]["readyProbe"]["methodCmd"] == {"cmd": "test -f /ready"}
    cluster_ip = svc.info()["serviceIp"]
    exec_in_pod(srv, node_of(c, cluster, a["nodeIp"]), a["name"], "rm", "/ready")
    until("a NotReady", lambda: any(p["name"] == a["name"] and p["status"] == "NotReady"
          for p in svc.pods()), 30)  # fmt: skip
    # The service rules follow within an engine pass.
    until("a out of the ClusterIP's rotation",
          lambda: {http_get(cluster_ip, 8080) for _ in range(20)} == {b["name"]}, 15)  # fmt: skip
    assert next(p for p in svc.pods() if p["name"] == a["name"])["restartCount"] == 0
    assert any(e["reason"] == "Unhealthy" and "Readiness" in e["message"] for e in svc.events())
    exec_in_pod(srv, node_of(c, cluster, a["nodeIp"]), a["name"], "touch", "/ready")
    until("a back in rotation", lambda: {http_get(cluster_ip, 8080) for _ in range(20)}
          == {a["name"], b["name"]}, 30)  # fmt: skip
    svc.call("DeleteClusterService")


def test_failing_liveness_restarts_and_tcp_readiness_gates(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    spec = web("alive", replicas=1)
    spec["containers"][0]["arguments"] = [
        "-c", 'touch /alive; echo "$HOSTNAME" > /index.html; httpd -f -p 80 -h /'
    ]  # fmt: skip
    spec["containers"][0]["healthCheck"] = [
        {"type": "liveCheck", "checkMethod": "methodHttp", "port": 80, "path": "/alive",
         "healthNum": 1, "unhealthNum": 2, "intervalTime": 2, "timeOut": 2, "delayTime": 1},
        {"type": "readyCheck", "checkMethod": "methodTcp", "port": 80, "healthNum": 1,
         "unhealthNum": 1, "intervalTime": 2, "timeOut": 2},
    ]  # fmt: skip
    svc = create(c, cluster, spec)
    (pod,) = svc.wait_normal(1)
    assert http_get(pod["ip"], path="/alive") == ""
    exec_in_pod(srv, node_of(c, cluster, pod["nodeIp"]), pod["name"], "rm", "/alive")
    until("restarted by liveness", lambda: svc.pods()[0]["restartCount"] >= 1, 60)
    assert any("Liveness probe failed" in e["message"] for e in svc.events())
    svc.wait_normal(1)  # the new container creates /alive again and stays
    svc.call("DeleteClusterService")

    deaf = web("deaf", replicas=1)
    deaf["containers"][0]["healthCheck"] = [
        {"type": "readyCheck", "checkMethod": "methodTcp", "port": 81, "unhealthNum": 1,
         "intervalTime": 2, "timeOut": 2},
    ]  # fmt: skip
    never = create(c, cluster, deaf)
    until("NotReady", lambda: [p["status"] for p in never.pods()] == ["NotReady"], 30)
    time.sleep(3)
    assert never.info()["currentReplicas"] == 0 and never.info()["status"] != "Normal"
    never.call("DeleteClusterService")


def test_volumes_host_path_and_per_pod(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    spec = {
        "serviceName": "volumes",
        "replicas": 1,
        "accessType": "None",
        "volumes": [
            {"name": "disk", "volumeType": "hostPath", "hostPath": "/data/app"},
            {"name": "scratch", "volumeType": "hostPath", "hostPath": ""},
        ],
        "containers": [
            {"containerName": "w", "image": BUSYBOX, "command": "sh", "arguments": [
                "-c", "echo kept > /disk/file; echo gone > /tmp/s/file; sleep 100000"],
             "volumeMounts": [{"volumeName": "disk", "mountPath": "/disk"},
                              {"volumeName": "scratch", "mountPath": "/tmp/s"}]},
            {"containerName": "r", "image": BUSYBOX, "command": "sleep", "arguments": ["100000"],
             "volumeMounts": [{"volumeName": "disk", "mountPath": "/ro", "mode": "ro"}]},
        ],
    }  # fmt: skip
    svc = create(c, cluster, spec)
    (pod,) = svc.wait_normal(1)
    node = node_of(c, cluster, pod["nodeIp"])
    machine_disk = srv.data_dir / "machines" / node / "rootfs" / "data" / "app" / "file"
    until("the file on the machine's own disk", machine_disk.exists)
    assert machine_disk.read_text() == "kept\n"
    assert not Path("/data/app/file").exists()  # not the host's disk
    assert exec_in_pod(srv, node, pod["name"], "cat", "/tmp/s/file", container="w") == "gone"
    assert exec_in_pod(srv, node, pod["name"], "cat", "/ro/file", container="r") == "kept"
    denied = exec_in_pod(srv, node, pod["name"], "sh", "-c", "echo x > /ro/f 2>&1; echo $?",
                         container="r")  # fmt: skip
    assert denied.splitlines()[-1] != "0"  # mounted read-only
    pod_dirs = list((srv.data_dir / "machines" / node / "pods").glob("*/volumes/scratch"))
    assert len(pod_dirs) == 1
    svc.call("DeleteClusterService")
    until("per-pod volume removed with the pod", lambda: not pod_dirs[0].exists())
    assert machine_disk.exists()  # the machine's disk keeps its files


def test_drain_moves_pods_and_requests_are_summed(env: tuple[Server, Client, str]) -> None:
    _, c, cluster = env
    spec = web("drained", replicas=2)
    spec["containers"][0].update(cpu=200, cpuLimits=400, memory=64)
    svc = create(c, cluster, spec)
    pods = svc.wait_normal(2)
    info = c.call("DescribeClusterRequestLimitInfo", {"clusterId": cluster})["data"]
    assert info["totalCpuRequest"] == 0.4 and info["totalCpuLimit"] == 0.8
    assert info["totalMemRequest"] == 0.12 and info["totalMemLimit"] == 0.12
    assert sum(n["cpuRequest"] for n in info["requestLimitInfo"].values()) == 0.4
    node_ip = pods[0]["nodeIp"]
    node = node_of(c, cluster, node_ip)
    dry = c.call("DrainClusterNode", {"ClusterId": cluster, "InstanceId": node})
    assert dry["code"] == 0
    assert pods[0]["name"] in {x["Name"] for x in dry["data"]["Pods"]}
    assert {p["name"] for p in svc.running()} == {p["name"] for p in pods}  # nothing moved
    real = c.call("DrainClusterNode", {"ClusterId": cluster, "InstanceId": node, "DryRun": 0})
    assert real["code"] == 0
    until("pods off the drained node", lambda: len(svc.running()) == 2
          and all(p["nodeIp"] != node_ip for p in svc.running()), 60)  # fmt: skip
    drained = next(n for n in c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]
                   ["nodes"] if n["instanceId"] == node)  # fmt: skip
    assert drained["unschedulable"] is True and drained["drainStatus"] == "drained"
    c.call("ModifyClusterNodeSchedulable", {"clusterId": cluster, "instanceIds": [node],
           "unschedulable": 0})  # fmt: skip
    svc.call("DeleteClusterService")


def _checks(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"containers": [{"containerName": "c", "image": BUSYBOX, "healthCheck": list(checks)}]}


BAD = [
    (
        _checks({"type": "liveCheck", "checkMethod": "methodTcp", "port": 80, "healthNum": 2}),
        "containers.0.healthCheck",
    ),
    (
        _checks({"type": "readyCheck", "checkMethod": "methodHttp", "port": 80, "intervalTime": 1}),
        "containers.0.healthCheck.0.intervalTime",
    ),
    (
        _checks({"type": "readyCheck", "checkMethod": "methodHttp"}),
        "containers.0.healthCheck.0.port",
    ),
    (
        _checks({"type": "readyCheck", "checkMethod": "methodCmd"}),
        "containers.0.healthCheck.0.cmd",
    ),
    ({"serviceName": "Bad_Name"}, "serviceName"),
    ({"serviceName": "x" * 64}, "serviceName"),
    ({"replicas": -1}, "replicas"),
    ({"replicas": None}, "replicas"),
    ({"containers": None}, "containers"),
    ({"accessType": "Everywhere"}, "accessType"),
    ({"strategy": "Sometimes"}, "strategy"),
    (
        {"containers": [{"containerName": "c", "image": BUSYBOX, "cpu": 500, "cpuLimits": 200}]},
        "containers.0.cpuLimits",
    ),
    (
        {"containers": [{"containerName": "c", "image": BUSYBOX, "memory": 2}]},
        "containers.0.memory",
    ),
    (
        {
            "containers": [
                {"containerName": "c", "image": BUSYBOX, "envs": [{"name": "1BAD", "value": "x"}]}
            ]
        },
        "containers.0.envs.0.name",
    ),
    (
        {
            "containers": [
                {
                    "containerName": "c",
                    "image": BUSYBOX,
                    "volumeMounts": [{"volumeName": "nope", "mountPath": "/data"}],
                }
            ]
        },
        "containers.0.volumeMounts.0.volumeName",
    ),
    (
        {"volumes": [{"name": "d", "volumeType": "cbsDisk", "cbsDiskId": "disk-1"}]},
        "volumes.0.volumeType",
    ),
    (
        {"portMappings": [{"lbPort": 70000, "containerPort": 80, "protocol": "TCP"}]},
        "portMappings.0.lbPort",
    ),
    (
        {"portMappings": [{"lbPort": 80, "containerPort": 80, "protocol": "SCTP"}]},
        "portMappings.0.protocol",
    ),
    (
        {"nodeAffinity": [{"key": "a", "operator": "Near", "values": ["b"]}]},
        "nodeAffinity.0.operator",
    ),
    ({"namespace": "missing-ns"}, "namespace"),
    ({"clusterId": "cls-nothere1"}, "cluster"),
]


@pytest.mark.parametrize(("change", "name"), BAD)
def test_bad_service_input_is_refused_and_creates_nothing(
    env: tuple[Server, Client, str], change: dict[str, Any], name: str
) -> None:
    _, c, cluster = env
    params: dict[str, Any] = {"clusterId": cluster, **web("badinput", replicas=1), **change}
    res = c.call("CreateClusterService", {k: v for k, v in params.items() if v is not None})
    assert res["code"] in (4000, 5000), res
    assert name in res["message"], res
    listed = c.call("DescribeClusterService", {"clusterId": cluster, "allnamespace": 1})
    assert "badinput" not in json.dumps(listed)
