"""API worker processes (`serve --workers N`): more than one core for the v2 API.

The main process owns everything stateful in memory (engine, controllers, tasks, cloud,
registry...). It opens the listeners and starts N-1 worker processes that accept on the same
listening sockets (the kernel hands each new connection to one of the processes waiting on
it). A worker parses HTTP, checks the signature and the replay guard itself (the nonce is in
the shared database before the request takes effect: `api/replay.py` refuses a nonce any
process took), and runs the plain database reads of `LOCAL_ACTIONS` on its own; every other
action, authenticated and with its nonce committed, goes to the main process over a private
channel (a socket pair made for that worker) and runs there, in the main process's
transaction and with its after-commit effects, so a change made through a worker wakes the
controllers exactly as one made through the main process. Requests for other paths of the
listener (console, registry token, metrics) are relayed to the main process over a unix
socket in a private directory.

A worker dies with the main process: it asks the kernel for SIGKILL when its parent goes
(PR_SET_PDEATHSIG, set at its start and checked against the parent's pid), and it exits when
its channel closes. The main process stops its workers before its components, and starts
again one that exits unasked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request

from openccs.log import get_logger, log_event, log_failure

if TYPE_CHECKING:
    from openccs.config import Settings

log = get_logger("openccs.workers")

# Actions a worker runs itself: plain reads of the database (no subsystem, no task, no
# backend call, nothing after commit). Any other action runs in the main process.
LOCAL_ACTIONS = frozenset(
    {"DescribeCluster", "DescribeClusterTaskResult", "DescribeClusterInstances"}
)

# Frames on a channel: length of what follows (4 bytes), request number (8 bytes), payload.
# To the main process the payload is JSON (request id, SecretId, action, parameters); back,
# a 4-byte signed code and the JSON body of the answer.
_HEAD = struct.Struct("!IQ")
_CODE = struct.Struct("!i")
MAX_FRAME = 64 * 1024 * 1024

# How long a stop waits for a worker to finish its requests before killing it.
WORKER_STOP_S = 10.0
RESPAWN_DELAY_S = 1.0

_PR_SET_PDEATHSIG = 1
# How often a worker sends the requests it counted to the main process (/metrics).
COUNTS_EVERY_S = 0.5
# sun_path holds 108 bytes with its final NUL.
MAX_SOCKET_PATH = 100


def default_workers() -> int:
    """What serves best on this host: one process per core, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass
