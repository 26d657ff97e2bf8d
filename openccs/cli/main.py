"""`openccs`: serve, administer accounts and keys, call the API, check the machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from openccs.cli import kubeconfig
from openccs.config import Settings, default_data_dir


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("OPENCCS_DATA_DIR") or default_data_dir())


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=_data_dir(args),
        database_url=getattr(args, "database_url", None) or os.environ.get("OPENCCS_DATABASE_URL"),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from openccs.log import setup_logging
    from openccs.server import serve

    setup_logging(args.log_level)
    settings = _settings(args)
    settings.http = args.http or None
    settings.https = args.https or None
    settings.enable_test_actions = args.enable_test_actions
    settings.allow_public_plain_http = args.allow_public_http
    settings.allow_privileged = args.allow_privileged
    settings.timestamp_window = args.timestamp_window
    settings.request_read_timeout = args.request_read_timeout
    settings.max_connections_per_client = args.max_connections_per_client
    settings.timezone = args.timezone
    settings.default_vpc_cidr = args.default_vpc_cidr
    settings.node_grace = args.node_grace
    settings.health_interval = args.health_interval
    settings.engine_resync = args.engine_resync
    settings.lb_pool = args.lb_pool
    low, _, high = args.node_port_range.partition("-")
    settings.node_port_range = (int(low), int(high or low))
    settings.asg_minute_seconds = args.asg_minute_seconds
    settings.asg_scan_interval = args.asg_scan_interval
    settings.sample_interval = args.sample_interval
    settings.monitor_max_points = args.monitor_max_points
    if args.monitor_retention:
        try:
            settings.monitor_retention = parse_retention(args.monitor_retention)
        except ValueError as exc:
            print(f"openccs: --monitor-retention: {exc}", file=sys.stderr)
            return 2
    settings.kube_public_address = args.kube_public_address
    settings.console_session_ttl = args.console_session_ttl
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            print("openccs: give both --tls-cert and --tls-key", file=sys.stderr)
            return 2
        settings.tls_cert, settings.tls_key = Path(args.tls_cert), Path(args.tls_key)
    from openccs.cloud.host import CloudError
    from openccs.errors import ApiError

    try:
        serve(settings)
    except (ApiError, CloudError) as exc:
        print(f"openccs: cannot start: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _open(args: argparse.Namespace) -> Any:
    from openccs.server import open_store

    return open_store(_settings(args))


def _print_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    if not rows:
        print("(none)")
        return
    cols = columns or list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _owners(s: Any) -> dict[int, dict[str, Any]]:
    """Accounts as people name them (appId, uin), by their row id."""
    from sqlalchemy import select

    from openccs.store.models import Account

    return {a.id: {"appId": a.app_id, "uin": a.uin} for a in s.scalars(select(Account))}


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _read_password() -> str:
    """A console password: asked twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("console password: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit("openccs: the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_account(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from openccs.console.auth import set_password
    from openccs.domain import accounts as acc
    from openccs.store.models import Account

    store, box = _open(args)
    with store.session() as s:
        if args.op == "create":
            a = acc.create_account(s, name=args.name or "")
            out: dict[str, Any] = {"appId": a.app_id, "uin": a.uin, "name": a.name}
            if not args.no_key:
                k = acc.create_key(s, box, a)
                out.update(secretId=k.secret_id, secretKey=k.secret_key)
            print(json.dumps(out, indent=2))
        elif args.op == "ls":
            rows = [
                {"appId": a.app_id, "uin": a.uin, "name": a.name, "enabled": a.enabled}
                for a in s.scalars(select(Account).order_by(Account.id))
            ]
            _print_table(rows)
        elif args.op in ("disable", "enable"):
            acc.get_account(s, args.account).enabled = args.op == "enable"
        elif args.op == "quota":
            a = acc.get_account(s, args.account)
            if args.name_value:
                if len(args.name_value) != 2 or not args.name_value[1].lstrip("-").isdigit():
                    raise acc.AccountError("usage: account quota ACCOUNT [NAME VALUE]")
                acc.set_quota(s, a.id, args.name_value[0], int(args.name_value[1]))
            _print_table([{"quota": k, "value": v} for k, v in acc.all_quotas(s, a.id).items()])
        elif args.op == "password":
            uin = set_password(s, args.account or "", _read_password(), subuser=False)
            print(f"console password set for {uin}")
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from openccs.domain import accounts as acc
    from openccs.store.models import ApiKey, SubUser

    store, box = _open(args)
    with store.session() as s:
        if args.op == "create":
            a = acc.get_account(s, args.ref)
            sub = acc.get_subuser(s, args.subuser) if args.subuser else None
            if sub is not None and sub.account_id != a.id:
                raise acc.AccountError(f"sub-account {args.subuser} is not {a.uin}'s")
            k = acc.create_key(s, box, a, sub)
            print(json.dumps({"secretId": k.secret_id, "secretKey": k.secret_key}, indent=2))
        elif args.op == "ls":
            q = select(ApiKey, SubUser.uin).outerjoin(SubUser, SubUser.id == ApiKey.subuser_id)
            if args.ref:
                q = q.where(ApiKey.account_id == acc.get_account(s, args.ref).id)
            owners = _owners(s)
            _print_table(
                [
                    {
                        "secretId": k.secret_id,
                        **owners[k.account_id],
                        "subuser": sub_uin or "",
                        "enabled": k.enabled,
                    }
                    for k, sub_uin in s.execute(q)
                ]
            )
        elif args.op in ("disable", "enable"):
            acc.set_key_enabled(s, args.ref, args.op == "enable")
        elif args.op == "delete":
            acc.delete_key(s, args.ref)
    return 0


def cmd_cert(args: argparse.Namespace) -> int:
    """Server certificates for HTTPS ingress rules (the ingress's certId)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from sqlalchemy import select

    from openccs.domain import accounts as acc
    from openccs.ids import new_id
    from openccs.timeutil import fmt_time_zoned
    from openccs.traffic.models import Certificate

    store, box = _open(args)
    with store.session() as s:
        if args.op == "upload":
            if not (args.ref and args.cert and args.key):
                raise acc.AccountError("give the account, --cert FILE and --key FILE")
            account = acc.get_account(s, args.ref)
            chain = Path(args.cert).read_text()
            key_text = Path(args.key).read_text()
            try:
                certs = x509.load_pem_x509_certificates(chain.encode())
                key = serialization.load_pem_private_key(key_text.encode(), password=None)
            except ValueError as exc:
                raise acc.AccountError(f"not a PEM certificate chain and key: {exc}") from None
            mine = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            theirs = (
                certs[0]
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            if mine != theirs:
                raise acc.AccountError("the key does not belong to the first certificate")
            row = Certificate(
                id=new_id("cert"),
                account_id=account.id,
                name=args.name or certs[0].subject.rfc4514_string()[:128],
                cert_pem=chain,
                key_enc=box.encrypt(key_text),
            )
            s.add(row)
            s.flush()
            print(json.dumps({"certId": row.id}, indent=2))
        elif args.op == "ls":
            q = select(Certificate).order_by(Certificate.created_at)
            if args.ref:
                q = q.where(Certificate.account_id == acc.get_account(s, args.ref).id)
            owners = _owners(s)
            _print_table(
                [
                    {"certId": c.id, **owners[c.account_id], "name": c.name,
                     "createdAt": fmt_time_zoned(c.created_at)}
                    for c in s.scalars(q)
                ]
            )  # fmt: skip
        elif args.op == "delete":
            row = s.get(Certificate, args.ref)
            if row is None:
                raise acc.AccountError(f"no certificate {args.ref!r}")
            s.delete(row)
    return 0


def cmd_subuser(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from openccs.console.auth import set_password
    from openccs.domain import accounts as acc
    from openccs.store.models import SubUser

    store, box = _open(args)
    with store.session() as s:
        if args.op == "create":
            a = acc.get_account(s, args.ref)
            sub = acc.create_subuser(s, a, args.name or "", args.action, args.resource)
            out: dict[str, Any] = {"uin": sub.uin, "name": sub.name}
            if not args.no_key:
                k = acc.create_key(s, box, a, sub)
                out.update(secretId=k.secret_id, secretKey=k.secret_key)
            print(json.dumps(out, indent=2))
        elif args.op == "ls":
            q = select(SubUser)
            if args.ref:
                q = q.where(SubUser.account_id == acc.get_account(s, args.ref).id)
            _print_table(
                [
                    {
                        "uin": u.uin,
                        "name": u.name,
                        "actions": u.allowed_actions,
                        "resources": u.allowed_resources,
                    }
                    for u in s.scalars(q)
                ]
            )
        elif args.op in ("allow", "revoke"):
            sub = acc.get_subuser(s, args.ref)
            actions, resources = list(sub.allowed_actions), list(sub.allowed_resources)
            for lst, new in ((actions, args.action or []), (resources, args.resource or [])):
                for item in new:
                    if args.op == "allow" and item not in lst:
                        lst.append(item)
                    elif args.op == "revoke" and item in lst:
                        lst.remove(item)
            sub.allowed_actions, sub.allowed_resources = actions, resources
        elif args.op == "password":
            uin = set_password(s, args.ref or "", _read_password(), subuser=True)
            print(f"console password set for {uin}")
    return 0


def _parse_kv(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"openccs call: expected name=value, got {pair!r}")
        params[name] = value
    return params


class CliError(Exception):
    """A command that cannot go on: its message, printed as `openccs: ...`, exit code 2."""


def _client(args: argparse.Namespace) -> Any:
    """A signed API client for the data directory's server and credentials (or the options)."""
    from openccs.client import Client
    from openccs.server import read_endpoints

    data_dir = _data_dir(args)
    creds: dict[str, Any] = {}
    cred_path = data_dir / "credentials.json"
    if cred_path.exists():
        creds = json.loads(cred_path.read_text())
    secret_id = args.secret_id or os.environ.get("OPENCCS_SECRET_ID") or creds.get("secretId")
    secret_key = args.secret_key or os.environ.get("OPENCCS_SECRET_KEY") or creds.get("secretKey")
    if not secret_id or not secret_key:
        raise CliError("no credentials (give --secret-id/--secret-key)")
    endpoints = read_endpoints(data_dir)
    endpoint = args.endpoint or endpoints.get("https") or endpoints.get("http")
    if not endpoint:
        raise CliError("no endpoint (give --endpoint, or start openccs serve)")
    ca = args.ca or (str(data_dir / "tls" / "ca.pem") if endpoint.startswith("https") else None)
    return Client(
        endpoint,
        secret_id,
        secret_key,
        ca=ca,
        region=args.region,
        method=args.method,
        signature_method=args.signature_method,
    )


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False), flush=True)


