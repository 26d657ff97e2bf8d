"""Failures: a machine that dies has its pods replaced elsewhere after the grace period; a
kill -9 of openccs in the middle of a rolling update leaves nothing duplicated or lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from openccs.client import Client

from .conftest import Server
from .workload_helpers import RUN, Svc, create, http_get, make_cluster, node_of, until, web

pytestmark = pytest.mark.xdist_group("workload-failures")


@pytest.fixture
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("failures")
    srv = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=("--health-interval", "1", "--node-grace", "5"),
    )
    try:
        srv.start()
        cluster = make_cluster(srv, machines=2)
        yield srv, srv.client(), cluster
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
        srv.sweep()


def dockerd_pid(server: Server, instance_id: str) -> int:
    site = (server.data_dir / "site-id").read_text().strip()
    return int((RUN / site / instance_id / "docker.pid").read_text())


def test_pods_of_a_dead_machine_come_back_elsewhere(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, web("survivor", replicas=2))
    pods = svc.wait_normal(2)
    victim_ip = pods[0]["nodeIp"]
    victim = node_of(c, cluster, victim_ip)
    os.kill(dockerd_pid(srv, victim), signal.SIGKILL)

    def moved() -> bool:
        running = svc.running()
        return len(running) == 2 and all(p["nodeIp"] != victim_ip for p in running)

    until("pods on the other machine", moved, 90)
    for p in svc.running():
        assert http_get(p["ip"]) == p["name"]
    reasons = {e["reason"] for e in svc.events()}
    assert "NodeNotReady" in reasons
    node = next(n for n in c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]
                ["nodes"] if n["instanceId"] == victim)  # fmt: skip
    assert node["isNormal"] == 0


def test_kill_9_during_a_rolling_update(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, web("durable", replicas=3, text="v1", minReadySeconds=2))
    svc.wait_normal(3)
    spec = {"clusterId": cluster, **web("durable", replicas=3, text="v2", minReadySeconds=2)}
    assert c.call("ModifyClusterService", spec)["code"] == 0
    until("the update under way", lambda: any(http_get(p["ip"]) == "v2" for p in svc.running()))
    srv.kill9()
    time.sleep(1)
    srv.start()
    c2 = srv.client()
    svc2 = Svc(c2, cluster, "durable")

    def done() -> bool:
        pods = svc2.pods()
        running = [p for p in pods if p["status"] == "Running"]
        return (
            len(pods) == 3 and len(running) == 3 and all(http_get(p["ip"]) == "v2" for p in running)
        )

    until("the update finished after the restart", done, 120)
    until("Normal", lambda: svc2.info()["status"] == "Normal")
    # Nothing duplicated: the machines run exactly the pods the API shows.
    names = {p["name"] for p in svc2.pods()}
    site = (srv.data_dir / "site-id").read_text().strip()
    running_on_machines: set[str] = set()
    for n in c2.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]:
        sock = RUN / site / n["instanceId"] / "docker.sock"
        out = subprocess.run(
            ["docker", "-H", f"unix://{sock}", "ps", "--filter", "label=openccs.role=app",
             "--format", '{{.Label "openccs.pod"}}'], capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        running_on_machines.update(out)
    assert running_on_machines == names
