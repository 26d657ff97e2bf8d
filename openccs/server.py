"""`openccs serve`: state, tasks and the API listeners in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select

from openccs import timeutil
from openccs.api.app import Gateway, build_app, build_worker_app, count_request
from openccs.api.registry import Registry, finalize
from openccs.api.replay import ReplayGuard
from openccs.api.workers import Channel, Relay, WorkerPool, listening_socket
from openccs.components import Component, load_components
from openccs.config import Settings, parse_hostport
from openccs.crypto import SecretBox
from openccs.datadir import open_store, write_endpoints
from openccs.domain import accounts
from openccs.httpguard import listener_config
from openccs.log import get_logger, log_event, log_failure
from openccs.store.db import Store
from openccs.store.models import Account
from openccs.subsystems import Subsystems
from openccs.tasks.runner import TaskRunner
from openccs.tls import ensure_server_certificate, not_valid_after

log = get_logger("openccs.server")


@dataclass
class Services:
    settings: Settings
    store: Store
    box: SecretBox
    registry: Registry
    replay: ReplayGuard
    tasks: TaskRunner
    subsystems: Subsystems = field(default_factory=Subsystems)
    components: list[Component] = field(default_factory=list)


def ensure_default_account(settings: Settings, store: Store, box: SecretBox) -> dict[str, Any]:
    """First start: create the default account and a key, and write them to credentials.json."""
    path = settings.data_dir / "credentials.json"
    with store.session() as s:
        existing = s.scalars(select(Account).order_by(Account.id)).first()
        if existing is not None and path.exists():
            creds: dict[str, Any] = json.loads(path.read_text())
            return creds
        account = existing or accounts.create_account(s, name="default")
        key = accounts.create_key(s, box, account)
        creds = {
            "appId": account.app_id,
            "uin": account.uin,
            "secretId": key.secret_id,
            "secretKey": key.secret_key,
        }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
    print(
        f"openccs: default account appId={creds['appId']} uin={creds['uin']}\n"
        f"openccs:   SecretId  {creds['secretId']}\n"
        f"openccs:   SecretKey {creds['secretKey']}\n"
        f"openccs:   (kept in {path}, readable by root only)",
        file=sys.stderr,
        flush=True,
    )
    return creds


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# A stop waits this long for requests in flight (a long poll, a followed log), then closes
# them: the components' own shutdown must still run.
GRACEFUL_SHUTDOWN_S = 5


class _Server(uvicorn.Server):
    # Signals are handled once for both listeners by `serve`.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_services(settings: Settings) -> Services:
    timeutil.set_timezone(settings.timezone)
    store, box = open_store(settings)
    registry = finalize()
    replay = ReplayGuard(store, settings.timestamp_window, settings.nonce_memory_per_key)
    replay.load()
    runner = TaskRunner(store, workers=settings.task_workers)
    services = Services(settings, store, box, registry, replay, runner)
    runner.services["services"] = services
    services.components = load_components(services)
    return services


async def _serve(settings: Settings) -> None:
    if settings.http:
        host, _ = parse_hostport(settings.http)
        if not _is_loopback(host) and not settings.allow_public_plain_http:
            raise SystemExit(
                f"openccs: refusing plain HTTP on non-loopback address {host}:"
                " use --https, or --allow-public-http if you really mean it"
            )
    services = build_services(settings)
    ensure_default_account(settings, services.store, services.box)
    gateway = Gateway(services)
    app = build_app(services, gateway)
    servers: list[uvicorn.Server] = []
    # With API workers: each listener's socket (shared with them), and its certificate.
    shared: list[tuple[socket.socket, str | None, str | None]] = []
    sockets: dict[int, list[socket.socket]] = {}  # uvicorn server index -> its sockets
    endpoints: dict[str, str] = {}
    background: list[asyncio.Task[None]] = []

    def listen(host: str, port: int, cert: str | None = None, key: str | None = None) -> None:
        if settings.api_workers > 1:
            sock = listening_socket(host, port)
            shared.append((sock, cert, key))
            sockets[len(servers)] = [sock]

    if settings.https:
        host, port = parse_hostport(settings.https)
        if settings.tls_cert and settings.tls_key:
            cert, key = settings.tls_cert, settings.tls_key
        else:
            cert, key = ensure_server_certificate(settings.tls_dir, [host])
        cfg = listener_config(
            app,
            settings,
            host=host,
            port=port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        listen(host, port, str(cert), str(key))
        servers.append(_Server(cfg))
        if not settings.tls_cert:
            background.append(asyncio.create_task(_renew_certificate(settings, host, cfg)))
        endpoints["https"] = f"https://{settings.https}"
        print(f"openccs: CA certificate {settings.tls_dir / 'ca.pem'}", file=sys.stderr)
    if settings.http:
        host, port = parse_hostport(settings.http)
        cfg = listener_config(
            app, settings, host=host, port=port, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S
        )
        listen(host, port)
        servers.append(_Server(cfg))
        endpoints["http"] = f"http://{settings.http}"
    if not servers:
        raise SystemExit("openccs: give at least one of --http and --https")
    pool: WorkerPool | None = None
    if shared:
        pool = WorkerPool(
            settings,
            settings.api_workers - 1,
            shared,
            gateway.answer_forwarded,
            count_request,
            logging.getLevelName(logging.getLogger().level),
        )
        # What workers relay (console, registry token, metrics) arrives on a unix socket.
        sockets[len(servers)] = [pool.relay_socket()]
        servers.append(
            _Server(listener_config(app, settings, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
        )

    loop = asyncio.get_running_loop()

    def stop(*_: object) -> None:
        for srv in servers:
            srv.should_exit = True
        if pool is not None:
            pool.terminate()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)

    services.replay.start()
    started: list[Component] = []
    try:
        for comp in services.components:
            await comp.start()
            started.append(comp)
            log_event(log, "component started", component=comp.name)
        services.tasks.resume()
        if pool is not None:
            await pool.start()
        write_endpoints(settings.data_dir, endpoints)
        log_event(
            log,
            "serving",
            data_dir=str(settings.data_dir),
            api_processes=max(1, settings.api_workers),
            **endpoints,
        )
        await asyncio.gather(*(srv.serve(sockets.get(i)) for i, srv in enumerate(servers)))
    finally:
        log_event(log, "shutting down")
        if pool is not None:
            # Before the components: requests the workers still finish may need them.
            await pool.stop()
        for task in background:
            task.cancel()
        await asyncio.to_thread(services.tasks.stop)
        for comp in reversed(started):
            try:
                await comp.stop()
            except Exception:
                log.exception("component stop failed", extra={"fields": {"component": comp.name}})
        await asyncio.to_thread(services.replay.stop)
        services.store.dispose()
        log_event(log, "stopped")


CERTIFICATE_CHECK_S = 6 * 3600


async def _reload_certificate(cfg: uvicorn.Config, cert: str, key: str) -> None:
    """An API worker: new handshakes present the certificate the main process renewed."""
    loaded = not_valid_after(Path(cert))
    while True:
        await asyncio.sleep(CERTIFICATE_CHECK_S / 6)
        try:
            now = not_valid_after(Path(cert))
            if now != loaded and cfg.ssl is not None:
                cfg.ssl.load_cert_chain(cert, key)
                loaded = now
        except Exception:
            log_failure(log, "server certificate reload failed")


def serve_worker(init: dict[str, Any], channel_sock: socket.socket) -> None:
    """An API worker process (`openccs.api.workers`): the v2 API on the main process's
    listening sockets; see that module."""
    try:
        import uvloop

        uvloop.run(_serve_worker(init, channel_sock))
    except ImportError:
        asyncio.run(_serve_worker(init, channel_sock))


async def _serve_worker(init: dict[str, Any], channel_sock: socket.socket) -> None:
    settings: Settings = init["settings"]
    timeutil.set_timezone(settings.timezone)
    store = Store(settings.db_url, settings.auth_epoch)  # migrated by the main process
    box = SecretBox.from_data_dir(settings.data_dir)
    servers: list[uvicorn.Server] = []

    def stop(*_: object) -> None:
        for srv in servers:
            srv.should_exit = True

    channel = Channel(channel_sock, on_close=stop)
    loop = asyncio.get_running_loop()
    # Its own nonce writer: the database's unique key decides between processes.
    replay = ReplayGuard(store, settings.timestamp_window, settings.nonce_memory_per_key)
    replay.prunes_database = False
    services = Services(settings, store, box, finalize(), replay, TaskRunner(store, workers=1))
    relay = Relay(init["relay"])
    app = build_worker_app(services, channel.forward, channel.tally, relay, init["index"])
    listeners: list[socket.socket] = []
    background: list[asyncio.Task[None]] = []
    for fd, cert, key in init["listeners"]:
        sock = socket.socket(fileno=fd)
        listeners.append(sock)
        tls = {"ssl_certfile": cert, "ssl_keyfile": key} if cert and key else {}
        cfg = listener_config(app, settings, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, **tls)
        servers.append(_Server(cfg))
        if cert and key and not settings.tls_cert:
            background.append(asyncio.create_task(_reload_certificate(cfg, cert, key)))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    replay.start()
    await channel.open()
    log_event(log, "api worker serving", worker=init["index"])
    try:
        await asyncio.gather(
            *(srv.serve([sock]) for srv, sock in zip(servers, listeners, strict=True))
        )
    finally:
        for task in background:
            task.cancel()
        await relay.close()
        await asyncio.to_thread(replay.stop)
        store.dispose()
        log_event(log, "api worker stopped", worker=init["index"])


async def _renew_certificate(settings: Settings, host: str, cfg: uvicorn.Config) -> None:
    """A server that runs for years: the generated certificate is issued again before its
    end, and new handshakes present the new one (no restart, no dropped connection)."""
    while True:
        await asyncio.sleep(CERTIFICATE_CHECK_S)
        try:
            before = not_valid_after(settings.tls_dir / "server.pem")
            cert, key = await asyncio.to_thread(ensure_server_certificate, settings.tls_dir, [host])
            if not_valid_after(cert) != before and cfg.ssl is not None:
                cfg.ssl.load_cert_chain(str(cert), str(key))
        except Exception:
            log_failure(log, "server certificate renewal failed")


def serve(settings: Settings) -> None:
    # The event loop serves requests while worker threads (tasks, the nonce writer) also
    # want the interpreter: hand it over every millisecond, not every 5, for even latency.
    sys.setswitchinterval(0.001)
    # Requests allocate many short-lived objects; collect the young generation less often
    # and keep what start-up made (imports, registries) out of every full collection.
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        import uvloop

        uvloop.run(_serve(settings))
    except ImportError:
        asyncio.run(_serve(settings))
