"""The log shipper of one machine (the log agent a DaemonSet would run there): finds the files
its cluster's rules collect, reads new whole lines and produces them to each rule's Kafka
broker; the offsets are written to the database only after the broker acknowledged.

At least once: after a crash the lines since the last acknowledged batch are sent again.
A broker that does not answer is retried with back-off while the lines wait in their files.
Records of one container (or file) keep their order: they share a key, so a partition, and
the idempotent producer keeps a partition's order through its retries.

Each record is a JSON object: cluster, namespace, pod, container, service, machine, stream
(stdout, stderr, or `file` for machine files), timestamp (RFC 3339 in UTC, as docker writes
it; when read, for machine files), log (the line, without its newline), collector (the
rule's name); records of machine files also carry path and the rule's labels.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from kafka.partitioner.default import murmur2
from sqlalchemy import delete, select

from openccs.backoff import Backoff, Policy
from openccs.cloud import dockerapi, safepath
from openccs.cloud.host import CloudError
from openccs.log import get_logger, log_event
from openccs.logs.models import LogCollector, LogOffset
from openccs.logs.rules import Rule
from openccs.logs.tail import Entry, Tailer, file_id, fingerprint, same_start
from openccs.store.models import Pod, Service
from openccs.timeutil import utcnow

log = get_logger("openccs.logs")

BATCH_BYTES = 1 << 20
BATCH_RECORDS = 20_000
IDLE_WAIT = 0.25
DISCOVER_EVERY = 1.0
# A broker that fails is tried again after 0.5 s, 1 s... 10 s.
BROKER_BACKOFF = Policy(start=0.5, cap=10.0)
FLUSH_TIMEOUT = 20.0
# docker's json-file driver keeps this many rotated files (openccs starts dockerd with
# max-file=3): <id>-json.log.2 is the oldest.
ROTATED = 2


def make_producer(bootstrap: str, client_id: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        max_block_ms=5000,
        request_timeout_ms=5000,
        delivery_timeout_ms=12_000,
        bootstrap_timeout_ms=5000,
        reconnect_backoff_max_ms=2000,
    )


class MachineShipper:
    """One machine's shipper thread, for the rules of the machine's cluster."""

    def __init__(
        self,
        node_id: str,
        cluster_id: str,
        socket: Path,
        root_dir: Path,
        store: Any,
        rules: Callable[[str], list[Rule]],
    ) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.socket = socket
        self.root_dir = root_dir
        self.store = store
        self._rules = rules
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"logs-{node_id}", daemon=True)
        self.tailers: dict[tuple[int, str], Tailer] = {}
        # (rule, file) -> (delivered offset, fingerprint), as last written to the database.
        self.saved: dict[tuple[int, str], tuple[int, str]] = {}
        self._turns: dict[int, int] = {}
        self.producers: dict[str, Any] = {}
        self.backoffs: dict[str, Backoff] = {}
        self.services: dict[str, str] = {}  # pod uid -> service name
        self.problems: dict[str, str] = {}  # what keeps this machine from shipping, by cause
        self.reading = False  # whether the machine's logs could be listed at the last look
        self.shipped = 0
        self._discovered = 0.0

    # -- life ----------------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        log_event(log, "shipper started", node=self.node_id, cluster=self.cluster_id)
        try:
            self._load_saved()
            while not self.stop_event.is_set():
                try:
                    moved = self.step()
                    self.problems.pop("pass", None)
                except Exception as exc:  # never let one bad pass end the machine's shipper
                    log.exception("log shipper pass failed")
                    self.problems["pass"] = f"{type(exc).__name__}: {exc}"[:300]
                    moved = 0
                if not moved:
                    self.wake_event.wait(IDLE_WAIT)
                    self.wake_event.clear()
        finally:
            for t in self.tailers.values():
                t.close()
            for p in self.producers.values():
                _close_producer(p)
            log_event(log, "shipper stopped", node=self.node_id, cluster=self.cluster_id)

    def _load_saved(self) -> None:
        with self.store.session() as s:
            rows = list(s.scalars(select(LogOffset).where(LogOffset.node_id == self.node_id)))
            s.expunge_all()
        rootfs = self.root_dir / "rootfs"
        gone = [r for r in rows if not _still_there(r.path, r.file_id, rootfs)]
        if gone:
            # Files removed while no shipper ran (a container deleted meanwhile).
            with self.store.session() as s:
                for r in gone:
                    s.execute(
                        delete(LogOffset).where(
                            LogOffset.rule_id == r.rule_id,
                            LogOffset.node_id == r.node_id,
                            LogOffset.file_id == r.file_id,
                        )
                    )
        self.saved = {
            (r.rule_id, r.file_id): (r.offset, r.fingerprint) for r in rows if r not in gone
        }

    # -- one pass ------------------------------------------------------------------------
    def backlog_bytes(self) -> int:
        """Bytes written to the followed files that the broker has not acknowledged yet."""
        behind = 0
        for t in list(self.tailers.values()):
            try:
                behind += max(0, os.fstat(t.fh.fileno()).st_size - t.offset)
            except (OSError, ValueError):  # closed meanwhile
                continue
        return behind

    def step(self) -> int:
        """Discover files (at most once a second), then ship one batch per rule; the number
        of records shipped."""
        rules = self._rules(self.cluster_id)
        if time.monotonic() - self._discovered >= DISCOVER_EVERY:
            self._discovered = time.monotonic()
            self.discover(rules)
        moved = 0
        for rule in rules:
            moved += self._ship(rule)
        return moved

    def discover(self, rules: list[Rule]) -> None:
        for t in self.tailers.values():
            t.seen = False
        if any(r.input_type == "container-log" for r in rules):
            if not self._discover_containers([r for r in rules if r.input_type == "container-log"]):
                for t in self.tailers.values():  # dockerd not answering: keep what we read
                    t.seen = t.seen or t.kind == "json-file"
        else:
            self.reading = True
            self.problems.pop("docker", None)
        for rule in rules:
            if rule.input_type == "host-log":
                self._discover_files(rule)
        brokers = {r.bootstrap for r in rules}
        for bootstrap in [b for b in self.producers if b not in brokers]:
            _close_producer(self.producers.pop(bootstrap))  # no rule ships there any more
        for cause in [c for c in self.problems if c not in ("docker", "pass", *brokers)]:
            self.problems.pop(cause, None)
        ids = {r.id for r in rules}
        for key, t in list(self.tailers.items()):
            if t.seen:
                continue
            if key[0] in ids and (t.unlinked() or t.draining or self._moved_away(t)):
                t.draining = True  # its last lines are still shipped
                continue
            t.close()  # no longer collected (rule deleted or changed)
            del self.tailers[key]

    def _moved_away(self, t: Tailer) -> bool:
        try:
            if t.kind == "text":  # a path of the machine's disk: looked at inside it only
                fd = safepath.open_beneath(self.root_dir / "rootfs", t.meta["path"])
                try:
                    return file_id(os.fstat(fd)) != t.file_id
                finally:
                    os.close(fd)
            return file_id(os.stat(t.path)) != t.file_id
        except (OSError, safepath.UnsafePath):
            return True

    def _discover_containers(self, rules: list[Rule]) -> bool:
        try:
            resp = dockerapi.request(
                self.socket,
                "GET",
                "/containers/json",
                params={"all": "1", "filters": json.dumps({"label": ["openccs.role=app"]})},
                timeout=10,
            )
            containers: list[dict[str, Any]] = resp.json()
        except CloudError as exc:
            self.reading = False
            self.problems["docker"] = f"cannot list the machine's containers: {exc.message}"
            return False
        self.reading = True
        self.problems.pop("docker", None)
        # Oldest first: a pod's earlier containers (before a restart) ship before later ones.
        containers.sort(key=lambda c: (c.get("Created") or 0, c["Id"]))
        uids = {c["Labels"].get("openccs.pod.uid", "") for c in containers}
        if uids - set(self.services):
            self._load_services()
        data_root = self.root_dir / "docker" / "containers"
        for c in containers:
            labels = c["Labels"]
            if labels.get("openccs.cluster") != self.cluster_id:
                continue
            namespace = labels.get("openccs.namespace", "")
            service = self.services.get(labels.get("openccs.pod.uid", ""), "")
            meta = {
                "cluster": self.cluster_id,
                "namespace": namespace,
                "pod": labels.get("openccs.pod", ""),
                "container": labels.get("openccs.container", ""),
                "service": service,
                "machine": self.node_id,
            }
            base = data_root / c["Id"] / f"{c['Id']}-json.log"
            paths = [f"{base}.{n}" for n in range(ROTATED, 0, -1)] + [str(base)]
            for rule in rules:
                if rule.takes_container(namespace, service):
                    for path in paths:
                        self._track(rule, path, "json-file", dict(meta, collector=rule.name))
        return True

    def _load_services(self) -> None:
        with self.store.session() as s:
            rows = s.execute(
                select(Pod.uid, Service.name)
                .join(Service, Pod.service_id == Service.id)
                .where(Pod.node_id == self.node_id)
            ).all()
        for uid, name in rows:
            self.services[uid] = name

    def _discover_files(self, rule: Rule) -> None:
        # Matched and opened inside the machine's disk only (cloud.safepath): a link out of
        # it, or swapped in while this runs, is never read. Files already read are only
        # looked at (an O_PATH descriptor), not opened again.
        rootfs = self.root_dir / "rootfs"
        found = []
        try:
            root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            for rel in safepath.glob_beneath(rootfs, rule.input_option["path"]):
                try:
                    fd = safepath.open_beneath(root_fd, rel)
                except (OSError, safepath.UnsafePath):
                    continue
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode):
                    found.append((st.st_mtime, rel, fd))
                else:
                    os.close(fd)
            # Oldest first: a rotated file before its successor.
            for _, rel, fd in sorted(found, key=lambda f: (f[0], f[1])):
                meta = {
                    "cluster": self.cluster_id,
                    "namespace": "",
                    "pod": "",
                    "container": "",
                    "service": "",
                    "machine": self.node_id,
                    "collector": rule.name,
                    "path": "/" + rel,
                    "labels": rule.labels,
                }
                path = str(rootfs / rel)
                if self._seen_again(rule, file_id(os.fstat(fd)), path, meta):
                    continue
                try:
                    fh = os.fdopen(safepath.reopen_for_reading(fd, rel), "rb")
                except (OSError, safepath.UnsafePath):
                    continue
                self._track(rule, path, "text", meta, fh)
        finally:
            os.close(root_fd)
            for _, _, fd in found:
                os.close(fd)

    def _seen_again(self, rule: Rule, fid: str, path: str, meta: dict[str, Any]) -> bool:
        """Whether the file is read already for `rule` (then marked seen where it is now)."""
        known = self.tailers.get((rule.id, fid))
        if known is None:
            return False
        known.seen = True
        known.path = path
        if known.meta != meta and not known.draining:
            # A rule whose labels or name changed: the next records carry the new ones.
            self.tailers[(rule.id, fid)] = _retag(known, meta)
        return True

    def _track(
        self, rule: Rule, path: str, kind: str, meta: dict[str, Any], fh: BinaryIO | None = None
    ) -> None:
        """Read the file at `path` (or `fh`, the file already opened) for `rule`."""
        try:
            st = os.fstat(fh.fileno()) if fh is not None else os.stat(path)
        except OSError:
            return
        fid = file_id(st)
        if self._seen_again(rule, fid, path, meta):
            if fh is not None:
                fh.close()
            return
        if fh is None:
            try:
                fh = open(path, "rb")  # noqa: SIM115 (kept open: a deleted file is still read)
            except OSError:
                return
            if file_id(os.fstat(fh.fileno())) != fid:
                fh.close()
                return
        offset = 0
        saved = self.saved.get((rule.id, fid))
        if saved is not None and same_start(fh, saved[1]):
            offset = saved[0] if saved[0] <= os.fstat(fh.fileno()).st_size else 0
        t = Tailer(rule.id, fid, path, fh, kind, meta, offset=offset, pos=offset)
        self.tailers[(rule.id, fid)] = t

    # -- shipping ------------------------------------------------------------------------
    def _ship(self, rule: Rule) -> int:
        backoff = self.backoffs.setdefault(rule.bootstrap, Backoff(BROKER_BACKOFF))
        if backoff.waiting:
            return 0
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entries: list[Entry] = []
        read: list[Tailer] = []
        finished: list[Tailer] = []
        budget = BATCH_BYTES
        for t in self._in_turn(rule):
            if budget <= 0 or len(entries) >= BATCH_RECORDS:
                break
            t.check_truncated()
            got, used, full = t.read(budget, now)
            if used:
                read.append(t)
                entries.extend(got)
                budget -= used
            if full:
                break  # the rest of this file first: later files of its stream wait
            if t.draining and not used:
                finished.append(t)  # read to its end (an unfinished last line never ends)
        if entries:
            try:
                self._produce(rule, entries)
            except Exception as exc:
                for t in read:
                    t.rewind()
                delay = backoff.fail()
                self.problems[rule.bootstrap] = (
                    f"broker {rule.bootstrap} (collector {rule.name}): {type(exc).__name__}:"
                    f" {str(exc)[:200]}; retrying in {delay:.1f} s"
                )
                log_event(log, "log shipping failed", node=self.node_id, collector=rule.name,
                          broker=rule.bootstrap, error=str(exc)[:300],
                          retry_in=round(delay, 2))  # fmt: skip
                _close_producer(self.producers.pop(rule.bootstrap, None))
                return 0
            backoff.reset()
            self.problems.pop(rule.bootstrap, None)
            self.shipped += len(entries)
        for t in read:
            t.offset = t.pos
        self._save(rule, read, finished)
        return len(entries)

    def _in_turn(self, rule: Rule) -> list[Tailer]:
        """The rule's files, a stream (a container, or a file and its rotated ones) after
        another, oldest file first within a stream; each batch starts at the next stream,
        so one busy container does not hold the others back."""
        streams: dict[bytes, list[Tailer]] = {}
        for (rid, _), t in self.tailers.items():
            if rid == rule.id:
                streams.setdefault(t.stream, []).append(t)
        if not streams:
            return []
        turn = self._turns.get(rule.id, 0) % len(streams)
        self._turns[rule.id] = turn + 1
        keys = list(streams)
        return [t for k in keys[turn:] + keys[:turn] for t in streams[k]]

    def _produce(self, rule: Rule, entries: list[Entry]) -> None:
        producer = self.producers.get(rule.bootstrap)
        if producer is None:
            producer = self.producers[rule.bootstrap] = make_producer(
                rule.bootstrap, f"openccs-logs-{self.node_id}"
            )
        # The default partitioner's choice (murmur2 of the key), made once per key of the
        # batch instead of once per record.
        partitions = sorted(producer.partitions_for(rule.topic))
        chosen: dict[bytes, int] = {}
        for e in entries:
            if e.key not in chosen:
                chosen[e.key] = partitions[(murmur2(e.key) & 0x7FFFFFFF) % len(partitions)]
        futures = [
            producer.send(rule.topic, value=e.value, key=e.key, partition=chosen[e.key])
            for e in entries
        ]
        producer.flush(timeout=FLUSH_TIMEOUT)
        for f in futures:
            f.get(timeout=0)  # raises the delivery error of a record that failed

    def _save(self, rule: Rule, read: list[Tailer], finished: list[Tailer]) -> None:
        if not read and not finished:
            return
        try:
            with self.store.session() as s:
                if s.get(LogCollector, rule.id) is None:
                    return  # deleted meanwhile: nothing to remember
                for t in read:
                    if t in finished:
                        continue
                    row = s.get(LogOffset, (rule.id, self.node_id, t.file_id))
                    if row is None:
                        row = LogOffset(rule_id=rule.id, node_id=self.node_id, file_id=t.file_id)
                        s.add(row)
                    row.path, row.offset, row.meta = t.path, t.offset, t.meta
                    row.fingerprint = fingerprint(t.fh)
                    row.updated_at = utcnow()
                    self.saved[(rule.id, t.file_id)] = (t.offset, row.fingerprint)
                for t in finished:
                    s.execute(
                        delete(LogOffset).where(
                            LogOffset.rule_id == rule.id,
                            LogOffset.node_id == self.node_id,
                            LogOffset.file_id == t.file_id,
                        )
                    )
        except Exception as exc:
            # Delivered but not recorded: sent again after a restart (at least once).
            log_event(log, "log offsets not saved", node=self.node_id, error=str(exc)[:300])
        for t in finished:
            t.close()
            self.tailers.pop((rule.id, t.file_id), None)
            self.saved.pop((rule.id, t.file_id), None)


def _still_there(path: str, fid: str, rootfs: Path) -> bool:
    """Whether the file is still on the machine: at its path, or renamed in its directory
    (a directory of the machine's disk is looked at inside the disk only)."""
    where = os.path.dirname(path)
    try:
        if where == str(rootfs) or where.startswith(f"{rootfs}/"):
            fd = safepath.open_for_reading(rootfs, os.path.relpath(where, rootfs))
        else:
            fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with os.scandir(fd) as entries:
                return any(
                    e.is_file(follow_symlinks=False)
                    and file_id(e.stat(follow_symlinks=False)) == fid
                    for e in entries
                )
        finally:
            os.close(fd)
    except (OSError, safepath.UnsafePath):
        return False


def _retag(t: Tailer, meta: dict[str, Any]) -> Tailer:
    fresh = Tailer(t.rule_id, t.file_id, t.path, t.fh, t.kind, meta, offset=t.offset, pos=t.pos)
    return fresh


def _close_producer(producer: Any) -> None:
    if producer is None:
        return
    try:
        producer.close(timeout=0)
    except Exception as exc:
        log_event(log, "closing a kafka producer failed", error=str(exc)[:200])
