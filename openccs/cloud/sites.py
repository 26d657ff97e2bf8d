"""Which openccs sites this host holds objects of, and which of them have a live server.

A sweep must never take away what a running openccs uses: the live servers are found
from their processes (`openccs ... serve`, its `--data-dir`, `OPENCCS_DATA_DIR` or the
default directory), whatever version of openccs they run, and their sites are left alone.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from openccs.cloud import cgroups, host, naming, procs
from openccs.config import default_data_dir

_SITE_IN_NAME = (
    re.compile(rf"^{naming.NETNS_PREFIX}([a-z0-9]{{4}})-"),
    re.compile(rf"^{naming.CHAIN_PREFIX}([a-z0-9]{{4}})-"),
    re.compile(r"^o[bv]([a-z0-9]{4})[a-z0-9]{8}$"),
    re.compile(r"^ol([a-z0-9]{4})$"),
    re.compile(rf"^{naming.CGROUP_PREFIX}([a-z0-9]{{4}})$"),
)


@dataclass(frozen=True)
class LiveServer:
    pid: int
    data_dir: Path
    site: str | None  # None: its data directory has no site yet


def site_of_name(name: str) -> str | None:
    """The site in a netns, link, chain or cgroup name openccs made, else None."""
    for pattern in _SITE_IN_NAME:
        m = pattern.match(name)
        if m:
            return m.group(1)
    return None


def read_site(data_dir: Path) -> str | None:
    try:
        site = (data_dir / "site-id").read_text().strip()
    except OSError:
        return None
    return site if naming.SITE_RE.match(site) else None


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def _serve_data_dir(pid: int, argv: list[str]) -> Path | None:
    """The data directory of an `openccs serve` process, None when it is not one."""
    program = " ".join(argv[:3])
    if "serve" not in argv or not ("openccs" in program or "openccs.cli.main" in program):
        return None
    chosen: str | None = None
    for i, arg in enumerate(argv[: argv.index("serve")]):
        if arg == "--data-dir" and i + 1 < len(argv):
            chosen = argv[i + 1]
        elif arg.startswith("--data-dir="):
            chosen = arg.split("=", 1)[1]
    chosen = chosen or _environ(pid).get("OPENCCS_DATA_DIR")
    if not chosen:
        return default_data_dir()
    path = Path(chosen)
    if not path.is_absolute():
        try:
            path = Path(f"/proc/{pid}/cwd").resolve() / path
        except OSError:
            return None
    return path


def live_servers() -> list[LiveServer]:
    found = []
    for pid in procs.all_pids():
        argv = procs.cmdline(pid)
        data_dir = _serve_data_dir(pid, argv) if argv else None
        if data_dir is not None and procs.alive(pid):
            found.append(LiveServer(pid, data_dir, read_site(data_dir)))
    return found


def host_sites(
    runtime_base: Path = naming.DEFAULT_RUNTIME_BASE, trust_owners: Iterable[str] = ()
) -> set[str]:
    """Every site with a runtime directory, network namespace, link, chain or cgroup here
    (and the owners of the registry's trust directories the caller found)."""
    names: list[str] = [*host.list_netns(), *host.list_links()]
    for table in ("filter", "nat"):
        names += host.list_chains(table)
    for hierarchy in (h for d in cgroups.all_drivers() for h in d.hierarchies()):
        try:
            names += [p.name for p in hierarchy.iterdir() if p.is_dir()]
        except OSError:
            continue
    sites = {site for site in map(site_of_name, names) if site is not None}
    with contextlib.suppress(FileNotFoundError):
        sites.update(
            p.name for p in runtime_base.iterdir() if p.is_dir() and naming.SITE_RE.match(p.name)
        )
    sites.update(s for s in trust_owners if naming.SITE_RE.match(s))
    return sites
