"""Namespace, service and instance actions refuse bad input: every parameter of the document's
tables, missing, of the wrong type, out of range, not one of its values, or naming something
that does not exist. The answer is 4000 (5000 for what does not exist) naming the parameter,
and nothing changes: no namespace, service, revision, label or pod more or less."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from openccs.client import Client

from .conftest import Server, unique_cluster_cidr
from .workload_helpers import BUSYBOX, make_cluster, until, web

pytestmark = pytest.mark.xdist_group("service-input")

NOTHERE = "cls-nothere1"


@dataclass
class Env:
    server: Server
    c: Client
    cluster: str
    pod: str  # a (pending) pod of the service "app"
    # What the API shows of the cluster; a test that changes it on purpose takes it again.
    baseline: dict[str, Any]


def empty_cluster(server: Server, c: Client) -> str:
    """A cluster without machines: its services have pods that wait for a node."""
    vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    res = c.call(
        "CreateEmptyCluster",
        {"clusterName": "input", "vpcId": vpc, "clusterCIDR": unique_cluster_cidr()},
    )
    assert res["code"] == 0, res
    assert server.wait_task(res["data"]["requestId"])["status"] == "succ"
    return str(res["data"]["clusterId"])


def delete_cluster(server: Server, c: Client, cluster: str) -> None:
    res = c.call("DeleteCluster", {"clusterId": cluster})
    assert res["code"] == 0, res
    server.wait_task(res["data"]["requestId"], timeout=120)


def two_containers(name: str) -> dict[str, Any]:
    return {
        "serviceName": name,
        "replicas": 1,
        "accessType": "None",
        "containers": [
            {"containerName": "a", "image": BUSYBOX, "command": "sleep", "arguments": ["1000"]},
            {"containerName": "b", "image": BUSYBOX, "command": "sleep", "arguments": ["1000"]},
        ],
    }


@pytest.fixture(scope="module")
def env(server: Server) -> Iterator[Env]:
    c = server.client()
    cluster = empty_cluster(server, c)
    try:
        ok = c.call(
            "CreateClusterNamespace",
            {"clusterId": cluster, "name": "team", "description": "the team"},
        )
        assert ok["code"] == 0, ok
        for spec in (web("app", replicas=2), two_containers("duo")):
            res = c.call("CreateClusterService", {"clusterId": cluster, **spec})
            assert res["code"] == 0, res
        res = c.call(
            "CreateClusterService",
            {"clusterId": cluster, "namespace": "team", **web("app", replicas=1)},
        )
        assert res["code"] == 0, res

        def pods() -> list[str]:
            data = c.call("DescribeServiceInstance", {"clusterId": cluster, "serviceName": "app"})[
                "data"
            ]
            return [p["name"] for p in data["instances"]] if data["totalCount"] == 2 else []

        names = until("the pods of app", pods)

        def settled() -> dict[str, Any] | None:
            # Every service has its pods (waiting for a node) and a first revision.
            state = snapshot(c, cluster)
            counts = {k: len(v["pods"]) for k, v in state["services"].items()}
            done = counts == {"default/app": 2, "default/duo": 1, "team/app": 1}
            return (
                state if done and all(v["revision"] for v in state["services"].values()) else None
            )

        yield Env(server, c, cluster, names[0], until("a settled cluster", settled))
    finally:
        delete_cluster(server, c, cluster)


def revision(c: Client, cluster: str, service: str, namespace: str) -> str:
    res = c.call(
        "DescribeClusterServiceText",
        {"clusterId": cluster, "serviceName": service, "namespace": namespace},
    )
    assert res["code"] == 0, res
    deployment = next(yaml.safe_load_all(res["data"]["serviceText"]))
    annotations = deployment["metadata"].get("annotations") or {}
    return str(annotations.get("deployment.kubernetes.io/revision", ""))


def snapshot(c: Client, cluster: str) -> dict[str, Any]:
    """Everything a bad request could have changed, as the API shows it."""
    namespaces = c.call("DescribeClusterNameSpaces", {"clusterId": cluster})["data"]
    listed = c.call("DescribeClusterService", {"clusterId": cluster, "allnamespace": 1})["data"]
    services = {}
    for s in listed["services"]:
        ref = {"clusterId": cluster, "serviceName": s["serviceName"], "namespace": s["namespace"]}
        info = c.call("DescribeClusterServiceInfo", ref)["data"]["service"]
        pods = c.call("DescribeServiceInstance", {**ref, "limit": 100})["data"]["instances"]
        services[f"{s['namespace']}/{s['serviceName']}"] = {
            "spec": {
                k: info[k]
                for k in (
                    "serviceDesc",
                    "desiredReplicas",
                    "accessType",
                    "containers",
                    "volumes",
                    "portMappings",
                    "labels",
                    "strategy",
                    "minReadySeconds",
                    "nodeAffinity",
                    "podAffinity",
                )
            },
            "paused": info["status"] == "Paused",
            "revision": revision(c, cluster, s["serviceName"], s["namespace"]),
            "pods": sorted(p["name"] for p in pods),
        }
    nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    return {
        "namespaces": sorted(
            (n["name"], n["status"], n["description"]) for n in namespaces["namespaces"]
        ),
        "services": services,
        "nodes": sorted(
            (n["instanceId"], n.get("unschedulable"), n.get("drainStatus")) for n in nodes
        ),
    }


REF = {"clusterId": "{cluster}", "serviceName": "app"}
SERVICE_REF_ACTIONS = [
    "DescribeClusterServiceInfo",
    "DescribeServiceEvent",
    "DescribeClusterServiceText",
    "ModifyServiceDescription",
    "RollBackClusterService",
    "RedeployClusterService",
    "PauseClusterService",
    "ResumeClusterService",
    "DeleteClusterService",
    "DescribeServiceInstance",
    "ModifyServiceReplicas",
    "DescribeInstanceLog",
    "ModifyClusterServiceImage",
    "ModifyServiceLabels",
    "ModifyClusterService",
]

# The parameters each action is called with, before a case changes one of them.
BASE: dict[str, dict[str, Any]] = {
    "DescribeClusterNameSpaces": {"clusterId": "{cluster}"},
    "CreateClusterNamespace": {"clusterId": "{cluster}", "name": "fresh", "description": "d"},
    "DeleteClusterNamespace": {"clusterId": "{cluster}", "names": ["team"]},
    "ModifyNamespaceDescription": {"clusterId": "{cluster}", "name": "team", "description": "x"},
    "DescribeClusterService": {"clusterId": "{cluster}", "namespace": "default"},
    "CreateClusterService": {"clusterId": "{cluster}", **web("fresh", replicas=1)},
    "ModifyClusterService": {"clusterId": "{cluster}", **web("app", replicas=3, text="v2")},
    "DescribeClusterServiceInfo": REF,
    "DescribeServiceEvent": REF,
    "DescribeClusterServiceText": {**REF, "bSimple": 1},
    "ModifyServiceDescription": {**REF, "description": "new words"},
    "RollBackClusterService": REF,
    "RedeployClusterService": REF,
    "PauseClusterService": REF,
    "ResumeClusterService": REF,
    "DeleteClusterService": REF,
    "DescribeServiceInstance": {**REF, "offset": 0, "limit": 10},
    "ModifyServiceReplicas": {**REF, "scaleTo": 3},
    "DescribeInstanceLog": {**REF, "podName": "{pod}", "containerName": "httpd", "tail": 5},
    "DeleteInstances": {"clusterId": "{cluster}", "instances": ["{pod}"]},
    "ModifyClusterServiceImage": {**REF, "image": "openccs/busybox:v9"},
    "ModifyServiceLabels": {**REF, "labels": {"team": "blue"}},
    "DrainClusterNode": {"ClusterId": "{cluster}", "InstanceId": "ins-nothere1", "DryRun": 0},
    "ModifyClusterNodeSchedulable": {
        "clusterId": "{cluster}",
        "instanceIds": ["ins-nothere1"],
        "unschedulable": 1,
    },
    "DescribeClusterRequestLimitInfo": {"clusterId": "{cluster}"},
}


def container(**extra: Any) -> dict[str, Any]:
    return {"containerName": "c", "image": BUSYBOX, **extra}


def probe(**extra: Any) -> dict[str, Any]:
    return container(
        healthCheck=[{"type": "readyCheck", "checkMethod": "methodTcp", "port": 80, **extra}]
    )


def vol(**extra: Any) -> dict[str, Any]:
    return {
        "volumes": [{"name": "v", "volumeType": "hostPath", **extra}],
        "containers": [container(volumeMounts=[{"volumeName": "v", "mountPath": "/v"}])],
    }


def mounts(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "volumes": [{"name": "v", "volumeType": "hostPath"}],
        "containers": [container(volumeMounts=list(items))],
    }


def affinity(kind: str, key: str, operator: str, values: list[str]) -> dict[str, Any]:
    return {kind: [{"key": key, "operator": operator, "values": values}]}


# Bad specs shared by CreateClusterService and ModifyClusterService: (change, parameter).
SPEC_CASES: list[tuple[dict[str, Any], str]] = [
    ({"replicas": None}, "replicas"),
    ({"replicas": "three"}, "replicas"),
    ({"replicas": -1}, "replicas"),
    ({"replicas": 1001}, "replicas"),
    ({"containers": None}, "containers"),
    ({"containers": [{"containerName": "c"}]}, "containers.0.image"),
    ({"containers": [{"image": BUSYBOX}]}, "containers.0.containerName"),
    ({"containers": [container(containerName="Bad_C")]}, "containers.0.containerName"),
    ({"containers": [container(containerName="c" * 64)]}, "containers.0.containerName"),
    ({"containers": [container(image="two words")]}, "containers.0.image"),
    ({"containers": [container(image="Upper/Case:v1")]}, "containers.0.image"),
    ({"containers": [container(image="nginx:")]}, "containers.0.image"),
    ({"containers": [container(command="sh -c 'unclosed")]}, "containers.0.command"),
    ({"containers": [container(), container()]}, "containers.1.containerName"),
    ({"containers": [container(cpu=50)]}, "containers.0.cpu"),
    ({"containers": [container(cpu="lots")]}, "containers.0.cpu"),
    ({"containers": [container(cpuLimits=50)]}, "containers.0.cpuLimits"),
    ({"containers": [container(cpu=500, cpuLimits=200)]}, "containers.0.cpuLimits"),
    ({"containers": [container(memory=2)]}, "containers.0.memory"),
    ({"containers": [container(memory=-4)]}, "containers.0.memory"),
    ({"containers": [container(memory=256, memoryLimits=128)]}, "containers.0.memoryLimits"),
    ({"containers": [container(privileged="maybe")]}, "containers.0.privileged"),
    # Root on the host: refused unless the operator runs `serve --allow-privileged`.
    ({"containers": [container(privileged=1)]}, "containers.0.privileged"),
    (
        {"containers": [container(), container(containerName="d", privileged=1)]},
        "containers.1.privileged",
    ),
    ({"containers": [container(workingDir="relative/dir")]}, "containers.0.workingDir"),
    ({"containers": [container(envs=[{"value": "x"}])]}, "containers.0.envs.0.name"),
    (
        {"containers": [container(envs=[{"name": "A-B", "value": "x"}])]},
        "containers.0.envs.0.name",
    ),
    ({"containers": [probe(type="sometimes")]}, "containers.0.healthCheck.0.type"),
    ({"containers": [probe(checkMethod="methodPing")]}, "containers.0.healthCheck.0.checkMethod"),
    ({"containers": [probe(healthNum=11)]}, "containers.0.healthCheck.0.healthNum"),
    ({"containers": [probe(unhealthNum=0)]}, "containers.0.healthCheck.0.unhealthNum"),
    ({"containers": [probe(intervalTime=301)]}, "containers.0.healthCheck.0.intervalTime"),
    ({"containers": [probe(timeOut=61)]}, "containers.0.healthCheck.0.timeOut"),
    ({"containers": [probe(delayTime=61)]}, "containers.0.healthCheck.0.delayTime"),
    ({"containers": [probe(port=0)]}, "containers.0.healthCheck.0.port"),
    (
        {"containers": [probe(checkMethod="methodHttp", protocol="FTP")]},
        "containers.0.healthCheck.0.protocol",
    ),
    ({"containers": [probe(type="liveCheck", healthNum=2)]}, "containers.0.healthCheck"),
    (
        {"containers": [container(volumeMounts=[{"volumeName": "v", "mountPath": "/v"}])]},
        "containers.0.volumeMounts.0.volumeName",
    ),
    (mounts({"volumeName": "v", "mountPath": "relative"}), "containers.0.volumeMounts.0.mountPath"),
    (mounts({"volumeName": "v", "mountPath": "/"}), "containers.0.volumeMounts.0.mountPath"),
    (mounts({"volumeName": "v", "mountPath": "/a:/b"}), "containers.0.volumeMounts.0.mountPath"),
    (
        mounts({"volumeName": "v", "mountPath": "/v", "mode": "rx"}),
        "containers.0.volumeMounts.0.mode",
    ),
    (
        mounts({"volumeName": "v", "mountPath": "/v"}, {"volumeName": "v", "mountPath": "/v/"}),
        "containers.0.volumeMounts.1.mountPath",
    ),
    (mounts({"mountPath": "/v"}), "containers.0.volumeMounts.0.volumeName"),
    (vol(hostPath="data/app"), "volumes.0.hostPath"),
    (vol(hostPath="/data/../../../../etc"), "volumes.0.hostPath"),
    (vol(volumeType="tmpfs"), "volumes.0.volumeType"),
    (vol(volumeType=None), "volumes.0.volumeType"),
    (vol(name="Bad_V"), "volumes.0.name"),
    ({"volumes": [{"name": "v", "volumeType": "hostPath"}] * 2}, "volumes"),
    (vol(volumeType="cbsDisk"), "volumes.0.cbsDiskId"),
    (vol(volumeType="cbsDisk", cbsDiskId="disk-12345678"), "volumes.0.volumeType"),
    (vol(volumeType="configMap"), "volumes.0.configId"),
    (vol(volumeType="nfsDisk"), "volumes.0.nfsPath"),
    (vol(volumeType="nfsDisk", nfsPath="no-colon"), "volumes.0.nfsPath"),
    (vol(volumeType="nfsDisk", nfsPath="10.0.0.1:/exports"), "volumes.0.volumeType"),
    (
        {"portMappings": [{"lbPort": 80, "containerPort": 0, "protocol": "TCP"}]},
        "portMappings.0.containerPort",
    ),
    ({"portMappings": [{"lbPort": 80, "containerPort": 80}]}, "portMappings.0.protocol"),
    (
        {"portMappings": [{"lbPort": 80, "containerPort": "http", "protocol": "TCP"}]},
        "portMappings.0.containerPort",
    ),
    ({"accessType": "Everywhere"}, "accessType"),
    ({"strategy": "Sometimes"}, "strategy"),
    ({"minReadySeconds": -1}, "minReadySeconds"),
    ({"serviceDesc": "x" * 1025}, "serviceDesc"),
    ({"namespace": "Bad_NS"}, "namespace"),
    (affinity("nodeAffinity", "team", "Near", ["a"]), "nodeAffinity.0.operator"),
    (affinity("nodeAffinity", "team", "In", []), "nodeAffinity.0.values"),
    (affinity("nodeAffinity", "team", "Exists", ["a"]), "nodeAffinity.0.values"),
    (affinity("nodeAffinity", "cores", "Gt", ["many"]), "nodeAffinity.0.values"),
    (affinity("nodeAffinity", "cores", "Lt", ["1", "2"]), "nodeAffinity.0.values"),
    (affinity("nodeAffinity", "bad key!", "In", ["a"]), "nodeAffinity.0.key"),
    (affinity("nodeAffinity", "team", "In", ["not a value"]), "nodeAffinity.0.values.0"),
    (affinity("podAffinity", "qcloud-app", "Gt", ["1"]), "podAffinity.0.operator"),
    (affinity("podAffinity", "qcloud-app", "In", []), "podAffinity.0.values"),
]

Case = tuple[str, dict[str, Any], int, str]


def _service_ref_cases() -> list[Case]:
    cases: list[Case] = []
    for action in SERVICE_REF_ACTIONS:
        cases += [
            (action, {"serviceName": None}, 4000, "serviceName"),
            (action, {"serviceName": "Bad_Name"}, 4000, "serviceName"),
            (action, {"serviceName": "s" * 64}, 4000, "serviceName"),
            (action, {"serviceName": ["app", "duo"]}, 4000, "serviceName"),
            (action, {"serviceName": "nothere"}, 5000, "serviceName"),
            (action, {"namespace": "nothere"}, 5000, "namespace"),
            (action, {"namespace": "Bad_NS"}, 4000, "namespace"),
            (action, {"clusterId": None}, 4000, "clusterId"),
            (action, {"clusterId": NOTHERE}, 5000, "clusterId"),
        ]
    return cases


def _cluster_cases() -> list[Case]:
    cases: list[Case] = []
    for action in (
        "DescribeClusterNameSpaces",
        "CreateClusterNamespace",
        "DeleteClusterNamespace",
        "ModifyNamespaceDescription",
        "DescribeClusterService",
        "CreateClusterService",
        "DeleteInstances",
        "ModifyClusterNodeSchedulable",
        "DescribeClusterRequestLimitInfo",
    ):
        cases += [
            (action, {"clusterId": None}, 4000, "clusterId"),
            (action, {"clusterId": ""}, 4000, "clusterId"),
            (action, {"clusterId": ["a", "b"]}, 4000, "clusterId"),
            (action, {"clusterId": "cls bad"}, 4000, "clusterId"),
            (action, {"clusterId": NOTHERE}, 5000, "clusterId"),
        ]
    return cases


CASES: list[Case] = [
    *_cluster_cases(),
    *_service_ref_cases(),
    *[("CreateClusterService", change, 4000, name) for change, name in SPEC_CASES],
    *[
        ("ModifyClusterService", change, 4000, name)
        for change, name in SPEC_CASES
        if name != "namespace"
    ],
    ("CreateClusterService", {"serviceName": None}, 4000, "serviceName"),
    ("CreateClusterService", {"serviceName": "Bad_Name"}, 4000, "serviceName"),
    ("CreateClusterService", {"serviceName": "9lives"}, 4000, "serviceName"),
    ("CreateClusterService", {"serviceName": "ends-"}, 4000, "serviceName"),
    ("CreateClusterService", {"serviceName": "x" * 64}, 4000, "serviceName"),
    ("CreateClusterService", {"serviceName": "app"}, 4000, "serviceName"),
    ("CreateClusterService", {"namespace": "nothere"}, 5000, "namespace"),
    ("CreateClusterNamespace", {"name": None}, 4000, "name"),
    ("CreateClusterNamespace", {"name": "Team_A"}, 4000, "name"),
    ("CreateClusterNamespace", {"name": "-team"}, 4000, "name"),
    ("CreateClusterNamespace", {"name": "t" * 64}, 4000, "name"),
    ("CreateClusterNamespace", {"name": ["a", "b"]}, 4000, "name"),
    ("CreateClusterNamespace", {"name": "team"}, 4000, "name"),
    ("CreateClusterNamespace", {"name": "default"}, 4000, "name"),
    ("CreateClusterNamespace", {"description": None}, 4000, "description"),
    ("CreateClusterNamespace", {"description": "d" * 1025}, 4000, "description"),
    ("DeleteClusterNamespace", {"names": None}, 4000, "names"),
    ("DeleteClusterNamespace", {"names": ["Bad_NS"]}, 4000, "names.0"),
    ("DeleteClusterNamespace", {"names": ["team", "nothere"]}, 5000, "names.1"),
    ("DeleteClusterNamespace", {"names": ["team", "team"]}, 4000, "names.1"),
    ("DeleteClusterNamespace", {"names": ["team", "default"]}, 4000, "names.1"),
    ("DeleteClusterNamespace", {"names": ["kube-system"]}, 4000, "names.0"),
    ("ModifyNamespaceDescription", {"name": None}, 4000, "name"),
    ("ModifyNamespaceDescription", {"name": "Bad_NS"}, 4000, "name"),
    ("ModifyNamespaceDescription", {"name": "nothere"}, 5000, "name"),
    ("ModifyNamespaceDescription", {"description": "d" * 1025}, 4000, "description"),
    ("DescribeClusterService", {"namespace": "Bad_NS"}, 4000, "namespace"),
    ("DescribeClusterService", {"namespace": "nothere"}, 5000, "namespace"),
    ("DescribeClusterService", {"allnamespace": 2}, 4000, "allnamespace"),
    ("DescribeClusterService", {"allnamespace": "yes"}, 4000, "allnamespace"),
    ("DescribeClusterServiceText", {"bSimple": 2}, 4000, "bSimple"),
    ("DescribeClusterServiceText", {"bSimple": "no"}, 4000, "bSimple"),
    ("ModifyServiceDescription", {"description": "d" * 1025}, 4000, "description"),
    ("RollBackClusterService", {}, 5100, "revision"),
    ("ResumeClusterService", {}, 5100, "not paused"),
    ("DescribeServiceInstance", {"offset": -1}, 4000, "offset"),
    ("DescribeServiceInstance", {"offset": "first"}, 4000, "offset"),
    ("DescribeServiceInstance", {"limit": 0}, 4000, "limit"),
    ("DescribeServiceInstance", {"limit": 101}, 4000, "limit"),
    ("ModifyServiceReplicas", {"scaleTo": None}, 4000, "scaleTo"),
    ("ModifyServiceReplicas", {"scaleTo": -1}, 4000, "scaleTo"),
    ("ModifyServiceReplicas", {"scaleTo": 1001}, 4000, "scaleTo"),
    ("ModifyServiceReplicas", {"scaleTo": "many"}, 4000, "scaleTo"),
    ("DescribeInstanceLog", {"podName": "app-nothere-xxxxx"}, 5000, "podName"),
    ("DescribeInstanceLog", {"podName": "Bad_Pod"}, 4000, "podName"),
    ("DescribeInstanceLog", {"containerName": "nothere"}, 5000, "containerName"),
    ("DescribeInstanceLog", {"containerName": "Bad_C"}, 4000, "containerName"),
    ("DescribeInstanceLog", {"sinceTime": "yesterday"}, 4000, "sinceTime"),
    ("DescribeInstanceLog", {"sinceTime": "2999-01-01 00:00:00"}, 4000, "sinceTime"),
    ("DescribeInstanceLog", {"tail": -1}, 4000, "tail"),
    ("DescribeInstanceLog", {"tail": "all"}, 4000, "tail"),
    ("DeleteInstances", {"instances": None}, 4000, "instances"),
    ("DeleteInstances", {"instances": ["Bad_Pod"]}, 4000, "instances.0"),
    ("DeleteInstances", {"instances": ["{pod}", "Bad_Pod"]}, 4000, "instances.1"),
    ("DeleteInstances", {"instances": ["{pod}", ""]}, 4000, "instances.1"),
    ("DeleteInstances", {"instances": ["{pod}", "{pod}"]}, 4000, "instances.1"),
    ("DeleteInstances", {"instances": [f"p-{i}" for i in range(101)]}, 4000, "instances"),
    ("DeleteInstances", {"namespace": "nothere"}, 5000, "namespace"),
    ("DeleteInstances", {"namespace": "Bad_NS"}, 4000, "namespace"),
    ("ModifyClusterServiceImage", {"image": None}, 4000, "image"),
    ("ModifyClusterServiceImage", {"image": ""}, 4000, "image"),
    ("ModifyClusterServiceImage", {"image": "two words"}, 4000, "image"),
    ("ModifyClusterServiceImage", {"image": "Nginx"}, 4000, "image"),
    (
        "ModifyClusterServiceImage",
        {"containers": [{"containerName": "httpd", "image": "x"}]},
        4000,
        "containers",
    ),
    (
        "ModifyClusterServiceImage",
        {"image": None, "containers": [{"containerName": "nothere", "image": "x"}]},
        4000,
        "containers.0.containerName",
    ),
    (
        "ModifyClusterServiceImage",
        {"image": None, "containers": [{"containerName": "httpd"}]},
        4000,
        "containers.0.image",
    ),
    (
        "ModifyClusterServiceImage",
        {"image": None, "containers": [{"image": "x"}]},
        4000,
        "containers.0.containerName",
    ),
    (
        "ModifyClusterServiceImage",
        {
            "image": None,
            "containers": [
                {"containerName": "httpd", "image": "x"},
                {"containerName": "httpd", "image": "y"},
            ],
        },
        4000,
        "containers.1.containerName",
    ),
    ("ModifyClusterServiceImage", {"serviceName": "duo"}, 4000, "image"),
    ("ModifyServiceLabels", {"labels": {"qcloud-app": "other"}}, 4000, "labels.qcloud-app"),
    ("ModifyServiceLabels", {"labels": {"bad key!": "v"}}, 4000, "labels.bad key!"),
    ("ModifyServiceLabels", {"labels": {"team": "-blue"}}, 4000, "labels.team"),
    ("ModifyServiceLabels", {"labels": {"team": "b" * 64}}, 4000, "labels.team"),
    ("ModifyServiceLabels", {"labels": [{"key": "-k", "value": "v"}]}, 4000, "labels.-k"),
    ("DrainClusterNode", {"ClusterId": None}, 4000, "ClusterId"),
    ("DrainClusterNode", {"ClusterId": NOTHERE}, 5000, "ClusterId"),
    ("DrainClusterNode", {"InstanceId": None}, 4000, "InstanceId"),
    ("DrainClusterNode", {"InstanceId": ""}, 4000, "InstanceId"),
    ("DrainClusterNode", {"InstanceId": "ins-nothere1"}, 5000, "InstanceId"),
    ("DrainClusterNode", {"DryRun": -1}, 4000, "DryRun"),
    ("DrainClusterNode", {"DryRun": "no"}, 4000, "DryRun"),
    ("ModifyClusterNodeSchedulable", {"instanceIds": None}, 4000, "instanceIds"),
    ("ModifyClusterNodeSchedulable", {"instanceIds": [""]}, 4000, "instanceIds.0"),
    ("ModifyClusterNodeSchedulable", {"instanceIds": ["ins-nothere1"]}, 5000, "instanceIds"),
    ("ModifyClusterNodeSchedulable", {"unschedulable": -1}, 4000, "unschedulable"),
    ("ModifyClusterNodeSchedulable", {"unschedulable": "yes"}, 4000, "unschedulable"),
]


def fill(value: Any, env: Env) -> Any:
    if isinstance(value, str):
        return value.replace("{cluster}", env.cluster).replace("{pod}", env.pod)
    if isinstance(value, list):
        return [fill(v, env) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, env) for k, v in value.items()}
    return value


def _case_id(case: Case) -> str:
    action, change, _, name = case
    return f"{action}-{name}-{json.dumps(change, sort_keys=True)[:40]}"


@pytest.mark.parametrize(("action", "change", "code", "name"), CASES, ids=map(_case_id, CASES))
def test_bad_input_is_refused_naming_the_parameter_and_changes_nothing(
    env: Env, action: str, change: dict[str, Any], code: int, name: str
) -> None:
    params = fill({**BASE[action], **change}, env)
    res = env.c.call(action, params)
    assert res["code"] == code, res
    assert name in res["message"], res
    assert snapshot(env.c, env.cluster) == env.baseline


READ_ONLY = [
    "DescribeClusterNameSpaces",
    "DescribeClusterService",
    "DescribeClusterServiceInfo",
    "DescribeServiceEvent",
    "DescribeClusterServiceText",
    "DescribeServiceInstance",
    "DescribeInstanceLog",
    "DescribeClusterRequestLimitInfo",
]


@pytest.mark.parametrize("action", READ_ONLY)
def test_the_unchanged_parameters_are_accepted(env: Env, action: str) -> None:
    """The cases above fail because of their one change, not because of the rest."""
    res = env.c.call(action, fill(BASE[action], env))
    assert res["code"] == 0, res


def test_another_accounts_cluster_does_not_exist(env: Env) -> None:
    other = env.server.client(env.server.new_account())
    for action in (
        "DescribeClusterNameSpaces",
        "CreateClusterNamespace",
        "DeleteClusterNamespace",
        "CreateClusterService",
        "DeleteClusterService",
        "ModifyServiceReplicas",
        "DeleteInstances",
        "DescribeClusterRequestLimitInfo",
    ):
        res = other.call(action, fill(BASE[action], env))
        assert res["code"] == 5000, (action, res)
        assert env.cluster in res["message"], (action, res)
    assert snapshot(env.c, env.cluster) == env.baseline


def test_what_the_checks_let_through(env: Env) -> None:
    """Label pairs, affinity terms in each operator's form, and logs of a waiting pod."""
    c, cluster = env.c, env.cluster
    ref = {"clusterId": cluster, "serviceName": "duo"}
    res = c.call(
        "ModifyServiceLabels",
        {
            **ref,
            "labels": [{"key": "tier", "value": "web"}, {"key": "example.com/owner", "value": ""}],
        },
    )
    assert res["code"] == 0, res
    assert res["data"]["userLabels"] == {"tier": "web", "example.com/owner": ""}
    info = c.call("DescribeClusterServiceInfo", ref)["data"]["service"]
    assert info["labels"]["tier"] == "web" and info["labels"]["qcloud-app"] == "duo"

    spec = two_containers("terms")
    spec["nodeAffinity"] = [
        {"key": "cores", "operator": "Gt", "values": ["-1"]},
        {"key": "gpu", "operator": "DoesNotExist"},
    ]
    spec["podAffinity"] = [{"key": "qcloud-app", "operator": "In", "values": ["app"]}]
    spec["volumes"] = [
        {"name": "scratch", "volumeType": "hostPath", "hostPath": ""},
        {"name": "disk", "volumeType": "hostPath", "hostPath": "/data/x.y"},
    ]
    spec["containers"][0]["volumeMounts"] = [
        {"volumeName": "scratch", "mountPath": "/s"},
        {"volumeName": "disk", "mountPath": "/d/..x"},
    ]
    res = c.call("CreateClusterService", {"clusterId": cluster, "namespace": "team", **spec})
    assert res["code"] == 0, res
    terms = {"clusterId": cluster, "serviceName": "terms", "namespace": "team"}
    info = c.call("DescribeClusterServiceInfo", terms)["data"]["service"]
    assert [a["operator"] for a in info["nodeAffinity"]] == ["Gt", "DoesNotExist"]
    assert c.call("DeleteClusterService", terms)["code"] == 0

    # A pod that waits for a node has no log yet, for every container of the service.
    logs = c.call(
        "DescribeInstanceLog",
        {"clusterId": cluster, "serviceName": "app", "podName": env.pod, "containerName": "httpd"},
    )
    assert logs["code"] == 0, logs
    assert [p["name"] for p in logs["data"]["podLog"]] == [env.pod]

    res = c.call(
        "CreateClusterNamespace", {"clusterId": cluster, "name": "quiet", "description": ""}
    )
    assert res["code"] == 0, res
    assert c.call("DeleteClusterNamespace", {"clusterId": cluster, "names": ["quiet"]})["code"] == 0
    until("quiet gone", lambda: "quiet" not in json.dumps(snapshot(c, cluster)["namespaces"]))
    env.baseline = snapshot(c, cluster)


