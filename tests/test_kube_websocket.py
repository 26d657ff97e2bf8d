"""The Kubernetes listeners' WebSocket protocol (openccs.kube.component._KubeWebSockets) reads
whole binary messages itself and leaves everything else to the websockets library: a real
uvicorn server with it, and a client sending hand-made frames cut at arbitrary places."""

from __future__ import annotations

import base64
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.frames import Frame, Opcode

from openccs.kube.component import _KubeWebSockets
from openccs.kube.streams import RAW

from .conftest import free_port


class EchoSink:
    """Takes the connection's binary messages as they are read (the port-forward's way) and
    writes each back straight to the transport, in two parts."""

    def __init__(self, wire: Any) -> None:
        self.wire = wire
        self.paused = 0

    def message(self, data: bytes) -> None:
        self.wire.send_message(data[:3], data[3:])

    def flush(self) -> None:
        pass

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        pass


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Each message back as it came; a binary message of b"bye" closes with 4000. On /raw,
    binary messages only, by the raw interface."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    if scope["path"] == "/raw":
        wire = scope["extensions"][RAW]
        assert wire.take(EchoSink(wire))
        assert (await receive())["type"] == "websocket.disconnect"  # nothing else comes
        return
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("bytes") == b"bye":
            await send({"type": "websocket.close", "code": 4000})
            return
        await send({"type": "websocket.send", **{k: msg[k] for k in ("bytes", "text") if k in msg}})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    cfg = uvicorn.Config(echo, host="127.0.0.1", port=port, ws=_KubeWebSockets,
                         ws_max_size=100_000, lifespan="off", log_level="warning")  # fmt: skip
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


class Client:
    def __init__(self, port: int, path: str = "/x") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_cut(self, wire: bytes, rng: random.Random) -> None:
        pos = 0
        while pos < len(wire):
            n = rng.choice((1, 2, 3, 7, 100, 5000, 70_000))
            self.sock.sendall(wire[pos : pos + n])
            pos += n

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(self._read(2), "big")
        elif size == 127:
            size = int.from_bytes(self._read(8), "big")
        return first & 0x0F, self._read(size)


def masked(opcode: Any, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=True)


@pytest.mark.parametrize("path", ["/x", "/raw"])
def test_messages_cut_anywhere_come_whole_and_in_order(port: int, path: str) -> None:
    rng = random.Random(7)
    c = Client(port, path)
    raw = path == "/raw"
    sent: list[tuple[int, bytes]] = []
    wire = b""
    for size in (0, 1, 125, 126, 127, 65_535, 65_536, 99_999, 4, 4, 32_768):
        data = os.urandom(size)
        wire += masked(Opcode.BINARY, data)
        sent.append((Opcode.BINARY, data))
    # A fragmented message, a text and a ping among the binary ones.
    wire += masked(Opcode.BINARY, b"frag", fin=False) + masked(Opcode.PING, b"p") + masked(
        Opcode.CONT, b"mented"
    )  # fmt: skip
    sent.append((Opcode.BINARY, b"fragmented"))
    wire += masked(Opcode.TEXT, "héllo".encode()) + masked(Opcode.BINARY, b"after")
    if not raw:
        sent.append((Opcode.TEXT, "héllo".encode()))  # (the raw interface drops text)
    sent.append((Opcode.BINARY, b"after"))
    c.send_cut(wire, rng)
    got: list[tuple[int, bytes]] = []
    pongs: list[tuple[int, bytes]] = []
    while len(got) < len(sent):
        op, data = c.frame()
        (pongs if op == 0xA else got).append((op, data))
    assert got == sent
    assert pongs == [(0xA, b"p")]
    if raw:
        # The client's close is answered; the app sees the disconnect and ends.
        c.sock.sendall(masked(Opcode.CLOSE, (1000).to_bytes(2, "big")))
        op, data = c.frame()
        assert op == Opcode.CLOSE.value and int.from_bytes(data[:2], "big") == 1000
        return
    # The app's close reaches the client.
    c.sock.sendall(masked(Opcode.BINARY, b"bye"))
    op, data = c.frame()
    assert op == Opcode.CLOSE.value and int.from_bytes(data[:2], "big") == 4000


def test_a_message_over_the_limit_and_an_unmasked_frame_close_the_connection(port: int) -> None:
    c = Client(port)
    c.sock.sendall(masked(Opcode.BINARY, b"ok"))
    assert c.frame() == (Opcode.BINARY.value, b"ok")
    c.sock.sendall(masked(Opcode.BINARY, b"x" * 100_001))
    op, data = c.frame()
    assert op == Opcode.CLOSE.value and int.from_bytes(data[:2], "big") == 1009  # too big
    c = Client(port)
    c.sock.sendall(Frame(Opcode.BINARY, b"plain").serialize(mask=False))
    op, data = c.frame()
    assert op == Opcode.CLOSE.value and int.from_bytes(data[:2], "big") == 1002  # protocol error
