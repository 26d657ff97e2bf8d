"""Encryption at rest for secrets (SecretKeys, third-party registry passwords).

The key lives in the data directory (`secret.key`, readable by root only).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> SecretBox:
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        return _decrypt_cached(self._fernet, token)


@lru_cache(maxsize=4096)
def _decrypt_cached(fernet: Fernet, token: str) -> str:
    return fernet.decrypt(token.encode()).decode()
