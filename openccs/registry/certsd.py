"""Machines' trust in the registry: the CA file each machine's dockerd reads for an endpoint.

A root dockerd reads a registry's CA from `/etc/docker/certs.d/<host:port>/*.crt` for each
pull; the directory is fixed (dockerd 20.10 moves it only in rootless mode, which changes
far more than that), and the machines' dockerds share the host's mount namespace, so one
directory per gateway endpoint serves every machine of that subnet. Each directory this
module writes holds a marker naming the site that owns it: files dockerd ignores (neither
`.crt`, `.cert` nor `.key`), and what lets a sweep remove exactly one site's directories.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from openccs.log import get_logger, log_event

log = get_logger("openccs.registry.certsd")

CERTS_D = Path("/etc/docker/certs.d")
MARKER = "openccs-site"
CA_FILE = "ca.crt"


def _owner(directory: Path) -> str | None:
    try:
        return (directory / MARKER).read_text().strip()
    except OSError:
        return None


def _write(path: Path, data: bytes) -> None:
    """Replace a file atomically: a pull reading the directory meanwhile sees old or new."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def sync(
    site: str, ca_pem: bytes, endpoints: Iterable[str], base: Path = CERTS_D
) -> tuple[list[str], list[str]]:
    """Make the site's directories exactly `endpoints` (`host:port`), each trusting `ca_pem`.

    A directory of another site with the same name is taken over (two live sites never
    share a gateway address, so it is a crashed site's leftover); one without a marker is
    the operator's and is left alone. Returns what changed and the directories left alone.
    """
    wanted = set(endpoints)
    changed: list[str] = []
    foreign: list[str] = []
    if base.is_dir():
        for d in base.iterdir():
            if d.is_dir() and d.name not in wanted and _owner(d) == site:
                shutil.rmtree(d, ignore_errors=True)
                changed.append(f"-{d.name}")
    for name in sorted(wanted):
        d = base / name
        owner = _owner(d)
        if d.exists() and owner is None:
            foreign.append(str(d))
            continue
        d.mkdir(parents=True, exist_ok=True)
        try:
            current = (d / CA_FILE).read_bytes()
        except OSError:
            current = b""
        if current != ca_pem:
            _write(d / CA_FILE, ca_pem)
        if owner != site:
            _write(d / MARKER, f"{site}\n".encode())
        if current != ca_pem or owner != site:
            changed.append(f"+{name}")
    if changed:
        log_event(log, "machine trust of the registry synced", site=site, changes=",".join(changed))
    return changed, foreign


def owners(base: Path = CERTS_D) -> set[str]:
    """The sites that have trust directories here."""
    if not base.is_dir():
        return set()
    return {o for d in base.iterdir() if d.is_dir() and (o := _owner(d)) is not None}


def sweep(site: str | None, base: Path = CERTS_D) -> list[str]:
    """Remove the site's directories (every site's when None); the base directory too when
    that leaves it empty (it was there for them)."""
    removed: list[str] = []
    if not base.is_dir():
        return removed
    for d in sorted(base.iterdir()):
        owner = _owner(d) if d.is_dir() else None
        if owner is not None and (site is None or owner == site):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    if removed:
        with contextlib.suppress(OSError):
            base.rmdir()  # fails when anything else is in it, which stays
        log_event(log, "machine trust of the registry swept", site=site or "*", count=len(removed))
    return removed
