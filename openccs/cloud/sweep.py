"""Removing what a crashed run of the local cloud left on the host: one site's objects, or
every site's (`site=None`).

`sweep(site, runtime_base=..., remove_data=False) -> dict[str, list[str]]` kills the site's
machine processes (dockerd, containerd, shims, containers: found by cgroup and by command
lines naming the site's runtime dir), unmounts what they left mounted (also the pods' volumes
staged in the runtime dirs by the node agents), and removes network
namespaces, veths, bridges (and so the routes through them), iptables chains with the rules
jumping to them, cgroups and runtime dirs, and detaches the loop devices of the machines'
disk images. With `remove_data` the machines' own directories (recorded in their runtime
dirs) and disk images are removed too. It returns what it removed, by kind, and is
safe to run when nothing is there.

From a shell: `python -m openccs.cloud.sweep (--site SITE | --all) [--remove-data]`; `--all`
leaves the sites whose server runs alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from openccs.cloud import cgroups, host, naming, procs
from openccs.cloud.machine import DOCKERD, detach_image, disk_image, unmount_under
from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.sweep")


def _runtime_dirs(site: str | None, runtime_base: Path) -> list[Path]:
    if site is not None:
        d = naming.site_runtime_dir(site, runtime_base)
        return [d] if d.exists() else []
    try:
        return sorted(p for p in runtime_base.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


def _site_cgroups(site: str | None) -> list[tuple[cgroups.Driver, str]]:
    """The site cgroups in every tree a run may have used (the host's and any cgroup2 mount:
    a run may have had its machines on a private v2 mount)."""
    found: list[tuple[cgroups.Driver, str]] = []
    for d in cgroups.all_drivers():
        names = [naming.cgroup_site(site)] if site is not None else []
        found.extend((d, name) for name in names or d.children(naming.CGROUP_PREFIX))
    return found


def _machine_root_dirs(runtime_dirs: list[Path]) -> list[Path]:
    found = []
    for site_dir in runtime_dirs:
        for record in site_dir.glob("*/machine.json"):
            try:
                found.append(Path(json.loads(record.read_text())["root_dir"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return found


def sweep(
    site: str | None,
    runtime_base: Path = naming.DEFAULT_RUNTIME_BASE,
    remove_data: bool = False,
) -> dict[str, list[str]]:
    if site is not None:
        naming.check_site(site)
    removed: dict[str, list[str]] = {}
    runtime_dirs = _runtime_dirs(site, runtime_base)
    prefixes = [str(d) + "/" for d in runtime_dirs] or [
        str(naming.site_runtime_dir(site, runtime_base)) + "/"
        if site is not None
        else str(runtime_base) + "/"
    ]
    root_dirs = _machine_root_dirs(runtime_dirs)

    # Processes first: a live dockerd would recreate what is removed after it. Ingress
    # nginxes are daemons whose workers do not name our paths: their process groups go.
    from openccs.traffic.ingress import sweep_dir

    ingress = [entry for d in runtime_dirs for entry in sweep_dir(d)]
    pids: set[int] = set()
    for tree, cg in _site_cgroups(site):
        pids.update(tree.pids_in(cg))
    pids.update(procs.with_cmdline_containing(prefixes))
    pids.discard(os.getpid())
    for pid in pids:
        argv = procs.cmdline(pid)
        if argv and os.path.basename(argv[0]) == DOCKERD and "--data-root" in argv:
            root_dirs.append(Path(argv[argv.index("--data-root") + 1]).parent)
    described = {p: " ".join(procs.cmdline(p))[:120] for p in pids}
    killed = procs.kill_now(pids)
    removed["processes"] = ingress + [f"{p} {described.get(p, '')}".strip() for p in sorted(killed)]

    removed["mounts"] = unmount_under([*runtime_dirs, *set(root_dirs)])
    # Machines with a disk of their own: the loop devices of their images (the data stays
    # in the images, which go with the machines' directories under remove_data).
    removed["loops"] = [dev for d in sorted(set(root_dirs)) for dev in detach_image(disk_image(d))]

    removed["netns"] = []
    for ns in host.list_netns():
        if naming.is_site_object(ns, site) and ns.startswith(naming.NETNS_PREFIX):
            host.run(["ip", "netns", "del", ns], check=False)
            removed["netns"].append(ns)

    removed["links"] = []
    # Veths before bridges; deleting a bridge also deletes the routes through it.
    links = [n for n in host.list_links() if naming.is_site_object(n, site)]
    removed["routes"] = _routes_through([n for n in links if n.startswith(naming.BRIDGE_PREFIX)])
    for name in sorted(links, key=lambda n: not n.startswith(naming.VETH_PREFIX)):
        if host.link_exists(name):
            host.run(["ip", "link", "del", "dev", name], check=False)
            removed["links"].append(name)

    removed["chains"] = []
    for table in ("filter", "nat"):
        for chain in host.list_chains(table):
            if chain.startswith(naming.CHAIN_PREFIX) and naming.is_site_object(chain, site):
                host.delete_chain(chain, table)
                removed["chains"].append(f"{table}/{chain}")

    removed["cgroups"] = []
    for tree, cg in _site_cgroups(site):
        removed["cgroups"].extend(tree.remove(cg))

    removed["dirs"] = []
    for d in runtime_dirs:
        shutil.rmtree(d, ignore_errors=True)
        removed["dirs"].append(str(d))
    if remove_data:
        for d in sorted(set(root_dirs)):
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)
                removed["dirs"].append(str(d))
            made = disk_image(d)
            for image in (made, made.with_name(made.name + ".new")):  # .new: half made
                if image.exists():
                    image.unlink(missing_ok=True)
                    removed["dirs"].append(str(image))

    log_event(log, "swept", site=site or "*",
              **{kind: len(items) for kind, items in removed.items()})  # fmt: skip
    return removed


def _routes_through(bridges: list[str]) -> list[str]:
    found: list[str] = []
    for bridge in bridges:
        shown = host.run(["ip", "-4", "route", "show", "dev", bridge], check=False, quiet=True)
        found.extend(f"{line.split()[0]} dev {bridge}" for line in shown.stdout.splitlines()
                     if "proto 233" in line)  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Remove what crashed local-cloud runs left.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--site", help="the 4-character site id to sweep")
    which.add_argument("--all", action="store_true", help="every site without a running server")
    p.add_argument("--remove-data", action="store_true", help="machine directories too")
    p.add_argument("--runtime-base", type=Path, default=naming.DEFAULT_RUNTIME_BASE)
    opts = p.parse_args(argv)
    if opts.all:
        # Never a site whose server runs: each other site alone.
        from openccs.cloud import sites

        live = {x.site for x in sites.live_servers()}
        removed: dict[str, object] = {
            site: sweep(site, opts.runtime_base, opts.remove_data)
            for site in sorted(sites.host_sites(opts.runtime_base) - live)
        }
    else:
        removed = dict(sweep(opts.site, opts.runtime_base, opts.remove_data))
    json.dump(removed, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
