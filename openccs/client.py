"""A signed client for the v2 API, using the same signature module as the server."""

from __future__ import annotations

import random
import ssl
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from openccs.api.signature import REQUEST_PATH, sign


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts and lists to the wire's dotted names (as the official client does)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        elif isinstance(value, list | tuple):
            out.update(flatten({str(i): v for i, v in enumerate(value)}, name))
        elif value is not None:
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def signed_params(
    action: str,
    params: dict[str, Any],
    secret_id: str,
    secret_key: str,
    host: str,
    method: str = "POST",
    region: str = "gz",
    signature_method: str = "HmacSHA256",
    nonce: int | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    p = flatten(params)
    p.update(
        {
            "Action": action,
            "Region": region,
            "SecretId": secret_id,
            "Nonce": str(nonce if nonce is not None else random.randint(1, 2**62)),
            "Timestamp": str(timestamp if timestamp is not None else int(time.time())),
            "SignatureMethod": signature_method,
        }
    )
    if not region:
        del p["Region"]
    p["Signature"] = sign(secret_key, method, host, p, signature_method)
    return p


class Client:
    def __init__(
        self,
        endpoint: str,
        secret_id: str,
        secret_key: str,
        ca: str | None = None,
        region: str = "gz",
        method: str = "POST",
        signature_method: str = "HmacSHA256",
        timeout: float = 60.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.region = region
        self.method = method.upper()
        self.signature_method = signature_method
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        self.http = httpx.Client(verify=verify, timeout=timeout)

    def call(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        p = signed_params(
            action,
            params or {},
            self.secret_id,
            self.secret_key,
            self.host,
            self.method,
            self.region,
            self.signature_method,
        )
        url = self.endpoint + REQUEST_PATH
        if self.method == "GET":
            resp = self.http.get(url + "?" + urlencode(p))
        else:
            resp = self.http.post(
                url,
                content=urlencode(p),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def close(self) -> None:
        self.http.close()
