"""Local cloud benchmark: how fast machines (netns + their own dockerd) are created and
destroyed, and how much memory an idle machine costs.

For each batch size (1, 3 and 5 by default) it creates that many machines on one VPC in
parallel threads with `MachineEngine.create` (which returns once the machine's dockerd answers
`/_ping`), lets them idle, measures the memory of each machine's daemons (dockerd and its
containerd: RSS summed over the process tree, and PSS, which counts the pages the dockerds
share once), then destroys them in parallel threads. Everything runs under a random site id
of its own, swept at the end even on failure.

Targets: 3 machines Running within 20 s, deleted within 10 s, under 150 MB per idle machine.
Unless `--no-write` is given it replaces its own section of `bench/RESULTS.md` (the other
sections belong to other benchmarks and are kept).

Run as root: `.venv/bin/python bench/cloud.py` (see `--help`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from openccs.cloud import procs, sweep, vpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import git_commit, machine_facts, update_results

from openccs.cloud.machine import MachineEngine, MachineSpec

REPO = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO / "bench" / "RESULTS.md"
SECTION_TITLE = "## Local cloud: machines"
MB = 1_000_000
TARGET_CREATE_S = 20.0
TARGET_DESTROY_S = 10.0
TARGET_RSS_MB = 150.0
TARGET_BATCH = 3


@dataclass
class Batch:
    size: int
    create_s: float
    slowest_machine_s: float
    destroy_s: float
    rss_mb: list[float]  # per machine, dockerd + containerd
    pss_mb: list[float]


def _rand(k: int) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=k))


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _free_vpc_octet() -> int:
    taken = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=False
    ).stdout
    for _ in range(100):
        octet = random.randint(200, 250)
        if f"10.{octet}." not in taken:
            return octet
    raise SystemExit("no free 10.x.0.0/16 for the benchmark's VPC")


def run_batch(
    engine: MachineEngine, site: str, vpc_id: str, net: str, work: Path, size: int, idle_s: float
) -> Batch:
    specs = []
    for i in range(size):
        iid = f"ins-{_rand(8)}"
        specs.append(
            MachineSpec(
                instance_id=iid,
                site=site,
                vpc_id=vpc_id,
                lan_ip=f"{net}.1.{10 + i}",
                prefix_len=24,
                gateway=f"{net}.1.1",
                pod_cidr=f"172.31.{100 + i}.0/24",
                cpu=1.0,
                mem_mib=1024,
                root_dir=work / iid,
            )
        )
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=size) as pool:
            results = list(pool.map(engine.create, specs))
        create_s = time.monotonic() - started
        for spec in specs:
            ok, reason = engine.health(spec.instance_id)
            if not ok:
                raise SystemExit(f"machine {spec.instance_id} is not healthy: {reason}")
        time.sleep(idle_s)  # let the daemons settle into their idle footprint
        rss, pss = [], []
        for r in results:
            tree = procs.tree(r.pid)
            rss.append(sum(procs.rss_bytes(p) for p in tree) / MB)
            pss.append(sum(_pss_bytes(p) for p in tree) / MB)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=size) as pool:
            list(pool.map(lambda s: engine.destroy(s.instance_id, s.root_dir), specs))
        destroy_s = time.monotonic() - started
    finally:
        for spec in specs:  # after a failure: leave nothing of this batch
            if spec.root_dir.exists():
                engine.destroy(spec.instance_id, spec.root_dir)
    return Batch(size, create_s, max(r.ms for r in results) / 1000, destroy_s, rss, pss)


def render(
    batches: list[Batch],
    facts: dict[str, str],
    argv: Sequence[str],
    started: datetime.datetime,
    idle_s: float,
) -> str:
    lines = [
        SECTION_TITLE,
        "",
        "Written by `bench/cloud.py`, which replaces this section on every run and keeps the"
        " other sections of this file.",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- openccs commit: {git_commit('openccs/cloud')}",
        f"- machine: {facts['cpus']} CPUs ({facts['cpu model']}), {facts['memory']} RAM,"
        f" {facts['kernel']}, cgroup {facts['cgroup']}, {facts['dockerd']}",
        f"- command: `{' '.join(['.venv/bin/python', 'bench/cloud.py', *argv])}`",
        "- a machine: network namespace + veth on the VPC bridge + its own dockerd (own data"
        " root, exec root, containerd) in a cgroup of 1 CPU / 1024 MiB; created in parallel"
        " threads, Running = every dockerd answers `/_ping`; destroyed in parallel threads",
        f"- memory: after {idle_s:g} s idle, per machine, dockerd + its containerd (process"
        " tree); RSS counts shared pages in every machine, PSS shares them out",
        "",
        "| machines | create all (s) | slowest machine (s) | destroy all (s) | RSS MB / machine"
        " (mean, max) | PSS MB / machine (mean) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in batches:
        lines.append(
            f"| {b.size} | {b.create_s:.2f} | {b.slowest_machine_s:.2f} | {b.destroy_s:.2f}"
            f" | {sum(b.rss_mb) / len(b.rss_mb):.1f}, {max(b.rss_mb):.1f}"
            f" | {sum(b.pss_mb) / len(b.pss_mb):.1f} |"
        )
    lines += ["", "| target | result | figure |", "| --- | --- | --- |"]
    ref = next((b for b in batches if b.size == TARGET_BATCH), None)
    if ref is not None:
        for name, passed, figure in (
            (
                f"{TARGET_BATCH} machines Running within {TARGET_CREATE_S:g} s",
                ref.create_s < TARGET_CREATE_S,
                f"{ref.create_s:.2f} s",
            ),
            (
                f"{TARGET_BATCH} machines deleted within {TARGET_DESTROY_S:g} s",
                ref.destroy_s < TARGET_DESTROY_S,
                f"{ref.destroy_s:.2f} s",
            ),
        ):
            lines.append(f"| {name} | {'PASS' if passed else 'FAIL'} | {figure} |")
    worst = max(max(b.rss_mb) for b in batches)
    lines.append(
        f"| under {TARGET_RSS_MB:g} MB per idle machine (RSS, worst machine) |"
        f" {'PASS' if worst < TARGET_RSS_MB else 'FAIL'} | {worst:.1f} MB |"
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="1,3,5", help="batch sizes, comma-separated (1,3,5)")
    p.add_argument("--idle", type=float, default=5.0, help="idle seconds before measuring (5)")
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    opts = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench/cloud.py needs root (namespaces, bridges, iptables, cgroups)")
    args = list(sys.argv[1:] if argv is None else argv)
    sizes = [int(s) for s in opts.sizes.split(",") if s.strip()]
    started = datetime.datetime.now(datetime.UTC)
    site = "b" + _rand(3)
    vpc_id = f"vpc-{_rand(8)}"
    octet = _free_vpc_octet()
    net = f"10.{octet}"
    work = Path(tempfile.mkdtemp(prefix=f"openccs-bench-{site}-"))
    engine = MachineEngine(site)
    batches = []
    try:
        vpc.ensure_vpc(site, vpc_id, f"{net}.0.0/16")
        vpc.ensure_subnet(site, vpc_id, f"{net}.1.1/24")
        for size in sizes:
            batch = run_batch(engine, site, vpc_id, net, work, size, opts.idle)
            print(
                f"bench: {size} machine(s): create {batch.create_s:.2f} s, destroy "
                f"{batch.destroy_s:.2f} s, RSS {max(batch.rss_mb):.1f} MB",
                file=sys.stderr,
            )
            batches.append(batch)
        vpc.delete_vpc(site, vpc_id)
    finally:
        removed = sweep.sweep(site, remove_data=True)
        shutil.rmtree(work, ignore_errors=True)
        if any(removed.values()):
            print(f"bench: swept leftovers: {removed}", file=sys.stderr)
    section = render(batches, machine_facts(), args, started, opts.idle)
    print(section)
    if not opts.no_write:
        update_results(SECTION_TITLE, section, RESULTS_FILE)
        print(f"bench: updated {RESULTS_FILE.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
