"""A cluster across the two zones of a VPC, on real machines: made in one zone's subnet and
grown with the other's through the official client, its pods reach each other, ClusterIPs,
load balancers and node ports from either zone (the host routes between the subnets, as the
VPC's router does in the cloud); a subnet of another VPC is refused and changes nothing;
removing the machines removes their routes."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from openccs.client import Client
from openccs.cloud import routes
from openccs.cloud.machine import MachineSpec

from .conftest import Server, unique_cluster_cidr, unique_vpc_cidr
from .test_clusters import Sdk, machine_params
from .workload_helpers import Svc, create, exec_in_pod, machine_netns, until, web

pytestmark = pytest.mark.xdist_group("zones")

ZONES = {"ap-guangzhou-3": 100003, "ap-guangzhou-4": 100004}


@dataclass
class Env:
    srv: Server
    sdk: Sdk
    c: Client
    cluster: str
    vpc: str
    subnets: dict[str, dict[str, Any]]  # zone -> DescribeSubnetEx entry
    nodes: dict[str, dict[str, Any]]  # zone -> DescribeClusterInstances entry


def default_network(sdk: Sdk) -> tuple[str, dict[str, dict[str, Any]]]:
    """The default VPC and its subnet in each zone, as a user finds them (vpc host)."""
    vpcs = sdk.call("DescribeVpcEx", {}, module="vpc")
    assert vpcs["code"] == 0, vpcs
    vpc = next(v["unVpcId"] for v in vpcs["data"] if v["isDefault"])
    subnets = {}
    for zone, zone_id in ZONES.items():
        res = sdk.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [zone_id]}, "vpc")
        assert res["code"] == 0 and res["totalCount"] == 1, res
        subnets[zone] = res["data"][0]
        assert subnets[zone]["zone"] == zone and subnets[zone]["unVpcId"] == vpc
    return vpc, subnets


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("zones")
    srv = Server(data_dir=base / "data", db_url=None,
                 extra_args=("--node-port-range", "30000-30100"))  # fmt: skip
    mp = pytest.MonkeyPatch()
    try:
        srv.start()
        sdk = Sdk(srv, srv.default, mp)
        vpc, subnets = default_network(sdk)
        zone3, zone4 = ZONES
        made = sdk.ok("CreateCluster", {
            "clusterName": "zones", "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc,
            "osName": "ubuntu16.04.1 LTSx86_64",
            **machine_params(subnets[zone3]["unSubnetId"], zoneId=zone3),
        })  # fmt: skip
        assert sdk.wait(made["requestId"])["status"] == "succ"
        cluster = made["clusterId"]
        # The second zone's subnet of the same VPC: the machine joins the cluster.
        added = sdk.ok("AddClusterInstances", {
            "clusterId": cluster, **machine_params(subnets[zone4]["unSubnetId"], zoneId=zone4),
        })  # fmt: skip
        task = sdk.wait(added["requestId"])
        assert task["status"] == "succ", task
        nodes = {n["zone"]: n for n in sdk.nodes(cluster)}
        yield Env(srv, sdk, srv.client(), cluster, vpc, subnets, nodes)
    finally:
        mp.undo()
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


def machine_routes(srv: Server, instance_id: str) -> dict[str, str]:
    """Pod CIDR -> next hop of openccs's routes in a machine."""
    out = subprocess.run(
        ["ip", "-n", machine_netns(srv, instance_id), "-4", "route", "show", "proto", "233"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {w[0]: w[w.index("via") + 1] for w in map(str.split, out.splitlines()) if "via" in w}


def host_routes() -> dict[str, str]:
    out = subprocess.run(["ip", "-4", "route", "show", "proto", "233"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return {w[0]: w[w.index("via") + 1] for w in map(str.split, out.splitlines()) if "via" in w}


def gateway(subnet: dict[str, Any]) -> str:
    return str(ipaddress.ip_network(subnet["cidrBlock"]).network_address + 1)


def test_next_hops_are_direct_within_a_subnet_and_the_gateway_beyond() -> None:
    spec = MachineSpec("ins-aaaaaaaa", "abcd", "vpc-aaaaaaaa", "10.1.1.3", 24, "10.1.1.1",
                       "172.20.0.0/24", 1.0, 1024, Path("/nonexistent"))  # fmt: skip
    table = {"172.20.0.0/24": "10.1.1.3", "172.20.1.0/24": "10.1.1.4",
             "172.20.2.0/24": "10.1.2.3"}  # fmt: skip
    assert routes.machine_routes(spec, table) == {
        "172.20.1.0/24": "10.1.1.4",  # same subnet: straight over the link
        "172.20.2.0/24": "10.1.1.1",  # another subnet (zone): the VPC router, the host
    }


def test_a_machine_in_each_zone_routes_the_other_zone_through_its_gateway(env: Env) -> None:
    assert set(env.nodes) == set(ZONES)
    for zone, node in env.nodes.items():
        subnet = ipaddress.ip_network(env.subnets[zone]["cidrBlock"])
        assert ipaddress.ip_address(node["lanIp"]) in subnet
        assert node["isNormal"] == 1 and node["zoneId"] == ZONES[zone]
    assert env.sdk.cluster(env.cluster)["status"] == "Running"
    zone3, zone4 = ZONES
    a, b = env.nodes[zone3], env.nodes[zone4]
    # Each machine reaches the other's pods through its own subnet's gateway (the host)...
    assert machine_routes(env.srv, a["instanceId"]) == {b["podCidr"]: gateway(env.subnets[zone3])}
    assert machine_routes(env.srv, b["instanceId"]) == {a["podCidr"]: gateway(env.subnets[zone4])}
    # ...and the host routes each pod CIDR to the machine that owns it.
    on_host = host_routes()
    assert on_host[a["podCidr"]] == a["lanIp"] and on_host[b["podCidr"]] == b["lanIp"]


def pinned(name: str, zone: str, **extra: Any) -> dict[str, Any]:
    """A one-pod web service on the machine of `zone`, with port 80 everywhere."""
    spec = web(name, replicas=1, **extra)
    spec["portMappings"] = [{"lbPort": 80, "containerPort": 80, "protocol": "TCP"}]
    spec["nodeAffinity"] = [{"key": "zone-test", "operator": "In", "values": [zone]}]
    return spec


REQUEST = "GET /index.html HTTP/1.0\r\n\r\n"


def ask_from(env: Env, pod: dict[str, Any], host: str, port: int) -> str:
    """Who answers HTTP on host:port, asked from inside a pod (with busybox nc: the static
    busybox wget crashes with some options)."""
    node = next(n for n in env.nodes.values() if n["lanIp"] == pod["nodeIp"])
    out = exec_in_pod(env.srv, node["instanceId"], pod["name"], "sh", "-c",
                      f"printf '{REQUEST}' | nc -w 3 {host} {port}")  # fmt: skip
    return out.splitlines()[-1] if out else ""


def ask(ip: str, port: int) -> str:
    """Who answers HTTP on ip:port, asked from the host (outside the cluster)."""
    try:
        return httpx.get(f"http://{ip}:{port}/index.html", timeout=3).text.strip()
    except httpx.HTTPError as exc:
        return f"no answer ({exc!r})"


def running_lb(svc: Svc) -> dict[str, Any]:
    def ready() -> Any:
        info = svc.info()
        return info if info["lbStatus"] == "Running" and info["externalIp"] else None

    return dict(until(f"{svc.name}'s balancer Running", ready, 60))


def test_pods_services_balancers_and_node_ports_across_zones(env: Env) -> None:
    zone3, zone4 = ZONES
    for zone, node in env.nodes.items():
        env.sdk.ok("ModifyClusterNodeLabel", {"clusterId": env.cluster,
                   "instanceId": node["instanceId"], "labels": [{"key": "zone-test",
                                                                 "value": zone}]})  # fmt: skip
    # East runs in zone 3 behind an inner balancer of the zone-4 subnet; west runs in zone 4
    # behind a public one. Both have a ClusterIP, a DNS name and a node port.
    inner = env.subnets[zone4]["unSubnetId"]
    specs = {"east": pinned("east", zone3, accessType="SvcLBTypeInner", subnetId=inner),
             "west": pinned("west", zone4, accessType="LoadBalancer")}  # fmt: skip
    svcs = {name: create(env.c, env.cluster, spec) for name, spec in specs.items()}
    pods, infos = {}, {}
    for name, zone in (("east", zone3), ("west", zone4)):
        (pods[name],) = svcs[name].wait_normal(1)
        assert pods[name]["nodeIp"] == env.nodes[zone]["lanIp"], pods[name]
        infos[name] = running_lb(svcs[name])
    assert ipaddress.ip_address(infos["east"]["externalIp"]) in ipaddress.ip_network(
        env.subnets[zone4]["cidrBlock"]
    )
    lans = [n["lanIp"] for n in env.nodes.values()]
    for target, info in infos.items():
        want = pods[target]["name"]
        node_port = info["portMappings"][0]["nodePort"]
        outside = [("its balancer", info["externalIp"], 80),
                   *((f"its node port on {lan}", lan, node_port) for lan in lans)]  # fmt: skip
        inside = [("its ClusterIP", info["serviceIp"], 80), ("its name", target, 80), *outside]
        for client, pod in pods.items():
            ways = inside if client == target else [("its pod", pods[target]["ip"], 80), *inside]
            for what, host, port in ways:
                until(f"{client}'s pod reaches {target} through {what} ({host}:{port})",
                      lambda pod=pod, host=host, port=port, want=want:
                      ask_from(env, pod, host, port) == want, 30)  # fmt: skip
        for what, ip, port in outside:
            until(f"the host reaches {target} through {what}",
                  lambda ip=ip, port=port, want=want: ask(ip, port) == want, 30)  # fmt: skip
    for svc in svcs.values():
        svc.call("DeleteClusterService")


def test_a_subnet_of_another_vpc_is_refused_and_changes_nothing(env: Env) -> None:
    cidr = ipaddress.ip_network(unique_vpc_cidr())
    made = json.loads(env.srv.cli(
        "vpc", "create", env.srv.default.uin, "--cidr", str(cidr),
        "--subnet", f"ap-guangzhou-4={next(cidr.subnets(new_prefix=24))}",
    ).stdout)  # fmt: skip
    (foreign,) = made["subnets"]
    listed = env.sdk.call("DescribeSubnetEx", {"subnetId": foreign}, "vpc")
    assert listed["code"] == 0 and listed["data"][0]["unVpcId"] != env.vpc, listed
    before = {n["instanceId"] for n in env.sdk.nodes(env.cluster)}
    clusters = env.sdk.ok("DescribeCluster", {})["totalCount"]

    res = env.sdk.call("AddClusterInstances", {
        "clusterId": env.cluster, **machine_params(foreign, zoneId="ap-guangzhou-4"),
    })  # fmt: skip
    assert res["code"] == 4000, res
    assert "subnetId" in res["message"] and "not in the cluster's VPC" in res["message"], res
    assert foreign in res["message"] and env.vpc in res["message"], res
    assert {n["instanceId"] for n in env.sdk.nodes(env.cluster)} == before
    assert env.sdk.cluster(env.cluster)["status"] == "Running"

    res = env.sdk.call("CreateCluster", {
        "clusterName": "elsewhere", "clusterCIDR": unique_cluster_cidr(), "vpcId": env.vpc,
        "osName": "ubuntu16.04.1 LTSx86_64", **machine_params(foreign, zoneId="ap-guangzhou-4"),
    })  # fmt: skip
    assert res["code"] == 4000, res
    assert "subnetId" in res["message"] and "not in the cluster's VPC" in res["message"], res
    res = env.sdk.call("CreateEmptyCluster", {
        "clusterName": "elsewhere", "clusterCIDR": unique_cluster_cidr(), "vpcId": env.vpc,
        "masterSubnetId": foreign,
    })  # fmt: skip
    assert res["code"] == 4000 and "masterSubnetId" in res["message"], res
    assert env.sdk.ok("DescribeCluster", {})["totalCount"] == clusters
    other = env.sdk.call("DescribeVpcEx", {"vpcId": made["vpcId"]}, "vpc")["data"]
    assert other[0]["vpcDeviceNum"] == 0, other


def test_removing_the_machines_removes_their_routes(env: Env) -> None:
    zone3, zone4 = ZONES
    a, b = env.nodes[zone3], env.nodes[zone4]
    gone = env.sdk.ok("DeleteClusterInstances", {"clusterId": env.cluster,
                                                 "instanceIds": [b["instanceId"]]})  # fmt: skip
    assert env.sdk.wait(gone["requestId"])["status"] == "succ"
    assert machine_routes(env.srv, a["instanceId"]) == {}
    assert b["podCidr"] not in host_routes() and b["lanIp"] not in host_routes().values()
    deleting = env.sdk.ok("DeleteCluster", {"clusterId": env.cluster})
    assert env.sdk.wait(deleting["requestId"])["status"] == "succ"
    left = host_routes()
    assert a["podCidr"] not in left and a["lanIp"] not in left.values(), left
