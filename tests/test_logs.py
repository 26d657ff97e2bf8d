"""Log collection into a real Kafka-protocol broker: container logs of real pods and files of
real machines arrive as JSON records, every line at least once and in order, across a kill -9
of openccs, a restart of the broker and a change of the rule; filters take the right pods;
every action refuses bad input."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from QcloudApi.modules.ccs import Ccs
from QcloudApi.qcloudapi import QcloudApi

from openccs.client import Client

from .conftest import Server
from .kafka_broker import Broker, Topic
from .workload_helpers import BUSYBOX, Svc, create, make_cluster, until

pytestmark = pytest.mark.xdist_group("logs")


class Env:
    def __init__(self, srv: Server, cluster: str, broker: Broker) -> None:
        self.srv, self.cluster, self.broker = srv, cluster, broker
        self.topics: list[Topic] = []
        self._machines: list[str] = []

    @property
    def c(self) -> Client:
        return self.srv.client()

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        return self.c.call(action, {"clusterId": self.cluster, **params})

    def ok(self, action: str, **params: Any) -> dict[str, Any]:
        res = self.call(action, **params)
        assert res["code"] == 0, (action, res)
        return dict(res.get("data") or {})

    def topic(self, name: str) -> Topic:
        t = Topic(self.broker, name)
        self.topics.append(t)
        return t

    def kafka(self, topic: str) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.broker.port, "topic": topic}

    def machines(self) -> list[str]:
        if not self._machines:  # asked once: also needed while openccs is down
            nodes = self.ok("DescribeClusterInstances")["nodes"]
            self._machines = [n["instanceId"] for n in nodes]
        return self._machines

    def rootfs(self, instance_id: str) -> Path:
        return self.srv.data_dir / "machines" / instance_id / "rootfs"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("logs")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--health-interval", "1"))
    broker = Broker()
    e: Env | None = None
    try:
        broker.start()
        srv.start()
        e = Env(srv, make_cluster(srv, machines=2), broker)
        yield e
    finally:
        for t in e.topics if e else []:
            t.close()
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
        srv.sweep()
        broker.close()


def counter(name: str, namespace: str = "default") -> dict[str, Any]:
    """A service whose one pod prints `n=1`, `n=2`... on stdout (and `e=10`, `e=20`... on
    stderr) up to the number in its machine's file /ctl/<name>/limit, then waits for more."""
    script = (
        "i=0; while true; do lim=$(cat /ctl/limit 2>/dev/null || echo 0); "
        'while [ "$i" -lt "$lim" ]; do i=$((i+1)); echo "n=$i"; '
        'if [ $((i % 10)) -eq 0 ]; then echo "e=$i" >&2; fi; done; sleep 0.1; done'
    )
    return {
        "serviceName": name,
        "namespace": namespace,
        "replicas": 1,
        "accessType": "None",
        "volumes": [{"name": "ctl", "volumeType": "hostPath", "hostPath": f"/ctl/{name}"}],
        "containers": [
            {
                "containerName": "count",
                "image": BUSYBOX,
                "command": "sh",
                "arguments": ["-c", script],
                "volumeMounts": [{"volumeName": "ctl", "mountPath": "/ctl"}],
            }
        ],
    }


def set_limit(env: Env, name: str, limit: int) -> None:
    for iid in env.machines():
        d = env.rootfs(iid) / "ctl" / name
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "limit.tmp"
        tmp.write_text(f"{limit}\n")
        os.replace(tmp, d / "limit")


def numbers(records: list[dict[str, Any]], pod_prefix: str, stream: str = "stdout") -> list[int]:
    out = []
    for r in records:
        if r["pod"].startswith(pod_prefix + "-") and r["stream"] == stream:
            m = re.fullmatch(r"[ne]=(\d+)", r["log"])
            assert m, r
            out.append(int(m.group(1)))
    return out


def in_order_up_to(seen: list[int], last: int) -> bool:
    """Whether 1..last occur in `seen` in this order (duplicates from redelivery allowed)."""
    want = 1
    for n in seen:
        if n == want:
            want += 1
    return want > last


