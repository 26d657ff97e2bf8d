"""The HTTP listeners' guard against clients that hold connections: a request (headers and
body) must arrive within a deadline, else 408 and the connection is closed; and one client
address holds at most so many connections of a listener at once."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from openccs.config import Settings
from openccs.log import get_logger, log_event

log = get_logger("openccs.http")

_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 29\r\n\r\nrequest not received in time\n"
)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 39\r\n\r\ntoo many connections from this address\n"
)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline per request and a per-address cap.

    The deadline runs from the connection's start, and from the first byte of each next
    request, to the end of that request's body; the wait between requests is uvicorn's
    keep-alive timeout."""

    def __init__(self, *args: Any, read_timeout: float, per_client: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self.per_client = per_client
        self._deadline: asyncio.TimerHandle | None = None
        # The cycle of the previous request when the deadline was armed: a different one
        # at the deadline belongs to the late request (its headers arrived).
        self._cycle_before: Any = None
        # No byte at all yet: a browser's speculative connection, held for a request to come.
        # At the deadline it is closed without an answer (a 408 written to it could be read
        # as the answer to a request sent at that very moment), as nginx does.
        self._idle = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if host is not None:
            held = len([c for c in self.connections if _client_host(c) == host])
            if held > self.per_client:
                _log_refusal(host, held - 1)
                transport.write(_BUSY)
                transport.close()
                return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._idle = False
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def handle_websocket_upgrade(self) -> None:
        # The request has arrived whole; the connection now belongs to a WebSocket protocol
        # (an exec or port-forward session may last hours): this deadline must not close it.
        self._disarm()
        super().handle_websocket_upgrade()

    def _arm(self) -> None:
        self._disarm()
        self._cycle_before = self.cycle
        self._deadline = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        # An app may answer before reading the body (a 401): then no second answer.
        answered = cycle is not None and cycle is not self._cycle_before and cycle.response_started
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
        log_event(log, "request read timed out", client=client, seconds=self.read_timeout)
        if not answered and not self._idle:
            self.transport.write(_TIMEOUT)
        # The app waiting on the body sees a disconnect (connection_lost sets it).
        self.transport.close()


_last_refusal_log: dict[str, float] = {}


def _log_refusal(host: str, held: int) -> None:
    # A line per address every 10 s at most: refusing must not flood the log either.
    now = time.monotonic()
    if now - _last_refusal_log.get(host, -10.0) < 10.0:
        return
    if len(_last_refusal_log) > 1000:
        _last_refusal_log.clear()
    _last_refusal_log[host] = now
    log_event(log, "connections refused", client=host, held=held)


def _client_host(protocol: Any) -> str | None:
    client = getattr(protocol, "client", None)
    return client[0] if client else None


def guarded_protocol(read_timeout: float, per_client: int) -> Callable[..., asyncio.Protocol]:
    """The `http` of a uvicorn.Config: the guarded protocol with these limits."""
    return functools.partial(GuardedHttpProtocol, read_timeout=read_timeout, per_client=per_client)


def listener_config(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Config:
    """A uvicorn.Config for one of openccs's listeners: no logging or lifespan of its own,
    keep-alive of 30 s, and the guard with the settings' limits."""
    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "lifespan": "off",
        "timeout_keep_alive": 30,
        "http": guarded_protocol(
            settings.request_read_timeout, settings.max_connections_per_client
        ),
    }
    options.update(kwargs)
    return uvicorn.Config(app, **options)