def test_modify_without_strategy_keeps_the_services_strategy(env: Env) -> None:
    c, cluster = env.c, env.cluster
    spec = {**two_containers("steady"), "strategy": "Recreate", "minReadySeconds": 5}
    res = c.call("CreateClusterService", {"clusterId": cluster, "namespace": "team", **spec})
    assert res["code"] == 0, res
    ref = {"clusterId": cluster, "serviceName": "steady", "namespace": "team"}
    changed = {k: v for k, v in spec.items() if k not in ("strategy", "minReadySeconds")}
    changed["replicas"] = 2
    res = c.call("ModifyClusterService", {"clusterId": cluster, "namespace": "team", **changed})
    assert res["code"] == 0, res
    info = c.call("DescribeClusterServiceInfo", ref)["data"]["service"]
    assert (info["strategy"], info["minReadySeconds"], info["desiredReplicas"]) == (
        "Recreate", 5, 2)  # fmt: skip
    # Given, it changes.
    res = c.call("ModifyClusterService", {"clusterId": cluster, "namespace": "team", **changed,
                                          "strategy": "RollingUpdate"})  # fmt: skip
    assert res["code"] == 0, res
    assert c.call("DescribeClusterServiceInfo", ref)["data"]["service"]["strategy"] == (
        "RollingUpdate")  # fmt: skip
    assert c.call("DeleteClusterService", ref)["code"] == 0
    until("steady gone", lambda: "steady" not in json.dumps(snapshot(c, cluster)))
    env.baseline = snapshot(c, cluster)


