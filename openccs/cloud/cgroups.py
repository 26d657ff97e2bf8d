"""Machine cgroups, on cgroup v1 (one hierarchy per controller) or v2 (one unified tree).

A machine's cgroup `/openccs-<site>/<ins-id>` is docker's `--cgroup-parent`: its CPU quota
and memory limit are the instance type's and bind every container below it. The machine's
own daemons live in its `system` child, inside the same limits.

One driver per process, chosen at first use from the file system mounted at the cgroup root
(`/sys/fs/cgroup`, or `$OPENCCS_CGROUP_ROOT`): `cgroup2` is v2; anything else (`tmpfs`
holding v1 hierarchies, also on a hybrid host whose v2 tree sits in `unified/`) is v1.
A controller the host does not give openccs is left out, not an error: `missing()` names
the limits that are then not enforced.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

from openccs.cloud.host import CloudError
from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.cgroups")

SYS_ROOT = Path("/sys/fs/cgroup")
ROOT_ENV = "OPENCCS_CGROUP_ROOT"
CFS_PERIOD_US = 100_000
# The limits openccs enforces, by the controller (both versions name them alike).
ENFORCED = {"cpu": "the instance type's CPU", "memory": "the instance type's memory"}
# v1 hierarchies a machine's daemons are placed in (the containers get all of them from runc).
V1_DAEMON_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids")
# v2 controllers openccs turns on for the machines' subtree when the host has them.
V2_CONTROLLERS = ("cpu", "memory", "io", "pids")


def _read(file: Path) -> str | None:
    try:
        return file.read_text()
    except OSError:
        return None


def _write(file: Path, value: str) -> None:
    try:
        file.write_text(value)
    except OSError as exc:
        raise CloudError(f"cannot write {value!r} to {file}: {exc.strerror}") from exc


def fs_type(mount_point: Path, mountinfo: str | None = None) -> str | None:
    """The file system type mounted at `mount_point` (the topmost mount there)."""
    if mountinfo is None:
        mountinfo = _read(Path("/proc/self/mountinfo")) or ""
    want = str(mount_point).rstrip("/") or "/"
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        if fields[4].replace("\\040", " ") == want:
            found = line.split(" - ", 1)[1].split()[0]
    return found


def cgroup2_mounts(mountinfo: str | None = None) -> list[Path]:
    """Every mount point of a cgroup2 file system (for sweep: a run may have used any)."""
    if mountinfo is None:
        mountinfo = _read(Path("/proc/self/mountinfo")) or ""
    points = []
    for line in mountinfo.splitlines():
        if " - cgroup2 " in line:
            points.append(Path(line.split()[4].replace("\\040", " ")))
    return points


class Driver:
    """What the machines need of a cgroup hierarchy; one subclass per cgroup version."""

    version = 0

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- layout ----------------------------------------------------------------------------
    def hierarchies(self) -> list[Path]:
        raise NotImplementedError

    def path(self, controller: str, cgroup: str) -> Path:
        """The directory of `cgroup` holding `controller`'s files."""
        raise NotImplementedError

    def missing(self) -> list[str]:
        """Controllers of `ENFORCED` this host does not give openccs: their limits are not
        enforced (machines still run)."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"cgroup v{self.version} at {self.root}"

    # -- machines --------------------------------------------------------------------------
    def ensure_machine(self, cgroup: str, system: str, cpu: float, mem_mib: int) -> list[str]:
        """Create the machine's cgroup with its limits and the daemons' `system` child.
        Returns the controllers whose limit could not be set (see `missing`)."""
        raise NotImplementedError

    def procs_files(self, cgroup: str) -> list[Path]:
        """The cgroup.procs files a process is written to, to enter the cgroup everywhere."""
        raise NotImplementedError

    def daemon_argv(self, cgroup: str, argv: list[str]) -> list[str]:
        """A command line that enters `cgroup`, then execs `argv` (same pid throughout, so
        the daemon, its children and the shims all stay in the cgroup)."""
        enter = " && ".join(f"echo $$ > {shlex.quote(str(f))}" for f in self.procs_files(cgroup))
        return ["sh", "-c", f'{enter} && exec "$@"', "sh", *argv]

    def pids_in(self, cgroup: str) -> set[int]:
        """Every process in the cgroup or below it, in any hierarchy."""
        pids: set[int] = set()
        for hierarchy in self.hierarchies():
            top = hierarchy / cgroup.lstrip("/")
            for dirpath, _dirs, files in os.walk(top):
                if "cgroup.procs" in files:
                    text = _read(Path(dirpath, "cgroup.procs")) or ""
                    pids.update(int(p) for p in text.split())
        return pids

    def remove(self, cgroup: str, wait: float = 5.0) -> list[str]:
        """Remove the cgroup and its children in every hierarchy (deepest first); their
        processes must be gone. Retries briefly: a killed process leaves its cgroup a
        moment after it is reaped. Returns the directories removed."""
        removed: list[str] = []
        deadline = time.monotonic() + wait
        while True:
            busy: list[str] = []
            for hierarchy in self.hierarchies():
                top = hierarchy / cgroup.lstrip("/")
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
                raise CloudError(
                    "cannot remove cgroups (processes still inside?): " + "; ".join(busy)
                )
            time.sleep(0.1)
        if removed:
            log_event(log, "cgroups removed", cgroup=cgroup, dirs=len(removed))
        return removed

    def thaw(self, cgroup: str) -> None:
        """Thaw a cgroup a fault froze (its processes could be neither stopped nor killed)."""
        if self.version == 2:
            state = self.path("", cgroup) / "cgroup.freeze"
            if (_read(state) or "").strip() == "1":
                _write(state, "0")
        else:
            state = self.path("freezer", cgroup) / "freezer.state"
            if (_read(state) or "THAWED").strip() != "THAWED":
                _write(state, "THAWED")

    def remove_if_empty(self, cgroup: str) -> None:
        """Remove a cgroup directory that has no children left (e.g. the site's), quietly."""
        for hierarchy in self.hierarchies():
            with contextlib.suppress(OSError):
                os.rmdir(hierarchy / cgroup.lstrip("/"))

    def children(self, prefix: str) -> list[str]:
        """Top-level cgroups whose name starts with `prefix`, in any hierarchy."""
        names: set[str] = set()
        for hierarchy in self.hierarchies():
            with contextlib.suppress(OSError):
                names.update(
                    "/" + p.name for p in hierarchy.iterdir()
                    if p.is_dir() and p.name.startswith(prefix)
                )  # fmt: skip
        return sorted(names)


class V1(Driver):
    """cgroup v1: `<root>/<controller>/<cgroup>`, one hierarchy per controller."""

    version = 1

    def hierarchies(self) -> list[Path]:
        """Every mounted hierarchy (cpu, memory, pids, name=systemd..., and a hybrid host's
        `unified` v2 tree, where runc also places the containers)."""
        try:
            return sorted(
                p for p in self.root.iterdir()
                if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists()
            )  # fmt: skip
        except FileNotFoundError:
            return []

    def path(self, controller: str, cgroup: str) -> Path:
        return self.root / controller / cgroup.lstrip("/")

    def _has(self, controller: str) -> bool:
        return (self.root / controller / "cgroup.procs").exists()

    def missing(self) -> list[str]:
        return [c for c in ENFORCED if not self._has(c)]

    def ensure_machine(self, cgroup: str, system: str, cpu: float, mem_mib: int) -> list[str]:
        for controller in V1_DAEMON_CONTROLLERS:
            if self._has(controller):
                self.path(controller, system).mkdir(parents=True, exist_ok=True)
        unset = []
        if self._has("cpu"):
            cpu_dir = self.path("cpu", cgroup)
            _write(cpu_dir / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(cpu_dir / "cpu.cfs_quota_us", str(max(1000, round(cpu * CFS_PERIOD_US))))
        else:
            unset.append("cpu")
        if self._has("memory"):
            _write(self.path("memory", cgroup) / "memory.limit_in_bytes", str(mem_mib * 1024**2))
        else:
            unset.append("memory")
        return unset

    def procs_files(self, cgroup: str) -> list[Path]:
        return [
            self.path(c, cgroup) / "cgroup.procs" for c in V1_DAEMON_CONTROLLERS if self._has(c)
        ]


class V2(Driver):
    """cgroup v2: one tree, `<root>/<cgroup>`; a controller's files exist in a cgroup only
    when its parent's `cgroup.subtree_control` enables it."""

    version = 2

    def hierarchies(self) -> list[Path]:
        return [self.root] if (self.root / "cgroup.controllers").exists() else []

    def path(self, controller: str, cgroup: str) -> Path:
        return self.root / cgroup.lstrip("/")

    def available(self) -> set[str]:
        return set((_read(self.root / "cgroup.controllers") or "").split())

    def missing(self) -> list[str]:
        have = self.available()
        enabled = set((_read(self.root / "cgroup.subtree_control") or "").split())
        # A root that is itself a child (a container's delegated cgroup: it has a
        # cgroup.type) with processes in it cannot enable a controller for its children
        # (the "no internal processes" rule): only what is enabled already counts.
        busy_child = (self.root / "cgroup.type").exists() and bool(
            (_read(self.root / "cgroup.procs") or "").split()
        )
        usable = enabled if busy_child else have
        return [c for c in ENFORCED if c not in usable]

    def describe(self) -> str:
        private = "" if self.root == SYS_ROOT else " (machines' daemons see it as /sys/fs/cgroup)"
        return f"cgroup v2 at {self.root}{private}"

    def _enable(self, directory: Path) -> None:
        """Turn on, for `directory`'s children, each wanted controller it has."""
        have = set((_read(directory / "cgroup.controllers") or "").split())
        enabled = set((_read(directory / "cgroup.subtree_control") or "").split())
        want = [c for c in V2_CONTROLLERS if c in have and c not in enabled]
        control = directory / "cgroup.subtree_control"
        try:
            if want:
                control.write_text(" ".join(f"+{c}" for c in want))
            return
        except OSError:
            pass
        for controller in want:  # one at a time, to get those that can be had
            try:
                control.write_text(f"+{controller}")
            except OSError as exc:
                # e.g. EBUSY: processes in a cgroup that is not the root (the "no internal
                # processes" rule); the limit is then reported as not set.
                log_event(log, "cannot enable cgroup controller", dir=str(directory),
                          controller=controller, error=exc.strerror)  # fmt: skip

    def ensure_machine(self, cgroup: str, system: str, cpu: float, mem_mib: int) -> list[str]:
        machine = self.path("", cgroup)
        (self.path("", system)).mkdir(parents=True, exist_ok=True)
        # From the root down to the machine itself: its parent must enable cpu and memory
        # for the machine's limit files to exist; the machine enables them for its pods.
        rel = machine.relative_to(self.root)
        directory = self.root
        self._enable(directory)
        for part in rel.parts:
            directory = directory / part
            self._enable(directory)
        unset = []
        if (machine / "cpu.max").exists():
            _write(machine / "cpu.max", f"{max(1000, round(cpu * CFS_PERIOD_US))} {CFS_PERIOD_US}")
        else:
            unset.append("cpu")
        if (machine / "memory.max").exists():
            _write(machine / "memory.max", str(mem_mib * 1024**2))
            if (machine / "memory.swap.max").exists():
                # As on v1 (memory.limit_in_bytes alone): the machine has no swap.
                _write(machine / "memory.swap.max", "0")
        else:
            unset.append("memory")
        return unset

    def procs_files(self, cgroup: str) -> list[Path]:
        return [self.path("", cgroup) / "cgroup.procs"]

    def daemon_argv(self, cgroup: str, argv: list[str]) -> list[str]:
        if self.root == SYS_ROOT:
            return super().daemon_argv(cgroup, argv)
        # A tree mounted elsewhere (a v1 host lending its v2 hierarchy, or a test): the
        # daemons get a private mount namespace where it is /sys/fs/cgroup, so dockerd and
        # runc see a v2 host. Their own mounts (overlays, netns binds) stay in it and go
        # with its last process.
        procs = shlex.quote(str(self.procs_files(cgroup)[0]))
        root = shlex.quote(str(self.root))
        script = f'echo $$ > {procs} && mount --bind {root} {SYS_ROOT} && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]


def detect(root: Path, mountinfo: str | None = None) -> Driver:
    """The driver for the cgroup tree at `root`, from the file system mounted there."""
    return V2(root) if fs_type(root, mountinfo) == "cgroup2" else V1(root)


_driver: Driver | None = None


def driver() -> Driver:
    """This process's driver: `$OPENCCS_CGROUP_ROOT` (a cgroup2 mount point) or the host's."""
    global _driver
    if _driver is None:
        _driver = detect(Path(os.environ.get(ROOT_ENV) or SYS_ROOT))
    return _driver


@contextlib.contextmanager
def override(tree: Driver) -> Iterator[Driver]:
    """Use `tree` as this process's driver for a while (tests of the readers)."""
    global _driver
    before, _driver = _driver, tree
    try:
        yield tree
    finally:
        _driver = before


def all_drivers() -> list[Driver]:
    """Every tree a run of openccs may have used: the host's, and each cgroup2 mount
    (sweep looks in all of them)."""
    found: dict[Path, Driver] = {}
    for d in [driver(), detect(SYS_ROOT), *(V2(p) for p in cgroup2_mounts())]:
        found.setdefault(d.root, d)
    return list(found.values())
