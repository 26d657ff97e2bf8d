"""Cluster actions refuse bad input with the document's codes and create nothing; clusters
of other accounts do not exist; attributes, hubs and CIDR checks behave as documented."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from openccs.client import Client

from .conftest import Account, Server, unique_cluster_cidr, unique_vpc_cidr


def network(c: Client) -> tuple[str, str, str]:
    vpc = c.call("DescribeVpcEx")["data"][0]
    subnets = c.call("DescribeSubnetEx", {"vpcId": vpc["unVpcId"]})["data"]
    z3 = next(s for s in subnets if s["zoneId"] == 100003)
    z4 = next(s for s in subnets if s["zoneId"] == 100004)
    return vpc["unVpcId"], z3["unSubnetId"], z4["unSubnetId"]


def machine(subnet: str, **extra: Any) -> dict[str, Any]:
    return {
        "zoneId": "100003",
        "goodsNum": 1,
        "cpu": 1,
        "mem": 1,
        "bandwidthType": "PayByHour",
        "bandwidth": 0,
        "subnetId": subnet,
        "isVpcGateway": 0,
        "rootSize": 50,
        "storageSize": 0,
        **extra,
    }


def count(c: Client) -> tuple[int, int]:
    clusters = c.call("DescribeCluster")["data"]["totalCount"]
    machines = c.call("DescribeVpcEx")["data"][0]["vpcDeviceNum"]
    return clusters, machines


def account_with_vpc(server: Server) -> tuple[Account, Client]:
    """A fresh account with a VPC of its own (made through the operator's CLI)."""
    acct = server.new_account()
    cidr = unique_vpc_cidr()
    blocks = list(ipaddress.ip_network(cidr).subnets(new_prefix=24))
    server.cli("vpc", "create", acct.uin, "--cidr", cidr,
               "--subnet", f"ap-guangzhou-3={blocks[1]}",
               "--subnet", f"ap-guangzhou-4={blocks[2]}")  # fmt: skip
    return acct, server.client(acct)


@pytest.fixture(scope="module")
def owner(server: Server) -> tuple[Account, Client]:
    return account_with_vpc(server)


@pytest.fixture
def own(owner: tuple[Account, Client]) -> Client:
    return owner[1]


@pytest.mark.parametrize(
    ("change", "name", "code"),
    [
        ({"cpu": 3}, "mem", 4000),
        ({"instanceType": "S9.HUGE"}, "instanceType", 4000),
        ({"instanceType": "S2.MEDIUM4"}, "cpu", 4000),
        ({"zoneId": "ap-mars-1"}, "zoneId", 4000),
        ({"subnetId": "subnet-nothere1"}, "subnetId", 5000),
        ({"password": "short1"}, "password", 4000),
        ({"password": "onlyletters"}, "password", 4000),
        ({"password": "Passw0rd!", "keyId": "skey-abcdefgh"}, "keyId", 4000),
        ({"goodsNum": 101}, "goodsNum", 4000),
        ({"goodsNum": 0}, "goodsNum", 4000),
        ({"storageSize": 15}, "storageSize", 4000),
        ({"rootSize": 10}, "rootSize", 4000),
        ({"isVpcGateway": 2}, "isVpcGateway", 4000),
        ({"cvmType": "PayByMonth"}, "period", 4000),
        ({"bandwidthType": None}, "bandwidthType", 4000),
        ({"userScript": "not base64!"}, "userScript", 4000),
        ({"clusterCIDR": "8.8.0.0/16"}, "clusterCIDR", 4000),
        ({"clusterCIDR": "172.16.0.0/26"}, "clusterCIDR", 4000),
        ({"clusterCIDR": "nonsense"}, "clusterCIDR", 4000),
    ],
)
def test_create_cluster_bad_input_creates_nothing(
    own: Client, change: dict[str, Any], name: str, code: int
) -> None:
    vpc, sub3, _ = network(own)
    params = {"clusterName": "bad", "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc,
              "osName": "centos7.2x86_64", **machine(sub3)}  # fmt: skip
    params.update(change)
    before = count(own)
    res = own.call("CreateCluster", {k: v for k, v in params.items() if v is not None})
    assert res["code"] == code and name in res["message"], res
    assert count(own) == before


def test_subnet_of_another_zone_is_refused(own: Client) -> None:
    vpc, _, sub4 = network(own)
    res = own.call("CreateCluster", {"clusterName": "z", "clusterCIDR": unique_cluster_cidr(),
                   "vpcId": vpc, "osName": "x", **machine(sub4)})  # fmt: skip
    assert res["code"] == 4000 and "subnetId" in res["message"]


def test_cidr_checks(own: Client) -> None:
    vpc, _, _ = network(own)
    vpc_cidr = own.call("DescribeVpcEx")["data"][0]["cidrBlock"]
    res = own.call("CheckClusterCIDR", {"vpcId": vpc, "clusterCIDR": vpc_cidr})
    assert res["code"] == 4000 and res["codeDesc"] == "CIDRConflictWithVPCCIDR"
    # A /19 of our own: the cluster takes its first /20, the overlapping one all of it.
    wider = unique_cluster_cidr(prefix=19)
    cidr = str(next(ipaddress.ip_network(wider).subnets(new_prefix=20)))
    assert own.call("CheckClusterCIDR", {"vpcId": vpc, "clusterCIDR": cidr})["code"] == 0
    made = own.call("CreateEmptyCluster", {"clusterName": "a", "clusterCIDR": cidr, "vpcId": vpc})
    assert made["code"] == 0
    res = own.call("CheckClusterCIDR", {"vpcId": vpc, "clusterCIDR": cidr})
    assert res["code"] == 4000 and res["codeDesc"] == "ConflictWithOtherClusterCIDR"
    res = own.call("CreateEmptyCluster", {"clusterName": "b", "clusterCIDR": cidr, "vpcId": vpc})
    assert res["codeDesc"] == "ConflictWithOtherClusterCIDR"
    # Told to ignore the conflict, an overlapping cluster gets node networks of its own.
    res = own.call("CreateEmptyCluster", {"clusterName": "c", "clusterCIDR": wider, "vpcId": vpc,
                   "ignoreClusterCIDRConflict": 1})  # fmt: skip
    assert res["code"] in (0, 4000), res
    if res["code"] == 4000:  # the service range itself is taken: said plainly
        assert "service range" in res["message"]


def test_cluster_quota_and_node_quota(server: Server) -> None:
    acct, own = account_with_vpc(server)
    uin = acct.uin
    server.cli("account", "quota", uin, "clusters", "1")
    vpc, sub3, _ = network(own)
    first = own.call("CreateEmptyCluster", {"clusterName": "q1",
                     "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc})  # fmt: skip
    assert first["code"] == 0
    res = own.call("CreateEmptyCluster", {"clusterName": "q2",
                   "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc})  # fmt: skip
    assert res["code"] == 4400 and "clusters" in res["message"]
    server.cli("account", "quota", uin, "clusters", "5")
    server.cli("account", "quota", uin, "nodesPerCluster", "1")
    res = own.call("CreateCluster", {"clusterName": "n", "clusterCIDR": unique_cluster_cidr(),
                   "vpcId": vpc, "osName": "x", **machine(sub3, goodsNum=2)})  # fmt: skip
    assert res["code"] == 4400 and "nodesPerCluster" in res["message"]
    assert count(own) == (1, 0)


def test_attributes_hubs_and_tenancy(server: Server, owner: tuple[Account, Client]) -> None:
    acct, own = owner
    vpc, _, _ = network(own)
    made = own.call("CreateEmptyCluster", {"clusterName": "attrs", "vpcId": vpc,
                    "clusterCIDR": unique_cluster_cidr(), "clusterDesc": "d1"})  # fmt: skip
    assert made["code"] == 0, made
    cid = made["data"]["clusterId"]
    assert own.call("ModifyClusterAttributes", {"clusterId": cid, "clusterName": "renamed",
                    "clusterDesc": "d2"})["code"] == 0  # fmt: skip
    assert own.call("ModifyProjectId", {"clusterId": cid, "projectId": 7})["code"] == 0
    info = own.call("DescribeCluster", {"clusterIds": [cid]})["data"]["clusters"][0]
    assert (info["clusterName"], info["description"], info["projectId"]) == ("renamed", "d2", 7)

    hub = {"clusterId": cid, "domain": "hub.example.com", "username": "u", "password": "s3cret!",
           "namespaces": ["default"]}  # fmt: skip
    assert own.call("AddHubInfo", hub)["code"] == 0
    assert own.call("AddHubInfo", hub)["code"] == 4000  # the same domain twice
    hubs = own.call("DescribeHubInfo", {"clusterId": cid})["data"]
    assert hubs["totalCount"] == 1 and hubs["hubs"][0]["namespaces"] == ["default"]
    assert "password" not in json.dumps(hubs)
    engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'openccs.db'}")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_enc FROM hub_infos")).scalars().all()
    engine.dispose()
    assert stored and all("s3cret!" not in v for v in stored)

    other = server.client(server.new_account())
    for action, params in [
        ("DescribeClusterInstances", {"clusterId": cid}),
        ("ModifyClusterAttributes", {"clusterId": cid, "clusterDesc": "x"}),
        ("DeleteCluster", {"clusterId": cid}),
        ("DescribeHubInfo", {"clusterId": cid}),
    ]:
        res = other.call(action, params)
        assert res["code"] == 5000, (action, res)
    assert other.call("DescribeCluster")["data"]["totalCount"] == 0
    assert other.call("DescribeVpcEx")["totalCount"] == 0

    bad_label = own.call("ModifyClusterNodeLabel", {"clusterId": cid, "instanceId": "ins-x",
                         "labels": [{"key": "bad key!", "value": "v"}]})  # fmt: skip
    assert bad_label["code"] == 4000 and "labels.0.key" in bad_label["message"]
    missing = own.call("ModifyClusterNodeLabel", {"clusterId": cid, "instanceId": "ins-nothere1",
                       "labels": [{"key": "a", "value": "b"}]})  # fmt: skip
    assert missing["code"] == 5000

    done = own.call("DeleteCluster", {"clusterId": cid})
    assert done["code"] == 0
    assert server.wait_task(done["data"]["requestId"], acct)["status"] == "succ"