def test_bad_input_for_each_action(env: Env) -> None:
    base = {
        "name": "bad",
        "inputType": "container-log",
        "outputType": "kafka",
        "inputOption": {"allNamespaces": True},
        "outputOption": env.kafka("t"),
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        ({"name": "Bad_Name"}, "name"),
        ({"inputType": "file-log"}, "inputType"),
        ({"outputType": "elasticsearch"}, "outputType"),
        ({"outputType": "cls", "outputOption": {"logsetId": "a", "topicID": "b"}}, "outputType"),
        ({"inputOption": None}, "inputOption"),
        ({"inputOption": {"allNamespaces": "maybe"}}, "inputOption.allNamespaces"),
        ({"inputOption": {"allNamespaces": False}}, "inputOption.namespaces"),
        (
            {
                "inputOption": {
                    "allNamespaces": False,
                    "namespaces": [{"namespace": "nope", "allContainers": True}],
                }
            },
            "inputOption.namespaces.0.namespace",
        ),
        (
            {
                "inputOption": {
                    "allNamespaces": False,
                    "namespaces": [{"namespace": "default", "allContainers": False}],
                }
            },
            "inputOption.namespaces.0.services",
        ),
        (
            {
                "inputOption": {
                    "allNamespaces": False,
                    "namespaces": [
                        {"namespace": "default", "allContainers": False, "services": ["Web!"]}
                    ],
                }
            },
            "inputOption.namespaces.0.services.0",
        ),
        ({"inputType": "host-log", "inputOption": {"labels": {"a": "b"}}}, "inputOption.path"),
        ({"inputType": "host-log", "inputOption": {"path": "var/log"}}, "inputOption.path"),
        ({"inputType": "host-log", "inputOption": {"path": "/var/../etc/*"}}, "inputOption.path"),
        ({"outputOption": None}, "outputOption"),
        ({"outputOption": {"host": "127.0.0.1", "topic": "t"}}, "outputOption.port"),
        ({"outputOption": {**env.kafka("t"), "port": 70000}}, "outputOption.port"),
        ({"outputOption": {**env.kafka("t"), "host": "a b"}}, "outputOption.host"),
        ({"outputOption": {**env.kafka("t"), "topic": "no/slash"}}, "outputOption.topic"),
        ({"outputType": "ckafka"}, "outputOption.instanceId"),
    ]
    for change, param in cases:
        params = {**base, **change}
        params = {k: v for k, v in params.items() if v is not None}
        res = env.call("CreateLogCollector", **params)
        assert res["code"] == 4000, (change, res)
        assert param in res["message"], (change, res["message"])
    assert "CLS" in env.call("CreateLogCollector", **{**base, "outputType": "cls"})["message"]
    # Nothing was created by the failed requests.
    assert env.ok("ListLogCollector")["totalCount"] == 0
    assert env.ok("GetLogDaemonStatus")["enabled"] is False

    for action in ("GetLogCollector", "DeleteLogCollector", "CheckIfLogCollectorName"):
        res = env.call(action)
        assert res["code"] == 4000 and "name" in res["message"], (action, res)
        res = env.c.call(action, {"name": "x"})
        assert res["code"] == 4000 and "clusterId" in res["message"], (action, res)
    for action in ("GetLogCollector", "DeleteLogCollector"):
        assert env.call(action, name="missing")["code"] == 5000
    assert env.call("UpdateLogCollector", **{**base, "name": "missing"})["code"] == 5000
    assert env.c.call("GetLogDaemonStatus", {})["code"] == 4000
    assert env.c.call("GetLogDaemonStatus", {"clusterId": "cls-nothere"})["code"] == 5000
    assert env.call("ListLogCollector", limit=0)["code"] == 4000
    assert env.call("ListLogCollector", offset=-1)["code"] == 4000
    # Another account's cluster does not exist for you.
    other = env.srv.client(env.srv.new_account())
    res = other.call("CreateLogCollector", {"clusterId": env.cluster, **base})
    assert res["code"] == 5000

    # A good rule, then the same name again, and a bad update that changes nothing.
    env.ok("CreateLogCollector", **base)
    res = env.call("CreateLogCollector", **base)
    assert res["code"] == 4000 and "name" in res["message"]
    res = env.call("UpdateLogCollector", **{**base, "outputOption": {"host": "x"}})
    assert res["code"] == 4000
    got = env.ok("GetLogCollector", name="bad")["logCollectorList"]
    assert got["outputOption"] == env.kafka("t")
    env.ok("DeleteLogCollector", name="bad")
    assert env.ok("CheckIfLogCollectorName", name="bad")["checkResult"] is False


