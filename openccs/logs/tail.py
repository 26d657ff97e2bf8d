"""Reading one log file from an offset: docker's json-file container logs, or a plain text file
of a machine. Only whole lines are taken (a line still being written waits); the offset that
is kept is the end of the last line the broker acknowledged.

A file is known by device and inode: a rotated (renamed) file keeps its reader and offset,
a file deleted while open is read to its end through the open descriptor, and a reused inode
is told apart by a fingerprint of the file's first bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO

FINGERPRINT_BYTES = 256


def file_id(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def fingerprint(fh: BinaryIO, length: int = FINGERPRINT_BYTES) -> str:
    head = os.pread(fh.fileno(), length, 0)
    return f"{len(head)}:{hashlib.sha1(head).hexdigest()}"


def same_start(fh: BinaryIO, saved: str) -> bool:
    """Whether the file still begins with the bytes `saved` was taken from."""
    length, _, _ = saved.partition(":")
    return bool(length.isdigit()) and fingerprint(fh, int(length)) == saved


@dataclass
class Entry:
    key: bytes
    value: bytes


@dataclass
class Tailer:
    """One rule's reader of one file on one machine."""

    rule_id: int
    file_id: str
    path: str  # on the host
    fh: BinaryIO
    kind: str  # "json-file" (a container's log) or "text" (a machine's file)
    # Constant part of every record (cluster, machine, namespace, pod, container...).
    meta: dict[str, Any]
    offset: int = 0  # delivered up to here (acknowledged by the broker)
    pos: int = 0  # read up to here (in flight)
    draining: bool = False  # the file is gone or rotated away: read it to its end, then drop
    seen: bool = True
    _prefix: bytes = b""
    _key: bytes = b""
    _pending: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        fixed = {k: v for k, v in self.meta.items() if k not in ("labels",)}
        self._prefix = json.dumps(fixed, separators=(",", ":"))[:-1].encode()
        if self.kind == "json-file":
            self._key = f"{self.meta['namespace']}/{self.meta['pod']}/{self.meta['container']}"\
                .encode()  # fmt: skip
        else:
            # All files of a rule on a machine are one stream: a file and the one that
            # replaces it at rotation keep their order.
            self._key = f"{self.meta['machine']}:{self.meta['collector']}".encode()
        labels = self.meta.get("labels")
        self._suffix = (
            b',"labels":' + json.dumps(labels, separators=(",", ":")).encode() + b"}"
            if self.kind == "text"
            else b"}"
        )

    @property
    def stream(self) -> bytes:
        """Records of one stream keep their order (they also share a Kafka key)."""
        return self._key

    def size(self) -> int:
        return os.fstat(self.fh.fileno()).st_size

    def unlinked(self) -> bool:
        return os.fstat(self.fh.fileno()).st_nlink == 0

    def check_truncated(self) -> None:
        """A file cut back in place (copytruncate rotation) is read again from its start."""
        if self.size() < self.pos:
            self.pos = self.offset = 0

    def rewind(self) -> None:
        self.pos = self.offset

    def at_end(self) -> bool:
        return self.pos >= self.size()

    def read(self, budget: int, now: str) -> tuple[list[Entry], int, bool]:
        """Records of the whole lines after `pos`, reading at most about `budget` bytes;
        advances `pos` past them. Returns the entries, the bytes consumed, and whether the
        budget cut the read short (more whole lines may follow)."""
        self.fh.seek(self.pos)
        data = self.fh.read(budget)
        if not data:
            return [], 0, False
        full = len(data) >= budget
        cut = data.rfind(b"\n")
        if cut < 0:
            if not full:
                return [], 0, False  # a line still being written
            cut = len(data) - 1  # a line longer than the budget: ship it in pieces
        chunk = data[: cut + 1]
        if self.kind == "json-file":
            entries, used = self._json_lines(chunk)
        else:
            entries, used = self._text_lines(chunk, now), len(chunk)
        self.pos += used
        return entries, used, full

    def _text_lines(self, chunk: bytes, now: str) -> list[Entry]:
        out = []
        ts = b',"stream":"file","timestamp":"' + now.encode() + b'","log":'
        for raw in chunk.split(b"\n")[:-1] if chunk.endswith(b"\n") else chunk.split(b"\n"):
            text = raw.decode("utf-8", "replace").rstrip("\r")
            out.append(Entry(self._key, self._prefix + ts + _js(text) + self._suffix))
        return out

    def _json_lines(self, chunk: bytes) -> tuple[list[Entry], int]:
        """docker's json-file: one JSON object per line; a message longer than docker's
        buffer comes in pieces whose `log` does not end with a newline, joined here."""
        out: list[Entry] = []
        used = 0
        start = 0
        pending: list[str] = []
        group_start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            line = chunk[start:end]
            start = end + 1
            try:
                obj = json.loads(line)
            except ValueError:
                used = start  # not a record (a torn write): skip it
                continue
            text = str(obj.get("log", ""))
            if not pending:
                group_start = used
            pending.append(text)
            if not text.endswith("\n"):
                continue
            message = "".join(pending)[:-1]
            pending = []
            value = (
                self._prefix
                + b',"stream":'
                + _js(str(obj.get("stream", "")))
                + b',"timestamp":'
                + _js(str(obj.get("time", "")))
                + b',"log":'
                + _js(message)
                + self._suffix
            )
            out.append(Entry(self._key, value))
            used = start
        if pending:
            used = group_start  # an unfinished message waits for its end
        return out, used

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()


def _js(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode()
