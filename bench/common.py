"""What every benchmark records beside its figures: the machine, the commit, and its own
section of bench/RESULTS.md (replaced on each run; other sections are kept)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

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
