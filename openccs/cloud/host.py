"""Running host commands (`ip`, `iptables`, `nsenter`, `sysctl`...) for the local cloud.

Every command is logged and a failure raises `CloudError` carrying the command and its
stderr, so that the person reading the error knows what the host refused and why. The small
`*_exists` helpers answer questions about host objects without raising.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.host")

NETNS_DIR = Path("/run/netns")
# iptables must wait for the xtables lock: machines are created from parallel threads and
# every machine's dockerd also runs iptables (in its own netns, but the lock is host-wide).
IPTABLES_WAIT = ["-w", "10"]


class CloudError(Exception):
    """A host operation failed; the message says which and includes the command's stderr."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def run(
    args: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30.0,
    input_text: str | None = None,
    quiet: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a command and return its completed process; raise `CloudError` when it fails.

    `quiet` logs at debug level only (for the many read-only probes).
    """
    argv = [str(a) for a in args]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CloudError(f"cannot run {shlex.join(argv)}: {argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CloudError(f"{shlex.join(argv)} did not finish within {timeout:.0f} s") from exc
    ms = round((time.monotonic() - started) * 1000, 1)
    if quiet:
        log.debug(
            "host command", extra={"fields": {"cmd": shlex.join(argv), "rc": proc.returncode}}
        )
    else:
        log_event(log, "host command", cmd=shlex.join(argv), rc=proc.returncode, ms=ms)
    if check and proc.returncode != 0:
        stderr = (proc.stderr or proc.stdout or "").strip()
        raise CloudError(f"{shlex.join(argv)} failed (exit {proc.returncode}): {stderr}")
    return proc


def ok(args: Sequence[str], timeout: float = 30.0) -> bool:
    """True when the command exits 0 (for probes and best-effort clean-up)."""
    try:
        return run(args, check=False, timeout=timeout, quiet=True).returncode == 0
    except CloudError:
        return False


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def in_netns(netns: str, args: Sequence[str]) -> list[str]:
    """The command line running `args` in a named network namespace.

    `nsenter --net` only switches the network namespace. `ip netns exec` would also remount
    /sys, and a dockerd started that way cannot see the cgroup hierarchy.
    """
    return ["nsenter", f"--net={netns_path(netns)}", "--", *args]


def iptables(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["iptables", *IPTABLES_WAIT, *args]
    if netns is not None:
        argv = in_netns(netns, argv)
    return run(argv, check=check, quiet=not check).stdout


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def list_netns() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def link_exists(name: str, netns: str | None = None) -> bool:
    if netns is None:
        return Path("/sys/class/net", name).exists()
    return ok(["ip", "-n", netns, "link", "show", "dev", name])


def list_links() -> list[str]:
    """Names of the host's network interfaces."""
    try:
        return sorted(os.listdir("/sys/class/net"))
    except FileNotFoundError:
        return []


def chain_exists(chain: str, table: str = "filter", netns: str | None = None) -> bool:
    argv = ["iptables", *IPTABLES_WAIT, "-t", table, "-S", chain]
    return ok(in_netns(netns, argv) if netns else argv)


def rule_exists(table: str, chain: str, rule: Sequence[str], netns: str | None = None) -> bool:
    argv = ["iptables", *IPTABLES_WAIT, "-t", table, "-C", chain, *rule]
    return ok(in_netns(netns, argv) if netns else argv)


def ensure_rule(
    table: str, chain: str, rule: Sequence[str], *, position: int | None = None
) -> None:
    """Add a rule unless it is present (appended, or inserted at `position`)."""
    if rule_exists(table, chain, rule):
        return
    if position is None:
        iptables("-t", table, "-A", chain, *rule)
    else:
        iptables("-t", table, "-I", chain, str(position), *rule)


def delete_rule(table: str, chain: str, rule: Sequence[str]) -> bool:
    """Delete every copy of a rule; True when one was there."""
    removed = False
    while rule_exists(table, chain, rule):
        iptables("-t", table, "-D", chain, *rule)
        removed = True
    return removed


def ensure_chain(chain: str, table: str = "filter") -> None:
    if not chain_exists(chain, table):
        iptables("-t", table, "-N", chain)


def delete_chain(chain: str, table: str = "filter") -> bool:
    """Flush and delete a chain after removing the rules that jump to it."""
    if not chain_exists(chain, table):
        return False
    for parent, rule in jumps_to(chain, table):
        iptables("-t", table, "-D", parent, *rule, check=False)
    iptables("-t", table, "-F", chain)
    iptables("-t", table, "-X", chain)
    return True


def jumps_to(chain: str, table: str = "filter") -> list[tuple[str, list[str]]]:
    """Every rule of the table that jumps to `chain`, as (parent chain, rule arguments)."""
    found: list[tuple[str, list[str]]] = []
    for line in iptables("-t", table, "-S").splitlines():
        parts = shlex.split(line)
        if len(parts) < 3 or parts[0] != "-A":
            continue
        rule = parts[2:]
        if "-j" in rule and rule[rule.index("-j") + 1 : rule.index("-j") + 2] == [chain]:
            found.append((parts[1], rule))
    return found


def list_chains(table: str = "filter") -> list[str]:
    chains = []
    for line in iptables("-t", table, "-S").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "-N":
            chains.append(parts[1])
    return chains


def sysctl_set(key: str, value: str) -> None:
    path = Path("/proc/sys", *key.split("."))
    if path.read_text().strip() == value:
        return
    path.write_text(value + "\n")
    log_event(log, "sysctl set", key=key, value=value)


def kernel_version() -> str:
    return os.uname().release
