"""The registry component: starts (or finds again) docker-registry, serves the token and
notification endpoints on the API listeners, and runs reconciliation, retention and
garbage collection in the background."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openccs.config import parse_hostport
from openccs.log import get_logger, log_event

from . import gc, notifications, retention
from .client import RegistryClient
from .daemon import Endpoints, RegistryDaemon
from .jwt import TokenSigner
from .runtime import RegistryRuntime
from .token import TOKEN_TTL, grant, issued_at, parse_scopes

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.registry")
# httpx logs every request at INFO: the registry client's calls would flood the log.
logging.getLogger("httpx").setLevel(logging.WARNING)

TOKEN_PATH = "/ccr/token"
NOTIFY_PATH = "/ccr/notify"


def listen_addresses(services: Services) -> list[str]:
    """Addresses the registry serves images on; the first is the one image names use.

    Loopback for now: the cloud layer adds each VPC gateway address here so that machines
    pull from the registry.
    """
    return ["127.0.0.1"]


def _local_url(scheme: str, hostport: str, path: str) -> str:
    host, port = parse_hostport(hostport)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"


def endpoints(services: Services) -> Endpoints:
    s = services.settings
    # The realm is fetched by clients: the HTTPS listener when there is one (its certificate
    # comes from the same CA as the registry's). Notifications stay on loopback HTTP when
    # possible (the registry is then told to trust the CA through SSL_CERT_FILE otherwise).
    if s.https:
        realm = _local_url("https", s.https, TOKEN_PATH)
    else:
        assert s.http
        realm = _local_url("http", s.http, TOKEN_PATH)
    if s.http:
        notify = _local_url("http", s.http, NOTIFY_PATH)
    else:
        assert s.https
        notify = _local_url("https", s.https, NOTIFY_PATH)
    return Endpoints(realm=realm, notify_url=notify)


class RegistryComponent:
    name = "registry"
    reconcile_every = 300.0
    retention_every = 3600.0
    # Garbage collection runs this long after the first deletion (it stops the registry).
    gc_delay = 600.0

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        directory = settings.data_dir / "registry"
        daemon = RegistryDaemon(directory, settings.tls_dir, listen_addresses(services))
        signer, bundle = TokenSigner.ensure(directory)
        self.rt = RegistryRuntime(settings, services.store, daemon, signer, bundle)
        self.seen = notifications.EventLog()
        self._loop_task: asyncio.Task[None] | None = None
        services.extra["registry"] = self.rt
        services.extra["registry.component"] = self

    def routes(self) -> list[BaseRoute]:
        return [
            Route(TOKEN_PATH, self.token, methods=["GET"]),
            Route(NOTIFY_PATH, self.notify, methods=["POST"]),
        ]

    # --- lifecycle -------------------------------------------------------------------
    def _start_daemon(self) -> None:
        self.rt.daemon.start(endpoints(self.services), self.rt.bundle)

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._start_daemon)
        except RuntimeError as exc:
            # The API keeps serving; registry actions answer RegistryUnavailable.
            log.error("registry not started", extra={"fields": {"error": str(exc)}})
            return
        self.rt.client = RegistryClient(self.rt.daemon.url, self.rt.daemon.ca, self.rt.signer)
        self._loop_task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await asyncio.to_thread(self.rt.daemon.stop)
        if self.rt.client is not None:
            self.rt.client.close()
            self.rt.client = None

    def maintain(self, force_gc: bool = False) -> dict[str, int]:
        """One pass: reconcile, apply retention, collect garbage if due (or forced)."""
        result = notifications.reconcile(self.rt)
        result["retentionRemoved"] = retention.periodic(self.rt)
        due = self.rt.gc_pending_since is not None and (
            time.monotonic() - self.rt.gc_pending_since >= self.gc_delay
        )
        result["bytesFreed"] = gc.collect(self.rt, self._start_daemon) if force_gc or due else 0
        return result

    async def _loop(self) -> None:
        last_reconcile = 0.0
        last_retention = time.monotonic()
        while True:
            now = time.monotonic()
            try:
                if not self.rt.gc_lock.locked() and not self.rt.daemon.running():
                    # The registry died: start it again; what it was sending is reconciled.
                    log_event(log, "registry not running: starting it again")
                    await asyncio.to_thread(self._start_daemon)
                    last_reconcile = 0.0
                if now - last_reconcile >= self.reconcile_every:
                    last_reconcile = now
                    await asyncio.to_thread(notifications.reconcile, self.rt)
                if now - last_retention >= self.retention_every:
                    last_retention = now
                    await asyncio.to_thread(retention.periodic, self.rt)
                pending = self.rt.gc_pending_since
                if pending is not None and now - pending >= self.gc_delay:
                    await asyncio.to_thread(gc.collect, self.rt, self._start_daemon)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("registry maintenance failed")
            await asyncio.sleep(5)

    # --- HTTP ------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        principal = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return _unauthorized("malformed Basic credentials")
            principal = await asyncio.to_thread(self._authenticate, user, password)
            if principal is None:
                return _unauthorized("wrong registry user or password")
        scopes = parse_scopes(request.query_params.getlist("scope"))
        access = await asyncio.to_thread(self._grants, principal, scopes)
        subject = principal.uin if principal is not None else ""
        token, now = self.rt.signer.sign(subject, access, TOKEN_TTL)
        log_event(
            log,
            "registry token",
            user=subject or "anonymous",
            access=";".join(f"{a['name']}:{','.join(a['actions'])}" for a in access),
        )
        return JSONResponse(
            {
                "token": token,
                "access_token": token,
                "expires_in": TOKEN_TTL,
                "issued_at": issued_at(now),
            }
        )

    def _authenticate(self, user: str, password: str) -> Any:
        with self.rt.store.session() as s:
            return self.rt.auth.authenticate(s, user, password)

    def _grants(self, principal: Any, scopes: list[tuple[str, str, list[str]]]) -> list[Any]:
        with self.rt.store.session() as s:
            return [
                {"type": kind, "name": name, "actions": grant(s, principal, kind, name, wanted)}
                for kind, name, wanted in scopes
            ]

    async def notify(self, request: Request) -> Response:
        expected = f"Bearer {self.rt.daemon.notify_secret}"
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return Response(status_code=401)
        try:
            body = json.loads(await request.body())
            events = list(body.get("events") or [])
        except (ValueError, AttributeError, TypeError):
            return Response(status_code=400)
        await asyncio.to_thread(notifications.handle_events, self.rt, self.seen, events)
        return Response(status_code=200)


def _unauthorized(why: str) -> Response:
    return JSONResponse(
        {"errors": [{"code": "UNAUTHORIZED", "message": why}]},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="openccs registry"'},
    )


def component(services: Services) -> RegistryComponent:
    return RegistryComponent(services)
