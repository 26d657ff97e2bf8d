"""The console's HTTP side: sessions in cookies, CSRF tokens on every form, security headers,
templates, and `View.call`, which runs an action through the same `execute` as the v2 wire."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from openccs.api.app import execute
from openccs.client import flatten
from openccs.domain.accounts import Caller
from openccs.errors import ApiError
from openccs.log import get_logger, log_event, request_id_var

from . import auth

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.console")

HERE = Path(__file__).parent
SESSION_COOKIE = "occ_session"
LOGIN_COOKIE = "occ_login"
PREFIX = "/console"
MAX_FORM_BYTES = 256 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Forbidden(Exception):
    """A form without the session's CSRF token, or a login form without its cookie."""


def http_status(err: ApiError) -> int:
    if err.code in (4101, 4102, 4103, 4300):
        return 403
    if err.code_desc == "ResourceNotFound":
        return 404
    return 400


@dataclass
class View:
    """What a page function gets: who asks, what they sent, and the way to the actions."""

    console: Console
    request: Request
    caller: Caller
    csrf: str
    form: dict[str, str]
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def path(self) -> Mapping[str, Any]:
        return self.request.path_params

    @property
    def live(self) -> bool:
        return self.request.headers.get("x-console-live") == "1"

    @property
    def who(self) -> str:
        c = self.caller
        return f"sub-account {c.subuser_uin} of {c.uin}" if c.is_subuser else f"account {c.uin}"

    def call(self, action: str, **params: Any) -> Any:
        """Run an action as the signed-in caller: the v2 wire's own authorization,
        validation and handler (ApiError on refusal, with the API's message)."""
        services = self.console.services
        entry = services.registry.lookup(action, include_test=False)
        flat = flatten({k: v for k, v in params.items() if v is not None})
        started = time.perf_counter()
        code = 0
        try:
            return execute(services, self.request_id, self.caller, entry, flat)
        except ApiError as err:
            code = err.code
            raise
        finally:
            log_event(
                log,
                "console action",
                action=entry.name,
                account=self.caller.uin,
                code=code,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def attempt(self, action: str, **params: Any) -> tuple[Any, ApiError | None]:
        try:
            return self.call(action, **params), None
        except ApiError as err:
            return None, err

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        html = self.console.env.get_template(template).render(
            view=self, csrf=self.csrf, who=self.who, prefix=PREFIX, **values
        )
        return HTMLResponse(html, status_code=status)

    def redirect(self, url: str) -> Response:
        return RedirectResponse(url, status_code=303)


Page = Callable[[View], Response]


def _cookie_args(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "secure": request.url.scheme == "https",
        "samesite": "strict",
        "path": PREFIX,
    }


def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def read_form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Forbidden("form too large")
    form: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        # Repeated names (several env rows) are joined with newlines.
        form[name] = f"{form[name]}\n{value}" if name in form else value
    return form


class Console:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["urlq"] = lambda v: quote(str(v), safe="")

    # --- sessions -------------------------------------------------------------------------

    def _session(self, token: str) -> tuple[Caller, str] | None:
        with self.services.store.session() as s:
            sess = auth.find_session(s, token)
            if sess is None:
                return None
            caller = auth.session_caller(s, self.services.box, sess)
            return (caller, sess.csrf_token) if caller is not None else None

    def page(self, fn: Page) -> Callable[[Request], Any]:
        """A page's endpoint: a signed-in session, the CSRF token on POST, the view in a
        worker thread (one hand-off for the session and the page), security headers on
        every answer."""

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = await read_form(request)
                except Forbidden:
                    return _secure(Response("form too large", status_code=413))
            response = await run_in_threadpool(self._serve, request, fn, form)
            log_event(
                log,
                "console page",
                path=request.url.path,
                method=request.method,
                status=response.status_code,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return _secure(response)

        return endpoint

    def _serve(self, request: Request, fn: Page, form: dict[str, str]) -> Response:
        found = self._session(request.cookies.get(SESSION_COOKIE, ""))
        if found is None:
            if request.headers.get("x-console-live") == "1":
                return Response("signed out", status_code=401)
            target = f"{PREFIX}/login?next={quote(request.url.path, safe='')}"
            return RedirectResponse(target, status_code=303)
        caller, csrf = found
        if request.method == "POST" and not hmac.compare_digest(
            form.get("csrf", "").encode(), csrf.encode()
        ):
            log_event(log, "console csrf refused", account=caller.uin)
            return HTMLResponse(
                "<h1>403</h1><p>The form's security token is missing or stale:"
                " reload the page and try again.</p>",
                status_code=403,
            )
        view = View(self, request, caller, csrf, form)
        token = request_id_var.set(view.request_id)
        try:
            return fn(view)
        except ApiError as err:
            return view.render("error.html", status=http_status(err), error=err)
        finally:
            request_id_var.reset(token)

    # --- sign-in --------------------------------------------------------------------------

    def _login_page(self, request: Request, error: str = "", status: int = 200) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        html = self.env.get_template("login.html").render(
            prefix=PREFIX,
            login_csrf=nonce,
            error=error,
            next=request.query_params.get("next", ""),
        )
        response = _secure(HTMLResponse(html, status_code=status))
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, **_cookie_args(request))
        return response

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request)

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except Forbidden:
            return _secure(Response("form too large", status_code=413))
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not cookie or not hmac.compare_digest(
            form.get("login_csrf", "").encode(), cookie.encode()
        ):
            return self._login_page(request, "The sign-in form expired: try again.", 403)
        new = await run_in_threadpool(self._sign_in, form)
        if new is None:
            return self._login_page(
                request, "Wrong account or password (or SecretId/SecretKey).", 401
            )
        nxt = form.get("next", "")
        target = nxt if nxt.startswith(PREFIX + "/") and "//" not in nxt else f"{PREFIX}/"
        response = _secure(RedirectResponse(target, status_code=303))
        response.set_cookie(
            SESSION_COOKIE,
            new.token,
            max_age=int(self.services.settings.console_session_ttl),
            **_cookie_args(request),
        )
        response.delete_cookie(LOGIN_COOKIE, **_cookie_args(request))
        return response

    def _sign_in(self, form: Mapping[str, str]) -> auth.NewSession | None:
        ttl = self.services.settings.console_session_ttl
        with self.services.store.session() as s:
            if form.get("secret_id"):
                caller = auth.check_key(
                    s, self.services.box, form["secret_id"], form.get("secret_key", "")
                )
                if caller is None or not caller.account_enabled:
                    log_event(log, "console sign-in refused", method="key")
                    return None
                new = auth.open_session(
                    s, caller.account_id, caller.subuser_id, caller.secret_id, ttl
                )
                who = caller.subuser_uin or caller.uin
            else:
                row = auth.check_console_password(s, form.get("uin", ""), form.get("password", ""))
                if row is None:
                    log_event(log, "console sign-in refused", method="password")
                    return None
                new = auth.open_session(s, row.account_id, row.subuser_id, None, ttl)
                who = row.uin
        log_event(log, "console sign-in", who=who)
        return new

    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        found = await run_in_threadpool(self._session, token)
        form = await read_form(request)
        if found is None or not hmac.compare_digest(
            form.get("csrf", "").encode(), found[1].encode()
        ):
            return _secure(Response("missing or stale security token", status_code=403))
        await run_in_threadpool(self._close, token)
        response = _secure(RedirectResponse(f"{PREFIX}/login", status_code=303))
        response.delete_cookie(SESSION_COOKIE, **_cookie_args(request))
        return response

    def _close(self, token: str) -> None:
        with self.services.store.session() as s:
            auth.close_session(s, token)
