"""Period buckets: where a sample falls, and the points a query asks for.

Buckets of 60, 300 and 3600 s start at multiples of the period since the epoch; a day
starts at midnight in the server's time zone, as a user reading `YYYY-MM-DD 00:00:00`
expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from openccs import timeutil

DAY = 86400


def bucket_start(ts: float, period: int) -> int:
    t = int(ts // 1)
    if period < DAY:
        return t - t % period
    local = datetime.fromtimestamp(t, timeutil.zone())
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp())


def next_bucket(bucket: int, period: int) -> int:
    if period < DAY:
        return bucket + period
    # Half a day past the next midnight, floored: right across daylight-saving changes too.
    return bucket_start(bucket + DAY + DAY // 2, period)


def points(start: float, end: float, period: int) -> Iterator[int]:
    """Bucket starts from the bucket holding `start` up to `end`, both included."""
    b = bucket_start(start, period)
    while b <= end:
        yield b
        b = next_bucket(b, period)


def count_points(start: float, end: float, period: int) -> int:
    """How many points `points` yields (exact for periods under a day, else within one)."""
    if end < start:
        return 0
    first = bucket_start(start, period)
    return int((end - first) // period) + 1


def value_of(entry: list[float] | None, rollup: str) -> float | None:
    """A period's value from its stored [sum, count]."""
    if not entry or not entry[1]:
        return None
    total, n = float(entry[0]), int(entry[1])
    return total if rollup == "sum" else total / n
