"""The engine reacts to what changes, not to its clock: with the periodic resync set to an
hour, API changes, dockerd's events (a container that dies), probe results and finished
stops still drive pods to where they should be, and a rolling update still never goes
below the desired number of Running pods."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from openccs.client import Client

from .conftest import Server
from .workload_helpers import (
    Svc,
    cluster_env,
    create,
    exec_in_pod,
    http_get,
    node_of,
    ready_while_file,
    socket_of,
    until,
    web,
)

pytestmark = pytest.mark.xdist_group("engine-events")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("engine-events")
    srv = Server(data_dir=base / "data", db_url=None,
                 extra_args=("--health-interval", "1", "--engine-resync", "3600"))  # fmt: skip
    with cluster_env(srv, machines=1) as env:
        yield env


def _modify(svc: Svc, spec: dict[str, Any]) -> None:
    res = svc.c.call("ModifyClusterService", {"clusterId": svc.cluster, **spec})
    assert res["code"] == 0, res


def test_rolling_update_runs_on_changes_alone_and_never_drops_below_desired(
    env: tuple[Server, Client, str],
) -> None:
    _, c, cluster = env
    svc = create(c, cluster, web("roll", replicas=3, text="v1"))
    svc.wait_normal(3)
    _modify(svc, web("roll", replicas=3, text="v2"))
    samples = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = svc.pods()
        running = [p for p in pods if p["status"] == "Running"]
        samples.append(len(running))
        if len(pods) == 3 and len(running) == 3 and all(http_get(p["ip"]) == "v2" for p in running):
            break
        time.sleep(0.05)
    assert min(samples) >= 3, samples
    assert sorted(http_get(p["ip"]) for p in svc.running()) == ["v2"] * 3
    until("roll Normal", lambda: svc.info()["status"] == "Normal")

    # Scaling down: the stops finish in the background and their pods leave the list.
    svc.call("ModifyServiceReplicas", scaleTo=1)
    until("one pod left", lambda: len(svc.pods()) == 1 and len(svc.running()) == 1, 60)
    svc.call("DeleteClusterService")
    listed = {"clusterId": cluster, "allnamespace": 1}
    until("service gone", lambda: c.call("DescribeClusterService", listed)["data"]["services"]
          == [])  # fmt: skip


def test_a_container_killed_behind_openccs_is_seen_and_restarted(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, web("victim", replicas=1))
    (pod,) = svc.wait_normal(1)
    sock = socket_of(srv, node_of(c, cluster, pod["nodeIp"]))
    labels = [f"label=openccs.pod={pod['name']}", "label=openccs.role=app"]
    app = subprocess.run(
        ["docker", "-H", f"unix://{sock}", "ps", "-q", "--filter", labels[0], "--filter",
         labels[1]], capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(app) == 1
    subprocess.run(["docker", "-H", f"unix://{sock}", "kill", app[0]], check=True,
                   capture_output=True)  # fmt: skip
    # Only dockerd's event says it died; the restart waits out the back-off the pass asks for.
    until("the death seen", lambda: svc.pods()[0]["status"] != "Running", 30, 0.1)
    restarted = until("restarted", lambda: [p for p in svc.running() if p["restartCount"] == 1],
                      60)  # fmt: skip
    assert http_get(restarted[0]["ip"]) == restarted[0]["name"]
    svc.call("DeleteClusterService")


def test_probe_results_move_a_pod_in_and_out_of_rotation(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    spec = ready_while_file(
        web("probed", replicas=2),
        {"checkMethod": "methodHttp", "port": 80, "path": "/ready", "protocol": "HTTP"},
    )
    svc = create(c, cluster, spec)
    a, b = svc.wait_normal(2)
    cluster_ip = svc.info()["serviceIp"]
    node = node_of(c, cluster, a["nodeIp"])
    exec_in_pod(srv, node, a["name"], "rm", "/ready")
    until("a out of rotation", lambda: {http_get(cluster_ip, 8080) for _ in range(20)}
          == {b["name"]}, 30)  # fmt: skip
    exec_in_pod(srv, node, a["name"], "touch", "/ready")
    until("a back in rotation", lambda: {http_get(cluster_ip, 8080) for _ in range(20)}
          == {a["name"], b["name"]}, 30)  # fmt: skip
    assert next(p for p in svc.pods() if p["name"] == a["name"])["restartCount"] == 0
    svc.call("DeleteClusterService")
