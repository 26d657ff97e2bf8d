"""The clusters' Kubernetes API listeners.

Every cluster has one HTTPS listener per VPC gateway address of its VPC (the host side of
the VPC bridge, where its machines reach the host), on a port of its own, always; and,
while OperateClusterVip has opened it, one on the host's public address. Each listener is a
uvicorn server in this process, with a certificate signed by the cluster's CA. The database
says what should listen; `sync` makes it so (at start, every few seconds, and on demand).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlalchemy import select
from starlette.routing import BaseRoute
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import apply_mask
from websockets.protocol import State

from openccs.domain import endpoints
from openccs.domain.cloud import gateway_of
from openccs.httpguard import listener_config
from openccs.kube import creds
from openccs.kube.app import ClusterApi, in_thread
from openccs.kube.streams import RAW
from openccs.log import get_logger, log_event
from openccs.ports import IP_FREEBIND, free_port
from openccs.store.models import Cluster, KubeEndpoint, Subnet
from openccs.subsystems import need
from openccs.tasks.runner import StepContext, TaskFailed, task_type

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.kube")

SYNC_EVERY = 2.0
Address = tuple[str, int]


class RawSink(typing.Protocol):
    """Who takes a connection's binary messages as they arrive (the port-forward's tunnel),
    in the protocol's own callbacks: no queue, no task switch per message."""

    def message(self, data: bytes) -> None: ...

    def flush(self) -> None:
        """The end of what one read brought (writes gathered meanwhile can go)."""

    def pause_writing(self) -> None:
        """The client's direction is full: stop producing for it."""

    def resume_writing(self) -> None: ...


def frame_head(size: int) -> bytes:
    """The head of a server's (unmasked) binary frame of `size` bytes, FIN set."""
    if size < 126:
        return bytes((0x82, size))
    if size < 65536:
        return struct.pack("!BBH", 0x82, 126, size)
    return struct.pack("!BBQ", 0x82, 127, size)