def test_the_official_client_makes_and_reads_a_rule(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Ccs, "requestHost", f"127.0.0.1:{env.srv.https_port}")
    monkeypatch.setenv("SSL_CERT_FILE", str(env.srv.ca))
    a = env.srv.default
    api = QcloudApi("ccs", {"Region": "gz", "secretId": a.secret_id,
                            "secretKey": a.secret_key, "method": "POST"})  # fmt: skip
    option = {"allNamespaces": False, "namespaces": [
        {"namespace": "default", "allContainers": False, "services": ["web", "api"]}]}  # fmt: skip
    output = {**env.kafka("sdk"), "instanceId": "ckafka-1", "topicId": "topic-1"}
    res = json.loads(api.call("CreateLogCollector", {
        "clusterId": env.cluster, "name": "sdk", "inputType": "container-log",
        "outputType": "ckafka", "inputOption": option, "outputOption": output}))  # fmt: skip
    assert res["code"] == 0, res
    res = json.loads(api.call("GetLogCollector", {"clusterId": env.cluster, "name": "sdk"}))
    rule = res["data"]["logCollectorList"]
    assert rule["inputOption"] == option and rule["outputType"] == "ckafka"
    assert rule["outputOption"]["topicId"] == "topic-1"
    res = json.loads(api.call("DeleteLogCollector", {"clusterId": env.cluster, "name": "sdk"}))
    assert res["code"] == 0, res


