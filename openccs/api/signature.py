"""Signature v1 of the Tencent Cloud API: signing and verifying, shared by server, CLI and tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

REQUEST_PATH = "/v2/index.php"
METHODS = {"HmacSHA1": hashlib.sha1, "HmacSHA256": hashlib.sha256}


def canonical_query(params: Mapping[str, object], method: str = "GET") -> str:
    """Parameters joined for signing: `_` becomes `.` in names, sorted, raw values.

    As the official client does, POST values starting with `@` (file uploads) are not signed.
    """
    items: dict[str, str] = {}
    for name, value in params.items():
        if name == "Signature":
            continue
        text = str(value)
        if method.upper() == "POST" and text.startswith("@"):
            continue
        items[name.replace("_", ".")] = text
    return "&".join(f"{k}={items[k]}" for k in sorted(items))


def string_to_sign(
    method: str, host: str, params: Mapping[str, object], path: str = REQUEST_PATH
) -> str:
    return f"{method.upper()}{host}{path}?{canonical_query(params, method)}"


def sign(
    secret_key: str,
    method: str,
    host: str,
    params: Mapping[str, object],
    signature_method: str = "HmacSHA1",
    path: str = REQUEST_PATH,
) -> str:
    digest = METHODS.get(signature_method, hashlib.sha1)
    msg = string_to_sign(method, host, params, path).encode()
    mac = hmac.new(secret_key.encode(), msg, digest).digest()
    return base64.b64encode(mac).decode()


def verify(
    secret_key: str,
    method: str,
    host: str,
    params: Mapping[str, object],
    signature: str,
    path: str = REQUEST_PATH,
) -> bool:
    """True when `signature` is the one `params` (with its SignatureMethod) must carry."""
    signature_method = str(params.get("SignatureMethod") or "HmacSHA1")
    expected = sign(secret_key, method, host, params, signature_method, path)
    return hmac.compare_digest(expected.encode(), signature.encode())