class _KubeWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, but the subprotocol is left to the app: kubectl offers
    names such as `SPDY/3.1+portforward.k8s.io` that are not RFC 6455 tokens, which the
    websockets library refuses outright.

    And reading from the socket pauses when the messages the app has not read yet reach
    QUEUED_MAX bytes, not at every message: a port-forward's upload comes as three messages
    per SPDY frame (kubectl writes a frame's two header words and its data separately), and
    a pause and resume per message cost a turn of the event loop each.

    An app may also take the connection's binary messages itself (`take`, found in the
    scope's extensions under RAW) and write whole messages straight to the transport
    (`send_message`): the port-forward does, a data copy's worth of work per message instead
    of a queue, a task switch and the websockets library's framing."""

    QUEUED_MAX = 1 << 20
    # What may wait in the transport for the client before the app's sends wait (asyncio's
    # default is 64 KiB: a port-forward's download then stalls at every scheduling delay).
    WRITE_BUFFER = 2 << 20

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=self.WRITE_BUFFER)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.process_subprotocol = _app_decides  # type: ignore[method-assign]
        self.queued = 0
        self.rest = bytearray()
        self.sink: RawSink | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][RAW] = self

    # -- the raw interface -------------------------------------------------------------
    def take(self, sink: RawSink) -> bool:
        """From now on binary messages go to `sink` (text ones are dropped); the app's
        `receive` sees only the disconnect. False when an extension (compression) is in
        force: messages are then not what is on the wire."""
        if not self.handshake_complete or self.conn.extensions:
            return False
        self.sink = sink
        return True

    @property
    def open(self) -> bool:
        return not (self.close_sent or self.disconnected or self.transport.is_closing())

    def send_message(self, head: bytes, body: bytes = b"") -> None:
        """One binary message of `head` then `body` (`body` is not copied); dropped once
        the connection closes. Flow control is the sink's pause_writing/resume_writing."""
        if not self.open:
            return
        size = len(head) + len(body)
        if body:
            self.transport.writelines((frame_head(size) + head, body))
        else:
            self.transport.write(frame_head(size) + head)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.read_paused:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.sink is not None:
            self.sink.pause_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.sink is not None:
            self.sink.resume_writing()

    # -- reading ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Whole binary messages (all kubectl sends once open) are read here, a few
        operations each; anything else, and what follows it in `data`, goes to the websockets
        library's parser, which is then at a frame boundary again (its buffer empty)."""
        conn = self.conn
        if not (
            self.handshake_complete
            and not self.close_sent
            and conn.state is State.OPEN
            and not conn.extensions
            and conn.current_size is None
            and not conn.reader.buffer
        ):
            if self.rest:
                data, self.rest = bytes(self.rest) + data, bytearray()
            super().data_received(data)
            return
        sink = self.sink
        pos = 0
        if self.rest:
            # A frame begun in an earlier read: only it is put together, not all of `data`.
            rest = self.rest
            whole = self._fast_size(bytes(rest[:14]) + data[:14])
            if whole is None or whole > len(rest) + len(data):
                rest += data
                return
            self.rest = bytearray()
            if whole < 0:
                super().data_received(bytes(rest) + data)
                return
            pos = whole - len(rest)
            rest += data[:pos]
            self._messages(rest, sink)
        if pos < len(data) and not self._messages(memoryview(data)[pos:], sink):
            return
        if sink is not None:
            sink.flush()

    def _fast_size(self, buf: bytes) -> int | None:
        """The size of the frame `buf` begins with, head included; None while its head is
        not whole, -1 when it is not one for the fast path."""
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        size, head = second & 0x7F, 6
        if size == 126:
            head = 8
        elif size == 127:
            head = 14
        if len(buf) < head:
            return None
        if size == 126:
            size = int.from_bytes(buf[2:4], "big")
        elif size == 127:
            size = int.from_bytes(buf[2:10], "big")
        limit = self.conn.max_message_size
        if first != 0x82 or not second & 0x80 or (limit is not None and size > limit):
            return -1
        return head + size

    def _messages(self, buf: Any, sink: RawSink | None) -> bool:
        """The whole messages of `buf`; a partial one at its end is kept in `rest`. False
        when the rest went to the websockets library."""
        pos, end = 0, len(buf)
        limit = self.conn.max_message_size
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            size, head = second & 0x7F, 6  # a client's frames are masked: 4 bytes of mask
            if size == 126:
                head = 8
            elif size == 127:
                head = 14
            if end - pos < head:
                break
            if size == 126:
                size = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            elif size == 127:
                size = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            if first != 0x82 or not second & 0x80 or (limit is not None and size > limit):
                if sink is not None:
                    sink.flush()
                super().data_received(bytes(buf[pos:]))
                return False
            stop = pos + head + size
            if stop > end:
                break
            data = apply_mask(buf[pos + head : stop], buf[pos + head - 4 : pos + head])
            if sink is not None:
                sink.message(data)
            else:
                self.frames = [data]
                self.curr_msg_data_type = "bytes"
                self.send_receive_event_to_app()
            pos = stop
        if pos < end:
            self.rest = bytearray(buf[pos:])
        return True

    def send_receive_event_to_app(self) -> None:
        sink = self.sink
        if sink is not None:
            # (From the websockets library's parser: a fragmented or cut message.)
            data, self.frames = b"".join(self.frames), []
            if self.curr_msg_data_type == "bytes" and not self.close_sent:
                sink.message(data)
                sink.flush()
            return
        if not self.close_sent:  # (past the app's close, uvicorn drops what comes)
            self.queued += sum(len(f) for f in self.frames)
        paused = self.read_paused
        self.read_paused = True  # so that uvicorn does not pause here
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and self.queued >= self.QUEUED_MAX:
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Any:
        message: Any = await self.queue.get()
        self.queued = max(0, self.queued - len(message.get("bytes") or message.get("text") or ""))
        if self.read_paused and (self.queued < self.QUEUED_MAX // 2 or self.queue.empty()):
            self.read_paused = False
            self.transport.resume_reading()
        return message


def _app_decides(headers: Any) -> None:
    return None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class _Wanted:
    cluster_id: str
    account_id: int
    secret: str
    ca_cert: str
    ca_key: str
    addresses: list[tuple[str, Address]]  # (role, address)


@dataclass
class _Listener:
    server: _Server
    task: asyncio.Task[None]
    sock: socket.socket
    cert_key: str


class KubeComponent:
    name = "kube"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.apis: dict[str, ClusterApi] = {}
        self.listeners: dict[tuple[str, Address], _Listener] = {}
        self.certs: dict[str, tuple[str, Path, Path]] = {}
        self.errors: dict[tuple[str, Address], str] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        services.subsystems.kube = self

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.sync()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for key in list(self.listeners):
            await self._close(key)
        for api in self.apis.values():
            api.closing = True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SYNC_EVERY)
            try:
                await self.sync()
            except Exception:
                log.exception("kube listener sync failed")

    # -- desired state ----------------------------------------------------------------
    def _desired(self) -> list[_Wanted]:
        box, settings = self.services.box, self.services.settings
        out = []
        with self.services.store.session() as s:
            gateways: dict[str, list[str]] = {}
            for vpc_id, cidr in s.execute(select(Subnet.vpc_id, Subnet.cidr)):
                gw = str(gateway_of(cidr).ip)
                if gw not in gateways.setdefault(vpc_id, []):
                    gateways[vpc_id].append(gw)
            for cluster in s.scalars(select(Cluster).order_by(Cluster.created_at)):
                if cluster.status == "Deleting":
                    continue
                row = endpoints.ensure_endpoint(s, box, cluster.id)
                if row.internal_port is None:
                    row.internal_port = free_port("0.0.0.0")
                addrs: list[tuple[str, Address]] = [
                    ("internal", (gw, row.internal_port)) for gw in gateways.get(cluster.vpc_id, [])
                ]
                if row.external_open and row.external_port:
                    host = row.external_host or settings.kube_public_address
                    addrs.append(("external", (host, row.external_port)))
                out.append(
                    _Wanted(
                        cluster.id,
                        cluster.account_id,
                        box.decrypt(row.password_enc),
                        row.ca_cert,
                        box.decrypt(row.ca_key_enc),
                        addrs,
                    )
                )
        return out

    async def sync(self) -> None:
        async with self._lock:
            wanted = await in_thread(self._desired)
            keep: set[tuple[str, Address]] = set()
            for w in wanted:
                api = self.apis.get(w.cluster_id)
                if api is None or api.secret != w.secret:
                    api = self.apis[w.cluster_id] = ClusterApi(
                        self.services, w.cluster_id, w.account_id, w.secret
                    )
                ips = sorted({"127.0.0.1", *(a[0] for _, a in w.addresses)})
                cert_key = ",".join(ips)
                have = self.certs.get(w.cluster_id)
                if have is None or have[0] != cert_key:
                    out_dir = self.services.settings.data_dir / "kube" / w.cluster_id
                    cert, key = await in_thread(
                        creds.issue_server_cert, out_dir, w.ca_cert, w.ca_key, ips
                    )
                    self.certs[w.cluster_id] = (cert_key, cert, key)
                for _role, addr in w.addresses:
                    k = (w.cluster_id, addr)
                    keep.add(k)
                    lst = self.listeners.get(k)
                    if lst is not None and (lst.cert_key != cert_key or lst.task.done()):
                        await self._close(k)
                        lst = None
                    if lst is None:
                        self._open(k, api)
            for k in [k for k in self.listeners if k not in keep]:
                await self._close(k)
            live = {w.cluster_id for w in wanted}
            for cid in [c for c in self.apis if c not in live]:
                self.apis.pop(cid).closing = True
                self.certs.pop(cid, None)
                # The cluster is gone: so is its server key.
                shutil.rmtree(self.services.settings.data_dir / "kube" / cid, ignore_errors=True)

    def _open(self, key: tuple[str, Address], api: ClusterApi) -> None:
        cluster_id, addr = key
        cert_key, cert, pkey = self.certs[cluster_id]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            sock.bind(addr)
            sock.listen(256)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            msg = f"cannot listen on {addr[0]}:{addr[1]}: {exc.strerror or exc}"
            if self.errors.get(key) != msg:
                log_event(log, "kube listen failed", cluster=cluster_id, error=msg)
            self.errors[key] = msg
            return
        self.errors.pop(key, None)
        cfg = listener_config(
            api.app,
            self.services.settings,
            ssl_certfile=str(cert),
            ssl_keyfile=str(pkey),
            ws=_KubeWebSockets,
            # kubectl does not compress; without it, messages are what is on the wire
            # (which the port-forward's raw path needs).
            ws_per_message_deflate=False,
            timeout_graceful_shutdown=2,
        )
        server = _Server(cfg)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        self.listeners[key] = _Listener(server, task, sock, cert_key)
        log_event(log, "kube listening", cluster=cluster_id, address=f"{addr[0]}:{addr[1]}")

    async def _close(self, key: tuple[str, Address]) -> None:
        lst = self.listeners.pop(key, None)
        if lst is None:
            return
        lst.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(lst.task), timeout=5)
        except (TimeoutError, Exception):
            lst.task.cancel()
        lst.sock.close()
        log_event(log, "kube listener closed", cluster=key[0], address=f"{key[1][0]}:{key[1][1]}")

    # -- from worker threads ----------------------------------------------------------
    def sync_blocking(self, timeout: float = 30.0) -> None:
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.sync(), self.loop).result(timeout)

    def is_listening(self, cluster_id: str, addr: Address) -> bool:
        lst = self.listeners.get((cluster_id, addr))
        return lst is not None and not lst.task.done()


