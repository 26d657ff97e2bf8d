"""`openccs cluster` and `openccs node`: readable tables of clusters and their nodes from
the state store; a cluster made or deleted in one line through the API, followed to its end."""

from __future__ import annotations

import argparse
from typing import Any

from openccs.cli.call import answer, wait_options
from openccs.cli.context import EXIT_FAILED, CliError, client, client_options, open_store, owners
from openccs.cli.context import settings as cli_settings
from openccs.cli.output import output_option, print_rows

DEFAULT_INSTANCE_TYPE = "S2.MEDIUM2"
DEFAULT_OS = "ubuntu16.04.1 LTSx86_64"


def cmd_cluster(args: argparse.Namespace) -> int:
    if args.op == "create":
        return _create(args)
    if args.op == "delete":
        if not args.name:
            raise CliError("usage: openccs cluster delete CLUSTER_ID")
        api = client(args)
        result = api.call("DeleteCluster", {"clusterId": args.name})
        return answer(api, result, wait=not args.no_wait, timeout=args.timeout)
    from sqlalchemy import select

    from openccs.domain import clusters as dom
    from openccs.store.models import Cluster
    from openccs.timeutil import fmt_time_zoned

    settings = cli_settings(args)
    store, _ = open_store(args)
    with store.session() as s:
        rows = []
        who = owners(s)
        for c in s.scalars(select(Cluster).order_by(Cluster.created_at)):
            x = dom.summarize(s, settings, c)  # what DescribeCluster says of it
            rows.append(
                {
                    "clusterId": c.id,
                    "clusterName": c.name,
                    "status": x.status,
                    "nodeNum": x.node_num,
                    "nodeStatus": x.node_status,
                    "clusterCIDR": c.cidr,
                    "unVpcId": c.vpc_id,
                    **who[c.account_id],
                    "createdAt": fmt_time_zoned(c.created_at),
                }
            )
    print_rows(args, rows)
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    from openccs.domain import clusters as dom
    from openccs.domain.cloud import zone_by_name
    from openccs.store.models import Cluster

    settings = cli_settings(args)
    store, _ = open_store(args)
    with store.session() as s:
        cluster = s.get(Cluster, args.cluster)
        if cluster is None:
            raise CliError(f"no cluster {args.cluster!r}", EXIT_FAILED)
        rows = []
        for n in dom.cluster_nodes(s, cluster.id):
            rows.append(
                {
                    "instanceId": n.id,
                    "lanIp": n.lan_ip,
                    "podCidr": n.pod_cidr or "",
                    "instanceType": n.instance_type,
                    "isNormal": 1 if n.is_normal else 0,
                    "unschedulable": n.unschedulable,
                    "zone": zone_by_name(settings, n.zone).name,
                    "abnormalReason": n.abnormal_reason,
                    "state": n.state,
                }
            )
    print_rows(args, rows)
    return 0


def _create(args: argparse.Namespace) -> int:
    """CreateCluster with the defaults filled in: the account's default VPC, its subnet in
    the zone, an instance type, and a cluster CIDR nothing on this host or VPC uses."""
    from openccs.config import INSTANCE_TYPES

    if not args.name:
        raise CliError("usage: openccs cluster create NAME [--machines N] [--zone Z]")
    types = {t.name: t for t in INSTANCE_TYPES}
    it = types.get(args.instance_type)
    if it is None:
        raise CliError(f"unknown --instance-type {args.instance_type!r}: one of {', '.join(types)}")
    api = client(args)
    vpc_id = args.vpc or _default_vpc(api)
    subnets = _ok(api.call("DescribeSubnetEx", {"vpcId": vpc_id, "limit": 100}))["data"]
    zone = args.zone or min((x["zone"] for x in subnets), default="")
    subnet = next((x["unSubnetId"] for x in subnets if x["zone"] == zone), None)
    if subnet is None:
        raise CliError(
            f"VPC {vpc_id} has no subnet in zone {zone!r}"
            f" (subnets in: {', '.join(sorted({x['zone'] for x in subnets})) or 'none'})"
        )
    cidr = args.cidr or _free_cluster_cidr(api, vpc_id)
    params = {
        "clusterName": args.name,
        "clusterCIDR": cidr,
        "vpcId": vpc_id,
        "osName": DEFAULT_OS,
        "zoneId": zone,
        "goodsNum": args.machines,
        "cpu": it.cpu,
        "mem": it.mem,
        "instanceType": it.name,
        "bandwidthType": "PayByHour",
        "bandwidth": 0,
        "subnetId": subnet,
        "isVpcGateway": 0,
        "rootSize": 50,
        "storageSize": 0,
    }
    result = api.call("CreateCluster", params)
    return answer(api, result, wait=not args.no_wait, timeout=args.timeout)


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("code") != 0:
        raise CliError(f"{result.get('codeDesc')}: {result.get('message')}", EXIT_FAILED)
    return result


def _default_vpc(api: Any) -> str:
    vpcs = _ok(api.call("DescribeVpcEx", {"limit": 100}))["data"]
    chosen = next((v for v in vpcs if v.get("isDefault")), vpcs[0] if vpcs else None)
    if chosen is None:
        raise CliError("the account has no VPC: make one with openccs vpc create, or give --vpc")
    return str(chosen["unVpcId"])


def _free_cluster_cidr(api: Any, vpc_id: str, prefix: int = 20) -> str:
    """The first /20 of 172.16.0.0/12, from the top, that this host does not route and that
    CheckClusterCIDR accepts in the VPC."""
    import ipaddress

    from openccs.cloud.component import routed_overlaps

    for net in reversed(list(ipaddress.ip_network("172.16.0.0/12").subnets(new_prefix=prefix))):
        if routed_overlaps(str(net)):
            continue
        check = api.call("CheckClusterCIDR", {"vpcId": vpc_id, "clusterCIDR": str(net)})
        if check.get("code") == 0:
            return str(net)
    raise CliError("no free cluster CIDR in 172.16.0.0/12: give one with --cidr")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def register(sub: Any) -> None:
    cl = sub.add_parser("cluster", help="clusters: openccs cluster ls|create NAME|delete ID")
    cl.add_argument("op", choices=["ls", "create", "delete"])
    cl.add_argument("name", nargs="?", help="create: the new cluster's name; delete: its id")
    cl.add_argument("--machines", type=_positive, default=1, help="create: machines (default 1)")
    cl.add_argument("--zone", help="create: zone (default: the first zone with a subnet)")
    cl.add_argument("--vpc", help="create: VPC id (default: the account's default VPC)")
    cl.add_argument("--cidr", help="create: cluster CIDR (default: a free /20 of 172.16/12)")
    cl.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, help="create: machine type")
    cl.add_argument("--no-wait", action="store_true", help="answer at once, do not follow")
    wait_options(cl, flag=False)
    client_options(cl)
    output_option(cl)
    cl.set_defaults(fn=cmd_cluster)

    no = sub.add_parser("node", help="a cluster's nodes: openccs node ls CLUSTER")
    no.add_argument("op", choices=["ls"])
    no.add_argument("cluster")
    output_option(no)
    no.set_defaults(fn=cmd_node)
