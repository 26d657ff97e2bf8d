"""exec, attach and port-forward of a cluster's pods, over WebSocket as kubectl 1.30+
speaks them: the channel protocols (v5.channel.k8s.io, v4) bridged to the machine's dockerd
(exec and attach on a hijacked connection), and SPDY tunnelled in WebSocket for port-forward,
bridged to connections made in the pod's network namespace."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from openccs.cloud import dockerapi
from openccs.cloud.host import CloudError
from openccs.kube import spdy
from openccs.kube.errors import KubeError
from openccs.kube.kinds import KINDS
from openccs.log import get_logger, log_event

if TYPE_CHECKING:
    from openccs.kube.app import ClusterApi

log = get_logger("openccs.kube")

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
# Where the kube listeners' WebSocket protocol puts itself in a connection's scope.
RAW = "openccs.raw_websocket"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHUNK = 256 * 1024
SPDY_ONLY = (
    "openccs serves exec, attach and port-forward over WebSocket only (kubectl 1.30 or newer,"
    " without KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false or KUBECTL_PORT_FORWARD_WEBSOCKETS=false);"
    " SPDY is not supported"
)


def success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> dict[str, Any]:
    """The Status the v4/v5 error channel carries for a non-zero exit (kubectl exits with
    the same code)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def offered(ws: WebSocket) -> list[str]:
    header = ws.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


# -- docker's hijacked streams ---------------------------------------------------------
async def hijack(
    sock: Path, path: str, body: dict[str, Any] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """POST to dockerd asking for the connection (exec start, attach): the raw stream."""
    reader, writer = await asyncio.open_unix_connection(str(sock), limit=CHUNK * 2)
    payload = json.dumps(body).encode() if body is not None else b""
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
        f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] not in (b"101", b"200"):
        rest = await asyncio.wait_for(reader.read(2000), 5)
        writer.close()
        raise KubeError(500, f"docker {path} answered {head[:200]!r}{rest[:300]!r}")
    return reader, writer


async def docker_call(sock: Path, method: str, path: str, **kw: Any) -> Any:
    try:
        resp = await asyncio.to_thread(dockerapi.request, sock, method, path, **kw)
    except CloudError as exc:
        raise KubeError(500, exc.message[-400:]) from None
    return resp.json() if resp.content else None


@dataclass
class Target:
    sock: Path
    container_id: str


async def target(api: ClusterApi, namespace: str, name: str, container: str) -> Target:
    from openccs.kube.app import in_thread

    pod = await in_thread(api.get_object, KINDS["pods"], namespace, name)
    names = [c["name"] for c in pod["spec"]["containers"]]
    cname = container or names[0]
    if cname not in names:
        raise KubeError(400, f"container {cname} is not valid for pod {name}")
    status = next(
        (c for c in pod["status"].get("containerStatuses", []) if c["name"] == cname), None
    )
    if status is None or "running" not in status.get("state", {}):
        raise KubeError(400, f"container {cname} is not running in pod {name}")
    sock = await in_thread(api.node_socket, pod["spec"].get("nodeName") or "")
    cid = status["containerID"].removeprefix("docker://")
    return Target(sock, cid)


# -- exec and attach (channel protocols) -------------------------------------------------
class Channels:
    """One WebSocket of the channel protocol: a byte of channel, then data."""

    def __init__(self, ws: WebSocket, protocol: str) -> None:
        self.ws, self.protocol = ws, protocol

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(bytes([channel]) + data)

    async def status(self, status: dict[str, Any]) -> None:
        await self.send(ERROR, json.dumps(status).encode())


