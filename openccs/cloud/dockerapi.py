"""A minimal client for a machine's dockerd: its Engine API over the unix socket, with httpx.

Only what the cloud layer itself needs (ping, list/remove containers, import an image);
the node agents talk to the same socket with their own client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from openccs.cloud.host import CloudError

API_BASE = "http://docker"


def client(socket_path: Path, timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=str(socket_path)), base_url=API_BASE, timeout=timeout
    )


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
        with client(socket_path, timeout) as c:
            resp = c.request(method, path, **kwargs)
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