def cmd_call(args: argparse.Namespace) -> int:
    client = _client(args)
    result = client.call(args.action, _parse_kv(args.params))
    return _answer(client, result, wait=args.wait, table=args.table)


def _answer(client: Any, result: dict[str, Any], wait: bool, table: bool = False) -> int:
    """Print an action's answer; with `wait`, then follow the task it started to its end.
    Exit code 0 only when the action (and its task) succeeded."""
    if table and result.get("code") == 0:
        _print_result_table(result.get("data"))
    else:
        _print_json(result)
    if result.get("code") != 0:
        return 1
    data = result.get("data")
    request_id = data.get("requestId") if isinstance(data, dict) else None
    if wait and request_id:
        return _wait(client, int(request_id))
    return 0


def _wait(client: Any, request_id: int) -> int:
    """Follow a task until it ends, showing each step as it completes."""
    shown: set[str] = set()
    seen: set[tuple[str, str]] = set()
    while True:
        res = client.call("DescribeClusterTaskResult", {"requestId": request_id})
        if res.get("code") != 0:
            _print_json(res)
            return 1
        data = res["data"]
        for item, status in data.get("progress", {}).items():
            if (item, status) not in seen:
                seen.add((item, status))
                print(f"  {item}  {status}", flush=True)
        for step in data.get("steps", []):
            if step["status"] == "done" and step["name"] not in shown:
                shown.add(step["name"])
                print(f"  done  {step['name']}", flush=True)
        if data["status"] != "running":
            print(f"task {request_id}: {data['status']} {data.get('reason') or ''}".rstrip())
            return 0 if data["status"] == "succ" else 1
        time.sleep(0.5)