def test_numbered_lines_arrive_in_order_across_kill9_broker_restart_and_update(
    env: Env,
) -> None:
    topic = env.topic("numbers")
    name = "count"
    set_limit(env, name, 0)
    create(env.c, env.cluster, counter(name)).wait_normal(1)
    assert env.ok("GetLogDaemonStatus")["enabled"] is False

    created = env.ok(
        "CreateLogCollector",
        name="all",
        inputType="container-log",
        outputType="kafka",
        inputOption={"allNamespaces": True},
        outputOption=env.kafka("numbers"),
    )["logCollectorList"]
    assert created["name"] == "all" and created["clusterName"] == "work"
    assert created["inputOption"] == {"allNamespaces": True}
    assert created["outputOption"] == env.kafka("numbers")
    assert env.ok("CheckIfLogCollectorName", name="all")["checkResult"] is True
    listed = env.ok("ListLogCollector")
    assert listed["totalCount"] == 1 and listed["logCollectorList"][0]["name"] == "all"

    # A shipper on every machine of the cluster.
    def daemons() -> Any:
        st = env.ok("GetLogDaemonStatus")
        return st if st["currentNumberScheduled"] == st["desiredNumberScheduled"] == 2 else None

    status = until("a shipper on both machines", daemons, 60)
    assert status["enabled"] is True and status["message"] == ""

    def arrived(last: int) -> None:
        until(
            f"n=1..{last} in order",
            lambda: in_order_up_to(numbers(topic.all(), name), last),
            120,
        )

    set_limit(env, name, 300)
    arrived(300)
    record = next(r for r in topic.all() if r["pod"].startswith(name + "-"))
    assert record["cluster"] == env.cluster and record["namespace"] == "default"
    assert record["container"] == "count" and record["service"] == name
    assert record["machine"] in env.machines() and record["collector"] == "all"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", record["timestamp"])
    assert in_order_up_to([n // 10 for n in numbers(topic.all(), name, "stderr")], 30)

    # kill -9 of openccs while lines are being written, and more lines while it is down.
    set_limit(env, name, 2000)
    env.srv.kill9()
    set_limit(env, name, 3000)
    env.srv.start()
    arrived(3000)

    # The broker goes away: lines wait on disk, the shipper retries, nothing is lost.
    env.broker.kill()
    set_limit(env, name, 3500)
    until(
        "the status tells the broker is unreachable",
        lambda: (
            "numbers" in env.ok("GetLogDaemonStatus")["message"]
            or env.broker.bootstrap in env.ok("GetLogDaemonStatus")["message"]
        ),
        90,
    )
    env.broker.start()
    topic.reconnect()
    before = len(topic.all())
    until("lines after the broker restart", lambda: len(topic.all()) > before, 120)
    until(
        "n=3001..3500 after the broker restart",
        lambda: set(range(3001, 3501)) <= set(numbers(topic.all(), name)),
        120,
    )
    seen = numbers(topic.all(), name)
    after_restart = [n for n in seen if n > 3000]
    assert in_order_up_to([n - 3000 for n in after_restart], 500)

    # A change of the rule's output, on the running shipper: the new lines go to the new
    # topic, none is lost between the two.
    moved = env.topic("numbers-2")
    env.ok(
        "UpdateLogCollector",
        name="all",
        inputType="container-log",
        outputType="kafka",
        description="moved",
        inputOption={"allNamespaces": True},
        outputOption=env.kafka("numbers-2"),
    )
    set_limit(env, name, 4000)
    until(
        "n=3501..4000 in either topic",
        lambda: (
            set(range(3501, 4001))
            <= set(numbers(topic.all(), name)) | set(numbers(moved.all(), name))
        ),
        120,
    )
    assert numbers(moved.all(), name), "the updated rule ships to its new topic"
    assert env.ok("GetLogCollector", name="all")["logCollectorList"]["description"] == "moved"

    # The last rule's deletion stops the shippers.
    env.ok("DeleteLogCollector", name="all")
    status = env.ok("GetLogDaemonStatus")
    assert status["enabled"] is False and status["currentNumberScheduled"] == 0
    Svc(env.c, env.cluster, name).call("DeleteClusterService")


def test_host_log_globs_labels_and_rotation(env: Env) -> None:
    topic = env.topic("hostlogs")
    machine = env.machines()[0]
    root = env.rootfs(machine)
    logdir = root / "var" / "log" / "app"
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / "a.log").write_text("a1\na2\n")
    (logdir / "notes.txt").write_text("not collected\n")
    secret = env.srv.data_dir / "host-secret.log"
    secret.write_text("host secret\n")
    (logdir / "escape.log").symlink_to(secret)  # points out of the machine's disk
    env.ok(
        "CreateLogCollector",
        name="files",
        inputType="host-log",
        outputType="kafka",
        inputOption={"path": "/var/log/app/*.log", "labels": {"team": "blue"}},
        outputOption=env.kafka("hostlogs"),
    )

    def lines() -> list[str]:
        return [r["log"] for r in topic.all() if r["machine"] == machine]

    until("a1, a2", lambda: lines()[:2] == ["a1", "a2"], 90)
    r = topic.all()[0]
    assert r["path"] == "/var/log/app/a.log" and r["labels"] == {"team": "blue"}
    assert r["stream"] == "file" and r["cluster"] == env.cluster
    # Appended lines, a partial line finished later, and a rotation (rename + new file).
    with open(logdir / "a.log", "a") as f:
        f.write("a3\na4-part")
        f.flush()
        until("a3", lambda: "a3" in lines(), 60)
        f.write("-end\n")
    os.rename(logdir / "a.log", logdir / "a.log.1")
    with open(logdir / "a.log.1", "a") as f:
        f.write("a5\n")  # written to the rotated file before its writer reopened
    (logdir / "a.log").write_text("b1\nb2\n")
    (logdir / "sub").mkdir(exist_ok=True)
    (logdir / "c.log").write_text("c1\n")
    until("every line", lambda: {"a4-part-end", "a5", "b1", "b2", "c1"} <= set(lines()), 90)
    got = lines()
    assert got.index("a4-part-end") < got.index("a5")
    assert "not collected" not in got and "host secret" not in got
    assert got.count("a1") == 1  # the rotated file was not read again from its start
    env.ok("DeleteLogCollector", name="files")


def test_namespace_and_service_filters(env: Env) -> None:
    assert env.call("CreateClusterNamespace", name="team", description="")["code"] == 0
    for svc, ns in (("alpha", "default"), ("beta", "default"), ("gamma", "team")):
        set_limit(env, svc, 500)
        create(env.c, env.cluster, {**counter(svc, ns), "serviceName": svc}, ns)
    only_alpha, only_team, every = env.topic("alpha"), env.topic("team"), env.topic("every")
    rules = {
        "alpha": (only_alpha, {"allNamespaces": False, "namespaces": [
            {"namespace": "default", "allContainers": False, "services": ["alpha"]}]}),
        "team": (only_team, {"allNamespaces": False, "namespaces": [
            {"namespace": "team", "allContainers": True}]}),
        "every": (every, {"allNamespaces": True}),
    }  # fmt: skip
    for rule, (t, option) in rules.items():
        env.ok("CreateLogCollector", name=rule, inputType="container-log", outputType="kafka",
               inputOption=option, outputOption=env.kafka(t.name))  # fmt: skip

    def services(t: Topic) -> set[str]:
        return {r["service"] for r in t.all()}

    def progressed(t: Topic, svc: str, n: int) -> bool:
        return any(x >= n for x in numbers(t.all(), svc))

    until(
        "every service in the all-namespaces rule",
        lambda: all(progressed(every, s, 200) for s in ("alpha", "beta", "gamma")),
        120,
    )
    until("alpha and gamma in their rules",
          lambda: progressed(only_alpha, "alpha", 400) and progressed(only_team, "gamma", 400),
          120)  # fmt: skip
    assert services(only_alpha) == {"alpha"}
    assert services(only_team) == {"gamma"}
    assert {r["namespace"] for r in only_team.all()} == {"team"}
    got = env.ok("GetLogCollector", name="alpha")["logCollectorList"]["inputOption"]
    assert got == rules["alpha"][1]
    for rule in rules:
        env.ok("DeleteLogCollector", name=rule)
    for svc, ns in (("alpha", "default"), ("beta", "default"), ("gamma", "team")):
        Svc(env.c, env.cluster, svc, ns).call("DeleteClusterService")


def test_a_machine_that_joins_later_gets_a_shipper(env: Env) -> None:
    topic = env.topic("late")
    env.ok("CreateLogCollector", name="late", inputType="host-log", outputType="kafka",
           inputOption={"path": "/var/log/late/*.log"}, outputOption=env.kafka("late"))  # fmt: skip

    def scheduled(n: int) -> Any:
        st = env.ok("GetLogDaemonStatus")
        return st["currentNumberScheduled"] == st["desiredNumberScheduled"] == n

    until("a shipper on both machines", lambda: scheduled(2), 60)
    before = set(env.machines())
    vpc = env.c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    subnet = env.c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100003]})["data"][0]
    res = env.ok("AddClusterInstances", zoneId="ap-guangzhou-3", goodsNum=1, cpu=1, mem=1,
                 bandwidthType="PayByHour", bandwidth=0, subnetId=subnet["unSubnetId"],
                 isVpcGateway=0, rootSize=50, storageSize=0)  # fmt: skip
    assert env.srv.wait_task(res["requestId"], timeout=120)["status"] == "succ"
    env._machines = []
    (joined,) = set(env.machines()) - before
    until("a shipper on the new machine too", lambda: scheduled(3), 60)
    logdir = env.rootfs(joined) / "var" / "log" / "late"
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / "x.log").write_text("from the new machine\n")
    until(
        "the new machine's file",
        lambda: any(r["machine"] == joined and r["log"] == "from the new machine"
                    for r in topic.all()),
        90,
    )  # fmt: skip
    env.ok("DeleteLogCollector", name="late")


