"""Clusters on real machines, driven through the official client: create, inspect, label,
cordon, scale out and in, re-add, fail, delete; and bad input that creates nothing."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from QcloudApi.modules.ccs import Ccs
from QcloudApi.modules.vpc import Vpc
from QcloudApi.qcloudapi import QcloudApi

from openccs.cloud.images import import_busybox_image

from .conftest import Account, Server, unique_cluster_cidr
from .workload_helpers import agent_passes, metrics_token

RUN = Path("/run/openccs")


class Sdk:
    """The official client pointed at a test server."""

    def __init__(self, server: Server, account: Account, monkeypatch: pytest.MonkeyPatch):
        host = f"127.0.0.1:{server.https_port}"
        monkeypatch.setattr(Ccs, "requestHost", host)
        monkeypatch.setattr(Vpc, "requestHost", host)
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
        self.account = account
        self.server = server

    def call(self, action: str, params: dict[str, Any] | None = None, module: str = "ccs") -> Any:
        config = {
            "Region": "gz",
            "secretId": self.account.secret_id,
            "secretKey": self.account.secret_key,
            "method": "POST",
        }
        return json.loads(QcloudApi(module, config).call(action, params or {}))

    def ok(self, action: str, params: dict[str, Any] | None = None, module: str = "ccs") -> Any:
        res = self.call(action, params, module)
        assert res["code"] == 0, (action, res)
        return res.get("data")

    def wait(self, request_id: int, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.ok("DescribeClusterTaskResult", {"requestId": request_id})
            if data["status"] != "running":
                return dict(data)
            time.sleep(0.3)
        raise AssertionError(f"task {request_id} still running")

    def network(self, zone_id: int = 100003) -> tuple[str, str]:
        vpcs = self.call("DescribeVpcEx", {}, module="vpc")
        assert vpcs["code"] == 0 and vpcs["totalCount"] >= 1, vpcs
        vpc_id = vpcs["data"][0]["unVpcId"]
        subnets = self.call("DescribeSubnetEx", {"vpcId": vpc_id, "zoneIds": [zone_id]}, "vpc")
        assert subnets["code"] == 0 and subnets["totalCount"] == 1, subnets
        return vpc_id, subnets["data"][0]["unSubnetId"]

    def nodes(self, cluster_id: str) -> list[dict[str, Any]]:
        return list(self.ok("DescribeClusterInstances", {"clusterId": cluster_id})["nodes"])

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        data = self.ok("DescribeCluster", {"clusterIds": [cluster_id]})
        assert data["totalCount"] == 1
        return dict(data["clusters"][0])


def machine_params(subnet_id: str, goods: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "zoneId": "ap-guangzhou-3",
        "goodsNum": goods,
        "cpu": 1,
        "mem": 1,
        "bandwidthType": "PayByHour",
        "bandwidth": 0,
        "subnetId": subnet_id,
        "isVpcGateway": 0,
        "rootSize": 50,
        "storageSize": 0,
        "password": "Openccs-2018",
        **extra,
    }


def site_of(server: Server) -> str:
    return (server.data_dir / "site-id").read_text().strip()


def socket_of(server: Server, instance_id: str) -> Path:
    return RUN / site_of(server) / instance_id / "docker.sock"


def docker(server: Server, instance_id: str, *args: str) -> str:
    r = subprocess.run(
        ["docker", "-H", f"unix://{socket_of(server, instance_id)}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def dockerd_pid(server: Server, instance_id: str) -> int:
    return int((RUN / site_of(server) / instance_id / "docker.pid").read_text())


def host_leftovers(server: Server, instance_ids: list[str]) -> list[str]:
    site = site_of(server)
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for iid in instance_ids:
        short = iid.split("-")[1]
        if f"occ-{site}-{short}" in netns:
            found.append(f"netns of {iid}")
        if f"ov{site}{short}" in links:
            found.append(f"veth of {iid}")
        if (RUN / site / iid).exists():
            found.append(f"runtime dir of {iid}")
        if (server.data_dir / "machines" / iid).exists():
            found.append(f"machine dir of {iid}")
    procs = subprocess.run(["pgrep", "-af", f"/run/openccs/{site}/ins-"], capture_output=True,
                           text=True).stdout  # fmt: skip
    found += [line for line in procs.splitlines() if any(i in line for i in instance_ids)]
    return found


def test_cluster_lifecycle_with_real_machines(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Sdk(server, server.default, monkeypatch)
    vpc_id, subnet_id = api.network()
    cidr = unique_cluster_cidr()
    created = api.ok(
        "CreateCluster",
        {
            "clusterName": "life",
            "clusterCIDR": cidr,
            "vpcId": vpc_id,
            "osName": "ubuntu16.04.1 LTSx86_64",
            **machine_params(subnet_id, goods=2),
        },
    )
    cluster_id = created["clusterId"]
    assert api.cluster(cluster_id)["status"] in ("Creating", "Running")
    assert api.wait(created["requestId"])["status"] == "succ"

    info = api.cluster(cluster_id)
    assert info["status"] == "Running" and info["nodeStatus"] == "AllNormal"
    assert info["nodeNum"] == 2 and info["totalCpu"] == 2000 and info["totalMem"] == 2048
    nodes = api.nodes(cluster_id)
    assert {n["isNormal"] for n in nodes} == {1}
    vpc_net = ipaddress.ip_network(server.vpc_cidr)
    assert all(ipaddress.ip_address(n["lanIp"]) in vpc_net for n in nodes)
    pods = {n["podCidr"] for n in nodes}
    assert len(pods) == 2 and all(p.endswith("/24") for p in pods)
    assert nodes[0]["labels"]["beta.kubernetes.io/instance-type"] == "S1.SMALL1"
    a, b = nodes[0]["instanceId"], nodes[1]["instanceId"]

    # A container started by hand on machine A is reachable by its pod IP from machine B's
    # containers and from the host.
    for iid in (a, b):
        import_busybox_image(socket_of(server, iid), "openccs/busybox:test")
    docker(server, a, "run", "-d", "--name", "web", "openccs/busybox:test", "sh", "-c",
           "echo hello-from-a > /index.html; httpd -f -p 80 -h /")  # fmt: skip
    pod_ip = docker(server, a, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web")
    assert any(pod_ip.startswith(p.rsplit(".", 1)[0]) for p in pods)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert httpx.get(f"http://{pod_ip}/index.html", timeout=2).text == "hello-from-a\n"
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # (busybox-static's wget crashes here; nc speaks HTTP well enough)
    request = f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {pod_ip} 80"
    out = docker(server, b, "run", "--rm", "openccs/busybox:test", "sh", "-c", request)
    assert "hello-from-a" in out

    # Label and cordon a node.
    api.ok("ModifyClusterNodeLabel", {"clusterId": cluster_id, "instanceId": a,
           "labels": [{"key": "team", "value": "blue"}]})  # fmt: skip
    api.ok("ModifyClusterNodeSchedulable", {"clusterId": cluster_id, "instanceIds": [a],
           "unschedulable": 1})  # fmt: skip
    node_a = next(n for n in api.nodes(cluster_id) if n["instanceId"] == a)
    assert node_a["labels"]["team"] == "blue" and node_a["unschedulable"] is True

    # Scale out by one machine, with the CLI following the task machine by machine.
    # Its userScript takes a few seconds: the window in which the cluster is Scaling.
    script = base64.b64encode(b"sleep 3; echo joined").decode()
    args = [f"{k}={v}" for k, v in machine_params(subnet_id, userScript=script).items()]
    before = {n["instanceId"] for n in api.nodes(cluster_id)}
    follow = subprocess.Popen(
        [*server._base_args(), "call", "AddClusterInstances", f"clusterId={cluster_id}", *args,
         "--wait"], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    # While it scales, the document's preconditions hold other changes back.
    deadline = time.monotonic() + 10
    while api.cluster(cluster_id)["status"] != "Scaling" and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = api.call("AddClusterInstances", {"clusterId": cluster_id, **machine_params(subnet_id)})
    assert busy["code"] == 5100 and "Scaling" in busy["message"], busy
    busy = api.call("DeleteCluster", {"clusterId": cluster_id})
    assert busy["code"] == 5100 and "Scaling" in busy["message"], busy
    out, _ = follow.communicate(timeout=120)
    assert follow.returncode == 0, out
    (c,) = {n["instanceId"] for n in api.nodes(cluster_id)} - before
    assert f"{c}  running" in out and "done  machines" in out and out.strip().endswith("succ")
    assert api.cluster(cluster_id)["status"] == "Running"
    assert c in server.cli("node", "ls", cluster_id).stdout
    assert (server.data_dir / "machines" / c / "userscript.log").exists()
    assert cluster_id in server.cli("cluster", "ls").stdout

    # RemoveOnly keeps the machine as an existing CVM; it can be added back.
    removed = api.ok("DeleteClusterInstances", {"clusterId": cluster_id, "instanceIds": [b],
                     "nodeDeleteMode": "RemoveOnly"})  # fmt: skip
    assert api.wait(removed["requestId"])["status"] == "succ"
    assert b not in {n["instanceId"] for n in api.nodes(cluster_id)}
    existing = api.ok("DescribeExistedCvmForAddClusterInstances", {"clusterId": cluster_id})
    entry = {d["instanceId"]: d for d in existing["deviceList"]}
    assert entry[b]["usable"] is True and entry[a]["unusableReason"] == "already in Cluster"
    assert dockerd_pid(server, b) > 0  # the machine still runs
    readd = api.ok("AddClusterInstancesFromExistedCvm", {"clusterId": cluster_id,
                   "instanceIds": [b]})  # fmt: skip
    assert readd["succInstanceIds"] == [b]
    assert api.wait(readd["requestId"])["status"] == "succ"
    assert {n["instanceId"] for n in api.nodes(cluster_id)} == {a, b, c}

    # A machine whose dockerd dies is a failed node; the cluster is partly abnormal.
    os.kill(dockerd_pid(server, c), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        node_c = next(n for n in api.nodes(cluster_id) if n["instanceId"] == c)
        if node_c["isNormal"] == 0:
            break
        time.sleep(0.5)
    assert node_c["isNormal"] == 0 and "dockerd" in node_c["abnormalReason"]
    assert api.cluster(cluster_id)["nodeStatus"] == "PartialAbnormal"

    # Delete the cluster: nothing of its machines is left on the host, nor in /metrics
    # (the series of their node agents' passes go with the agents).
    with metrics_token(server, "cluster lifecycle") as token:
        assert {m for m, _ in agent_passes(server, token)} >= {a, b}
        deleting = api.ok("DeleteCluster", {"clusterId": cluster_id})
        assert api.wait(deleting["requestId"])["status"] == "succ"
        assert api.ok("DescribeCluster", {"clusterIds": [cluster_id]})["totalCount"] == 0
        assert host_leftovers(server, [a, b, c]) == []
        deadline = time.monotonic() + 30
        while {m for m, _ in agent_passes(server, token)} & {a, b, c}:
            assert time.monotonic() < deadline, agent_passes(server, token)
            time.sleep(0.5)
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert not any(p.split("/")[0] in routes for p in pods)


def test_restart_of_openccs_finds_machines_again(
    own_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    if own_server.backend != "sqlite":
        pytest.skip("the restart path is the same on both stores; machines are slow to make")
    srv = own_server
    api = Sdk(srv, srv.default, monkeypatch)
    vpc_id, subnet_id = api.network()
    created = api.ok(
        "CreateCluster",
        {"clusterName": "restart", "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc_id,
         "osName": "centos7.2x86_64", **machine_params(subnet_id)},
    )  # fmt: skip
    assert api.wait(created["requestId"])["status"] == "succ"
    (node,) = api.nodes(created["clusterId"])
    pid = dockerd_pid(srv, node["instanceId"])
    srv.kill9()
    os.kill(pid, 0)  # the machine kept running without the control plane
    srv.start()
    api = Sdk(srv, srv.default, monkeypatch)
    time.sleep(srv_health_interval())
    (again,) = api.nodes(created["clusterId"])
    assert again["isNormal"] == 1 and again["lanIp"] == node["lanIp"]
    assert dockerd_pid(srv, node["instanceId"]) == pid  # never started twice
    site = site_of(srv)
    daemons = subprocess.run(["pgrep", "-f", f"dockerd.*/run/openccs/{site}/"],
                             capture_output=True, text=True).stdout.split()  # fmt: skip
    assert len(daemons) == 1
    info = api.cluster(created["clusterId"])
    assert info["status"] == "Running" and info["nodeNum"] == 1


def srv_health_interval() -> float:
    return 6.0  # one health check period (5 s) and a margin


def test_a_machine_that_will_not_start_rolls_the_cluster_back(
    own_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    if own_server.backend != "sqlite":
        pytest.skip("the rollback path is the same on both stores")
    srv = own_server
    api = Sdk(srv, srv.default, monkeypatch)
    vpc_id, subnet_id = api.network()
    # Break the VPC underneath: its bridge is gone, so machines cannot join it.
    bridge = "ob" + site_of(srv) + vpc_id.split("-")[1]
    subprocess.run(["ip", "link", "del", bridge], check=True)
    created = api.ok(
        "CreateCluster",
        {"clusterName": "doomed", "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc_id,
         "osName": "centos7.2x86_64", **machine_params(subnet_id, goods=2)},
    )  # fmt: skip
    result = api.wait(created["requestId"])
    assert result["status"] == "fail" and "bridge" in result["reason"]
    assert api.ok("DescribeCluster", {})["totalCount"] == 0
    existing = srv.client().call("DescribeVpcEx", {})
    assert existing["data"][0]["vpcDeviceNum"] == 0  # no machine row is left either
    assert not list((srv.data_dir / "machines").glob("ins-*"))