def _print_result_table(data: Any) -> None:
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if lists and all(isinstance(x, dict) for x in lists[0]):
            _print_table(lists[0])
            return
        _print_table([{"field": k, "value": v} for k, v in data.items()])
    elif isinstance(data, list):
        _print_table(data)
    else:
        print(data)


def cmd_vpc(args: argparse.Namespace) -> int:
    """VPCs and subnets: rows in the database, bridges and gateway addresses on the host."""
    from sqlalchemy import select

    from openccs.cloud import vpc as hostvpc
    from openccs.cloud.component import check_unrouted, site_id
    from openccs.cloud.host import CloudError
    from openccs.domain import accounts as acc
    from openccs.domain import cloud
    from openccs.errors import ApiError
    from openccs.store.models import Subnet, Vpc

    settings = _settings(args)
    store, _ = _open(args)
    try:
        with store.session() as s:
            if args.op == "ls":
                rows = []
                owners = _owners(s)
                for v in s.scalars(select(Vpc).order_by(Vpc.num_id)):
                    for sub in s.scalars(select(Subnet).where(Subnet.vpc_id == v.id)):
                        rows.append(
                            {
                                "vpc": v.id,
                                "vpcCidr": v.cidr,
                                **owners[v.account_id],
                                "subnet": sub.id,
                                "subnetCidr": sub.cidr,
                                "zone": sub.zone,
                            }
                        )
                    if not any(r["vpc"] == v.id for r in rows):
                        rows.append({"vpc": v.id, "vpcCidr": v.cidr, **owners[v.account_id]})
                _print_table(rows)
                return 0
            site = site_id(settings.data_dir)
            if args.op == "delete":
                _vpc_delete(s, site, args.ref)
                print(json.dumps({"deleted": args.ref}))
            elif args.op == "create":
                if not args.cidr:
                    raise acc.AccountError("give --cidr")
                account = acc.get_account(s, args.ref)
                check_unrouted(args.cidr, "--cidr")
                v = cloud.create_vpc(s, account.id, args.cidr, args.name or "")
                created = [cloud.create_subnet(s, settings, v, c, z) for z, c in _zones(args)]
                hostvpc.ensure_vpc(site, v.id, v.cidr)
                for sub in created:
                    hostvpc.ensure_subnet(site, v.id, str(cloud.gateway_of(sub.cidr)))
                print(json.dumps({"vpcId": v.id, "subnets": [x.id for x in created]}, indent=2))
            elif args.op == "subnet":
                v = s.get(Vpc, args.ref)
                if v is None:
                    raise acc.AccountError(f"no VPC {args.ref!r}")
                created = [cloud.create_subnet(s, settings, v, c, z) for z, c in _zones(args)]
                for sub in created:
                    hostvpc.ensure_subnet(site, v.id, str(cloud.gateway_of(sub.cidr)))
                print(json.dumps({"subnets": [x.id for x in created]}, indent=2))
    except (ApiError, CloudError) as exc:
        raise acc.AccountError(exc.message) from None
    return 0


