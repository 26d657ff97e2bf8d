"""A minimal client for a machine's dockerd: its Engine API over the unix socket, with httpx,
at a fixed API version.

Only what the cloud layer itself needs (ping, list/remove containers, import an image);
the node agents talk to the same socket with their own client.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx

from openccs.cloud.host import CloudError

# Every request names this Engine API version: the lowest with what openccs uses, served by
# every Docker Engine Debian and Ubuntu ship (20.10 speaks 1.41, 28 speaks 1.24 to 1.51), so
# answers have the same shape whatever the daemon's own version.
API_VERSION = "1.41"
API_BASE = f"http://docker/v{API_VERSION}"


def client(socket_path: Path, timeout: float = 10.0) -> httpx.Client:
    # verify=False: a unix socket has no TLS, and building the default SSL context (loading
    # the CA bundle) costs tens of milliseconds per client.
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=str(socket_path), verify=False),
        base_url=API_BASE,
        timeout=timeout,
    )


_clients: dict[str, httpx.Client] = {}
_clients_lock = threading.Lock()


def _shared(socket_path: Path) -> httpx.Client:
    """One pooled client per socket for the hot paths (node agents call many times a second)."""
    key = str(socket_path)
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            c = _clients[key] = client(socket_path, timeout=30.0)
        return c


def ping(socket_path: Path, timeout: float = 1.0) -> str | None:
    """None when the daemon answers `/_ping` with OK, else why it did not."""
    if not socket_path.exists():
        return f"no docker socket at {socket_path}"
    try:
        with client(socket_path, timeout) as c:
            resp = c.get("/_ping")
    except httpx.HTTPError as exc:
        return f"docker API did not answer /_ping within {timeout:g} s: {exc!r}"
    if resp.status_code != 200 or resp.text.strip() != "OK":
        return f"docker API /_ping answered {resp.status_code}: {resp.text[:200]}"
    return None


def request(
    socket_path: Path, method: str, path: str, *, timeout: float = 30.0, **kwargs: Any
) -> httpx.Response:
    """One Engine API call; a transport error or an answer >= 400 raises `CloudError`."""
    try:
        resp = _shared(socket_path).request(method, path, timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise CloudError(f"docker API {method} {path} on {socket_path} failed: {exc!r}") from exc
    if resp.status_code >= 400:
        raise CloudError(
            f"docker API {method} {path} on {socket_path} answered {resp.status_code}: "
            f"{resp.text.strip()[:500]}"
        )
    return resp


def containers(socket_path: Path, all_: bool = True) -> list[dict[str, Any]]:
    resp = request(socket_path, "GET", "/containers/json", params={"all": "1" if all_ else "0"})
    result: list[dict[str, Any]] = resp.json()
    return result
