"""Reading the counters of a machine: its pods' containers through their cgroup files (v1 or
v2, as `cgroups.driver()` says), each pod's network through its pause container's
`/proc/<pid>/net/dev`, and the machine's own cgroup for the node. Both versions give the
same figures: CPU time in ns, the working set as Kubernetes computes it (usage less the
inactive file cache), cumulative disk bytes and operations.

The machine's dockerd is asked once per pass for its pod containers (ids, roles, pods);
everything else is a small file read (docker stats would cost a request per container and
a second of waiting each). A container runs in `<machine cgroup>/<full container id>` in
every hierarchy (cgroupfs driver with the machine's cgroup as `--cgroup-parent`).

Disk counters on v2 come from `io.stat`, which counts every group. Cgroup v1 counts a
group's I/O in `blkio.throttle.io_service*` only once a throttle rule exists for the device
(kernels since 5.x no longer count unthrottled groups). So on v1 each container, when first
seen, gets a rule on the disk holding the machine's data that no I/O can reach (2^50
bytes/s), which turns the counters on without limiting.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openccs.cloud import cgroups
from openccs.cloud.host import CloudError
from openccs.engine import docker
from openccs.engine.docker import POD_LABEL

PROC = Path("/proc")
UNREACHABLE_BPS = 1 << 50


def whole_disk(path: Path) -> str | None:
    """`MAJOR:MINOR` of the disk (not partition) holding `path`; None when it is not on a
    block device (tmpfs, overlay)."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    sys_dir = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if not sys_dir.exists():
        return None
    if (sys_dir / "partition").exists():
        text = _read(sys_dir.resolve().parent / "dev")
        return text.strip() if text else None
    return f"{os.major(dev)}:{os.minor(dev)}"


def enable_io_accounting(cgroup: str, disk: str) -> None:
    d = cgroups.driver()
    if d.version != 1:
        return  # v2's io.stat counts without any rule
    base = d.path("blkio", cgroup)
    for name in ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"):
        try:
            (base / name).write_text(f"{disk} {UNREACHABLE_BPS}")
        except OSError:
            return  # the container is gone, or the device takes no rules: no disk figures


def _read(file: Path) -> str | None:
    try:
        return file.read_text()
    except OSError:
        return None


def _int(file: Path) -> int | None:
    text = _read(file)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def flat_keyed(text: str) -> dict[str, int]:
    """A "key value" per line file (memory.stat, cpu.stat) as a dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def memory_working_set(cgroup: str) -> int | None:
    """Bytes in use less the inactive file cache (what kubelet calls the working set)."""
    d = cgroups.driver()
    base = d.path("memory", cgroup)
    if d.version == 1:
        usage, inactive_key = _int(base / "memory.usage_in_bytes"), "total_inactive_file"
    else:
        usage, inactive_key = _int(base / "memory.current"), "inactive_file"
    if usage is None:
        return None
    inactive = flat_keyed(_read(base / "memory.stat") or "").get(inactive_key, 0)
    return max(0, usage - inactive)


def cpu_ns(cgroup: str) -> int | None:
    """Cumulative CPU time of the cgroup, nanoseconds."""
    d = cgroups.driver()
    if d.version == 1:
        return _int(d.path("cpuacct", cgroup) / "cpuacct.usage")
    text = _read(d.path("cpu", cgroup) / "cpu.stat")
    usec = None if text is None else flat_keyed(text).get("usage_usec")
    return None if usec is None else usec * 1000


def parse_blkio(text: str) -> tuple[int, int]:
    """(read, write) totals over every device of a blkio `io_service*` file."""
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        if parts[1] == "Read":
            read += int(parts[2])
        elif parts[1] == "Write":
            write += int(parts[2])
    return read, write


def parse_io_stat(text: str) -> tuple[int, int, int, int]:
    """(rbytes, wbytes, rios, wios) summed over the devices of a v2 `io.stat`
    ("8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=0 dios=0")."""
    totals = dict.fromkeys(("rbytes", "wbytes", "rios", "wios"), 0)
    for line in text.splitlines():
        for entry in line.split()[1:]:
            key, _, value = entry.partition("=")
            if key in totals and value.isdigit():
                totals[key] += int(value)
    return totals["rbytes"], totals["wbytes"], totals["rios"], totals["wios"]


def blkio(cgroup: str) -> tuple[int, int, int, int] | None:
    """(read bytes, write bytes, read ops, write ops), cumulative."""
    d = cgroups.driver()
    if d.version != 1:
        text = _read(d.path("io", cgroup) / "io.stat")
        return None if text is None else parse_io_stat(text)
    base = d.path("blkio", cgroup)
    size = _read(base / "blkio.throttle.io_service_bytes_recursive")
    ops = _read(base / "blkio.throttle.io_serviced_recursive")
    if size is None or ops is None:
        return None
    return (*parse_blkio(size), *parse_blkio(ops))


def parse_net_dev(text: str) -> tuple[int, int, int, int]:
    """(rx bytes, rx packets, tx bytes, tx packets) over every interface but loopback."""
    rx_b = rx_p = tx_b = tx_p = 0
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep or name.strip() == "lo":
            continue
        f = rest.split()
        if len(f) < 10:
            continue
        rx_b += int(f[0])
        rx_p += int(f[1])
        tx_b += int(f[8])
        tx_p += int(f[9])
    return rx_b, rx_p, tx_b, tx_p


def first_pid(cgroup: str) -> int | None:
    text = _read(cgroups.driver().path("pids", cgroup) / "cgroup.procs")
    if not text:
        return None
    return int(text.split()[0])


def net_counters(pid: int) -> tuple[int, int, int, int] | None:
    text = _read(PROC / str(pid) / "net" / "dev")
    return None if text is None else parse_net_dev(text)


@dataclass
class ContainerReading:
    container_id: str
    name: str
    cpu_ns: int | None
    mem: int | None
    blkio: tuple[int, int, int, int] | None


@dataclass
class PodReading:
    uid: str
    net: tuple[int, int, int, int] | None
    containers: list[ContainerReading] = field(default_factory=list)


@dataclass
class MachineReading:
    node_id: str
    cpu_ns: int | None
    mem: int | None
    pods: dict[str, PodReading] = field(default_factory=dict)


def read_machine(
    node_id: str, machine_cgroup: str, sock: Path, disk: str | None, accounted: set[str]
) -> MachineReading:
    """Every counter of one machine; a pod container that vanished mid-read is left out.
    `accounted`: containers whose disk accounting is on (updated here)."""
    reading = MachineReading(node_id, cpu_ns(machine_cgroup), memory_working_set(machine_cgroup))
    try:
        listed: list[dict[str, Any]] = docker.pod_containers(sock)
    except CloudError:
        return reading
    for c in listed:
        if c.get("State") != "running":
            continue
        labels = c.get("Labels") or {}
        uid = labels.get(POD_LABEL)
        if not uid:
            continue
        pod = reading.pods.setdefault(uid, PodReading(uid, None))
        cg = f"{machine_cgroup}/{c['Id']}"
        if labels.get("openccs.role") == "pause":
            pid = first_pid(cg)
            pod.net = net_counters(pid) if pid else None
        else:
            if disk and c["Id"] not in accounted:
                enable_io_accounting(cg, disk)
            accounted.add(c["Id"])
            pod.containers.append(
                ContainerReading(
                    container_id=c["Id"],
                    name=labels.get("openccs.container", ""),
                    cpu_ns=cpu_ns(cg),
                    mem=memory_working_set(cg),
                    blkio=blkio(cg),
                )
            )
    return reading
