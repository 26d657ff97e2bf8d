"""The HTTP side: `/v2/index.php` (GET and POST) for every host, and an unsigned health check."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openccs import errors
from openccs.domain.accounts import Caller, CallerCache
from openccs.errors import ApiError, shown
from openccs.ids import parse_number
from openccs.instruments import API_DURATION, API_REQUESTS
from openccs.log import get_logger, log_event, log_failure, request_id_var

from .context import RequestContext
from .envelope import envelope, error_envelope, wire_error
from .params import MAX_PARAMETERS, check_shape, decode_params, validate_params
from .registry import Action
from .signature import verify
from .workers import LOCAL_ACTIONS, Forwarded

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.api")

T = TypeVar("T")

_REQUIRED = ("Action", "SecretId", "Signature", "Timestamp", "Nonce")
# Timestamp and Nonce: what the official client sends (time.time(), randint(1, sys.maxsize)).
INT64_MAX = 2**63 - 1


def _positive_int(params: Mapping[str, str], name: str) -> int:
    value = params[name]
    number = parse_number(value, INT64_MAX)
    if number is None or number <= 0:
        raise errors.invalid_parameter(
            name, f"must be a positive integer of ASCII digits below 2^63 (got {shown(value)!r})"
        )
    return number


def _values_at(data: Any, path: list[str]) -> list[str]:
    """Every value found at a dotted path, descending into arrays."""
    if isinstance(data, list):
        return [v for item in data for v in _values_at(item, path)]
    if not path:
        return [] if data is None else [str(data)]
    if isinstance(data, dict):
        return _values_at(data.get(path[0]), path[1:])
    return []


def authorize(caller: Caller, action: Action) -> None:
    """May this caller call this action at all (a sub-account's allow-list)."""
    if not caller.is_subuser:
        return
    if action.owner_only:
        raise errors.owner_only(action.name)
    if not caller.may_call(action.name):
        raise errors.action_not_allowed(action.name)


def execute(
    services: Services, request_id: str, caller: Caller, action: Action, params: dict[str, str]
) -> Any:
    """An authenticated caller's action: region, authorization, validation, then the handler
    in one transaction and its after-commit effects. Every front end (the v2 wire, the
    console) goes through here, so all of them check the same things."""
    region = params.get("Region", "")
    if region and region not in services.settings.region_names():
        known = ", ".join(sorted(services.settings.region_names()))
        raise errors.invalid_parameter(
            "Region", f"unknown region {shown(region)!r} (known: {known})"
        )
    authorize(caller, action)
    nested = decode_params(params)
    parsed = validate_params(action.params, nested)
    if caller.is_subuser:
        dumped = parsed.model_dump(by_alias=True)
        for path in action.resources:
            for value in _values_at(dumped, path.split(".")):
                if not caller.may_use(value):
                    raise errors.resource_not_allowed(value)
    assert action.handler is not None
    # Not `store.session()`: a handler may end its reading transaction for slow work
    # (`ctx.outside()`), and the session begins the writing one on its next use.
    with services.store.sessions() as s:
        ctx = RequestContext(
            request_id=request_id,
            action=action.name,
            region=region,
            caller=caller,
            db=s,
            services=services,
        )
        try:
            result = action.handler(ctx, parsed)
            s.commit()
        except BaseException:
            s.rollback()
            raise
    for fn in ctx.after_commit:
        fn()
    return result


# Forwards an authenticated action to the main process (in an API worker; None there).
Forwarder = Callable[[str, str, str, dict[str, str]], Awaitable["Forwarded"]]


class Gateway:
    def __init__(
        self,
        services: Services,
        forward: Forwarder | None = None,
        log_fields: dict[str, Any] | None = None,
        tally: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.services = services
        self.forward = forward
        # Where a request is counted for /metrics, when not in this process's instruments.
        self.tally = tally
        # Added to each request's log line (an API worker's number).
        self.log_fields = log_fields or {}
        self.settings = services.settings
        self.registry = services.registry
        # Few threads: Python runs one at a time, more only add switching (measured).
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="api")
        self.callers = CallerCache(services.store, services.box, services.settings.auth_epoch)

    async def _read(self, request: Request) -> tuple[dict[str, str], str]:
        method = request.method.upper()
        if method == "GET":
            query = request.scope.get("query_string", b"")
            if len(query) > self.settings.max_get_bytes:
                raise ApiError(
                    4000,
                    "RequestTooLarge",
                    f"GET query string is {len(query)} bytes; the limit is"
                    f" {self.settings.max_get_bytes}: send large requests with POST",
                )
            raw = query.decode("utf-8", errors="replace")
        else:
            limit = self.settings.max_post_bytes
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise ApiError(
                    4000, "RequestTooLarge", f"POST body exceeds the limit of {limit} bytes"
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        4000, "RequestTooLarge", f"POST body exceeds the limit of {limit} bytes"
                    )
                chunks.append(chunk)
            raw = b"".join(chunks).decode("utf-8", errors="replace")
        params: dict[str, str] = {}
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
        except ValueError:
            raise errors.invalid_parameter(
                "(parameters)", f"more than {MAX_PARAMETERS} parameters"
            ) from None
        for name, value in pairs:
            if name in params:
                raise errors.invalid_parameter(shown(name), "given more than once")
            params[name] = value
        check_shape(params)
        return params, method

    async def _authenticate(
        self, params: dict[str, str], method: str, host: str
    ) -> tuple[Caller, int, tuple[str, str]]:
        """Key lookup, signature, replay memory; the nonce's batch in the replay store."""
        for name in _REQUIRED:
            if not params.get(name):
                raise errors.missing_parameter(name)
        timestamp = _positive_int(params, "Timestamp")
        _positive_int(params, "Nonce")
        secret_id = params["SecretId"]
        found, caller = self.callers.peek(secret_id)
        if not found:
            caller = await self._in_thread(self.callers.get, secret_id)
        if caller is None or not caller.key_enabled:
            raise errors.secret_id_not_found(secret_id)
        if not verify(caller.secret_key, method, host, params, params["Signature"]):
            raise errors.signature_failure()
        if not caller.account_enabled:
            raise errors.account_disabled()
        batch = self.services.replay.check(secret_id, params["Nonce"], timestamp)
        return caller, batch, (secret_id, params["Nonce"])

    async def _process(
        self, request_id: str, params: dict[str, str], method: str, host: str, seen: dict[str, str]
    ) -> Any:
        """The whole request after its body was read."""
        caller, batch, nonce = await self._authenticate(params, method, host)
        seen["account"] = caller.uin
        action = self.registry.lookup(
            params["Action"], include_test=self.settings.enable_test_actions
        )
        seen["action"] = action.name
        # The nonce is durable before the request can take effect.
        await self.services.replay.persisted(batch, nonce)
        if self.forward is not None and action.name not in LOCAL_ACTIONS:
            # An API worker: the main process runs it (its controllers see the change).
            return await self.forward(request_id, nonce[0], action.name, params)
        return await self._run(request_id, caller, action, params)

    async def _run(
        self, request_id: str, caller: Caller, action: Action, params: dict[str, str]
    ) -> Any:
        if action.inline:
            return self._execute(request_id, caller, action, params)
        return await self._in_thread(self._execute, request_id, caller, action, params)

    def _execute(
        self, request_id: str, caller: Caller, action: Action, params: dict[str, str]
    ) -> Any:
        return execute(self.services, request_id, caller, action, params)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # Copy the context so the request id follows the work into the thread's log lines.
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(ctx.run, fn, *args)
        )

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        seen = {"action": "-", "account": "-"}
        try:
            params, method = await self._read(request)
            seen["action"] = shown(params.get("Action", "-"), 64)
            host = request.headers.get("host", "")
            data = await self._process(request_id, params, method, host, seen)
            if isinstance(data, Forwarded):
                text, code = data.body, data.code
            else:
                text, code = _dump(envelope(data if data is not None else {})), 0
        except ClientDisconnect:
            # The client went away before its request was whole: nothing to answer.
            log_event(log, "client disconnected", action=seen["action"])
            request_id_var.reset(token)
            return Response(status_code=400)
        except Exception as exc:
            code, text = _failure(exc, request_id, seen["action"])
        elapsed = time.perf_counter() - started
        log_event(
            log,
            "request",
            action=seen["action"],
            account=seen["account"],
            code=code,
            ms=round(elapsed * 1000, 2),
            **self.log_fields,
        )
        self._count(seen["action"], code, elapsed)
        request_id_var.reset(token)
        return Response(text, media_type="application/json", headers={"X-Request-Id": request_id})

    async def answer_forwarded(
        self, request_id: str, secret_id: str, action_name: str, params: dict[str, str]
    ) -> tuple[int, bytes]:
        """In the main process: an action an API worker authenticated (signature, replay
        guard, nonce committed) and sent here; its code and JSON body."""
        token = request_id_var.set(request_id)
        try:
            found, caller = self.callers.peek(secret_id)
            if not found:
                caller = await self._in_thread(self.callers.get, secret_id)
            # The key or account may have been disabled since the worker looked.
            if caller is None or not caller.key_enabled:
                raise errors.secret_id_not_found(secret_id)
            if not caller.account_enabled:
                raise errors.account_disabled()
            action = self.registry.lookup(
                action_name, include_test=self.settings.enable_test_actions
            )
            data = await self._run(request_id, caller, action, params)
            return 0, _dump(envelope(data if data is not None else {}))
        except Exception as exc:
            return _failure(exc, request_id, action_name)
        finally:
            request_id_var.reset(token)

    def _count(self, action: str, code: int, seconds: float) -> None:
        """The request in /metrics, under a known action name only (labels stay few)."""
        try:
            name = self.registry.lookup(action, include_test=True).name
        except ApiError:
            name = "unknown"
        if self.tally is not None:
            self.tally(name, code, seconds)  # an API worker: counted by the main process
            return
        count_request(name, code, seconds)