def _vip_step(ctx: StepContext) -> None:
    """OperateClusterVip: open or close the external address, and wait until it is so."""
    services = ctx.services["services"]
    comp = need(services.subsystems.kube, "kube")
    cluster_id, operation = ctx.params["clusterId"], ctx.params["operation"]
    settings = services.settings
    with services.store.session() as s:
        row = endpoints.ensure_endpoint(s, services.box, cluster_id)
        if operation == "Create":
            host = row.external_host or settings.kube_public_address
            if not row.external_port:
                row.external_host = host
                row.external_port = free_port(host)
            addr: Address = (host, row.external_port)
        else:
            addr = (row.external_host or settings.kube_public_address, row.external_port or 0)
            row.external_port = None
    comp.sync_blocking()
    if operation == "Create" and not comp.is_listening(cluster_id, addr):
        raise TaskFailed(comp.errors.get((cluster_id, addr), "the listener did not start"))
    if operation == "Delete" and comp.is_listening(cluster_id, addr):
        raise TaskFailed("the external listener is still open")


def _vip_rollback(ctx: StepContext) -> None:
    """A Create that could not listen leaves the address closed, as before."""
    if ctx.params["operation"] != "Create":
        return
    services = ctx.services["services"]
    with services.store.session() as s:
        row = s.get(KubeEndpoint, ctx.params["clusterId"])
        if row is not None:
            row.external_open = False
            row.external_port = None
    need(services.subsystems.kube, "kube").sync_blocking()


task_type("kube.vip", [("listen", _vip_step)], rollback=_vip_rollback, retries=1)


def component(services: Services) -> Any:
    return KubeComponent(services)
