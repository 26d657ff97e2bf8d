"""A small TCP forwarder: the registry's daemons listen on loopback only, and this exposes
them on the VPC gateway addresses, where machines reach the host.

Each accepted connection is copied to its loopback target by two threads (one per
direction) with splice(2), so the bytes never enter Python and the copy does not hold the
interpreter lock: an image pull runs at the kernel's speed, beside the API's event loop.
Listening sockets are bound with IP_FREEBIND, so a gateway address that is not on its
bridge yet (a VPC created by the CLI a moment ago) is served as soon as it appears.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from openccs.log import get_logger, log_event

log = get_logger("openccs.registry.forward")

Address = tuple[str, int]

# Bytes moved per splice call: the pipe between the two sockets is grown to this size
# (the default /proc/sys/fs/pipe-max-size allows it).
CHUNK = 1 << 20
CONNECT_TIMEOUT = 5.0
# Linux's IP_FREEBIND (socket.IP_FREEBIND is not exposed on every Python build).
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
# errno values meaning "splice cannot do these descriptors": fall back to recv/send.
_NO_SPLICE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


@dataclass(eq=False)
class _Conn:
    client: socket.socket
    upstream: socket.socket

    def abort(self) -> None:
        """Wake both copying threads (a blocked splice returns once its socket is shut)."""
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Listener:
    def __init__(self, owner: Forwarder, listen: Address, target: Address) -> None:
        self.owner = owner
        self.listen = listen
        self.target = target
        self.closed = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            sock.bind(listen)
            sock.listen(256)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.thread = threading.Thread(
            target=self._accept_loop,
            name=f"{owner.name}-accept-{listen[0]}:{listen[1]}",
            daemon=True,
        )
        self.thread.start()

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _peer = self.sock.accept()
            except OSError as exc:
                if self.closed:
                    return
                # EMFILE and the like: keep listening rather than going deaf.
                log.warning(
                    "forwarder accept failed",
                    extra={"fields": {"listen": _fmt(self.listen), "error": str(exc)}},
                )
                threading.Event().wait(0.2)
                continue
            self.owner._handle(client, self.target)

    def close(self) -> None:
        self.closed = True
        # shutdown() makes a blocked accept() return at once (close() alone may not).
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=2)


class Forwarder:
    """Routes (listen address -> loopback target), changed as a whole by `sync`."""

    def __init__(self, name: str = "registry-fwd", max_connections: int = 512) -> None:
        self.name = name
        self._listeners: dict[Address, _Listener] = {}
        self._conns: set[_Conn] = set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    @property
    def routes(self) -> dict[Address, Address]:
        with self._lock:
            return {k: v.target for k, v in self._listeners.items()}

    def sync(self, routes: Mapping[Address, Address]) -> list[str]:
        """Listen exactly on `routes`; returns the errors of routes that could not listen
        (they are tried again at the next sync)."""
        errors: list[str] = []
        with self._lock:
            for listen in list(self._listeners):
                if routes.get(listen) != self._listeners[listen].target:
                    self._listeners.pop(listen).close()
                    log_event(log, "forwarding stopped", listen=_fmt(listen))
            for listen, target in routes.items():
                if listen in self._listeners:
                    continue
                try:
                    self._listeners[listen] = _Listener(self, listen, target)
                except OSError as exc:
                    errors.append(f"cannot listen on {_fmt(listen)}: {exc.strerror or exc}")
                    continue
                log_event(log, "forwarding", listen=_fmt(listen), to=_fmt(target))
        return errors

    def close(self) -> None:
        self.sync({})
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.abort()

    # -- connections ------------------------------------------------------------------
    def _handle(self, client: socket.socket, target: Address) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning(
                "forwarder full: connection refused",
                extra={"fields": {"to": _fmt(target)}},
            )
            client.close()
            return
        threading.Thread(
            target=self._serve, args=(client, target), name=f"{self.name}-conn", daemon=True
        ).start()

    def _serve(self, client: socket.socket, target: Address) -> None:
        try:
            try:
                upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                log.warning(
                    "forwarder cannot reach its target",
                    extra={"fields": {"to": _fmt(target), "error": str(exc)}},
                )
                client.close()
                return
            conn = _Conn(client, upstream)
            with self._lock:
                self._conns.add(conn)
            try:
                upstream.settimeout(None)
                for sock in (client, upstream):
                    # Token requests and manifest fetches are small: no Nagle delay on them.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # A machine that vanished mid-pull (destroyed, its dockerd killed) sends no
                # FIN: keepalive probes end the connection and free its threads.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
                back = threading.Thread(
                    target=_pump, args=(upstream, client, conn), name=f"{self.name}-back",
                    daemon=True,
                )  # fmt: skip
                back.start()
                _pump(client, upstream, conn)
                back.join()
            finally:
                with self._lock:
                    self._conns.discard(conn)
                client.close()
                upstream.close()
        finally:
            self._slots.release()


def _pump(src: socket.socket, dst: socket.socket, conn: _Conn) -> None:
    """Copy src to dst until src ends; then half-close dst so its peer sees the end too."""
    try:
        try:
            _splice_copy(src, dst)
        except _NoSplice:
            _plain_copy(src, dst)
    except OSError:
        # A reset or a shutdown by close(): the other direction has nothing left to do.
        conn.abort()
        return
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class _NoSplice(Exception):
    """splice(2) refused these descriptors before moving anything."""


def _splice_copy(src: socket.socket, dst: socket.socket) -> None:
    r, w = os.pipe()
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CHUNK)
        sfd, dfd = src.fileno(), dst.fileno()
        moved = False
        while True:
            try:
                n = os.splice(sfd, w, CHUNK, flags=os.SPLICE_F_MOVE)
            except OSError as exc:
                if not moved and exc.errno in _NO_SPLICE:
                    raise _NoSplice from exc
                raise
            if n == 0:
                return
            moved = True
            while n > 0:
                n -= os.splice(r, dfd, n, flags=os.SPLICE_F_MOVE)
    finally:
        os.close(r)
        os.close(w)


def _plain_copy(src: socket.socket, dst: socket.socket) -> None:
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    while True:
        n = src.recv_into(buf)
        if n == 0:
            return
        dst.sendall(view[:n])


def _fmt(addr: Address) -> str:
    return f"{addr[0]}:{addr[1]}"
