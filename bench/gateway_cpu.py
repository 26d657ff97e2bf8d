"""Gateway CPU per signed request, A/B: a commit against the working tree, without the network.

`bench/gateway.py` measures through HTTP with wrk; on a machine that other work keeps busy
its figures mostly show how much of a core the server got. This benchmark measures what a
change to the request path costs or saves instead: server CPU time per signed request.

Each measurement is a child process that imports openccs (from `git archive REF` for A, from
the working tree for B), builds the services of `openccs serve` on a fresh SQLite data
directory (INFO logs to a file, the nonce writer thread running, the engine's commit
listeners attached but not its loops, the same interpreter and GC settings as `serve`), and
sends signed GET requests (HmacSHA256, each its own nonce) to the ASGI application directly,
CONCURRENCY at a time on a uvloop event loop: signature, replay guard with the nonce durable
before the action, authorization, validation and the action all run; uvicorn's HTTP
parsing and the socket do not. It reports the process's CPU time (every thread) per
request. Rounds alternate the order of A and B.

Run: `.venv/bin/python bench/gateway_cpu.py --compare main` (see `--help`).
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, export_source, git_commit, machine_facts, publish, run_child, short_rev

TITLE = "## Gateway: CPU per signed request, A/B without the network"

CHILD = r"""
import asyncio, gc, json, os, shutil, sys, tempfile, time
from pathlib import Path
from urllib.parse import urlencode

action, total, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tmp = Path(tempfile.mkdtemp(prefix="openccs-cpu-"))
log = open(tmp / "server.log", "w")
os.dup2(log.fileno(), 2)

from openccs.api.app import build_app
from openccs.client import signed_params
from openccs.config import Settings
from openccs.log import setup_logging
from openccs.server import build_services, ensure_default_account

setup_logging("INFO")
settings = Settings(data_dir=tmp / "data")
settings.enable_test_actions = True
services = build_services(settings)
creds = ensure_default_account(settings, services.store, services.box)
# The engine's commit listeners, as its start attaches them (its loops are not started):
# every commit of the request's session passes through them in a server.
if services.subsystems.engine is not None:
    services.subsystems.engine.follow_commits()
app = build_app(services)
host = "127.0.0.1:7080"
nonce = int.from_bytes(os.urandom(4))
queries = []
for _ in range(total + 20 * concurrency):
    nonce += 1
    p = signed_params(action, {}, creds["secretId"], creds["secretKey"], host, method="GET",
                      region="gz", signature_method="HmacSHA256", nonce=nonce)
    queries.append(urlencode(p).encode())
headers = [(b"host", host.encode())]

async def one(query):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/v2/index.php",
             "raw_path": b"/v2/index.php", "query_string": query, "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 7080)}
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await app(scope, receive, send)
    if not sent[-1]["body"].startswith(b'{"code":0'):
        raise SystemExit(f"bad answer: {sent[-1]['body'][:300]!r}")

async def main():
    services.replay.start()
    it = iter(queries)
    async def client(n):
        for _ in range(n):
            await one(next(it))
    await asyncio.gather(*(client(20) for _ in range(concurrency)))  # warm-up
    per = total // concurrency
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(per) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await asyncio.to_thread(services.replay.stop)
    services.store.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    print("RESULT " + json.dumps({"requests": per * concurrency, "cpu": cpu, "wall": wall}))

# As `openccs serve` sets them.
sys.setswitchinterval(0.001)
gc.freeze()
gc.set_threshold(20_000, 50, 100)
import uvloop
uvloop.run(main())
"""


def measure(source: Path, action: str, total: int, concurrency: int) -> float:
    """CPU microseconds per request of one child process importing openccs from SOURCE."""
    result = run_child(source, CHILD, action, str(total), str(concurrency))
    assert isinstance(result, dict)
    return float(result["cpu"]) / int(result["requests"]) * 1e6


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--compare", metavar="REF", default="main", help="A: this commit (main)")
    p.add_argument("--action", default="DescribeCluster", help="signed read (DescribeCluster)")
    p.add_argument("--clients", default="1,8,32", help="concurrency, comma-separated (1,8,32)")
    p.add_argument("--requests", type=int, default=4000, help="requests per measurement (4000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    p.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    a = p.parse_args(argv)
    clients = [int(c) for c in a.clients.split(",") if c.strip()]
    started = datetime.datetime.now().astimezone()
    load_before = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    work = Path(tempfile.mkdtemp(prefix="openccs-bench-cpu-"))
    figures: dict[tuple[str, int], list[float]] = {}
    try:
        sources = {"A": export_source(a.compare, work / "a"), "B": REPO}
        for rnd in range(a.rounds):
            for c in clients:
                order = ("A", "B") if (rnd + c) % 2 == 0 else ("B", "A")
                for label in order:
                    us = measure(sources[label], a.action, a.requests, c)
                    figures.setdefault((label, c), []).append(us)
                    print(
                        f"bench: round {rnd + 1} {label} clients={c:<3} {us:7.1f} µs CPU/request",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    commit_a = short_rev(a.compare)
    m = machine_facts()
    lines = [
        TITLE,
        "",
        "Written by `bench/gateway_cpu.py`, which replaces this section on every run.",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- A: {commit_a or a.compare} (`git archive {a.compare}`); B: {git_commit()}",
        f"- machine: {m['cpus']} CPUs ({m['cpu model']}), {m['memory']} RAM, {m['kernel']},"
        f" Python {m['python']}",
        f"- command: `{shlex.join(['.venv/bin/python', 'bench/gateway_cpu.py', *sys.argv[1:]])}`",
        f"- load average (1/5/15 min) before: {load_before}; after: {load_after}",
        f"- signed `{a.action}` GETs straight into the ASGI application (no HTTP, no socket),"
        f" {a.requests:,} per measurement after a warm-up, a fresh process and SQLite data"
        f" directory each; {a.rounds} rounds, A and B in alternating order",
        "",
        "| clients | A µs CPU/request (median) | B µs CPU/request (median)"
        " | A / B (per round) | A / B (median) |",
        "| ---: | ---: | ---: | --- | ---: |",
    ]
    for c in clients:
        fa, fb = figures[("A", c)], figures[("B", c)]
        ratios = [x / y for x, y in zip(fa, fb, strict=True)]
        lines.append(
            f"| {c} | {_median(fa):.0f} | {_median(fb):.0f}"
            f" | {', '.join(f'{r:.2f}' for r in ratios)} | {_median(ratios):.2f} |"
        )
    lines += [
        "",
        "CPU time counts every thread of the process (event loop, nonce writer) and is less"
        " disturbed by other load than throughput, though a busy machine still inflates it"
        " (caches, switches); the ratio is the figure to read.",
    ]
    return publish(TITLE, lines, not a.no_write)


if __name__ == "__main__":
    sys.exit(main())
