"""What openccs does on this host outside the server: check the machine (`doctor`), make
and remove VPCs (bridges and gateway addresses), sweep what a crashed run left."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from openccs.cli.context import EXIT_FAILED, CliError, data_dir, open_store, owners, settings
from openccs.cli.output import output_option, print_record, print_rows


def cmd_doctor(args: argparse.Namespace) -> int:
    from openccs.cli.doctor import run_doctor

    return run_doctor()


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

    config = settings(args)
    store, _ = open_store(args)
    try:
        with store.session() as s:
            if args.op == "ls":
                rows = []
                who = owners(s)
                for v in s.scalars(select(Vpc).order_by(Vpc.num_id)):
                    for sub in s.scalars(select(Subnet).where(Subnet.vpc_id == v.id)):
                        rows.append(
                            {
                                "vpc": v.id,
                                "vpcCidr": v.cidr,
                                **who[v.account_id],
                                "subnet": sub.id,
                                "subnetCidr": sub.cidr,
                                "zone": sub.zone,
                            }
                        )
                    if not any(r["vpc"] == v.id for r in rows):
                        rows.append({"vpc": v.id, "vpcCidr": v.cidr, **who[v.account_id]})
                print_rows(args, rows)
                return 0
            site = site_id(config.data_dir)
            if args.op == "delete":
                _vpc_delete(s, site, args.ref)
                print(json.dumps({"deleted": args.ref}))
            elif args.op == "create":
                if not args.cidr:
                    raise acc.AccountError("give --cidr")
                account = acc.get_account(s, args.ref)
                check_unrouted(args.cidr, "--cidr")
                v = cloud.create_vpc(s, account.id, args.cidr, args.name or "")
                created = [cloud.create_subnet(s, config, v, c, z) for z, c in _zones(args)]
                hostvpc.ensure_vpc(site, v.id, v.cidr)
                for sub in created:
                    hostvpc.ensure_subnet(site, v.id, str(cloud.gateway_of(sub.cidr)))
                print_record(args, {"vpcId": v.id, "subnets": [x.id for x in created]})
            elif args.op == "subnet":
                v = s.get(Vpc, args.ref)
                if v is None:
                    raise acc.AccountError(f"no VPC {args.ref!r}")
                created = [cloud.create_subnet(s, config, v, c, z) for z, c in _zones(args)]
                for sub in created:
                    hostvpc.ensure_subnet(site, v.id, str(cloud.gateway_of(sub.cidr)))
                print_record(args, {"subnets": [x.id for x in created]})
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
            raise CliError(f"vpc: --subnet takes ZONE=CIDR, got {item!r}")
        pairs.append((zone, cidr))
    return pairs


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
    where = data_dir(args)
    site = sites.read_site(where)
    if site is None:
        print("openccs sweep: this data directory has no site (nothing was created)")
        return 0
    running = [x for x in live if x.site == site]
    if running and not args.force:
        print(
            f"openccs sweep: the server of {where} (site {site}) is running as pid"
            f" {running[0].pid}: stop it first (or --force to remove what it uses)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    removed = sweep(site)
    # The registry's CA files for the machines' dockerds, one per VPC gateway endpoint.
    removed["registryTrust"] = certsd.sweep(site)
    # A registry whose openccs died (a clean stop takes it along).
    removed["registries"] = sweep_registries(where)
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
            return EXIT_FAILED
        answer = input(f"Remove the objects of {len(doomed)} site(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return EXIT_FAILED
    removed: dict[str, Any] = {}
    for site in doomed:
        removed[site] = sweep(site)
        removed[site]["registryTrust"] = certsd.sweep(site)
    removed["registries"] = sweep_registries(None, keep=frozenset(x.data_dir for x in live))
    print(json.dumps(removed, indent=2, default=str))
    return 0


def register(sub: Any) -> None:
    d = sub.add_parser("doctor", help="check this machine for what openccs needs")
    d.set_defaults(fn=cmd_doctor)

    n = sub.add_parser("vpc", help="VPCs and their subnets")
    n.add_argument("op", choices=["create", "ls", "subnet", "delete"])
    n.add_argument("ref", nargs="?", help="account (create) or VPC id (subnet, delete)")
    n.add_argument("--cidr", help="with create: the VPC's network, e.g. 10.1.0.0/16")
    n.add_argument("--name")
    n.add_argument("--subnet", action="append", help="ZONE=CIDR, e.g. ap-guangzhou-3=10.1.1.0/24")
    output_option(n)
    n.set_defaults(fn=cmd_vpc)

    w = sub.add_parser("sweep", help="remove host objects (namespaces, bridges...) left behind")
    w.add_argument(
        "--all", action="store_true", help="of every site with no running server (asks first)"
    )
    w.add_argument("--yes", action="store_true", help="with --all: do not ask")
    w.add_argument("--dry-run", action="store_true", help="with --all: only list the sites")
    w.add_argument("--force", action="store_true", help="sweep even while the server runs")
    w.set_defaults(fn=cmd_sweep)