def _vpc_delete(s: Any, site: str, vpc_id: str | None) -> None:
    """A VPC without clusters or machines: its rows, then its bridge and rules on the host."""
    from sqlalchemy import delete, func, select

    from openccs.cloud import vpc as hostvpc
    from openccs.store.models import Cluster, Instance, Subnet, Vpc

    v = s.get(Vpc, vpc_id) if vpc_id else None
    if v is None:
        raise CliError(f"no VPC {vpc_id!r} (openccs vpc ls lists them)")
    clusters = s.scalars(select(Cluster.id).where(Cluster.vpc_id == v.id)).all()
    machines = s.scalar(select(func.count()).where(Instance.vpc_id == v.id))
    if clusters or machines:
        raise CliError(
            f"VPC {v.id} still holds {len(clusters)} cluster(s) {' '.join(clusters)} and"
            f" {machines} machine(s): delete them first (openccs cluster delete CLUSTER)"
        )
    s.execute(delete(Subnet).where(Subnet.vpc_id == v.id))
    s.delete(v)
    s.flush()
    hostvpc.delete_vpc(site, v.id)


def _zones(args: argparse.Namespace) -> list[tuple[str, str]]:
    pairs = []
    for item in args.subnet or []:
        zone, sep, cidr = item.partition("=")
        if not sep:
            raise SystemExit(f"openccs vpc: --subnet takes ZONE=CIDR, got {item!r}")
        pairs.append((zone, cidr))
    return pairs


DEFAULT_INSTANCE_TYPE = "S2.MEDIUM2"
DEFAULT_OS = "ubuntu16.04.1 LTSx86_64"


