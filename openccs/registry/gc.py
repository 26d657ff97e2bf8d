"""Garbage collection of the registry's blobs after deletions.

`docker-registry garbage-collect` must not run while the registry accepts writes: the
registry is stopped (letting requests in flight drain), collected, and started again. A
push interrupted by the stop fails at the client, which retries it; no accepted push is
lost. Notifications the stopped registry still held are replaced by a reconciliation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from openccs.log import get_logger, log_event

from .notifications import reconcile
from .runtime import RegistryRuntime

log = get_logger("openccs.registry.gc")


def collect(rt: RegistryRuntime, start: Callable[[], None]) -> int:
    """Collect garbage now; returns the bytes freed."""
    with rt.gc_lock:
        started = time.monotonic()
        rt.gc_pending_since = None
        before = rt.daemon.blob_bytes()
        rt.daemon.stop()
        try:
            rt.daemon.garbage_collect()
        finally:
            start()
        freed = max(0, before - rt.daemon.blob_bytes())
        log_event(
            log,
            "registry garbage collected",
            bytes_freed=freed,
            seconds=round(time.monotonic() - started, 2),
        )
    reconcile(rt)
    return freed
