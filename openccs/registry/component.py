"""The registry component: starts (or finds again) docker-registry, serves the token and
notification endpoints on the API listeners, and runs reconciliation, retention and
garbage collection in the background.

Machines reach the registry on their VPC gateway addresses: the registry and a token
listener of its own (the realm every client is sent to) listen on loopback, a forwarder
exposes both on every gateway, and each gateway endpoint's CA is written where the
machines' dockerds read it. All of that follows the database's subnets, level-triggered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openccs.cloud.component import site_id
from openccs.config import parse_hostport
from openccs.httpguard import listener_config
from openccs.log import get_logger, log_event

from . import certsd, clusters, gc, machines, notifications, retention
from .client import RegistryClient
from .daemon import Endpoints, RegistryDaemon
from .forward import Forwarder
from .jwt import TokenSigner
from .machines import LOOPBACK
from .runtime import RegistryRuntime
from .token import TOKEN_TTL, grant, issued_at, missing_namespace, parse_scopes

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.registry")
# httpx logs every request at INFO: the registry client's calls would flood the log.
logging.getLogger("httpx").setLevel(logging.WARNING)

TOKEN_PATH = "/ccr/token"
NOTIFY_PATH = "/ccr/notify"


def listen_addresses(services: Services) -> list[str]:
    """Addresses the registry serves images on; the first (loopback) is the one image names
    use, the others are the VPC gateways machines pull from."""
    with services.store.session() as s:
        return [LOOPBACK, *machines.gateway_addresses(s)]


def _persisted_port(path: Path) -> int:
    """A port chosen free once and kept, so that clients' settings stay valid."""
    if path.exists():
        return int(path.read_text())
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = int(sock.getsockname()[1])
    path.write_text(str(port))
    return port


class _TokenServer(uvicorn.Server):
    # The API server handles the process's signals; this one is stopped by the component.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _local_url(scheme: str, hostport: str, path: str) -> str:
    host, port = parse_hostport(hostport)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"