def cmd_cluster(args: argparse.Namespace) -> int:
    """Readable tables of clusters and their nodes, straight from the state store; create and
    delete through the API."""
    from sqlalchemy import select

    from openccs.domain import clusters as dom
    from openccs.store.models import Cluster
    from openccs.timeutil import fmt_time_zoned

    if args.what == "cluster" and args.op == "create":
        return _cluster_create(args)
    if args.what == "cluster" and args.op == "delete":
        if not args.name:
            raise CliError("usage: openccs cluster delete CLUSTER_ID")
        client = _client(args)
        result = client.call("DeleteCluster", {"clusterId": args.name})
        return _answer(client, result, wait=not args.no_wait)
    settings = _settings(args)
    store, _ = _open(args)
    with store.session() as s:
        if args.what == "cluster":
            rows = []
            owners = _owners(s)
            for c in s.scalars(select(Cluster).order_by(Cluster.created_at)):
                d = dom.describe_cluster(s, settings, c)
                rows.append({k: d[k] for k in ("clusterId", "clusterName", "status", "nodeNum",
                             "nodeStatus", "clusterCIDR", "unVpcId")})  # fmt: skip
                rows[-1].update(owners[c.account_id], createdAt=fmt_time_zoned(c.created_at))
            _print_table(rows)
        else:
            cluster = s.get(Cluster, args.cluster)
            if cluster is None:
                print(f"openccs: no cluster {args.cluster!r}", file=sys.stderr)
                return 1
            rows = []
            for n in dom.cluster_nodes(s, cluster.id):
                d = dom.describe_node(settings, n)
                rows.append({k: d[k] for k in ("instanceId", "lanIp", "podCidr", "instanceType",
                             "isNormal", "unschedulable", "zone", "abnormalReason")})  # fmt: skip
                rows[-1]["state"] = n.state
            _print_table(rows)
    return 0


def _cluster_create(args: argparse.Namespace) -> int:
    """CreateCluster with the defaults filled in: the account's default VPC, its subnet in
    the zone, an instance type, and a cluster CIDR nothing on this host or VPC uses."""
    from openccs.config import INSTANCE_TYPES

    if not args.name:
        raise CliError("usage: openccs cluster create NAME [--machines N] [--zone Z]")
    types = {t.name: t for t in INSTANCE_TYPES}
    it = types.get(args.instance_type)
    if it is None:
        raise CliError(f"unknown --instance-type {args.instance_type!r}: one of {', '.join(types)}")
    client = _client(args)
    vpc_id = args.vpc or _default_vpc(client)
    subnets = _ok(client.call("DescribeSubnetEx", {"vpcId": vpc_id, "limit": 100}))["data"]
    zone = args.zone or min((x["zone"] for x in subnets), default="")
    subnet = next((x["unSubnetId"] for x in subnets if x["zone"] == zone), None)
    if subnet is None:
        raise CliError(
            f"VPC {vpc_id} has no subnet in zone {zone!r}"
            f" (subnets in: {', '.join(sorted({x['zone'] for x in subnets})) or 'none'})"
        )
    cidr = args.cidr or _free_cluster_cidr(client, vpc_id)
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
    return _answer(client, client.call("CreateCluster", params), wait=not args.no_wait)


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("code") != 0:
        raise CliError(f"{result.get('codeDesc')}: {result.get('message')}")
    return result


def _default_vpc(client: Any) -> str:
    vpcs = _ok(client.call("DescribeVpcEx", {"limit": 100}))["data"]
    chosen = next((v for v in vpcs if v.get("isDefault")), vpcs[0] if vpcs else None)
    if chosen is None:
        raise CliError("the account has no VPC: make one with openccs vpc create, or give --vpc")
    return str(chosen["unVpcId"])


def _free_cluster_cidr(client: Any, vpc_id: str, prefix: int = 20) -> str:
    """The first /20 of 172.16.0.0/12, from the top, that this host does not route and that
    CheckClusterCIDR accepts in the VPC."""
    import ipaddress

    from openccs.cloud.component import routed_overlaps

    for net in reversed(list(ipaddress.ip_network("172.16.0.0/12").subnets(new_prefix=prefix))):
        if routed_overlaps(str(net)):
            continue
        check = client.call("CheckClusterCIDR", {"vpcId": vpc_id, "clusterCIDR": str(net)})
        if check.get("code") == 0:
            return str(net)
    raise CliError("no free cluster CIDR in 172.16.0.0/12: give one with --cidr")


