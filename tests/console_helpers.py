"""Shared by the console tests: console passwords set through the CLI, and a signed-in
HTTP client that reads the forms' CSRF tokens as a browser would."""

from __future__ import annotations

import re
import ssl
import subprocess
from typing import Any

import httpx

from .conftest import ROOT, Account, Server

PASSWORD = "console-pass-1"


def set_password(server: Server, ref: str, password: str = PASSWORD, subuser: bool = False) -> None:
    kind = "subuser" if subuser else "account"
    r = subprocess.run(
        [*server._base_args(), kind, "password", ref],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def token_in(html: str, name: str = "csrf") -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


def error_in(html: str) -> str:
    found = re.search(r'id="error"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""


class Browser:
    """An HTTP client holding the console's cookies."""

    def __init__(self, server: Server, https: bool = False) -> None:
        base = server.https_url if https else server.http_url
        verify: Any = ssl.create_default_context(cafile=str(server.ca)) if https else True
        self.http = httpx.Client(base_url=base, verify=verify, timeout=60)

    def login_page(self) -> str:
        r = self.http.get("/console/login")
        assert r.status_code == 200, r.text
        return token_in(r.text, "login_csrf")

    def sign_in(self, **fields: str) -> httpx.Response:
        return self.http.post("/console/login", data={"login_csrf": self.login_page(), **fields})

    def sign_in_ok(self, uin: str, password: str = PASSWORD) -> None:
        r = self.sign_in(uin=uin, password=password)
        assert r.status_code == 303 and r.headers["location"] == "/console/", r.text

    def sign_in_key(self, account: Account) -> httpx.Response:
        return self.sign_in(secret_id=account.secret_id, secret_key=account.secret_key)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(self, path: str, form: dict[str, str], page: str | None = None) -> httpx.Response:
        """A form posted with the CSRF token of `page` (or of the overview)."""
        html = self.http.get(page or "/console/").text
        return self.http.post(path, data={"csrf": token_in(html), **form})
