"""What every benchmark records beside its figures: the machine, the commit, and its own
section of bench/RESULTS.md (replaced on each run; other sections are kept); and what the
benchmarks that start `openccs serve` share: a commit's source exported for an A/B run, and
the clean-up at the end with its check that nothing was left on the host."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import Server

REPO = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO / "bench" / "RESULTS.md"


def machine_facts() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
    mem_kb = int(mem[1]) if mem else 0
    dockerd = subprocess.run(
        ["dockerd", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpus": str(os.cpu_count()),
        "cpu model": model[1].strip() if model else platform.processor() or "unknown",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(),
        "dockerd": dockerd or "not installed",
        "cgroup": "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1",
    }


def git_commit(*paths: str) -> str:
    """The short HEAD commit, noting uncommitted changes under `paths` (default: openccs/)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    watched = paths or ("openccs",)
    dirty = git("status", "--porcelain", "--", *watched)
    return head + (f" (with uncommitted changes in {', '.join(watched)})" if dirty else "")


def update_results(title: str, section: str, path: Path = RESULTS_FILE) -> None:
    """Replace the section starting with `title` (up to the next `## `), or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def publish(title: str, lines: list[str], write: bool) -> int:
    """Print a benchmark's section and, when `write`, put it in bench/RESULTS.md; the exit
    code of the benchmark (0 whatever the figures)."""
    section = "\n".join(lines).rstrip("\n") + "\n"
    print(section)
    if write:
        update_results(title, section)
    return 0


def intro(
    title: str,
    script: str,
    started: datetime.datetime,
    commit: str,
    argv: Sequence[str] | None,
    machine_extra: str = "",
) -> list[str]:
    """The first lines of a section: who wrote it, when, on which commit and machine, how."""
    facts = machine_facts()
    command = f".venv/bin/python bench/{script} {' '.join(argv or sys.argv[1:])}".rstrip()
    return [
        title,
        "",
        f"Written by `bench/{script}`, which replaces this section on every run.",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- openccs commit: {commit}",
        f"- machine: {facts['cpus']} CPUs ({facts['cpu model']}), {facts['memory']} RAM,"
        f" {facts['kernel']}, cgroup {facts['cgroup']}, Python {facts['python']},"
        f" {facts['dockerd']}{machine_extra}",
        f"- command: `{command}`",
    ]


def export_source(ref: str, dest: Path) -> Path:
    """The `openccs` package as of REF, unpacked into DEST (immune to concurrent edits)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "openccs"], cwd=REPO, capture_output=True
    )
    if archive.returncode != 0:
        raise SystemExit(f"bench: git archive {ref} failed: {archive.stderr.decode().strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    tar_path = dest / "openccs.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    tar_path.unlink()
    return dest


def run_child(source: Path, code: str, *args: str) -> object:
    """Run CODE in a child Python importing openccs from SOURCE (an A/B side exported by
    `export_source`, or the working tree) and return what it printed after `RESULT ` (JSON)."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(source)),
        cwd=tempfile.gettempdir(),
        timeout=900,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"measurement failed ({proc.returncode}): {proc.stdout}{proc.stderr}")


def short_rev(ref: str) -> str:
    """REF's abbreviated commit id ('' when git does not know it)."""
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref],
                          capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip


def leftovers(site: str) -> list[str]:
    """The site's network namespaces and machine dockerds still on the host."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    dockerds = subprocess.run(["pgrep", "-a", "dockerd"], capture_output=True, text=True).stdout
    found = [line for line in netns.splitlines() if line.startswith(f"occ-{site}-")]
    found += [line for line in dockerds.splitlines() if f"/{site}/" in line]
    return found


def stop_and_sweep(server: Server, site: str, errors: list[str], tmp: Path) -> list[str]:
    """Stop the server, `openccs sweep` its data directory and remove `tmp`; never raises.
    Returns what the site left on the host (checked only when the server started); prints the
    end of the server's log when anything went wrong."""
    left: list[str] = []
    if server.proc is not None:
        try:
            server.stop(timeout=60)
        except Exception as exc:
            errors.append(f"stopping the server: {exc}"[:300])
    subprocess.run([sys.executable, "-m", "openccs.cli.main", "--data-dir",
                    str(server.data_dir), "sweep"], capture_output=True, check=False,
                   cwd=REPO)  # fmt: skip
    if site:
        left = leftovers(site)
    if errors or left:
        log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        print(log[-4000:], file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    return left


def afterwards(site: str, left: list[str]) -> str:
    """The section's line on what the run left on the host."""
    if left:
        return f"- afterwards: LEFT BEHIND: {left}"
    if site:
        return "- afterwards: nothing of the run left in `ip netns list` or `pgrep -a dockerd`"
    return "- afterwards: not checked (the server did not start)"