def count_request(name: str, code: int, seconds: float) -> None:
    API_REQUESTS.inc(name, str(code))
    API_DURATION.observe(name, seconds=seconds)


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _failure(exc: Exception, request_id: str, action: str) -> tuple[int, bytes]:
    """The wire answer of a request that raised: the document's error, or InternalError
    (logged) for a fault of ours."""
    err = wire_error(exc)
    if err is None:
        log_failure(log, "unhandled error", action=action)
        err = errors.internal_error(request_id)
    return err.code, _dump(error_envelope(err))


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def build_app(services: Services, gateway: Gateway | None = None) -> Starlette:
    gateway = gateway or Gateway(services)
    routes: list[BaseRoute] = [
        Route("/v2/index.php", gateway.handle, methods=["GET", "POST"]),
        Route("/healthz", health, methods=["GET"]),
    ]
    for comp in services.components:
        routes.extend(comp.routes())
    return Starlette(routes=routes)


def build_worker_app(
    services: Services,
    forward: Forwarder,
    tally: Callable[[str, int, float], None],
    other: Any,
    index: int,
) -> Starlette:
    """API worker INDEX's application: the v2 API and the health check; OTHER (the relay to
    the main process) answers every other path; requests are counted by TALLY."""
    app = build_app(services, Gateway(services, forward, {"worker": index}, tally))
    app.router.default = other
    return app