class Forwarded:
    """An action's answer made by the main process: its code and JSON body, sent as is."""

    code: int
    body: bytes


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    try:
        head = await reader.readexactly(_HEAD.size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length, number = _HEAD.unpack(head)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes on a worker channel")
    try:
        return number, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def _frame(number: int, payload: bytes) -> bytes:
    return _HEAD.pack(len(payload), number) + payload


# ---------------------------------------------------------------------------------------------
# The main process's side


# Runs a forwarded action: (request id, SecretId, action, parameters) -> (code, body).
Executor = Callable[[str, str, str, dict[str, str]], Awaitable[tuple[int, bytes]]]


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    channel: socket.socket
    served: asyncio.Task[None] | None = None


@dataclass
class WorkerPool:
    """The worker processes of the main process, their channels, and the relay socket."""

    settings: Settings
    count: int  # worker processes (the main process serves too)
    listeners: list[tuple[socket.socket, str | None, str | None]]  # socket, cert, key
    execute: Executor
    count_request: Callable[[str, int, float], None]  # a worker's request, for /metrics
    log_level: str
    relay_path: Path = field(init=False)
    _relay_dir: str = field(init=False)
    _workers: dict[int, _Worker] = field(default_factory=dict)
    _supervisors: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    def __post_init__(self) -> None:
        # In the data directory (mode 0700), where a server killed with -9 left it to be
        # replaced; a private temporary directory when that path is too long for a socket.
        self._relay_dir = ""
        self.relay_path = self.settings.data_dir / "api-relay.sock"
        if len(os.fsencode(self.relay_path.resolve())) > MAX_SOCKET_PATH:
            self._relay_dir = tempfile.mkdtemp(prefix="openccs-api-")  # mode 0700
            self.relay_path = Path(self._relay_dir) / "relay.sock"

    def relay_socket(self) -> socket.socket:
        """The unix socket on which the main process answers what workers relay."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            self.relay_path.unlink()
        sock.bind(str(self.relay_path))
        sock.listen(1024)
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        for index in range(1, self.count + 1):
            self._spawn(index)
            self._supervisors.append(asyncio.create_task(self._supervise(index)))

    def _spawn(self, index: int) -> None:
        # From the event loop's thread: PR_SET_PDEATHSIG follows the thread that forked.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        init = {
            "settings": self.settings,
            "listeners": [(sock.fileno(), cert, key) for sock, cert, key in self.listeners],
            "relay": str(self.relay_path),
            "parent": os.getpid(),
            "index": index,
            "log_level": self.log_level,
        }
        fds = [sock.fileno() for sock, _, _ in self.listeners] + [theirs.fileno()]
        env = dict(os.environ)
        # The worker imports the same openccs as this process.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "openccs.api.workers", str(theirs.fileno())],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        payload = pickle.dumps(init)
        ours.setblocking(True)
        ours.sendall(_frame(0, payload))
        ours.setblocking(False)
        worker = _Worker(index, proc, ours)
        worker.served = asyncio.create_task(self._serve_channel(worker))
        self._workers[index] = worker
        log_event(log, "api worker started", worker=index, pid=proc.pid)

    async def _supervise(self, index: int) -> None:
        while True:
            worker = self._workers[index]
            code = await asyncio.to_thread(worker.proc.wait)
            if worker.served is not None:
                worker.served.cancel()
            worker.channel.close()
            if self._stopping:
                return
            log_event(log, "api worker exited", worker=index, pid=worker.proc.pid, code=code)
            await asyncio.sleep(RESPAWN_DELAY_S)
            if self._stopping:
                return
            self._spawn(index)

    async def _serve_channel(self, worker: _Worker) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=worker.channel)
        pending: set[asyncio.Task[None]] = set()

        async def answer(number: int, payload: bytes) -> None:
            try:
                await serve(number, json.loads(payload))
            except Exception:
                # The worker's request must not wait forever: it answers InternalError.
                log_failure(log, "answering an api worker failed", worker=worker.index)
                error = {"code": 6000, "message": "internal error", "codeDesc": "InternalError"}
                writer.write(_frame(number, _CODE.pack(6000) + json.dumps(error).encode()))

        async def serve(number: int, msg: dict[str, Any]) -> None:
            if msg["kind"] == "counts":
                for name, code, seconds in msg["items"]:
                    self.count_request(str(name), int(code), float(seconds))
                return
            code, body = await self.execute(
                msg["requestId"], msg["secretId"], msg["action"], msg["params"]
            )
            writer.write(_frame(number, _CODE.pack(code) + body))

        try:
            while True:
                frame = await _read_frame(reader)
                if frame is None:
                    return
                task = asyncio.create_task(answer(*frame))
                pending.add(task)
                task.add_done_callback(pending.discard)
        except asyncio.CancelledError:
            raise
        except Exception:
            log_failure(log, "api worker channel failed", worker=worker.index)
        finally:
            writer.close()

    def terminate(self) -> None:
        """Ask every worker to stop (they finish their requests first)."""
        self._stopping = True
        for worker in self._workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)

    async def stop(self) -> None:
        """Stop the workers and wait for them (SIGKILL after WORKER_STOP_S)."""
        self.terminate()
        deadline = time.monotonic() + WORKER_STOP_S
        for worker in self._workers.values():
            try:
                await asyncio.to_thread(worker.proc.wait, max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log_event(log, "api worker killed", worker=worker.index, pid=worker.proc.pid)
                worker.proc.kill()
                await asyncio.to_thread(worker.proc.wait)
        for task in self._supervisors:
            task.cancel()
        for worker in self._workers.values():
            if worker.served is not None:
                worker.served.cancel()
            worker.channel.close()
        with contextlib.suppress(OSError):
            self.relay_path.unlink()
        if self._relay_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self._relay_dir)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listener the main process and its workers share."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(2048)
        sock.setblocking(False)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        # Worded as uvicorn words it when it binds itself.
        reason = (exc.strerror or str(exc)).lower()
        raise SystemExit(
            f"openccs: error while attempting to bind on address {host}:{port}: {reason}"
        ) from None
    except BaseException:
        sock.close()
        raise
    return sock


# ---------------------------------------------------------------------------------------------
# The worker's side


class Channel:
    """The worker's end of its channel: actions sent to the main process, answers matched
    to their requests by number."""

    def __init__(self, sock: socket.socket, on_close: Callable[[], None]) -> None:
        self._sock = sock
        self._on_close = on_close
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[Forwarded]] = {}
        self._next = 1
        self._reader_task: asyncio.Task[None] | None = None
        self._counts: list[tuple[str, int, float]] = []

    async def open(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
        self._reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                frame = await _read_frame(reader)
                if frame is None:
                    break
                number, payload = frame
                fut = self._waiting.pop(number, None)
                if fut is not None and not fut.done():
                    (code,) = _CODE.unpack_from(payload)
                    fut.set_result(Forwarded(code, payload[_CODE.size :]))
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("the main process is gone"))
            self._waiting.clear()
            self._on_close()

    async def _call(self, message: dict[str, Any]) -> Forwarded:
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("the main process is gone")
        number = self._next
        self._next += 1
        fut: asyncio.Future[Forwarded] = asyncio.get_running_loop().create_future()
        self._waiting[number] = fut
        self._writer.write(_frame(number, json.dumps(message).encode()))
        return await fut

    async def forward(
        self, request_id: str, secret_id: str, action: str, params: dict[str, str]
    ) -> Forwarded:
        """An authenticated action, run by the main process: its answer."""
        message = {
            "kind": "action",
            "requestId": request_id,
            "secretId": secret_id,
            "action": action,
            "params": params,
        }
        return await self._call(message)

    def tally(self, name: str, code: int, seconds: float) -> None:
        """A request answered, for the main process's /metrics: sent with the others of
        the same COUNTS_EVERY_S (no answer awaited)."""
        if not self._counts:
            asyncio.get_running_loop().call_later(COUNTS_EVERY_S, self._send_counts)
        self._counts.append((name, code, seconds))

    def _send_counts(self) -> None:
        items, self._counts = self._counts, []
        if self._writer is not None and not self._writer.is_closing():
            message = {"kind": "counts", "items": items}
            self._writer.write(_frame(0, json.dumps(message).encode()))


# Headers that concern one connection only (RFC 9110 7.6.1), not relayed.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


class Relay:
    """The ASGI app a worker answers other paths with: the request relayed to the main
    process over its unix socket, the answer streamed back."""

    def __init__(self, path: str) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=path),
            timeout=httpx.Timeout(None, connect=10.0),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=32),
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1011})
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = "http://openccs" + path.decode("latin-1") + ("?" + query.decode() if query else "")
        upstream = self.client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            resp = await self.client.send(upstream, stream=True)
        except httpx.HTTPError:
            log_failure(log, "relay to the main process failed", path=scope["path"])
            await send(
                {
                    "type": "http.response.start",
                    "status": 502,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"main process unreachable\n"})
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": resp.status_code,
                    "headers": [(k, v) for k, v in resp.headers.raw if k.lower() not in _HOP],
                }
            )
            async for chunk in resp.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await resp.aclose()

    async def close(self) -> None:
        await self.client.aclose()


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have gone before the request took effect.
    if os.getppid() != parent:
        os._exit(1)


def _read_init(sock: socket.socket) -> dict[str, Any]:
    sock.setblocking(True)
    head = b""
    while len(head) < _HEAD.size:
        chunk = sock.recv(_HEAD.size - len(head))
        if not chunk:
            raise SystemExit("openccs worker: no start message")
        head += chunk
    length, _ = _HEAD.unpack(head)
    data = b""
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            raise SystemExit("openccs worker: start message cut short")
        data += chunk
    sock.setblocking(False)
    init: dict[str, Any] = pickle.loads(data)
    return init


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="openccs-api-worker")
    p.add_argument("channel", type=int)
    args = p.parse_args(argv)
    channel = socket.socket(fileno=args.channel)
    init = _read_init(channel)
    _die_with_parent(init["parent"])

    from openccs.log import setup_logging
    from openccs.server import serve_worker

    setup_logging(init["log_level"])
    sys.setswitchinterval(0.001)
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    serve_worker(init, channel)


if __name__ == "__main__":
    main()
