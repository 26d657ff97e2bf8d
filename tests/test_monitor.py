"""Monitoring: GetMonitorData answers what the sampler really measured on the machines
(a CPU-burning pod against an idle one, traffic sent to a pod, a pod that allocates
memory), every metric of the document answers, the document's error codes, and
`/metrics` behind its bearer token."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from QcloudApi.modules.monitor import Monitor
from QcloudApi.qcloudapi import QcloudApi
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from openccs.cli.serve import parse_retention
from openccs.client import Client
from openccs.domain.accounts import create_account
from openccs.monitor import collect, rollup
from openccs.monitor.metrics import DIMENSIONS, METRICS, PERIODS
from openccs.monitor.models import MonitorRollup, MonitorSample
from openccs.monitor.sampler import Sampler, _upsert_rollups, write_pass
from openccs.store.db import Store
from openccs.store.models import Cluster, Vpc

from .conftest import BACKENDS, Server, database_url
from .workload_helpers import (
    BUSYBOX,
    Svc,
    cluster_env,
    create,
    exec_in_pod,
    node_of,
    until,
)

pytestmark = pytest.mark.xdist_group("monitor")

ZONE = ZoneInfo("Asia/Shanghai")


# -- pure parts --------------------------------------------------------------------------


def test_buckets_and_points_follow_the_document() -> None:
    t = datetime(2016, 6, 28, 14, 12, 30, tzinfo=ZONE).timestamp()
    assert rollup.bucket_start(t, 300) == datetime(2016, 6, 28, 14, 10, tzinfo=ZONE).timestamp()
    day = rollup.bucket_start(t, 86400)
    assert day == datetime(2016, 6, 28, tzinfo=ZONE).timestamp()
    # The document's example: 14:10 to 14:20 at 300 s is a closed interval of three points.
    start = datetime(2016, 6, 28, 14, 10, tzinfo=ZONE).timestamp()
    end = datetime(2016, 6, 28, 14, 20, tzinfo=ZONE).timestamp()
    assert len(list(rollup.points(start, end, 300))) == 3
    assert rollup.count_points(start, end, 300) == 3
    days = list(rollup.points(day, day + 3 * 86400, 86400))
    assert len(days) == 4 and days[1] - days[0] == 86400
    assert rollup.value_of([12.0, 4], "mean") == 3.0
    assert rollup.value_of([12.0, 4], "sum") == 12.0
    assert rollup.value_of(None, "mean") is None


def test_retention_option_parses() -> None:
    assert parse_retention("raw=90m, 60=3d,86400=400d") == {
        "raw": 5400, "60": 259200, "86400": 400 * 86400}  # fmt: skip
    for bad in ("120=1d", "60=0", "60", "raw=2w"):
        with pytest.raises(ValueError):
            parse_retention(bad)


def test_counter_files_parse() -> None:
    net = (
        "Inter-|   Receive                            |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
        "    lo:     100       2    0    0    0     0          0         0      100       2"
        "    0    0    0     0       0          0\n"
        "  eth0:    5000      40    0    0    0     0          0         0     7000      50"
        "    0    0    0     0       0          0\n"
    )
    assert collect.parse_net_dev(net) == (5000, 40, 7000, 50)
    blk = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n8:16 Read 1\nTotal 12289\n"
    assert collect.parse_blkio(blk) == (4097, 8192)


def a_cluster(store: Store, suffix: str, vpc_num: int) -> None:
    """Rows for cluster `cls-SUFFIX` (its account and VPC), no machines."""
    with store.session() as s:
        account = create_account(s, name=suffix)
        vpc = Vpc(id=f"vpc-{suffix}", num_id=vpc_num, account_id=account.id, cidr="10.9.0.0/16")
        s.add(vpc)
        s.flush()
        s.add(Cluster(id=f"cls-{suffix}", account_id=account.id, name=suffix, vpc_id=vpc.id,
                      cidr="172.31.0.0/16", service_cidr="172.31.255.0/24"))  # fmt: skip


def test_rollups_are_upserted_recovered_and_pruned(store: Store) -> None:
    """The sampler's storage on each backend: open buckets written whole on every pass,
    loaded again by a new sampler with the last raw counters, dropped with their cluster."""
    now = time.time()
    a_cluster(store, "monitor1", 99001)

    def rows(value: float, n: int) -> list[dict[str, Any]]:
        return [{"cluster_id": "cls-monitor1", "obj": "default/web", "period": p,
                 "bucket": rollup.bucket_start(now, p), "level": "service",
                 "data": {"service_cpu_used": [value, n]}} for p in PERIODS]  # fmt: skip

    with store.session() as s:
        _upsert_rollups(s, rows(1.0, 1))
    with store.session() as s:
        _upsert_rollups(s, rows(3.0, 2))  # the same buckets, one pass later
        s.execute(
            insert(MonitorSample),
            [
                {
                    "cluster_id": "cls-monitor1",
                    "ts": int(now * 1000),
                    "counters": {"c": {"abcdef012345": [5_000_000]}},
                }
            ],
        )
    with store.session() as s:
        stored = s.scalars(select(MonitorRollup)).all()
    assert len(stored) == len(PERIODS)
    assert all(r.data == {"service_cpu_used": [3.0, 2]} for r in stored)
    sampler = Sampler(store, lambda node: ("", Path("/nonexistent"), Path("/nonexistent")))
    sampler.recover()
    assert sampler._acc[("cls-monitor1", "default/web", 60)].data["service_cpu_used"] == [3.0, 2]
    assert sampler._prev["c:abcdef012345"] == (int(now * 1000) / 1000, (5_000_000,))
    # A pass (no machines run here) prunes the rows of clusters that are gone.
    with store.session() as s:
        s.delete(s.get(Cluster, "cls-monitor1"))
    sampler.run_pass()
    with store.session() as s:
        assert s.scalars(select(MonitorRollup)).all() == []
        assert s.scalars(select(MonitorSample)).all() == []


def test_a_pass_is_written_in_chunks_counters_first(store: Store) -> None:
    """A large cluster's buckets go a few per transaction (no writer held long): all of
    them are stored, and a chunk that fails leaves the counters and the chunks before it."""
    now = time.time()
    a_cluster(store, "chunks01", 99002)
    bucket = rollup.bucket_start(now, 60)
    rows: list[dict[str, Any]] = [{"cluster_id": "cls-chunks01", "obj": f"default/p{i}",
             "period": 60, "bucket": bucket, "level": "pod",
             "data": {"pod_cpu_used": [float(i), 1]}} for i in range(10)]  # fmt: skip
    ts = int(now * 1000)
    sample = {"cluster_id": "cls-chunks01", "ts": ts, "counters": {}}
    write_pass(store, [sample], rows, chunk=3)
    with store.session() as s:
        stored = {r.obj: r.data for r in s.scalars(select(MonitorRollup))}
        assert len(s.scalars(select(MonitorSample)).all()) == 1
    assert stored == {f"default/p{i}": {"pod_cpu_used": [float(i), 1]} for i in range(10)}
    # A row no database takes (no level) in the third chunk: the pass stops there.
    bad = [{**r, "bucket": bucket + 60} for r in rows]
    bad[7] = {**bad[7], "level": None}
    later = {**sample, "ts": ts + 60_000}
    with pytest.raises(IntegrityError):
        write_pass(store, [later], bad, chunk=3)
    with store.session() as s:
        assert len(s.scalars(select(MonitorSample)).all()) == 2
        newer = s.scalars(select(MonitorRollup).where(MonitorRollup.bucket > bucket))
        assert sorted(r.obj for r in newer) == [f"default/p{i}" for i in range(6)]


# -- against a server with a real cluster --------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("monitor")
    srv = Server(
        data_dir=base / "data",
        db_url=database_url(request.param, base),
        extra_args=("--health-interval", "1", "--sample-interval", "1"),
    )
    with cluster_env(srv, machines=1) as env:
        yield env


def fmt(ts: float) -> str:
    return datetime.fromtimestamp(ts, ZONE).strftime("%Y-%m-%d %H:%M:%S")


def dims(
    cluster: str, service: str = "", pod: str = "", container: str = ""
) -> list[dict[str, str]]:
    out = [{"name": "clusterId", "value": cluster}, {"name": "serviceName", "value": service},
           {"name": "namespace", "value": "default"}]  # fmt: skip
    if pod:
        out.append({"name": "podName", "value": pod})
    if container:
        out.append({"name": "containerId", "value": container[:12]})
    return out


def monitor(
    c: Client, metric: str, dimensions: list[dict[str, str]], period: int = 60, minutes: int = 3,
    **more: Any,
) -> dict[str, Any]:  # fmt: skip
    now = time.time()
    namespace = "qce/cvm" if metric.startswith(("dc_", "node_")) else "qce/docker"
    params = {"namespace": namespace, "metricName": metric, "dimensions": dimensions,
              "period": period, "startTime": fmt(now - minutes * 60), "endTime": fmt(now),
              **more}  # fmt: skip
    return c.call("GetMonitorData", params)


def latest(c: Client, metric: str, dimensions: list[dict[str, str]]) -> float | None:
    """The newest measured point at 60 s."""
    res = monitor(c, metric, dimensions)
    assert res["code"] == 0, res
    values = [v for v in res["dataPoints"] if v is not None]
    return values[-1] if values else None


def one_pod(svc: Svc) -> tuple[str, str]:
    (pod,) = svc.wait_normal(1)
    return pod["name"], pod["containers"][0]["containerId"]


def sleeper(name: str, **container: Any) -> dict[str, Any]:
    return {"serviceName": name, "replicas": 1, "accessType": "None",
            "containers": [{"containerName": "main", "image": BUSYBOX, "command": "sleep",
                            "arguments": ["100000"], **container}]}  # fmt: skip


def test_cpu_burning_pod_against_an_idle_one(env: tuple[Server, Client, str]) -> None:
    _srv, c, cluster = env
    limits = {"cpu": 200, "cpuLimits": 500, "memory": 32}
    spin = {"command": "sh", "arguments": ["-c", "while :; do :; done"]}
    burn = create(c, cluster, sleeper("burn", **limits, **spin))
    idle = create(c, cluster, sleeper("idle", **limits))
    burn_pod, burn_cid = one_pod(burn)
    idle_pod, idle_cid = one_pod(idle)
    try:

        def separated() -> Any:
            b = latest(c, "container_cpu_used", dims(cluster, "burn", burn_pod, burn_cid))
            i = latest(c, "container_cpu_used", dims(cluster, "idle", idle_pod, idle_cid))
            sb = latest(c, "service_cpu_used", dims(cluster, "burn"))
            si = latest(c, "service_cpu_used", dims(cluster, "idle"))
            if None in (b, i, sb, si):
                return None
            assert b is not None and i is not None and sb is not None and si is not None
            return (
                (b, i, sb, si) if b > 0.15 and sb > 0.15 and b > 10 * i and sb > 10 * si else None
            )

        b, i, _, _ = until("burning pod measured above the idle one", separated, timeout=90)
        assert b <= 0.6 and i < 0.02  # at most its 500m limit (and some rounding)
        limit_share = latest(c, "container_cpu_usage_for_limit",
                             dims(cluster, "burn", burn_pod, burn_cid))  # fmt: skip
        request_share = latest(c, "container_cpu_usage_for_request",
                               dims(cluster, "burn", burn_pod, burn_cid))  # fmt: skip
        assert limit_share is not None and request_share is not None
        assert request_share > limit_share > 20  # the request (200m) is below the limit (500m)
        share = latest(c, "service_cpu_usage_for_cluster", dims(cluster, "burn"))
        assert share is not None and 0 < share <= 50  # a 2-core machine, at most half a core
        dc = latest(c, "dc_cpu_usage", [{"name": "docker_clusterid", "value": cluster}])
        assert dc is not None and dc > 0
    finally:
        burn.call("DeleteClusterService")
        idle.call("DeleteClusterService")


def test_network_counters_grow_with_traffic(env: tuple[Server, Client, str]) -> None:
    _srv, c, cluster = env
    script = ("dd if=/dev/zero of=/big bs=1000 count=2000 2>/dev/null; httpd -p 80 -h /;"
              " while true; do nc -l -p 9000 > /dev/null; done")  # fmt: skip
    svc = create(
        c,
        cluster,
        {
            "serviceName": "net",
            "replicas": 1,
            "accessType": "None",
            "containers": [
                {
                    "containerName": "main",
                    "image": BUSYBOX,
                    "command": "sh",
                    "arguments": ["-c", script],
                }
            ],
        },
    )
    (pod,) = svc.wait_normal(1)
    name, ip = pod["name"], pod["ip"]
    window_start = time.time() - 60
    # Let the sampler see the pod once before the traffic, so the traffic is a difference.
    until("pod sampled", lambda: latest(c, "pod_in_packets", dims(cluster, "net", name))
          is not None, timeout=60)  # fmt: skip
    # 6 MB sent to the pod, and 5 x 2 MB fetched from it.
    with socket.create_connection((ip, 9000), timeout=10) as conn:
        conn.sendall(b"x" * 6_000_000)
    for _ in range(5):
        assert len(httpx.get(f"http://{ip}/big", timeout=10).content) == 2_000_000

    def total(metric: str, who: list[dict[str, str]]) -> float:
        res = c.call("GetMonitorData", {"namespace": "qce/docker", "metricName": metric,
                                        "dimensions": who, "period": 60,
                                        "startTime": fmt(window_start),
                                        "endTime": fmt(time.time())})  # fmt: skip
        assert res["code"] == 0, res
        return float(sum(v for v in res["dataPoints"] if v is not None))

    pod_dims = dims(cluster, "net", name)
    until("6 MB in", lambda: total("pod_in_flux", pod_dims) >= 6.0, timeout=60)
    until("10 MB out", lambda: total("pod_out_flux", pod_dims) >= 10.0, timeout=60)
    assert total("service_in_flux", dims(cluster, "net")) >= 6.0
    assert total("service_out_flux", dims(cluster, "net")) >= 10.0
    for metric in ("pod_in_bandwidth", "pod_out_bandwidth", "pod_in_packets", "pod_out_packets"):
        assert total(metric, pod_dims) > 0, metric
    for metric in ("service_in_bandwidth", "service_out_packets"):
        assert total(metric, dims(cluster, "net")) > 0, metric
    svc.call("DeleteClusterService")


def test_memory_follows_a_pod_that_allocates(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, sleeper("mem", memory=100, memoryLimits=200))
    name, cid = one_pod(svc)
    where = dims(cluster, "mem", name, cid)
    before = until("memory measured", lambda: latest(c, "container_mem_used", where), timeout=60)
    assert before < 20
    node = node_of(c, cluster, svc.pods()[0]["nodeIp"])
    # 60 MiB in the pod's shared memory (tmpfs pages are charged to the container).
    exec_in_pod(srv, node, name, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=60")

    def grown() -> Any:
        # A minute's value is the mean of its samples: wait for a minute after the allocation.
        v = latest(c, "container_mem_used", where)
        s = latest(c, "service_mem_used", dims(cluster, "mem"))
        return (v, s) if v and s and v > before + 50 and s > before + 50 else None

    after, svc_mem = until("memory grows", grown, timeout=150)
    assert after < 100 and svc_mem < 100
    for_request = latest(c, "container_mem_usage_for_request", where)
    for_limit = latest(c, "container_mem_usage_for_limit", where)
    for_node = latest(c, "container_mem_usage_for_node", where)
    assert for_request is not None and for_limit is not None and for_node is not None
    assert for_request > for_limit > for_node > 0  # 100 MiB < 200 MiB < the node's 2 GiB
    assert 25 < for_limit < 50
    svc.call("DeleteClusterService")


def test_disk_counters_follow_direct_io(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, sleeper("disk"))
    name, cid = one_pod(svc)
    where = dims(cluster, "disk", name, cid)
    until("disk sampled", lambda: latest(c, "container_disk_write", where) is not None, 60)
    node = node_of(c, cluster, svc.pods()[0]["nodeIp"])
    # 20 MB written and read back around the page cache (what blkio counts in cgroup v1).
    exec_in_pod(srv, node, name, "dd", "if=/dev/zero", "of=/tmp/f", "bs=1M", "count=20",
                "oflag=direct")  # fmt: skip
    exec_in_pod(srv, node, name, "dd", "if=/tmp/f", "of=/dev/null", "bs=1M", "iflag=direct")

    def kb(metric: str) -> float:
        # A minute's value is the mean rate (KB/s) of its passes: x 60 s is the minute's KB.
        res = monitor(c, metric, where, minutes=4)
        return 60 * sum(v for v in res["dataPoints"] if v is not None)

    until("20 MB written", lambda: kb("container_disk_write_traffic") > 15_000, timeout=90)
    until("20 MB read", lambda: kb("container_disk_read_traffic") > 15_000, timeout=90)
    assert kb("container_disk_write") > 0 and kb("container_disk_read") > 0
    svc.call("DeleteClusterService")


def test_every_metric_answers_with_one_point_per_step(
    env: tuple[Server, Client, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, sleeper("every", cpu=100, memory=16))
    name, cid = one_pod(svc)
    by_level = {
        "cluster": [{"name": "docker_clusterid", "value": cluster}],
        "node": [
            {"name": "docker_clusterid", "value": cluster},
            {"name": "unInstanceId", "value": node_of(c, cluster, svc.pods()[0]["nodeIp"])},
        ],
        "service": dims(cluster, "every"),
        "pod": dims(cluster, "every", name),
        "container": dims(cluster, "every", name, cid),
    }
    # The pause container starts before the app: wait for both to have rates.
    until("pod and container sampled twice", lambda: None not in (
        latest(c, "pod_in_packets", by_level["pod"]),
        latest(c, "container_cpu_used", by_level["container"]),
        latest(c, "service_cpu_used", by_level["service"])), timeout=60)  # fmt: skip
    start = time.time() - 600
    end = start + 600
    for metric in METRICS.values():
        res = c.call("GetMonitorData", {"namespace": metric.namespace, "metricName": metric.name,
                                        "dimensions": by_level[metric.level], "period": 60,
                                        "startTime": fmt(start), "endTime": fmt(end)})  # fmt: skip
        assert res["code"] == 0, (metric.name, res)
        assert res["metricName"] == metric.name and res["period"] == 60
        assert res["startTime"] == fmt(start) and res["endTime"] == fmt(end)
        assert len(res["dataPoints"]) in (10, 11)  # the closed interval, from the minute of start
        assert any(v is not None for v in res["dataPoints"]), metric.name
    # A machine that is not the cluster's (a made-up one, or none at all) is not found.
    res = monitor(c, "node_cpu_usage", [by_level["node"][0], {"name": "unInstanceId",
                                                              "value": "ins-nothere"}])  # fmt: skip
    assert res["code"] == -502 and "ins-nothere" in res["message"], res
    # Longer periods come from their own stored rollups: the current hour and day have data.
    for period in (300, 3600, 86400):
        res = monitor(c, "container_mem_used", by_level["container"], period=period, minutes=1)
        assert res["code"] == 0 and res["period"] == period, res
        assert res["dataPoints"][-1] is not None, res
    # Defaults: period 300 from today's midnight to now.
    res = c.call("GetMonitorData", {"namespace": "qce/docker", "metricName": "service_mem_used",
                                    "dimensions": by_level["service"]})  # fmt: skip
    assert res["code"] == 0 and res["period"] == 300, res
    assert res["startTime"].endswith("00:00:00")
    assert res["dataPoints"][-1] is not None
    # Through the official client, at the monitor host.
    monkeypatch.setattr(Monitor, "requestHost", f"127.0.0.1:{srv.https_port}")
    monkeypatch.setenv("SSL_CERT_FILE", str(srv.ca))
    api = QcloudApi(
        "monitor",
        {
            "Region": "gz",
            "secretId": srv.default.secret_id,
            "secretKey": srv.default.secret_key,
            "method": "GET",
        },
    )
    res = json.loads(
        api.call(
            "GetMonitorData",
            {
                "namespace": "qce/cvm",
                "metricName": "dc_mem_usage",
                "period": 60,
                "dimensions.0.name": "docker_clusterid",
                "dimensions.0.value": cluster,
            },
        )
    )
    assert res["code"] == 0 and res["codeDesc"] == "Success", res
    assert any(v is not None for v in res["dataPoints"]), res
    svc.call("DeleteClusterService")


def test_document_error_codes(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, sleeper("errs"))
    name, cid = one_pod(svc)
    good = {"namespace": "qce/docker", "metricName": "service_cpu_used",
            "dimensions": dims(cluster, "errs"), "period": 60}  # fmt: skip

    def call(**change: Any) -> dict[str, Any]:
        params = {**good, **change}
        return c.call("GetMonitorData", {k: v for k, v in params.items() if v is not None})

    def code(expected: int, desc: str, **change: Any) -> dict[str, Any]:
        res = call(**change)
        assert res["code"] == expected and res["codeDesc"] == desc, (change, res)
        return res

    assert call()["code"] == 0
    # -509: the dimensions do not make the object of the metric.
    for bad in (
        dims(cluster, "errs", name),  # a pod's dimensions for a service metric
        dims(cluster, "errs")[:2],  # namespace missing
        [{"name": "docker_clusterid", "value": cluster}],
        [*dims(cluster, "errs"), {"name": "clusterId", "value": cluster}],
    ):
        code(-509, "InvalidParameter.DimensionGroupError", dimensions=bad)
    code(-509, "InvalidParameter.DimensionGroupError", metricName="pod_in_flux")
    code(-509, "InvalidParameter.DimensionGroupError", namespace="qce/cvm",
         metricName="dc_cpu_usage")  # fmt: skip
    # -505: a required parameter is missing.
    res = code(-505, "InvalidParameter.MissingParameter", metricName=None)
    assert "metricName" in res["message"]
    code(-505, "InvalidParameter.MissingParameter", namespace=None)
    code(-505, "InvalidParameter.MissingParameter", dimensions=None)
    res = code(-505, "InvalidParameter.MissingParameter",
               dimensions=[{"name": "clusterId"}, *dims(cluster, "errs")[1:]])  # fmt: skip
    assert "dimensions.0.value" in res["message"]
    # -503: a wrong value.
    for change in (
        {"period": 120},
        {"period": "abc"},
        {"metricName": "service_cpu_burnt"},
        {"namespace": "qce/lb"},
        {"namespace": "qce/cvm"},  # service_cpu_used is in qce/docker
        {"startTime": "2017-13-01 00:00:00"},
        {"endTime": "yesterday"},
        {"startTime": fmt(time.time()), "endTime": fmt(time.time() - 3600)},
    ):
        code(-503, "InvalidParameter", **change)
    code(-503, "InvalidParameter", metricName="container_cpu_used",
         dimensions=dims(cluster, "errs", name, "zz-not-an-id"))  # fmt: skip
    # -507: more points than a request may return (a week at 60 s).
    code(-507, "OperationDenied.ExceedLimit", startTime=fmt(time.time() - 7 * 86400),
         endTime=fmt(time.time()))  # fmt: skip
    assert call(period=3600, startTime=fmt(time.time() - 7 * 86400))["code"] == 0
    # -502: objects that do not exist (also another account's cluster).
    code(-502, "OperationDenied.SourceNotExists", dimensions=dims("cls-nothere", "errs"))
    code(-502, "OperationDenied.SourceNotExists", dimensions=dims(cluster, "nosuch"))
    code(-502, "OperationDenied.SourceNotExists", metricName="pod_in_flux",
         dimensions=dims(cluster, "errs", "errs-0000000000-xxxxx"))  # fmt: skip
    code(-502, "OperationDenied.SourceNotExists", metricName="container_cpu_used",
         dimensions=dims(cluster, "errs", name, "0123456789ab"))  # fmt: skip
    other = srv.client(srv.new_account())
    res = other.call("GetMonitorData", good)
    assert res["code"] == -502, res
    # A sub-account needs the cluster in its allow-list.
    owner = str(srv.default.uin)
    sub = json.loads(srv.cli("subuser", "create", owner, "--action", "*", "--resource",
                             "cls-someother").stdout)  # fmt: skip
    res = Client(srv.http_url, sub["secretId"], sub["secretKey"]).call("GetMonitorData", good)
    assert res["code"] == 4102 and cluster in res["message"], res
    # The full container id works as well as its first 12 characters.
    full = [*dims(cluster, "errs", name), {"name": "containerId", "value": cid}]
    assert call(metricName="container_cpu_used", dimensions=full)["code"] == 0
    svc.call("DeleteClusterService")


def test_metrics_endpoint_needs_a_token(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, sleeper("scraped"))
    name, cid = one_pod(svc)
    url = f"{srv.http_url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer occm_wrong"}).status_code == 401
    token = json.loads(srv.cli("metrics-token", "create", "--note", "test").stdout)
    auth = {"Authorization": f"Bearer {token['token']}"}

    def scraped() -> Any:
        r = httpx.get(url, headers=auth)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        return r.text if f'container_id="{cid[:12]}"' in r.text else None

    text = until("the pod's container in /metrics", scraped, timeout=30)
    line = next(ln for ln in text.splitlines()
                if ln.startswith("openccs_container_mem_used{") and cid[:12] in ln)  # fmt: skip
    assert f'cluster="{cluster}"' in line and 'namespace="default"' in line
    assert 'service="scraped"' in line and f'pod="{name}"' in line and 'container="main"' in line
    assert float(line.rsplit(" ", 1)[1]) > 0
    assert "# TYPE openccs_dc_cpu_usage gauge" in text
    assert "openccs_monitor_sampler_cpu_seconds_total" in text
    listed = srv.cli("metrics-token", "ls").stdout
    assert token["id"] in listed and token["token"] not in listed
    srv.cli("metrics-token", "revoke", token["id"])
    assert httpx.get(url, headers=auth).status_code == 401
    svc.call("DeleteClusterService")


def test_rollups_survive_a_killed_server(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    where = [{"name": "docker_clusterid", "value": cluster}]
    before = monitor(c, "dc_mem_usage", where, minutes=5)
    assert before["code"] == 0
    measured = [i for i, v in enumerate(before["dataPoints"]) if v is not None]
    assert measured
    srv.kill9()
    srv.start()
    after = monitor(c, "dc_mem_usage", where, startTime=before["startTime"],
                    endTime=before["endTime"])  # fmt: skip
    assert after["code"] == 0
    for i in measured[:-1]:  # closed minutes are kept as they were
        assert after["dataPoints"][i] == before["dataPoints"][i]
    # And sampling goes on after the restart.
    until("sampled again", lambda: monitor(c, "dc_mem_usage", where, minutes=1)["dataPoints"][-1]
          is not None, timeout=90)  # fmt: skip


def test_dimensions_table_matches_document() -> None:
    assert DIMENSIONS["container"][-1] == "containerId"
    assert {m.level for m in METRICS.values()} == set(DIMENSIONS)
    assert len(METRICS) == 32