def test_node_actions_change_no_node_when_one_is_wrong(server: Server) -> None:
    """With a real node: a list naming one unknown node leaves the known one as it was, and a
    drain with bad input neither cordons nor evicts."""
    c = server.client()
    cluster = make_cluster(server, machines=1)
    try:
        (node,) = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
        iid = node["instanceId"]
        res = c.call("CreateClusterService", {"clusterId": cluster, **web("kept", replicas=1)})
        assert res["code"] == 0, res
        until(
            "a running pod",
            lambda: any(
                p["status"] == "Running"
                for p in c.call(
                    "DescribeServiceInstance", {"clusterId": cluster, "serviceName": "kept"}
                )["data"]["instances"]
            ),
        )
        before = snapshot(c, cluster)
        for action, params, code, name in [
            (
                "ModifyClusterNodeSchedulable",
                {"clusterId": cluster, "unschedulable": 1, "instanceIds": [iid, "ins-nothere1"]},
                5000,
                "instanceIds",
            ),
            (
                "ModifyClusterNodeSchedulable",
                {"clusterId": cluster, "unschedulable": 1, "instanceIds": [iid, iid]},
                4000,
                "instanceIds",
            ),
            (
                "ModifyClusterNodeSchedulable",
                {"clusterId": cluster, "unschedulable": "x", "instanceIds": [iid]},
                4000,
                "unschedulable",
            ),
            (
                "DrainClusterNode",
                {"ClusterId": cluster, "InstanceId": iid, "DryRun": -1},
                4000,
                "DryRun",
            ),
            (
                "DrainClusterNode",
                {"clusterId": cluster, "InstanceId": iid, "DryRun": 0},
                4000,
                "ClusterId",
            ),
            (
                "DrainClusterNode",
                {"ClusterId": NOTHERE, "InstanceId": iid, "DryRun": 0},
                5000,
                "ClusterId",
            ),
        ]:
            res = c.call(action, params)
            assert res["code"] == code and name in res["message"], (action, params, res)
            assert snapshot(c, cluster) == before, (action, params)
        # DryRun (the default) lists the pod and changes nothing either.
        dry = c.call("DrainClusterNode", {"ClusterId": cluster, "InstanceId": iid})
        assert dry["code"] == 0 and [p["Name"] for p in dry["data"]["Pods"]]
        assert snapshot(c, cluster) == before
    finally:
        delete_cluster(server, c, cluster)
