"""The registry's running parts, shared by the component, the actions and the receivers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from openccs.config import Settings
from openccs.store.db import Store

from .client import RegistryClient
from .daemon import RegistryDaemon
from .jwt import TokenSigner
from .token import Authenticator


@dataclass
class RegistryRuntime:
    settings: Settings
    store: Store
    daemon: RegistryDaemon
    signer: TokenSigner
    bundle: Path
    auth: Authenticator = field(default_factory=Authenticator)
    client: RegistryClient | None = None
    # Held while garbage collection has the registry stopped.
    gc_lock: threading.Lock = field(default_factory=threading.Lock)
    # Monotonic time of the first deletion since the last garbage collection, if any.
    gc_pending_since: float | None = None
    # The VPC gateway addresses the registry is served on (see `machines`).
    gateways: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return self.daemon.host

    def need_client(self) -> RegistryClient:
        from openccs.errors import unavailable

        if self.client is None:
            raise unavailable("RegistryUnavailable", "The image registry is not running")
        return self.client

    def deleted_something(self) -> None:
        if self.gc_pending_since is None:
            self.gc_pending_since = time.monotonic()