async def serve_command(
    api: ClusterApi, ws: WebSocket, namespace: str, name: str, action: str
) -> None:
    protocol = next((p for p in offered(ws) if p in CHANNEL_PROTOCOLS), None)
    if protocol is None:
        log_event(log, "kube stream refused", cluster=api.cluster_id, offered=offered(ws))
        await ws.close(code=1002, reason=f"subprotocols spoken here: {CHANNEL_PROTOCOLS}")
        return
    await ws.accept(subprotocol=protocol)
    ch = Channels(ws, protocol)
    q = ws.query_params
    tty = q.get("tty") in ("true", "1")
    stdin = q.get("stdin") in ("true", "1")
    command = q.getlist("command")
    started = asyncio.get_running_loop().time()
    result = "error"
    try:
        t = await target(api, namespace, name, q.get("container") or "")
        early: list[bytes] = []
        size = await _first_size(ws, early) if tty and action == "exec" else None
        if action == "exec":
            if not command:
                raise KubeError(400, "you must specify at least one command for the container")
            exec_id = (
                await docker_call(
                    t.sock,
                    "POST",
                    f"/containers/{t.container_id}/exec",
                    json={
                        "Cmd": command,
                        "AttachStdin": stdin,
                        "AttachStdout": True,
                        "AttachStderr": not tty,
                        "Tty": tty,
                    },
                )
            )["Id"]
            resize_path = f"/exec/{exec_id}/resize"
            start: dict[str, Any] = {"Detach": False, "Tty": tty}
            if size is not None:
                start["ConsoleSize"] = [size["h"], size["w"]]
            reader, writer = await hijack(t.sock, f"/exec/{exec_id}/start", start)
            if size is not None:
                with contextlib.suppress(KubeError):
                    await docker_call(t.sock, "POST", resize_path, params=size)
        else:
            info = await docker_call(t.sock, "GET", f"/containers/{t.container_id}/json")
            tty = bool(info["Config"].get("Tty"))
            stdin = stdin and bool(info["Config"].get("OpenStdin"))
            resize_path = f"/containers/{t.container_id}/resize"
            reader, writer = await hijack(
                t.sock,
                f"/containers/{t.container_id}/attach?stream=1&stdout=1&stderr=1"
                f"&stdin={int(stdin)}",
            )
        inp = _Input(writer, t.sock, resize_path, stdin)
        for data in early:
            await inp.handle(data)
        pump_in = asyncio.create_task(inp.run(ws))
        pump_out = asyncio.create_task(_docker_to_client(ch, reader, tty))
        try:
            await asyncio.wait({pump_in, pump_out}, return_when=asyncio.FIRST_COMPLETED)
            if not pump_out.done():
                # The client left: so does the process's connection (a terminal hangs up).
                raise WebSocketDisconnect(1001)
            await pump_out
        finally:
            for task in (pump_in, pump_out):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            writer.close()
        if action == "exec":
            code = await _exit_code(t.sock, exec_id)
            result = str(code)
            await ch.status(success() if code == 0 else exit_status(code))
        else:
            result = "detached"
            await ch.status(success())
    except KubeError as err:
        result = err.message
        with contextlib.suppress(Exception):
            await ch.status(err.status())
    except (WebSocketDisconnect, ConnectionError):
        result = "client gone"
    finally:
        with contextlib.suppress(Exception):
            await ws.close(code=1000)
        log_event(
            log,
            f"kube {action}",
            cluster=api.cluster_id,
            pod=f"{namespace}/{name}",
            tty=tty,
            result=result,
            ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
        )


async def _docker_to_client(ch: Channels, reader: asyncio.StreamReader, tty: bool) -> None:
    if tty:
        while chunk := await reader.read(CHUNK):
            await ch.send(STDOUT, chunk)
        return
    # Docker multiplexes stdout and stderr with 8-byte headers (stream, 0, 0, 0, size).
    while True:
        try:
            head = await reader.readexactly(8)
        except asyncio.IncompleteReadError:
            return
        size = struct.unpack(">I", head[4:8])[0]
        try:
            payload = await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            payload = exc.partial
        await ch.send(STDERR if head[0] == 2 else STDOUT, payload)


