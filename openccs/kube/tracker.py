"""Resource versions and watch history of one cluster's objects.

Objects are rendered from the database; each rendering is compared with the previous one,
and every object that changed gets the next value of a counter as its resourceVersion.
The counter starts from the clock in milliseconds, so it keeps growing across restarts.
Changes are kept per kind for watches that resume from a resourceVersion.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from openccs.kube.snapshot import Snapshot
from openccs.store.db import Store

HISTORY = 20_000


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


@dataclass
class _KindState:
    objects: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # (rv, type, object) in rv order
    history: deque[tuple[int, str, dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )
    refreshed: float = 0.0
    first_rv: int = 0


class Tracker:
    def __init__(self, store: Store, cluster_id: str) -> None:
        self.store = store
        self.cluster_id = cluster_id
        self.lock = threading.Lock()
        self.counter = int(time.time() * 1000)
        self.kinds: dict[str, _KindState] = {}
        self.now: Any = None
        self.render_cache: dict[int, tuple[Any, dict[str, Any]]] = {}

    def invalidate(self) -> None:
        with self.lock:
            for st in self.kinds.values():
                st.refreshed = 0.0

    def refresh(self, kinds: set[str], max_age: float = 0.0) -> None:
        """Render `kinds` again if their rendering is older than `max_age` seconds."""
        now = time.monotonic()
        with self.lock:
            stale = {k for k in kinds if now - self._state(k).refreshed > max_age}
        if not stale:
            return
        with self.store.session() as s:
            snap = Snapshot(s, self.cluster_id, stale, self.render_cache)
            rendered = {k: snap.render(k) for k in stale}
        with self.lock:
            self.now = snap.now
            for kind, objs in rendered.items():
                self._diff(self._state(kind), objs)
                self._state(kind).refreshed = now

    def _state(self, kind: str) -> _KindState:
        st = self.kinds.get(kind)
        if st is None:
            st = self.kinds[kind] = _KindState(first_rv=self.counter)
        return st

    def _diff(self, st: _KindState, objs: list[dict[str, Any]]) -> None:
        seen = set()
        for obj in objs:
            key = key_of(obj)
            seen.add(key)
            old = st.objects.get(key)
            if old is not None and old[1] is obj:
                continue  # rendered from the same rows as before
            meta = obj["metadata"]
            if old is not None and "deletionTimestamp" in meta:
                # The moment deletion started stays what it was first seen as.
                meta["deletionTimestamp"] = old[1]["metadata"].get(
                    "deletionTimestamp", meta["deletionTimestamp"]
                )
            canon = json.dumps(obj, sort_keys=True, separators=(",", ":"))
            if old is not None and old[0] == canon:
                continue
            self.counter += 1
            meta["resourceVersion"] = str(self.counter)
            st.objects[key] = (canon, obj)
            st.history.append((self.counter, "ADDED" if old is None else "MODIFIED", obj))
        for key in [k for k in st.objects if k not in seen]:
            _, obj = st.objects.pop(key)
            self.counter += 1
            gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.counter)}}
            st.history.append((self.counter, "DELETED", gone))

    def objects(self, kind: str) -> tuple[list[dict[str, Any]], str]:
        """The current objects of a kind (as last refreshed) and the list's resourceVersion."""
        with self.lock:
            st = self._state(kind)
            return [o for _, o in st.objects.values()], str(self.counter)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._state(kind).objects.get((namespace, name))
            return found[1] if found else None

    def since(self, kind: str, rv: int) -> list[tuple[int, str, dict[str, Any]]] | None:
        """Changes after `rv`, or None when they are no longer known (410 Gone)."""
        with self.lock:
            st = self._state(kind)
            hist = st.history
            if rv < st.first_rv or (hist and hist[0][0] > rv + 1 and len(hist) == hist.maxlen):
                return None
            rvs = [h[0] for h in hist]
            i = bisect.bisect_right(rvs, rv)
            return list(hist)[i:]
