"""`/metrics` by Prometheus conventions: base units and cumulative counters named as
cAdvisor and the kubelet name them, openccs's own request, task, pass and registry
series; checked by promtool and scraped by a real Prometheus."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openccs import instruments
from openccs.monitor import collect, prometheus
from openccs.monitor.sampler import Sampler, Series

from .conftest import BACKENDS, Server, database_url, free_port
from .workload_helpers import BUSYBOX, create, make_cluster, until

pytestmark = pytest.mark.xdist_group("monitor")

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def promtool_check(text: str) -> str:
    """promtool's complaints about an exposition ('' when it has none)."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode in (0, 3), r.stderr  # 3: lint problems, listed on stderr
    return r.stderr.strip()


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)] of an exposition (enough for the names and labels used here)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = {}
        for part in filter(None, rest.rstrip("}").split('",')):
            k, _, v = part.partition('="')
            labels[k] = v.rstrip('"')
        out.setdefault(name, []).append((labels, float(value)))
    return out


def fake_sampler() -> Sampler:
    sampler = Sampler(store=None, machine=lambda n: ("", Path("/"), Path("/")))  # type: ignore[arg-type]
    container = collect.ContainerReading("abcdef0123456789", "web", 2_500_000_000, 64 << 20,
                                         (4096, 8192, 2, 3))  # fmt: skip
    pod = collect.PodReading("uid-1", (1000, 10, 2000, 20), [container])
    sampler.latest_readings = {"cls-a": [collect.MachineReading("ins-1", 7_000_000_000, 1 << 30,
                                                               {"uid-1": pod})]}  # fmt: skip
    sampler.latest_pods = {"uid-1": ("default", "web-1")}
    base = {"cluster": "cls-a", "namespace": "default", "service": "web", "pod": "web-1"}
    sampler.latest = [
        Series("node", {"cluster": "cls-a", "node": "ins-1"}, {"node_cpu_usage": 12.5}),
        Series("pod", base, {"pod_in_flux": 0.5, "pod_in_bandwidth": 0.1}),
        Series("container", {**base, "container": "abcdef012345", "container_name": "web"},
               {"container_mem_used": 64.0}),
    ]  # fmt: skip
    return sampler


def test_conventional_series_in_base_units_and_promtool_has_no_complaint() -> None:
    instruments.API_REQUESTS.inc("DescribeCluster", "0")
    instruments.API_DURATION.observe("DescribeCluster", seconds=0.02)
    instruments.TASKS.inc("cluster.create", "succ")
    instruments.PASSES.observe("engine", seconds=0.3)
    instruments.REGISTRY_EVENTS.inc("push")
    text = prometheus.render(fake_sampler(), {"ins-1": "10.0.1.5"}, {"ins-1": 123})
    assert promtool_check(text) == ""
    got = parse(text)
    where = {"cluster": "cls-a", "namespace": "default", "pod": "web-1", "node": "10.0.1.5",
             "container": "web", "container_id": "abcdef012345"}  # fmt: skip
    assert got["container_cpu_usage_seconds_total"] == [(where, 2.5)]
    assert got["container_memory_working_set_bytes"] == [(where, float(64 << 20))]
    assert got["container_fs_writes_bytes_total"] == [(where, 8192.0)]
    net = {k: v for k, v in where.items() if k not in ("container", "container_id")}
    assert got["container_network_receive_bytes_total"] == [({**net, "interface": "eth0"}, 1000)]
    assert got["container_network_transmit_packets_total"][0][1] == 20
    assert got["node_cpu_usage_seconds_total"] == [({"cluster": "cls-a", "node": "10.0.1.5"}, 7)]
    assert got["openccs_log_shipper_lag_bytes"] == [({"node": "10.0.1.5"}, 123)]
    # The document's gauges stay, labelled like the conventional series; per-pass amounts go.
    doc = {k: v for k, v in where.items() if k != "node"}
    assert got["openccs_container_mem_used"] == [({**doc, "service": "web"}, 64.0)]
    assert got["openccs_node_cpu_usage"][0][0] == {"cluster": "cls-a", "node": "10.0.1.5",
                                                   "instance_id": "ins-1"}  # fmt: skip
    assert "openccs_pod_in_bandwidth" in got and "openccs_pod_in_flux" not in got
    # openccs's own.
    assert ({"action": "DescribeCluster", "code": "0"}, 1.0) in [
        (labels, v) for labels, v in got["openccs_api_requests_total"]
        if labels.get("action") == "DescribeCluster"
    ]  # fmt: skip
    inf = [v for labels, v in got["openccs_api_request_duration_seconds_bucket"]
           if labels == {"action": "DescribeCluster", "le": "+Inf"}]  # fmt: skip
    assert inf and inf[0] >= 1
    assert got["openccs_tasks_total"] and got["openccs_controller_pass_duration_seconds_count"]
    assert max(got["openccs_registry_events_total"]) >= ({"action": "push"}, 1.0)


