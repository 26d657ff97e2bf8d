"""Pod starts off the engine's pass: a burst larger than a machine's start batch all comes
up, and openccs killed while pods start leaves nothing doubled once it is back: every pod
has exactly its pause and its app container, the ones made before the kill included."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from openccs.cloud import dockerapi
from openccs.engine.agent import START_BATCH
from openccs.engine.docker import POD_LABEL

from .conftest import Server, served
from .workload_helpers import BUSYBOX, call, create, make_cluster, socket_of, until

pytestmark = pytest.mark.xdist_group("engine-starts")

REPLICAS = START_BATCH + 4  # more than one batch of starts on the one machine


def sleep_spec(name: str, replicas: int) -> dict[str, object]:
    return {"serviceName": name, "replicas": replicas, "accessType": "None",
            "containers": [{"containerName": "main", "image": BUSYBOX, "command": "sleep",
                            "arguments": ["100000"]}]}  # fmt: skip


def _containers(sock: Path) -> list[dict[str, Any]]:
    filters = json.dumps({"label": [POD_LABEL]})
    resp = dockerapi.request(
        sock, "GET", "/containers/json", params={"all": "1", "filters": filters}
    )
    return list(resp.json())


def test_a_burst_of_pods_survives_a_kill_of_openccs_mid_start(tmp_path: Path) -> None:
    # The periodic resync set to an hour: the starts are driven by what changes alone.
    srv = Server(data_dir=tmp_path / "data", db_url=None,
                 extra_args=("--health-interval", "1", "--engine-resync", "3600"))  # fmt: skip
    with served(srv):
        cluster = make_cluster(srv, machines=1)
        c = srv.client()
        (node,) = call(c, "DescribeClusterInstances", clusterId=cluster)["nodes"]
        sock = socket_of(srv, node["instanceId"])
        svc = create(c, cluster, sleep_spec("burst", REPLICAS))
        # Killed once the first containers exist, while most pods are still to start.
        until("first containers", lambda: _containers(sock), timeout=120, every=0.05)
        srv.kill9()
        made_before = {str(x["Id"]) for x in _containers(sock)}
        srv.start()
        c = srv.client()
        svc.c = c
        pods = until("all Running", lambda: len(svc.running()) == REPLICAS and svc.running(),
                     timeout=240)  # fmt: skip
        assert len({p["name"] for p in pods}) == REPLICAS
        listed = _containers(sock)
        per_pod = Counter(
            (str(x["Labels"][POD_LABEL]), str(x["Labels"].get("openccs.role"))) for x in listed
        )
        assert len({uid for uid, _ in per_pod}) == REPLICAS, per_pod
        assert set(per_pod.values()) == {1}, per_pod  # one pause, one app: nothing doubled
        assert {x["State"] for x in listed} == {"running"}
        # What was made before the kill was used, not left behind nor made again.
        assert made_before <= {str(x["Id"]) for x in listed}
        assert all(p["restartCount"] == 0 for p in pods), pods
        assert "Started" in {e["reason"] for e in svc.events()}
