"""The part of SPDY/3.1 that kubectl's port-forward speaks, as a server: frames are parsed
from a byte stream and built for the answer. Header blocks arrive zlib-compressed with the
protocol's dictionary; ours are compressed without one (a reader needs it only when the
stream names it). There is no flow control: kubectl's SPDY library has none either."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1,
    2,
    3,
    4,
    6,
    7,
    8,
    9,
)
FLAG_FIN = 0x01
RST_CANCEL = 5
MAX_DATA = 1 << 24

_WORDS = str.split(
    "options head post put delete trace accept accept-charset accept-encoding accept-language"
    " accept-ranges age allow authorization cache-control connection content-base"
    " content-encoding content-language content-length content-location content-md5"
    " content-range content-type date etag expect expires from host if-match"
    " if-modified-since if-none-match if-range if-unmodified-since last-modified location"
    " max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after"
    " server te trailer transfer-encoding upgrade user-agent vary via warning"
    " www-authenticate method get status 200_OK version HTTP/1.1 url public set-cookie"
    " keep-alive origin"
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
    "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon,"
    " Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header dictionary: length-prefixed words, then a run of common text.
DICTIONARY = (
    b"".join(struct.pack(">I", len(w)) + w.replace("_", " ").encode() for w in _WORDS)
    + _TAIL.encode()
)


class SpdyError(Exception):
    pass


@dataclass
class Control:
    type: int
    flags: int
    data: bytes


@dataclass
class Data:
    stream_id: int
    flags: int
    data: bytes


@dataclass
class Framer:
    """Bytes in, frames out; frames in, bytes out. One per connection (the header
    compression contexts live as long as the connection)."""

    buf: bytearray = field(default_factory=bytearray)
    inflate: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))
    deflate: zlib._Compress = field(default_factory=zlib.compressobj)

    def feed(self, data: bytes) -> list[Control | Data]:
        """The frames `data` completes. Bodies are sliced from what arrived, not copied
        through the buffer; one that is a message of its own after its head (kubectl's
        writes) is taken as it is."""
        frames: list[Control | Data] = []
        if self.buf:
            if len(self.buf) == 8 and _length(self.buf) == len(data):
                frames.append(_frame(bytes(self.buf), data))
                self.buf.clear()
                return frames
            self.buf += data
            data = bytes(self.buf)
            self.buf.clear()
        pos, end = 0, len(data)
        while end - pos >= 8:
            stop = pos + 8 + _length(data, pos)
            if stop > end:
                break
            frames.append(_frame(data[pos : pos + 8], data[pos + 8 : stop]))
            pos = stop
        if pos < end:
            self.buf += data[pos:] if pos else data
        return frames

    def headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self.inflate.decompress(block)
        except zlib.error as exc:
            raise SpdyError(f"unreadable header block: {exc}") from None
        out: dict[str, str] = {}
        (count,) = struct.unpack_from(">I", raw, 0)
        pos = 4
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4 : pos + 4 + n].decode()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", raw, pos)
            out[name] = raw[pos + 4 : pos + 4 + n].decode()
            pos += 4 + n
        return out

    def syn_stream(self, frame: Control) -> tuple[int, dict[str, str]]:
        stream_id = int.from_bytes(frame.data[0:4], "big") & 0x7FFFFFFF
        return stream_id, self.headers(frame.data[10:])

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None) -> bytes:
        return control(SYN_REPLY, 0, struct.pack(">I", stream_id) + self._block(headers or {}))


def _length(buf: bytes | bytearray, pos: int = 0) -> int:
    return int.from_bytes(buf[pos + 5 : pos + 8], "big")


def _frame(head: bytes, body: bytes) -> Control | Data:
    if head[0] & 0x80:
        version = int.from_bytes(head[0:2], "big") & 0x7FFF
        if version != 3:
            raise SpdyError(f"SPDY version {version} is not spoken here")
        return Control(int.from_bytes(head[2:4], "big"), head[4], body)
    return Data(int.from_bytes(head[0:4], "big") & 0x7FFFFFFF, head[4], body)


def control(ftype: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(body)) + body


def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    return data_head(stream_id, len(payload), fin) + payload


def data_head(stream_id: int, size: int, fin: bool = False) -> bytes:
    """The 8 bytes before a data frame's `size` bytes of payload."""
    return struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | size)


def rst_stream(stream_id: int, status: int = RST_CANCEL) -> bytes:
    return control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def stream_of(frame: Control) -> int:
    return int.from_bytes(frame.data[0:4], "big") & 0x7FFFFFFF