async def _first_size(
    ws: WebSocket, early: list[bytes], wait: float = 1.0
) -> dict[str, int] | None:
    """kubectl sends the terminal's size first thing: the process starts with it (a resize
    after the start races with what the process prints). Other messages are kept."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            return None
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        data = msg.get("bytes") or b""
        if data[:1] == bytes([RESIZE]):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                size = json.loads(data[1:])
                return {"h": int(size["Height"]), "w": int(size["Width"])}
        early.append(data)
    return None


class _Input:
    """What the client sends: stdin to the process, terminal sizes, the end of stdin (v5)."""

    def __init__(
        self, writer: asyncio.StreamWriter, sock: Path, resize_path: str, stdin: bool
    ) -> None:
        self.writer, self.sock, self.resize_path = writer, sock, resize_path
        self.stdin = stdin

    async def run(self, ws: WebSocket) -> None:
        """Until the client disconnects."""
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            await self.handle(msg.get("bytes") or (msg.get("text") or "").encode())

    async def handle(self, data: bytes) -> None:
        if not data:
            return
        channel, payload = data[0], data[1:]
        try:
            if channel == STDIN and self.stdin:
                self.writer.write(payload)
                await self.writer.drain()
            elif channel == RESIZE:
                size = json.loads(payload)
                params = {"h": int(size["Height"]), "w": int(size["Width"])}
                with contextlib.suppress(KubeError):
                    await docker_call(self.sock, "POST", self.resize_path, params=params)
            elif channel == CLOSE and payload[:1] == bytes([STDIN]) and self.stdin:
                # v5: the client has no more input; the process sees end of file.
                self.stdin = False
                if self.writer.can_write_eof():
                    self.writer.write_eof()
        except (ValueError, KeyError, TypeError):
            pass  # a size that is not one
        except (ConnectionError, OSError):
            self.stdin = False  # the process is gone or closed its input


async def _exit_code(sock: Path, exec_id: str) -> int:
    for _ in range(100):
        info = await docker_call(sock, "GET", f"/exec/{exec_id}/json")
        if not info.get("Running"):
            return int(info.get("ExitCode") or 0)
        await asyncio.sleep(0.05)
    return int(info.get("ExitCode") or 0)


# -- port-forward (SPDY in WebSocket) -------------------------------------------------------
# Only for connects made inside pods' namespaces: a thread that could not go back to its own
# namespace (it never happened) is then harmless.
# How long a forwarded connection stays once one of its ways has ended (containerd's 1 s).
LINGER = 1.0
NETNS_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kube-netns")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def connect_in_netns(pid: int, port: int, timeout: float) -> socket.socket:
    """A TCP connection to 127.0.0.1:PORT in the network namespace of process PID (a pod's
    container), as the kubelet makes it: ports bound to the pod's loopback are reached too.
    setns moves only the calling thread, which then goes back to its own namespace; the
    socket stays in the pod's."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        pod_ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    except OSError:
        os.close(own)
        raise
    try:
        _setns(pod_ns)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(("127.0.0.1", port))
            except OSError:
                sock.close()
                raise
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(pod_ns)
    sock.setblocking(False)
    return sock


@dataclass(eq=False)
class _Forward:
    """One forwarded connection: kubectl's data and error streams of one request id."""

    request: str
    port: int
    data_id: int = 0
    error_id: int = 0
    transport: asyncio.Transport | None = None
    task: asyncio.Task[None] | None = None
    out: list[bytes] = field(default_factory=list)  # the client's, not written yet
    queued: bool = False  # in the tunnel's `dirty`
    client_done: bool = False  # the client's FIN came
    eof_sent: bool = False
    pod_done: bool = False  # the pod's end closed (or the connection is dropped)
    gone: bool = False
    closer: asyncio.TimerHandle | None = None