def cmd_asg(args: argparse.Namespace) -> int:
    """A cluster's autoscaling groups, or what its autoscaler decided (events), from the store."""
    from openccs.autoscaler.report import asg_events, asg_groups

    store, _ = _open(args)
    with store.session() as s:
        rows = asg_groups(s, args.cluster) if args.op == "ls" else asg_events(s, args.cluster)
    if rows is None:
        print(f"openccs: no cluster {args.cluster!r}", file=sys.stderr)
        return 1
    _print_table(rows)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Remove what the data directory's machines and VPCs left on the host (with --all,
    every site's whose server is not running, after listing them)."""
    from openccs.cloud import sites
    from openccs.cloud.sweep import sweep
    from openccs.registry import certsd
    from openccs.registry.daemon import sweep_registries

    live = sites.live_servers()
    if args.all:
        return _sweep_all(args, live)
    data_dir = _data_dir(args)
    site = sites.read_site(data_dir)
    if site is None:
        print("openccs sweep: this data directory has no site (nothing was created)")
        return 0
    running = [x for x in live if x.site == site]
    if running and not args.force:
        print(
            f"openccs sweep: the server of {data_dir} (site {site}) is running as pid"
            f" {running[0].pid}: stop it first (or --force to remove what it uses)",
            file=sys.stderr,
        )
        return 1
    removed = sweep(site)
    # The registry's CA files for the machines' dockerds, one per VPC gateway endpoint.
    removed["registryTrust"] = certsd.sweep(site)
    # A registry whose openccs died (a clean stop takes it along).
    removed["registries"] = sweep_registries(data_dir)
    print(json.dumps(removed, indent=2, default=str))
    return 0


