"""Registry bearer tokens: ES256 JWTs signed with a key of the data directory.

The registry finds the key through the `x5c` header (the signing certificate, which is also
its `rootcertbundle`), as Distribution 2.8 and 3 both accept.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from openccs.tls import self_signed, write_key

ISSUER = "openccs"
SERVICE = "openccs-registry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenSigner:
    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]

    @classmethod
    def ensure(cls, directory: Path) -> tuple[TokenSigner, Path]:
        """The signer of a data directory (created at first use) and its certificate bundle."""
        key_path, cert_path = directory / "token-key.pem", directory / "token-cert.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            return cls(key, cert), cert_path
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self_signed(key, "openccs registry token").sign(key, hashes.SHA256())
        write_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert), cert_path

    def sign(self, subject: str, access: list[dict[str, Any]], ttl: int) -> tuple[str, int]:
        """A token for `subject` with the given access entries; returns it and its issue time."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": self._x5c}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + ttl,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input + "." + _b64(signature), now