class _PodSide(asyncio.Protocol):
    """The pod's end of one forwarded connection. What the pod sends goes to the client in
    the read's callback, one SPDY data frame in one WebSocket message per read (uvloop reads
    up to 250 KB at a time), without a copy of its own."""

    def __init__(self, tunnel: Tunnel, fw: _Forward) -> None:
        self.tunnel, self.fw = tunnel, fw

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tunnel.attach(self.fw, transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.tunnel.wire.send_message(spdy.data_head(self.fw.data_id, len(data)), data)

    def eof_received(self) -> bool:
        self.tunnel.pod_ended(self.fw)
        return True  # the pod may still read what the client sends

    def connection_lost(self, exc: Exception | None) -> None:
        self.fw.gone = True
        self.tunnel.pod_ended(self.fw)
        self.tunnel.unstall(self.fw)

    def pause_writing(self) -> None:
        self.tunnel.stall(self.fw)

    def resume_writing(self) -> None:
        self.tunnel.unstall(self.fw)


def _close_result(fut: asyncio.Future[socket.socket]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        fut.result().close()


class Tunnel:
    """kubectl's SPDY session, carried in WebSocket binary messages that the listener's
    protocol hands over as they are read (`RawSink`); answers and the pods' data are written
    straight to its transport. Flow control both ways is the transports' own: a pod
    connection that cannot take more pauses reading from the client, a client that cannot
    take more pauses reading from the pods."""

    def __init__(self, wire: Any, pod: str) -> None:
        self.wire, self.pod = wire, pod
        self.located: asyncio.Future[Target | str] | None = None
        self.framer = spdy.Framer()
        self.forwards: dict[str, _Forward] = {}
        self.by_stream: dict[int, _Forward] = {}
        self.dirty: list[_Forward] = []
        self.stalled: set[_Forward] = set()
        self.client_full = False
        self.reading_paused = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.connections = 0

    # -- what the client sends (RawSink) ------------------------------------------------
    def message(self, data: bytes) -> None:
        if self.ended.done():
            return
        try:
            for frame in self.framer.feed(data):
                if isinstance(frame, spdy.Data):
                    self._data(frame)
                else:
                    self._control(frame)
        except spdy.SpdyError as exc:
            self._end(str(exc))

    def flush(self) -> None:
        """What the client sent for each pod connection in one read: one write each."""
        for fw in self.dirty:
            fw.queued = False
            self._write(fw)
        self.dirty.clear()

    def _write(self, fw: _Forward) -> None:
        t = fw.transport
        if t is None or fw.gone or t.is_closing():
            return
        if fw.out:
            out, fw.out = fw.out, []
            t.writelines(out)
        if fw.client_done and not fw.eof_sent:
            fw.eof_sent = True
            t.write_eof()
            self._linger(fw)

    def _data(self, frame: spdy.Data) -> None:
        fw = self.by_stream.get(frame.stream_id)
        if fw is None or frame.stream_id != fw.data_id or fw.gone or fw.client_done:
            return  # the error stream carries nothing from the client
        if frame.data:
            fw.out.append(frame.data)
        if frame.flags & spdy.FLAG_FIN:
            fw.client_done = True
        if not fw.queued:
            fw.queued = True
            self.dirty.append(fw)

    def _control(self, frame: spdy.Control) -> None:
        if frame.type == spdy.SYN_STREAM:
            stream_id, headers = self.framer.syn_stream(frame)
            self.wire.send_message(self.framer.syn_reply(stream_id))
            self._open(stream_id, headers)
        elif frame.type == spdy.PING:
            self.wire.send_message(spdy.control(spdy.PING, 0, frame.data))
        elif frame.type == spdy.RST_STREAM:
            fw = self.by_stream.get(spdy.stream_of(frame))
            if fw is not None:
                self._drop(fw)
        elif frame.type == spdy.GOAWAY:
            self._end("client (GOAWAY)")

    # -- what the client's direction can take ---------------------------------------------
    def pause_writing(self) -> None:
        self.client_full = True
        for fw in self.forwards.values():
            if fw.transport is not None and not fw.transport.is_closing():
                fw.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client_full = False
        for fw in self.forwards.values():
            if fw.transport is not None and not fw.transport.is_closing():
                fw.transport.resume_reading()

    def stall(self, fw: _Forward) -> None:
        self.stalled.add(fw)
        self._reading()

    def unstall(self, fw: _Forward) -> None:
        self.stalled.discard(fw)
        self._reading()

    def _reading(self) -> None:
        paused = bool(self.stalled)
        if paused != self.reading_paused:
            self.reading_paused = paused
            if paused:
                self.wire.pause_reading()
            else:
                self.wire.resume_reading()

    # -- the pods' side -----------------------------------------------------------------
    def _open(self, stream_id: int, headers: dict[str, str]) -> None:
        kind, request = headers.get("streamtype", ""), headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            port = 0
        fw = self.forwards.setdefault(request, _Forward(request, port))
        self.by_stream[stream_id] = fw
        if kind == "error":
            fw.error_id = stream_id
        elif kind == "data":
            fw.data_id = stream_id
        if not (fw.error_id and fw.data_id) or fw.task is not None:
            return
        # Dialling the pod takes a docker call and a connect: the tunnel's other connections
        # must not wait for it (the client's data for it waits in `out` meanwhile).
        fw.task = asyncio.create_task(self._connect(fw, port, headers.get("port", "")))
        self.tasks.add(fw.task)
        fw.task.add_done_callback(self.tasks.discard)

    async def _connect(self, fw: _Forward, port: int, asked: str) -> None:
        if not 0 < port < 65536:
            self._fail(fw, f"invalid port {asked!r}")
            return
        assert self.located is not None
        t = await self.located
        if isinstance(t, str):
            self._fail(fw, t)
            return
        loop = asyncio.get_running_loop()
        try:
            # The container's current process (it may have restarted since the upgrade).
            info = await docker_call(t.sock, "GET", f"/containers/{t.container_id}/json")
            dial = loop.run_in_executor(
                NETNS_POOL, connect_in_netns, int(info["State"]["Pid"]), port, 10.0
            )
            try:
                sock = await asyncio.shield(dial)
            except asyncio.CancelledError:
                dial.add_done_callback(_close_result)  # made all the same: closed
                raise
            if fw.gone or self.ended.done():
                sock.close()
                return
            await loop.create_connection(lambda: _PodSide(self, fw), sock=sock)
        except (OSError, TimeoutError, KubeError, KeyError, ValueError) as exc:
            why = exc.message if isinstance(exc, KubeError) else str(exc)
            self._fail(fw, f"error forwarding port {port} to pod {self.pod}: {why}")

    def attach(self, fw: _Forward, transport: asyncio.Transport) -> None:
        """The pod connection is made: what the client sent meanwhile goes."""
        if fw.gone or self.ended.done():
            transport.close()
            return
        self.connections += 1
        fw.transport = transport
        # Room for a few of the client's reads before the pod's direction pauses them.
        transport.set_write_buffer_limits(high=CHUNK * 8)
        if self.client_full:
            transport.pause_reading()
        self._write(fw)

    def pod_ended(self, fw: _Forward) -> None:
        """The pod closed its side (or the connection is gone): kubectl closes its own."""
        if fw.pod_done:
            return
        fw.pod_done = True
        self.wire.send_message(spdy.data_head(fw.data_id, 0, fin=True))
        self.wire.send_message(spdy.data_head(fw.error_id, 0, fin=True))
        self._linger(fw)

    def _linger(self, fw: _Forward) -> None:
        """One way is done: the other has LINGER seconds, then the connection is closed
        (what is buffered for the pod still goes), as the kubelet's runtimes do. A client
        that stopped reading need not wait on a pod that keeps sending."""
        t = fw.transport
        if t is None or fw.gone or t.is_closing():
            return
        if fw.pod_done and fw.eof_sent:
            t.close()  # both ways done
        elif fw.closer is None:
            fw.closer = asyncio.get_running_loop().call_later(LINGER, t.close)

    def _fail(self, fw: _Forward, message: str) -> None:
        """kubectl reports what the error stream says (and, since 1.31, stops forwarding)."""
        self._drop(fw)
        self.wire.send_message(spdy.data_head(fw.error_id, len(message.encode()), fin=True),
                               message.encode())  # fmt: skip
        self.wire.send_message(spdy.data_head(fw.data_id, 0, fin=True))

    def _drop(self, fw: _Forward) -> None:
        self.forwards.pop(fw.request, None)
        for sid in (fw.data_id, fw.error_id):
            self.by_stream.pop(sid, None)
        fw.gone = fw.pod_done = True
        fw.out.clear()
        if fw.closer is not None:
            fw.closer.cancel()
        if fw.transport is not None:
            fw.transport.close()
        if fw.task is not None and fw.task is not asyncio.current_task():
            fw.task.cancel()
        self.unstall(fw)

    def _end(self, why: str) -> None:
        if not self.ended.done():
            self.ended.set_result(why)

    async def close(self) -> None:
        """Every pod connection closed, every dial cancelled."""
        self._end("server")
        for fw in list(self.forwards.values()):
            self._drop(fw)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)


async def serve_port_forward(api: ClusterApi, ws: WebSocket, namespace: str, name: str) -> None:
    if TUNNEL_PROTOCOL not in offered(ws):
        log_event(log, "kube stream refused", cluster=api.cluster_id, offered=offered(ws))
        await ws.close(code=1002, reason=f"subprotocol spoken here: {TUNNEL_PROTOCOL}")
        return
    await ws.accept(subprotocol=TUNNEL_PROTOCOL)
    wire = ws.scope.get("extensions", {}).get(RAW)
    tunnel = Tunnel(wire, f"{namespace}/{name}")
    if wire is None or not wire.take(tunnel):
        await ws.close(code=1011, reason="port-forward needs the listener's own protocol")
        return

    async def locate() -> Target | str:
        try:
            return await target(api, namespace, name, "")
        except KubeError as err:
            return err.message  # told on each connection's error stream, where kubectl reads it

    tunnel.located = asyncio.ensure_future(locate())
    result = "closed"
    receive = asyncio.ensure_future(ws.receive())
    try:
        either: list[asyncio.Future[Any]] = [receive, tunnel.ended]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if receive.done():
            result = f"closed by client ({receive.result().get('code')})"
        else:
            result = f"closed by {tunnel.ended.result()}"
    finally:
        receive.cancel()
        await tunnel.close()
        tunnel.located.cancel()
        with contextlib.suppress(Exception):
            # (A client that reads nothing any more does not hold the tunnel's end.)
            await asyncio.wait_for(ws.close(code=1000), 5)
        log_event(
            log,
            "kube port-forward",
            cluster=api.cluster_id,
            pod=f"{namespace}/{name}",
            connections=tunnel.connections,
            result=result,
        )