def test_a_container_log_rotated_by_docker_is_followed(env: Env) -> None:
    """docker rotates a container's json-file log at 10 MB (max-file=3): a container printing
    16 MB of lines while its rule ships them has every line arrive, in order."""
    topic = env.topic("rotated")
    env.ok("CreateLogCollector", name="rotated", inputType="container-log", outputType="kafka",
           inputOption={"allNamespaces": True}, outputOption=env.kafka("rotated"))  # fmt: skip
    n = 80_000
    pad = "y" * 100
    script = f'awk \'BEGIN {{ for (i = 1; i <= {n}; i++) print "n=" i " {pad}" }}\'; sleep 100000'
    spec = {"serviceName": "chatty", "replicas": 1, "accessType": "None", "containers": [
        {"containerName": "chatty", "image": BUSYBOX, "command": "sh", "arguments": ["-c", script]}
    ]}  # fmt: skip
    create(env.c, env.cluster, spec)

    def got() -> list[int]:
        return [int(r["log"].split()[0][2:]) for r in topic.all() if r["service"] == "chatty"]

    until(f"n=1..{n} in order", lambda: in_order_up_to(got(), n), 300, 1.0)
    machines = env.srv.data_dir / "machines"
    assert list(machines.glob("*/docker/containers/*/*-json.log.1")), "docker rotated the log"
    env.ok("DeleteLogCollector", name="rotated")
    Svc(env.c, env.cluster, "chatty").call("DeleteClusterService")
