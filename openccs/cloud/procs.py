"""Finding and stopping the processes of machines (dockerd, containerd, shims, containers)
by pid, cgroup or command line, without trusting a pid that may have been reused."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.procs")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def state(pid: int) -> str | None:
    """The process state letter (R, S, Z...), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the state follows the last ')'.
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0]


def alive(pid: int) -> bool:
    """Running (a zombie is dead: here PID 1 does not reap orphans, so they linger)."""
    reap(pid)
    return state(pid) not in (None, "Z", "X")


def reap(pid: int) -> None:
    """Collect the exit status if the process is our child (dockerds this process started)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(pid: int) -> list[int]:
    """Direct children (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            found.extend(
                int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            )
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def with_cmdline_containing(needles: Iterable[str]) -> list[int]:
    """Processes whose command line mentions any of `needles` (e.g. a machine's dirs)."""
    wanted = [n for n in needles if n]
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        line = " ".join(cmdline(pid))
        if line and any(n in line for n in wanted):
            found.append(pid)
    return found


def terminate(pids: Iterable[int], timeout: float = 10.0, what: str = "process") -> list[int]:
    """SIGTERM, wait up to `timeout`, then SIGKILL what is left and wait for it to die.
    Returns the pids that were signalled."""
    targets = [p for p in set(pids) if alive(p)]
    steps = [(signal.SIGTERM, timeout)] if timeout > 0 else []
    for sig, wait in [*steps, (signal.SIGKILL, 5.0)]:
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(p) for p in targets):
            time.sleep(0.05)
        left = [p for p in targets if alive(p)]
        if not left:
            break
        if sig == signal.SIGTERM:
            log_event(log, "sending SIGKILL", what=what, pids=",".join(map(str, left)))
    return targets


def kill_now(pids: Iterable[int]) -> list[int]:
    """SIGKILL at once (container processes of a machine being destroyed) and wait."""
    return terminate(pids, timeout=0.0)
