"""What a data directory holds that both the server and the command line open: the state
store with its secret box, and the addresses the running server listens on."""

from __future__ import annotations

import json
import os
from pathlib import Path

from openccs.config import Settings
from openccs.crypto import SecretBox
from openccs.store.db import Store

ENDPOINTS = "server.json"


def open_store(settings: Settings) -> tuple[Store, SecretBox]:
    """The database (migrated) and the secret box of a data directory."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    store = Store(settings.db_url, settings.auth_epoch)
    store.migrate()
    return store, SecretBox.from_data_dir(settings.data_dir)


def write_endpoints(data_dir: Path, endpoints: dict[str, str]) -> None:
    (data_dir / ENDPOINTS).write_text(json.dumps(endpoints))


def read_endpoints(data_dir: Path) -> dict[str, str]:
    """The running (or last) server's listeners: {"http": URL, "https": URL}."""
    path = data_dir / ENDPOINTS
    return json.loads(path.read_text()) if path.exists() else {}
