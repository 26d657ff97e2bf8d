"""Exponential back-off with jitter: how long to wait before the next attempt after
failures. One helper for every retry loop (node agents, log shippers, the task runner)."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Policy:
    """Delays that grow by `factor` from `start` to at most `cap` seconds. `jitter` is the
    share of each delay drawn at random and taken off, so that many failing things do not
    retry in step: the n-th delay lies in [d * (1 - jitter), d], d = min(start * factor**(n-1),
    cap)."""

    start: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.start <= self.cap and self.factor >= 1 and 0 <= self.jitter < 1):
            raise ValueError(f"bad back-off policy {self}")

    def ceiling(self, failures: int) -> float:
        """The delay after `failures` failures (1 or more), before jitter."""
        # Past the cap the power only grows: stop computing it (no overflow at 2**2000).
        delay = self.start
        for _ in range(max(failures, 1) - 1):
            delay *= self.factor
            if delay >= self.cap:
                return self.cap
        return min(delay, self.cap)

    def delay(self, failures: int, draw: float) -> float:
        """The delay after `failures` failures, for a draw in [0, 1)."""
        return self.ceiling(failures) * (1 - self.jitter * draw)

    def stable_delay(self, failures: int, key: str) -> float:
        """The same delay every time for one `key` (say a container's id): for callers
        that recompute the delay at each pass rather than keep a `Backoff`."""
        digest = hashlib.blake2b(f"{key}/{failures}".encode(), digest_size=8).digest()
        return self.delay(failures, int.from_bytes(digest) / 2**64)


@dataclass
class Backoff:
    """The failures of one thing in a row, and the time its next attempt may start."""

    policy: Policy
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    until: float = 0.0

    def fail(self) -> float:
        """One more failure: the delay before the next attempt (also kept in `until`)."""
        self.failures += 1
        delay = self.policy.delay(self.failures, self.rng.random())
        self.until = self.clock() + delay
        return delay

    def reset(self) -> None:
        """A success: the next failure waits the shortest delay again."""
        self.failures, self.until = 0, 0.0

    @property
    def remaining(self) -> float:
        """Seconds until the next attempt may start (0 when it may start now)."""
        return max(0.0, self.until - self.clock())

    @property
    def waiting(self) -> bool:
        return self.remaining > 0
