"""The agents of a cluster's machines go by what changed on their machine: a pod starting
or stopping on one machine makes the other machine's agent stop after listing its
containers (`openccs_agent_passes_total`, outcome quiet), and pods still start, stop, get
deleted and move between the machines with the periodic resync set to an hour (nothing
but the machines' generations and dockerd's events wakes the agents)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from openccs.client import Client

from .conftest import Server
from .workload_helpers import Svc, call, cluster_env, create, http_get, socket_of, until, web

pytestmark = pytest.mark.xdist_group("engine-machines")

PASSES = re.compile(r'^openccs_agent_passes_total\{machine="([^"]+)",outcome="([^"]+)"\} (\S+)$')


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("engine-machines")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--engine-resync", "3600"))
    with cluster_env(srv, machines=2) as env:
        yield env


@pytest.fixture(scope="module")
def token(env: tuple[Server, Client, str]) -> Iterator[str]:
    srv = env[0]
    made = json.loads(srv.cli("metrics-token", "create", "--note", "agent passes").stdout)
    yield str(made["token"])
    srv.cli("metrics-token", "revoke", made["id"])


def agent_passes(srv: Server, token: str) -> dict[tuple[str, str], float]:
    """(machine, outcome) -> passes, as /metrics says."""
    r = httpx.get(f"{srv.http_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text[:300]
    found = {}
    for line in r.text.splitlines():
        m = PASSES.match(line)
        if m:
            found[(m[1], m[2])] = float(m[3])
    return found


def machines(c: Client, cluster: str) -> dict[str, str]:
    """Instance id -> LAN address of the cluster's machines."""
    nodes = call(c, "DescribeClusterInstances", clusterId=cluster)["nodes"]
    return {n["instanceId"]: n["lanIp"] for n in nodes}


def containers_of(srv: Server, instance_id: str, svc: Svc) -> list[str]:
    """The pods of the service's app containers (any state) on a machine, one a container."""
    sock = socket_of(srv, instance_id)
    out = subprocess.run(
        ["docker", "-H", f"unix://{sock}", "ps", "-a", "--filter", "label=openccs.role=app",
         "--format", '{{.Label "openccs.namespace"}} {{.Label "openccs.pod"}}'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [
        pod
        for namespace, pod in (line.split() for line in out.splitlines() if line.strip())
        if namespace == svc.namespace and pod.startswith(f"{svc.name}-")
    ]


def gone(svc: Svc) -> bool:
    """The service deleted, or all its pods."""
    r = svc.c.call("DescribeServiceInstance", svc.ref())
    return r["code"] != 0 or not r["data"]["instances"]


def settled(srv: Server, token: str, machine: str) -> float:
    """The machine's worked passes once two readings a second apart agree (the passes of
    what came before, the cluster's creation, are over)."""
    last = [-1.0]

    def same() -> bool:
        now = agent_passes(srv, token).get((machine, "worked"), 0.0)
        agreed, last[0] = now == last[0], now
        if not agreed:
            time.sleep(1)
        return agreed

    until(f"{machine}'s agent settled", same, 60)
    return last[0]


def test_pods_on_one_machine_leave_the_other_machines_agent_quiet(
    env: tuple[Server, Client, str], token: str
) -> None:
    srv, c, cluster = env
    a, b = sorted(machines(c, cluster))
    call(c, "ModifyClusterNodeLabel", clusterId=cluster, instanceId=a,
         labels=[{"key": "side", "value": "a"}])  # fmt: skip
    b_worked = settled(srv, token, b)
    before = agent_passes(srv, token)

    on_a = [{"key": "side", "operator": "In", "values": ["a"]}]
    svc = create(c, cluster, web("here", replicas=2, nodeAffinity=on_a))
    pods = svc.wait_normal(2)
    assert {p["nodeIp"] for p in pods} == {machines(c, cluster)[a]}
    assert sorted(http_get(p["ip"]) for p in pods) == sorted(p["name"] for p in pods)
    svc.call("ModifyServiceReplicas", scaleTo=1)
    until("one pod of here left", lambda: len(svc.pods()) == 1 and len(svc.running()) == 1)
    until("its stopped containers removed", lambda: len(containers_of(srv, a, svc)) == 1)

    after = agent_passes(srv, token)
    # Machine A's agent worked through two starts and a stop; B's was asked at each of
    # the cluster's passes and stopped after its container list every time.
    assert after.get((a, "worked"), 0) > before.get((a, "worked"), 0)
    assert after.get((b, "quiet"), 0) > before.get((b, "quiet"), 0)
    assert after.get((b, "worked"), 0) == b_worked, (before, after)
    assert containers_of(srv, b, svc) == []

    svc.call("DeleteClusterService")
    until("here's pods gone", lambda: gone(svc))
    until("here's containers removed from A", lambda: containers_of(srv, a, svc) == [])


def test_pods_start_stop_get_deleted_and_move_on_both_machines(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    a, b = sorted(machines(c, cluster))
    ips = machines(c, cluster)
    svc = create(c, cluster, web("both", replicas=2))
    pods = svc.wait_normal(2)
    assert {p["nodeIp"] for p in pods} == {ips[a], ips[b]}  # one on each machine
    assert sorted(http_get(p["ip"]) for p in pods) == sorted(p["name"] for p in pods)

    # Machine A cordoned, a redeploy replaces the pods: the new ones all run on B, and A's
    # agent stops and removes the old one.
    call(c, "ModifyClusterNodeSchedulable", clusterId=cluster, instanceIds=[a], unschedulable=1)
    try:
        old = {p["name"] for p in pods}
        svc.call("RedeployClusterService")

        def moved() -> bool:
            now = svc.running()
            return (
                len(svc.pods()) == 2
                and len(now) == 2
                and not old & {p["name"] for p in now}
                and {p["nodeIp"] for p in now} == {ips[b]}
            )

        until("both pods moved to B", moved, 120)
        until("A's containers of the service removed", lambda: containers_of(srv, a, svc) == [])
        assert all(http_get(p["ip"]) == p["name"] for p in svc.running())

        # A stop on B, then the deletion of the rest.
        svc.call("ModifyServiceReplicas", scaleTo=1)
        until("one pod left", lambda: len(svc.pods()) == 1 and len(svc.running()) == 1)
        until("B's stopped containers removed", lambda: len(containers_of(srv, b, svc)) == 1)
    finally:
        call(c, "ModifyClusterNodeSchedulable", clusterId=cluster, instanceIds=[a],
             unschedulable=0)  # fmt: skip
        svc.call("DeleteClusterService")
    until("both's pods gone", lambda: gone(svc))
    until("both's containers removed from B", lambda: containers_of(srv, b, svc) == [], 60)
    assert containers_of(srv, a, svc) == []
