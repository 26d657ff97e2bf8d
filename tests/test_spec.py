"""A service's typed spec reads the stored v2 shape and writes it back key for key (databases
made before the typed spec keep their revisions), and makes the one Kubernetes container."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from openccs.backends.workload_params import ServiceParams, spec_of
from openccs.domain import workloads as wl
from openccs.domain.spec import ContainerSpec, ServiceSpec, typed_spec
from openccs.schema import validate_params

BUSYBOX = "busybox:1.36"

# A spec as CreateClusterService stored it before the spec was typed: every key, in the
# describe shape (probes with all three methods named, absent lists as null).
STORED: dict[str, Any] = {
    "containers": [
        {
            "containerName": "web",
            "image": BUSYBOX,
            "envs": [{"name": "A", "value": "1"}, {"name": "B", "value": ""}],
            "volumeMounts": [{"volumeName": "data", "mountPath": "/data", "mode": "ro"}],
            "cpu": 100,
            "cpuLimits": 500,
            "memory": 64,
            "memoryLimits": 64,
            "command": "sh -c",
            "arguments": ["httpd -f -p 80"],
            "privileged": False,
            "workingDir": "/srv",
            "liveProbe": {
                "checkMethod": "methodTcp",
                "healthNum": 1,
                "unhealthNum": 3,
                "intervalTime": 10,
                "timeOut": 2,
                "delayTime": 0,
                "methodTcp": {"port": 80},
                "methodHttp": None,
                "methodCmd": None,
            },
            "readyProbe": {
                "checkMethod": "methodHttp",
                "healthNum": 2,
                "unhealthNum": 4,
                "intervalTime": 5,
                "timeOut": 3,
                "delayTime": 1,
                "methodTcp": None,
                "methodHttp": {"port": 80, "protocol": "HTTP", "path": "/ready"},
                "methodCmd": None,
            },
        },
        {
            "containerName": "side",
            "image": BUSYBOX,
            "envs": None,
            "volumeMounts": None,
            "cpu": 0,
            "cpuLimits": 0,
            "memory": 0,
            "memoryLimits": 0,
            "command": "",
            "arguments": None,
            "privileged": False,
            "workingDir": "",
            "liveProbe": None,
            "readyProbe": {
                "checkMethod": "methodCmd",
                "healthNum": 1,
                "unhealthNum": 3,
                "intervalTime": 10,
                "timeOut": 2,
                "delayTime": 0,
                "methodTcp": None,
                "methodHttp": None,
                "methodCmd": {"cmd": "test -f /srv/ok"},
            },
        },
    ],
    "volumes": [
        {"name": "data", "volumeType": "hostPath", "hostPath": "/srv/data"},
        {"name": "scratch", "volumeType": "hostPath", "hostPath": ""},
    ],
    "portMappings": [
        {"lbPort": 80, "containerPort": 80, "nodePort": 30080, "protocol": "TCP"},
        {"lbPort": 53, "containerPort": 5353, "nodePort": 0, "protocol": "UDP"},
    ],
    "accessType": "NodePort",
    "subnetId": "",
    "nodeAffinity": [{"key": "zone", "operator": "In", "values": ["a", "b"]}],
    "podAffinity": [{"key": "app", "operator": "Exists", "values": []}],
    "strategy": "Recreate",
    "minReadySeconds": 5,
}


def test_the_stored_shape_round_trips_key_for_key() -> None:
    spec = ServiceSpec.from_v2(copy.deepcopy(STORED))
    assert spec.to_v2() == STORED
    # The revision a pod template hashes to does not change with the typed spec.
    again = spec.to_v2()
    assert wl.template_hash(wl.template_of(again, "x")) == wl.template_hash(
        wl.template_of(STORED, "x")
    )
    assert spec.containers[0].live_probe is not None
    assert spec.containers[0].live_probe.port == 80
    assert spec.containers[1].ready_probe is not None
    assert spec.containers[1].ready_probe.cmd == "test -f /srv/ok"


def test_a_remembered_spec_is_the_stored_one_as_it_is_now() -> None:
    stored = copy.deepcopy(STORED)
    first = typed_spec(-1, stored)
    assert first == ServiceSpec.from_v2(STORED)
    assert typed_spec(-1, copy.deepcopy(STORED)) is first  # equal: read once
    # Changed in place or replaced, the spec is read again.
    stored["strategy"] = "RollingUpdate"
    assert typed_spec(-1, stored).strategy == "RollingUpdate"
    changed = {**STORED, "minReadySeconds": 9}
    assert typed_spec(-1, changed).min_ready_seconds == 9
    # Another service with an equal spec has its own entry.
    assert typed_spec(-2, changed) == typed_spec(-1, changed)


def test_keys_a_later_version_adds_are_kept() -> None:
    stored = {**STORED, "futureKey": {"x": 1}}
    assert ServiceSpec.from_v2(stored).to_v2() == stored


def _params(**more: Any) -> ServiceParams:
    return validate_params(
        ServiceParams,
        {"clusterId": "cls-x", "serviceName": "web", "replicas": 1, **more},
    )


# The shapes the tests and clients send: the create shape (healthCheck.n), the describe
# shape (liveProbe/readyProbe), a bare container, affinity, node ports.
SHAPES: list[dict[str, Any]] = [
    {"containers": [{"containerName": "a", "image": BUSYBOX}], "accessType": "None"},
    {
        "containers": [
            {
                "containerName": "a",
                "image": BUSYBOX,
                "command": "sleep",
                "arguments": ["1000"],
                "envs": [{"name": "X", "value": "y"}],
                "cpu": 200,
                "memory": 32,
                "healthCheck": [
                    {"type": "readyCheck", "checkMethod": "methodTcp", "port": 80},
                    {"type": "liveCheck", "checkMethod": "methodHttp", "port": 80, "path": ""},
                ],
                "volumeMounts": [{"volumeName": "v", "mountPath": "/v"}],
            }
        ],
        "volumes": [{"name": "v", "volumeType": "hostPath", "hostPath": "/data/v"}],
        "portMappings": [{"lbPort": 80, "containerPort": 80, "protocol": "TCP"}],
    },
    {
        "containers": [
            {
                "containerName": "a",
                "image": BUSYBOX,
                "readyProbe": {"checkMethod": "methodCmd", "methodCmd": {"cmd": "true"}},
            }
        ],
        "accessType": "NodePort",
        "portMappings": [
            {"lbPort": 80, "containerPort": 8080, "nodePort": 30001, "protocol": "UDP"}
        ],
        "nodeAffinity": [{"key": "disk", "operator": "Exists"}],
        "podAffinity": [{"key": "app", "operator": "In", "values": ["db"]}],
        "strategy": "Recreate",
        "minReadySeconds": 3,
    },
]


@pytest.mark.parametrize("shape", SHAPES)
def test_checked_input_becomes_a_spec_that_round_trips(shape: dict[str, Any]) -> None:
    stored = spec_of(_params(**shape)).to_v2()
    assert ServiceSpec.from_v2(stored).to_v2() == stored
    assert set(stored) == set(STORED)
    for c in stored["containers"]:
        assert set(c) == set(STORED["containers"][0])
        # The document: without memoryLimits the limit is the request.
        assert c["memoryLimits"] == c["memory"]


def test_a_health_check_becomes_the_describe_shape() -> None:
    stored = spec_of(_params(**SHAPES[1])).to_v2()
    c = stored["containers"][0]
    assert c["readyProbe"]["methodTcp"] == {"port": 80}
    assert c["readyProbe"]["methodHttp"] is None and c["readyProbe"]["methodCmd"] is None
    # An empty path of the create shape is the root.
    assert c["liveProbe"]["methodHttp"] == {"port": 80, "protocol": "HTTP", "path": "/"}


def test_one_container_has_one_kubernetes_form() -> None:
    c = ContainerSpec.from_v2(STORED["containers"][0])
    k = c.kubernetes({"data": None})
    assert k["command"] == ["sh", "-c"] and k["args"] == ["httpd -f -p 80"]
    assert k["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": ""}]
    assert k["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "64Mi"},
    }
    assert k["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert k["livenessProbe"]["tcpSocket"] == {"port": 80}
    assert k["readinessProbe"]["httpGet"] == {"port": 80, "path": "/ready", "scheme": "HTTP"}
    assert "livenessProbe" not in c.kubernetes({}, probes=False)
    # A mount of a volume the pod does not have is left out.
    assert c.kubernetes({})["volumeMounts"] == []
    side = ContainerSpec.from_v2(STORED["containers"][1]).kubernetes({})
    assert side == {
        "name": "side",
        "image": BUSYBOX,
        "readinessProbe": {
            "initialDelaySeconds": 0,
            "timeoutSeconds": 2,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
            "exec": {"command": ["sh", "-c", "test -f /srv/ok"]},
        },
    }


def test_images_change_by_container_name_only() -> None:
    spec = ServiceSpec.from_v2(STORED).with_images({"side": "busybox:1.37"})
    out = spec.to_v2()
    assert out["containers"][1]["image"] == "busybox:1.37"
    assert out["containers"][0] == STORED["containers"][0]
    assert {k: v for k, v in out.items() if k != "containers"} == {
        k: v for k, v in STORED.items() if k != "containers"
    }