def _sweep_all(args: argparse.Namespace, live: list[Any]) -> int:
    from openccs.cloud import sites
    from openccs.cloud.sweep import sweep
    from openccs.registry import certsd
    from openccs.registry.daemon import sweep_registries

    found = sites.host_sites(trust_owners=certsd.owners())
    kept = {x.site: x for x in live if x.site in found}
    doomed = sorted(found - set(kept))
    for site, server in sorted(kept.items()):
        print(f"keep    site {site}: its server runs (pid {server.pid}, {server.data_dir})")
    for site in doomed:
        print(f"remove  site {site}: no server runs")
    print("(registries left by dead servers go too)")
    if args.dry_run or not doomed:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("openccs sweep --all: give --yes to remove these sites", file=sys.stderr)
            return 1
        answer = input(f"Remove the objects of {len(doomed)} site(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    removed: dict[str, Any] = {}
    for site in doomed:
        removed[site] = sweep(site)
        removed[site]["registryTrust"] = certsd.sweep(site)
    removed["registries"] = sweep_registries(None, keep=frozenset(x.data_dir for x in live))
    print(json.dumps(removed, indent=2, default=str))
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_retention(text: str) -> dict[str, int]:
    """`raw=2h,60=3d,300=15d` -> seconds per kind of monitor data."""
    kinds = ("raw", "60", "300", "3600", "86400")
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition("=")
        if not sep or kind not in kinds:
            raise ValueError(f"expected KIND=DURATION, KIND one of {', '.join(kinds)}: {part!r}")
        unit = _UNITS.get(value[-1:], 0)
        number = value[:-1] if unit else value
        if not number.isdigit() or int(number) <= 0:
            raise ValueError(f"bad duration {value!r} (e.g. 3600, 90m, 2h, 7d)")
        out[kind] = int(number) * (unit or 1)
    return out


def cmd_metrics_token(args: argparse.Namespace) -> int:
    from openccs.monitor import prometheus

    store, _box = _open(args)
    with store.session() as s:
        if args.op == "create":
            token_id, token = prometheus.create_token(s, args.note or "")
            print(json.dumps({"id": token_id, "token": token}, indent=2))
        elif args.op == "ls":
            _print_table([prometheus.token_row_view(t) for t in prometheus.list_tokens(s)])
        elif args.op == "revoke" and not (args.id and prometheus.revoke_token(s, args.id)):
            print(f"openccs: no metrics token {args.id!r}", file=sys.stderr)
            return 1
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from openccs.coverage import coverage_markdown

    print(coverage_markdown(), end="")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from openccs.cli.doctor import run_doctor

    return run_doctor()


def cmd_registry(args: argparse.Namespace) -> int:
    from openccs.registry.domain import namespace_by_name

    store, _box = _open(args)
    with store.session() as s:
        ns = namespace_by_name(s, args.namespace)
        if ns is None:
            print(f"openccs: no registry namespace {args.namespace!r}", file=sys.stderr)
            return 1
        ns.official = args.op == "official"
    return 0


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help="default: the running server of the data directory")
    p.add_argument("--secret-id")
    p.add_argument("--secret-key")
    p.add_argument("--ca", help="CA bundle (default: the data directory's CA)")
    p.add_argument("--region", default="gz")
    p.add_argument("--method", default="POST", choices=["GET", "POST"])
    p.add_argument("--signature-method", default="HmacSHA256", choices=["HmacSHA1", "HmacSHA256"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openccs", description=__doc__)
    p.add_argument("--data-dir", help="state directory (default: the user's data directory)")
    p.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data directory)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the API server")
    s.add_argument("--http", default="127.0.0.1:7080", help="HOST:PORT, or '' to disable")
    s.add_argument("--https", default="127.0.0.1:7443", help="HOST:PORT, or '' to disable")
    s.add_argument("--tls-cert", help="operator's certificate (default: generated from local CA)")
    s.add_argument("--tls-key", help="operator's private key")
    s.add_argument("--allow-public-http", action="store_true")
    s.add_argument(
        "--allow-privileged",
        action="store_true",
        help="let services run privileged containers (root on this host: trusted tenants only)",
    )
    s.add_argument("--enable-test-actions", action="store_true", help=argparse.SUPPRESS)
    s.add_argument("--timestamp-window", type=int, default=7200, help="seconds (default 7200)")
    s.add_argument(
        "--request-read-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send a whole request, else 408 (default 10)",
    )
    s.add_argument(
        "--max-connections-per-client",
        type=int,
        default=128,
        help="connections one client address may hold on a listener (default 128)",
    )
    s.add_argument("--timezone", default="Asia/Shanghai")
    s.add_argument("--log-level", default="INFO")
    s.add_argument(
        "--default-vpc-cidr",
        help="the default VPC made at first start (default: 10.0.0.0/16, or the first free"
        " 10.x.0.0/16)",
    )
    s.add_argument(
        "--node-grace",
        type=float,
        default=60.0,
        help="seconds a machine may be not ready before its pods move (default 60)",
    )
    s.add_argument(
        "--health-interval", type=float, default=5.0, help="seconds between machine checks"
    )
    s.add_argument(
        "--engine-resync",
        type=float,
        default=1.0,
        help="seconds between a cluster's engine passes when no change wakes it (default 1)",
    )
    s.add_argument(
        "--lb-pool",
        default="198.18.0.0/24",
        help="network the public VIPs of load balancers and ingresses come from",
    )
    s.add_argument(
        "--node-port-range", default="30000-32767", help="LOW-HIGH (default 30000-32767)"
    )
    s.add_argument(
        "--asg-minute-seconds",
        type=float,
        default=60.0,
        help="seconds in one minute of the autoscaler's settings (default 60; shorter for tests)",
    )
    s.add_argument(
        "--asg-scan-interval",
        type=float,
        default=10.0,
        help="seconds between cluster autoscaler passes (default 10)",
    )
    s.add_argument(
        "--sample-interval",
        type=float,
        default=10.0,
        help="seconds between monitor sampling passes (default 10; 0 turns sampling off)",
    )
    s.add_argument(
        "--monitor-retention",
        help="how long monitor data is kept, e.g. raw=1h,60=2d,300=15d,3600=62d,86400=400d",
    )
    s.add_argument(
        "--monitor-max-points",
        type=int,
        default=1440,
        help="data points one GetMonitorData request may return (default 1440)",
    )
    s.add_argument(
        "--kube-public-address",
        default="127.0.0.1",
        help="address of the clusters' external Kubernetes API (OperateClusterVip)",
    )
    s.add_argument(
        "--console-session-ttl",
        type=float,
        default=8 * 3600.0,
        help="seconds a web console sign-in lasts (default 8 hours)",
    )
    s.set_defaults(fn=cmd_serve)

    ce = sub.add_parser("cert", help="certificates for HTTPS ingress (certId)")
    ce.add_argument("op", choices=["upload", "ls", "delete"])
    ce.add_argument("ref", nargs="?", help="account (upload, ls) or certificate id (delete)")
    ce.add_argument("--cert", help="PEM certificate chain, the server's certificate first")
    ce.add_argument("--key", help="PEM private key of that certificate")
    ce.add_argument("--name")
    ce.set_defaults(fn=cmd_cert)

    n = sub.add_parser("vpc", help="VPCs and their subnets")
    n.add_argument("op", choices=["create", "ls", "subnet", "delete"])
    n.add_argument("ref", nargs="?", help="account (create) or VPC id (subnet, delete)")
    n.add_argument("--cidr", help="with create: the VPC's network, e.g. 10.1.0.0/16")
    n.add_argument("--name")
    n.add_argument("--subnet", action="append", help="ZONE=CIDR, e.g. ap-guangzhou-3=10.1.1.0/24")
    n.set_defaults(fn=cmd_vpc)

    cl = sub.add_parser("cluster", help="clusters: openccs cluster ls|create NAME|delete ID")
    cl.add_argument("op", choices=["ls", "create", "delete"])
    cl.add_argument("name", nargs="?", help="create: the new cluster's name; delete: its id")
    cl.add_argument("--machines", type=int, default=1, help="create: machines (default 1)")
    cl.add_argument("--zone", help="create: zone (default: the first zone with a subnet)")
    cl.add_argument("--vpc", help="create: VPC id (default: the account's default VPC)")
    cl.add_argument("--cidr", help="create: cluster CIDR (default: a free /20 of 172.16/12)")
    cl.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, help="create: machine type")
    cl.add_argument("--no-wait", action="store_true", help="answer at once, do not follow")
    _client_options(cl)
    cl.set_defaults(fn=cmd_cluster, what="cluster")
    no = sub.add_parser("node", help="a cluster's nodes: openccs node ls CLUSTER")
    no.add_argument("op", choices=["ls"])
    no.add_argument("cluster")
    no.set_defaults(fn=cmd_cluster, what="node")

    g = sub.add_parser("asg", help="autoscaling groups: openccs asg ls|events CLUSTER")
    g.add_argument("op", choices=["ls", "events"])
    g.add_argument("cluster")
    g.set_defaults(fn=cmd_asg)

    w = sub.add_parser("sweep", help="remove host objects (namespaces, bridges...) left behind")
    w.add_argument(
        "--all", action="store_true", help="of every site with no running server (asks first)"
    )
    w.add_argument("--yes", action="store_true", help="with --all: do not ask")
    w.add_argument("--dry-run", action="store_true", help="with --all: only list the sites")
    w.add_argument("--force", action="store_true", help="sweep even while the server runs")
    w.set_defaults(fn=cmd_sweep)

    a = sub.add_parser("account", help="accounts and quotas")
    a.add_argument("op", choices=["create", "ls", "disable", "enable", "quota", "password"])
    a.add_argument("account", nargs="?", help="appId, uin or name")
    a.add_argument("name_value", nargs="*", help="with quota: NAME VALUE")
    a.add_argument("--name")
    a.add_argument("--no-key", action="store_true", help="create without a key")
    a.set_defaults(fn=cmd_account)

    k = sub.add_parser("key", help="SecretId/SecretKey pairs")
    k.add_argument("op", choices=["create", "ls", "disable", "enable", "delete"])
    k.add_argument("ref", nargs="?", help="account (create, ls) or SecretId")
    k.add_argument("--subuser", help="with create: the key is this sub-account's")
    k.set_defaults(fn=cmd_key)

    u = sub.add_parser("subuser", help="sub-accounts and their allow-lists")
    u.add_argument("op", choices=["create", "ls", "allow", "revoke", "password"])
    u.add_argument("ref", nargs="?", help="account (create, ls) or sub-account uin/name")
    u.add_argument("--name")
    u.add_argument("--action", action="append", help="allowed action (repeat; * for all)")
    u.add_argument("--resource", action="append", help="allowed resource id or pattern (cls-*)")
    u.add_argument("--no-key", action="store_true")
    u.set_defaults(fn=cmd_subuser)

    c = sub.add_parser("call", help="call an action: openccs call ACTION name=value ...")
    c.add_argument("action")
    c.add_argument("params", nargs="*")
    _client_options(c)
    c.add_argument("--table", action="store_true", help="print data as a table")
    c.add_argument("--wait", action="store_true", help="follow the returned requestId")
    c.set_defaults(fn=cmd_call)

    d = sub.add_parser("doctor", help="check this machine for what openccs needs")
    d.set_defaults(fn=cmd_doctor)

    r = sub.add_parser("registry", help="image registry: mark namespaces official")
    r.add_argument("op", choices=["official", "unofficial"])
    r.add_argument("namespace")
    r.set_defaults(fn=cmd_registry)

    mt = sub.add_parser("metrics-token", help="bearer tokens for /metrics (Prometheus)")
    mt.add_argument("op", choices=["create", "ls", "revoke"])
    mt.add_argument("id", nargs="?", help="with revoke: the token's id (mtk-...)")
    mt.add_argument("--note", help="with create: what the token is for")
    mt.set_defaults(fn=cmd_metrics_token)

    v = sub.add_parser("coverage", help="print the action coverage table (Markdown)")
    v.set_defaults(fn=cmd_coverage)

    kubeconfig.add_parser(sub, _client_options)
    from openccs.cli import faults

    faults.register(sub, _client_options)
    return p


def main(argv: list[str] | None = None) -> int:
    from openccs.domain.accounts import AccountError

    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except AccountError as exc:
        print(f"openccs: {exc}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"openccs: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
