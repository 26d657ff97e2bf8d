"""Machine cgroups (cgroup v1, one hierarchy per controller under /sys/fs/cgroup).

A machine's cgroup `/openccs-<site>/<ins-id>` is docker's `--cgroup-parent`: its CPU quota
and memory limit are the instance type's and bind every container below it. The machine's
own daemons live in its `system` child, inside the same limits.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from openccs.cloud.host import CloudError
from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.cgroups")

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000
# Controllers a machine's daemons are placed in (the containers get all of them from runc).
DAEMON_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids")


def is_v2() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def hierarchies() -> list[Path]:
    """Every mounted v1 hierarchy (cpu, memory, pids, name=systemd...)."""
    try:
        return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())
    except FileNotFoundError:
        return []


def path(controller: str, cgroup: str) -> Path:
    return CGROUP_ROOT / controller / cgroup.lstrip("/")


def _write(file: Path, value: str) -> None:
    try:
        file.write_text(value)
    except OSError as exc:
        raise CloudError(f"cannot write {value!r} to {file}: {exc.strerror}") from exc


def ensure_machine_cgroup(cgroup: str, system: str, cpu: float, mem_mib: int) -> None:
    """Create the machine's cgroup with its limits, and the daemons' `system` child."""
    if is_v2():
        raise CloudError("cgroup v2 hosts are not supported yet: the local cloud needs cgroup v1")
    for controller in DAEMON_CONTROLLERS:
        if not (CGROUP_ROOT / controller).is_dir():
            raise CloudError(f"cgroup controller {controller} is not mounted at {CGROUP_ROOT}")
        path(controller, system).mkdir(parents=True, exist_ok=True)
    cpu_dir = path("cpu", cgroup)
    _write(cpu_dir / "cpu.cfs_period_us", str(CFS_PERIOD_US))
    _write(cpu_dir / "cpu.cfs_quota_us", str(max(1000, round(cpu * CFS_PERIOD_US))))
    _write(path("memory", cgroup) / "memory.limit_in_bytes", str(mem_mib * 1024 * 1024))


def procs_files(cgroup: str) -> list[Path]:
    """The cgroup.procs files a process is written to, to enter the cgroup everywhere."""
    return [path(c, cgroup) / "cgroup.procs" for c in DAEMON_CONTROLLERS]


def pids_in(cgroup: str) -> set[int]:
    """Every process in the cgroup or below it, in any hierarchy."""
    pids: set[int] = set()
    for hierarchy in hierarchies():
        top = hierarchy / cgroup.lstrip("/")
        if not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    text = Path(dirpath, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(p) for p in text.split())
    return pids


def remove(cgroup: str, wait: float = 5.0) -> list[str]:
    """Remove the cgroup and its children in every hierarchy (deepest first); their
    processes must be gone. Retries briefly: a killed process leaves its cgroup a moment
    after it is reaped. Returns the directories removed."""
    removed: list[str] = []
    deadline = time.monotonic() + wait
    while True:
        busy: list[str] = []
        for hierarchy in hierarchies():
            top = hierarchy / cgroup.lstrip("/")
            if not top.is_dir():
                continue
            for dirpath, _dirs, _files in os.walk(top, topdown=False):
                try:
                    os.rmdir(dirpath)
                    removed.append(dirpath)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    busy.append(f"{dirpath}: {exc.strerror}")
        if not busy:
            break
        if time.monotonic() > deadline:
            raise CloudError("cannot remove cgroups (processes still inside?): " + "; ".join(busy))
        time.sleep(0.1)
    if removed:
        log_event(log, "cgroups removed", cgroup=cgroup, dirs=len(removed))
    return removed


def remove_if_empty(cgroup: str) -> None:
    """Remove a cgroup directory that has no children left (e.g. the site's), quietly."""
    for hierarchy in hierarchies():
        with contextlib.suppress(OSError):
            os.rmdir(hierarchy / cgroup.lstrip("/"))