def test_histogram_buckets_are_cumulative() -> None:
    h = instruments.Histogram("t_seconds", "test", ("x",), buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 0.5, 5.0):
        h.observe("a", seconds=seconds)
    got = parse("\n".join(h.render()))
    assert [v for _, v in got["t_seconds_bucket"]] == [1, 3, 4]
    assert got["t_seconds_sum"] == [({"x": "a"}, 6.05)] and got["t_seconds_count"][0][1] == 4


# -- a real server, a real cluster and a real Prometheus ----------------------------------


@pytest.fixture(scope="module", params=BACKENDS[:1])
def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    base = tmp_path_factory.mktemp("metrics")
    srv = Server(
        data_dir=base / "data",
        db_url=database_url(request.param, base),
        extra_args=("--sample-interval", "1"),
    )
    try:
        srv.start()
        yield srv, make_cluster(srv, machines=1)
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


@pytest.fixture
def prom(env: tuple[Server, str], tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping the server's /metrics every second; its query URL."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    srv, _ = env
    token = json.loads(srv.cli("metrics-token", "create", "--note", "prometheus").stdout)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: openccs\n"
        f"    authorization: {{type: Bearer, credentials: {token['token']}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{srv.http_port}']}}]\n"
    )
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/api/v1/query"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        srv.cli("metrics-token", "revoke", token["id"])


def query(url: str, promql: str) -> list[dict[str, Any]]:
    try:
        r = httpx.get(url, params={"query": promql}, timeout=5)
    except httpx.HTTPError:
        return []
    if r.status_code != 200:
        return []
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def test_prometheus_scrapes_rates_of_a_busy_container_by_kubectl_names(
    env: tuple[Server, str], prom: str
) -> None:
    srv, cluster = env
    c = srv.client()
    burn = {"containerName": "burn", "image": BUSYBOX, "command": "sh",
            "arguments": ["-c", "while :; do :; done"]}  # fmt: skip
    svc = create(c, cluster, {"serviceName": "burner", "replicas": 1, "accessType": "None",
                              "containers": [burn]})  # fmt: skip
    try:
        (pod,) = svc.wait_normal(1)
        where = f'cluster="{cluster}",namespace="default",container="burn"'
        promql = f"rate(container_cpu_usage_seconds_total{{{where}}}[5s]) > 0.05"
        # A busy loop: well above 5 % of a core, even on a loaded host.
        (series,) = until("a CPU rate from Prometheus", lambda: query(prom, promql), timeout=90)
        assert series["metric"]["pod"] == pod["name"]
        assert series["metric"]["node"] == pod["nodeIp"]  # the LAN address, as kubectl shows it
        up = query(prom, 'up{job="openccs"}')
        assert up and up[0]["value"][1] == "1"
        requests = until(
            "openccs's own request counter",
            lambda: query(prom, 'openccs_api_requests_total{action="CreateClusterService"}'),
            timeout=30,
        )
        assert float(requests[0]["value"][1]) >= 1
        # The whole exposition passes promtool as scraped.
        token = json.loads(srv.cli("metrics-token", "create").stdout)
        text = httpx.get(f"{srv.http_url}/metrics",
                         headers={"Authorization": f"Bearer {token['token']}"}).text  # fmt: skip
        srv.cli("metrics-token", "revoke", token["id"])
        assert promtool_check(text) == ""
        assert "openccs_controller_pass_duration_seconds_bucket" in text
        assert 'openccs_tasks_total{type="cluster.create",outcome="succ"}' in text
    finally:
        svc.call("DeleteClusterService")