def endpoints(services: Services, realm_host: str, token_port: int) -> Endpoints:
    s = services.settings
    # The realm is fetched by every client, the machines' dockerds included: the registry's
    # own token listener (same certificate as the registry's, so it names the gateways),
    # on an address the machines reach too (`machines.realm_host`). Notifications stay on
    # loopback HTTP when possible (the registry is then told to trust the CA through
    # SSL_CERT_FILE otherwise).
    realm = f"https://{realm_host}:{token_port}{TOKEN_PATH}"
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
        addresses = listen_addresses(services)
        daemon = RegistryDaemon(directory, settings.tls_dir, addresses)
        signer, bundle = TokenSigner.ensure(directory)
        self.rt = RegistryRuntime(settings, services.store, daemon, signer, bundle)
        self.rt.gateways = tuple(addresses[1:])
        self.seen = notifications.EventLog()
        self.site = site_id(settings.data_dir)
        self.token_port = _persisted_port(directory / "token-port")
        self.realm_host = LOOPBACK
        self.forwarder = Forwarder()
        self._token_server: _TokenServer | None = None
        self._token_task: asyncio.Task[None] | None = None
        self._sync_lock = threading.Lock()
        self._access_problems: list[str] = []
        self._loop_task: asyncio.Task[None] | None = None
        services.subsystems.registry = self

    def routes(self) -> list[BaseRoute]:
        return [
            Route(TOKEN_PATH, self.token, methods=["GET"]),
            Route(NOTIFY_PATH, self.notify, methods=["POST"]),
        ]

    # --- lifecycle -------------------------------------------------------------------
    def _endpoints(self) -> Endpoints:
        return endpoints(self.services, self.realm_host, self.token_port)

    def _start_daemon(self) -> None:
        self.rt.daemon.start(self._endpoints(), self.rt.bundle)

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.sync_machine_access, False)
            await self._start_token_server()
            await asyncio.to_thread(self._start_daemon)
        except (RuntimeError, OSError) as exc:
            # The API keeps serving; registry actions answer RegistryUnavailable.
            log.error("registry not started", extra={"fields": {"error": str(exc)}})
            await self._stop_token_server()
            return
        self.rt.client = RegistryClient(self.rt.daemon.url, self.rt.daemon.ca, self.rt.signer)
        self._loop_task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        # Machines keep their trust files (they outlive openccs; a sweep removes them).
        await asyncio.to_thread(self.forwarder.close)
        await self._stop_token_server()
        await asyncio.to_thread(self.rt.daemon.stop)
        if self.rt.client is not None:
            self.rt.client.close()
            self.rt.client = None

    # --- machines' access ------------------------------------------------------------
    def sync_machine_access(self, restart: bool = True) -> bool:
        """Follow the database's VPC gateways: the certificate names them all, the realm
        moves to one the host has, the forwarder listens on each, and each gateway endpoint
        gets the CA file machines trust. A registry running with an outdated certificate or
        realm is restarted (`restart`). True when the certificate was re-issued."""
        with self.rt.store.session() as s:
            gateways = machines.gateway_addresses(s)
            trusting = machines.gateways_with_machines(s)
        # Garbage collection stops and starts the registry under gc_lock: neither a new
        # certificate nor a restart may happen in the middle of that.
        with self._sync_lock, self.rt.gc_lock:
            daemon = self.rt.daemon
            reissued = daemon.set_addresses([LOOPBACK, *gateways])
            realm_host = machines.realm_host(gateways)
            if reissued or realm_host != self.realm_host or tuple(gateways) != self.rt.gateways:
                log_event(log, "registry addresses", gateways=",".join(gateways) or "-",
                          realm=realm_host, certificate_reissued=reissued)  # fmt: skip
            self.realm_host = realm_host
            self.rt.gateways = tuple(gateways)
            stale = daemon.digest != daemon.desired_digest(self._endpoints(), self.rt.bundle)
            if restart and stale and daemon.running():
                log_event(log, "registry restarting for new addresses")
                self._start_daemon()
            self._expose(gateways, trusting)
        return reissued

    def _expose(self, gateways: list[str], trusting: list[str]) -> None:
        port = self.rt.daemon.port
        routes = {}
        for gw in gateways:
            for p in (port, self.token_port):
                routes[(gw, p)] = (LOOPBACK, p)
        problems = [f"not reachable from machines: {e}" for e in self.forwarder.sync(routes)]
        try:
            _changed, foreign = certsd.sync(
                self.site, self.rt.daemon.ca.read_bytes(), [f"{g}:{port}" for g in trusting]
            )
            problems += [f"CA not written: {d} is not openccs's" for d in foreign]
        except OSError as exc:
            problems.append(f"CA not written under {certsd.CERTS_D}: {exc}")
        # Said once per change, not at every pass.
        if problems != self._access_problems:
            for problem in problems:
                log.warning("registry access for machines", extra={"fields": {"error": problem}})
            self._access_problems = problems

    async def _start_token_server(self) -> None:
        """The realm's listener: the token endpoint alone, with the registry's certificate."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, self.token_port))
            sock.listen(256)
        except OSError as exc:
            sock.close()
            raise RuntimeError(
                f"token listener: cannot listen on {LOOPBACK}:{self.token_port}: {exc}"
            ) from None
        app = Starlette(routes=[Route(TOKEN_PATH, self.token, methods=["GET"])])
        config = listener_config(
            app,
            self.services.settings,
            ssl_certfile=str(self.rt.daemon.cert),
            ssl_keyfile=str(self.rt.daemon.key),
        )
        config.load()
        server = _TokenServer(config)
        self._token_server = server
        self._token_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._token_task.done():
                raise RuntimeError("token listener did not start")
            await asyncio.sleep(0.01)
        log_event(log, "registry token listener", addr=f"{LOOPBACK}:{self.token_port}")

    def _reload_token_certificate(self) -> None:
        # New handshakes present the re-issued certificate; no restart, no dropped request.
        if self._token_server is not None and self._token_server.config.ssl is not None:
            self._token_server.config.ssl.load_cert_chain(
                str(self.rt.daemon.cert), str(self.rt.daemon.key)
            )

    async def _stop_token_server(self) -> None:
        if self._token_server is not None:
            self._token_server.should_exit = True
        if self._token_task is not None:
            with contextlib.suppress(Exception):
                await self._token_task
        self._token_server = None
        self._token_task = None

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
            await self._keep_machine_access()
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

    async def _keep_machine_access(self) -> None:
        """One pass of the machines' side; its failures are logged apart from maintenance's."""
        try:
            if self._token_task is not None and self._token_task.done():
                log.error("registry token listener stopped: starting it again")
                await self._stop_token_server()
                await self._start_token_server()
            if await asyncio.to_thread(self.sync_machine_access):
                self._reload_token_certificate()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("registry access for machines not synced")

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
        if principal is not None:
            missing = await asyncio.to_thread(self._missing_namespace, scopes)
            if missing is not None:
                return _denied(
                    f"registry namespace {missing!r} does not exist: create it first"
                    f" (CreateCCRNamespace namespace={missing}, e.g."
                    f" openccs call CreateCCRNamespace namespace={missing})"
                )
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
            if clusters.cluster_of(user) is not None:
                return clusters.authenticate(s, self.services.box, user, password)
            return self.rt.auth.authenticate(s, user, password)

    def _missing_namespace(self, scopes: list[tuple[str, str, list[str]]]) -> str | None:
        with self.rt.store.session() as s:
            return missing_namespace(s, scopes)

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


def _denied(why: str) -> Response:
    """Distribution's error shape, whose `message` clients show. 401, not 403: skopeo and
    podman (containers/image) read the body of a token answer only for a 401."""
    return JSONResponse({"errors": [{"code": "DENIED", "message": why}]}, status_code=401)


def _unauthorized(why: str) -> Response:
    return JSONResponse(
        {"errors": [{"code": "UNAUTHORIZED", "message": why}]},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="openccs registry"'},
    )


def component(services: Services) -> RegistryComponent:
    return RegistryComponent(services)
