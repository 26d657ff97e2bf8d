"""What the engine's session listeners cost per commit, A/B: a commit against the working tree.

Every transaction of the store's sessions passes through the engine's listeners (what a
commit changed, for its generations and its controllers), the API's included. Their cost
per commit is a few microseconds, below what a throughput or a per-request benchmark on a
shared machine can resolve; this one measures it directly.

Each measurement is a child process that imports openccs (from `git archive REF` for A, from
the working tree for B), builds the services of `openccs serve` on a fresh SQLite data
directory (nothing started), writes an account, a cluster, a machine and a pod, and then
times, in CPU time of the process, COMMITS transactions of each kind with the engine's
listeners attached and COMMITS without, alternating on and off for several rounds in the
same process: the difference of the medians is what the listeners cost. The kinds:

- `read`: one SELECT and a commit (a signed read of the API: DescribeCluster is one),
- `api write`: an ORM insert into a table no pass reads (a task row) and a commit,
- `pod status`: a pod's status changed and committed (what a node agent writes).

Run: `.venv/bin/python bench/commit_listeners.py --compare main` (see `--help`).
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, export_source, git_commit, machine_facts, publish, run_child, short_rev

TITLE = "## Engine commit listeners: CPU per commit, A/B"
KINDS = ("read", "api write", "pod status")

CHILD = r"""
import gc, json, os, sys, tempfile, time
from pathlib import Path

commits, rounds = int(sys.argv[1]), int(sys.argv[2])
tmp = Path(tempfile.mkdtemp(prefix="openccs-commits-"))
log = open(tmp / "server.log", "w")
os.dup2(log.fileno(), 2)

from sqlalchemy import select
from openccs.config import Settings
from openccs.log import setup_logging
from openccs.server import build_services
from openccs.store.models import (
    Account, Cluster, Instance, K8sNamespace, Pod, Subnet, Task, Vpc,
)

setup_logging("INFO")
services = build_services(Settings(data_dir=tmp / "data"))
store, engine = services.store, services.subsystems.engine
CL = "cls-bench001"
with store.session() as s:
    for row in (
        Account(id=9, app_id=1259000000, uin="900000000009"),
        Vpc(id="vpc-bench001", num_id=9, account_id=9, cidr="10.0.0.0/16"),
        Subnet(id="subnet-bench001", num_id=9, vpc_id="vpc-bench001", account_id=9,
               cidr="10.0.1.0/24", zone="ap-guangzhou-3"),
        Cluster(id=CL, account_id=9, name="bench", vpc_id="vpc-bench001",
                cidr="172.16.0.0/16", service_cidr="172.16.255.0/24", status="Running",
                master_subnet_id=None),
        K8sNamespace(account_id=9, cluster_id=CL, name="default"),
        Instance(id="ins-bench001", account_id=9, vpc_id="vpc-bench001",
                 subnet_id="subnet-bench001", zone="ap-guangzhou-3", lan_ip="10.0.1.9",
                 cluster_id=CL, instance_type="S2.MEDIUM4", cpu=2, mem=4, state="Running",
                 is_normal=True, pod_cidr=None, labels={}),
        Pod(uid="pod-bench001", account_id=9, cluster_id=CL, namespace="default",
            name="web-1", template={}, node_id="ins-bench001", status={}),
    ):
        s.add(row)
        s.flush()

def read(i):
    with store.sessions() as s:
        s.execute(select(Cluster.id).where(Cluster.id == CL)).first()
        s.commit()

def api_write(i):
    with store.sessions() as s:
        s.add(Task(account_id=9, type="bench"))
        s.commit()

def pod_status(i):
    with store.sessions() as s:
        pod = s.scalars(select(Pod).where(Pod.uid == "pod-bench001")).one()
        pod.status = {"reason": "Running", "n": i}
        s.commit()

kinds = {"read": read, "api write": api_write, "pod status": pod_status}
for fn in kinds.values():  # warm-up
    for i in range(200):
        fn(i)
gc.freeze()
out = {f"{k} {w}": [] for k in kinds for w in ("on", "off")}
for rnd in range(rounds):
    for on in ((True, False) if rnd % 2 else (False, True)):
        if on:
            engine.follow_commits()
        for name, fn in kinds.items():
            cpu0 = time.process_time()
            for i in range(commits):
                fn(i)
            out[f"{name} {'on' if on else 'off'}"].append(
                (time.process_time() - cpu0) / commits * 1e6)
        if on:
            engine.follow_commits(False)
store.dispose()
import shutil
shutil.rmtree(tmp, ignore_errors=True)
print("RESULT " + json.dumps(out))
"""


def measure(source: Path, commits: int, rounds: int) -> dict[str, list[float]]:
    """CPU microseconds per commit, per kind with (`KIND on`) and without (`KIND off`) the
    listeners, one figure per round, of one child process importing openccs from SOURCE."""
    got = run_child(source, CHILD, str(commits), str(rounds))
    assert isinstance(got, dict)
    return got


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--compare", metavar="REF", default="main", help="A: this commit (main)")
    p.add_argument("--commits", type=int, default=2000, help="commits per figure (2000)")
    p.add_argument("--rounds", type=int, default=6, help="on/off rounds per process (6)")
    p.add_argument("--processes", type=int, default=3, help="processes per side (3)")
    p.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    a = p.parse_args(argv)
    started = datetime.datetime.now().astimezone()
    load_before = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    work = Path(tempfile.mkdtemp(prefix="openccs-bench-commits-"))
    figures: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    try:
        sources = {"A": export_source(a.compare, work / "a"), "B": REPO}
        for n in range(a.processes):
            for label in ("A", "B") if n % 2 == 0 else ("B", "A"):
                got = measure(sources[label], a.commits, a.rounds)
                for key, values in got.items():
                    figures[label].setdefault(key, []).extend(values)
                print(f"bench: process {n + 1} {label} done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    commit_a = short_rev(a.compare)
    m = machine_facts()
    med = statistics.median
    command = shlex.join([".venv/bin/python", "bench/commit_listeners.py", *sys.argv[1:]])
    lines = [
        TITLE,
        "",
        "Written by `bench/commit_listeners.py`, which replaces this section on every run.",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- A: {commit_a or a.compare} (`git archive {a.compare}`); B: {git_commit()}",
        f"- machine: {m['cpus']} CPUs ({m['cpu model']}), {m['memory']} RAM, {m['kernel']},"
        f" Python {m['python']}",
        f"- command: `{command}`",
        f"- load average (1/5/15 min) before: {load_before}; after: {load_after}",
        f"- {a.commits:,} commits per figure on SQLite, the engine's listeners on and off in"
        f" turn, {a.rounds} rounds in each of {a.processes} processes per side (A and B in"
        " alternating order); µs CPU per commit, medians over all rounds; the listeners' cost"
        " is on minus off",
        "",
        "| commit | A on | A off | A listeners | B on | B off | B listeners |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        row = [kind]
        for label in ("A", "B"):
            on, off = med(figures[label][f"{kind} on"]), med(figures[label][f"{kind} off"])
            row += [f"{on:.1f}", f"{off:.1f}", f"{on - off:+.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "CPU time of the whole process; a busy machine inflates every figure alike, and the"
        " difference of two medians of the same process is the figure to read (a few tenths"
        " of a µs either way is noise).",
    ]
    return publish(TITLE, lines, not a.no_write)


if __name__ == "__main__":
    sys.exit(main())
