"""The back-off of every retry loop: delays grow from the start to the cap, jitter only
shortens them, a success starts over, and one key always gets the same delay."""

from __future__ import annotations

import random

import pytest

from openccs.backoff import Backoff, Policy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_from_the_start_to_the_cap() -> None:
    p = Policy(start=0.5, cap=10.0)
    assert [p.ceiling(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert p.ceiling(10_000) == 10.0  # no overflow however long it fails
    assert Policy(start=1.0, cap=60.0, factor=3.0).ceiling(3) == 9.0


def test_every_delay_lies_within_its_jitter_band() -> None:
    p = Policy(start=10.0, cap=300.0, jitter=0.2)
    b = Backoff(p, clock=Clock(), rng=random.Random(7))
    for n in range(1, 12):
        delay = b.fail()
        assert 0.8 * p.ceiling(n) <= delay <= p.ceiling(n)
    assert p.delay(1, 0.0) == 10.0 and p.delay(50, 0.999999) >= 240.0


def test_jitter_spreads_the_retries_of_many_failing_things() -> None:
    rng = random.Random(1)
    first = {round(Backoff(Policy(start=10.0, cap=300.0), rng=rng).fail(), 6) for _ in range(50)}
    assert len(first) > 40 and min(first) < 9.5 and max(first) > 9.5
    # Without jitter every one waits the same.
    still = {Backoff(Policy(start=10.0, cap=300.0, jitter=0.0)).fail() for _ in range(10)}
    assert still == {10.0}


def test_waiting_until_the_delay_passes_and_a_success_starts_over() -> None:
    clock = Clock()
    b = Backoff(Policy(start=2.0, cap=60.0, jitter=0.0), clock=clock)
    assert not b.waiting and b.remaining == 0
    assert b.fail() == 2.0 and b.waiting and b.remaining == 2.0
    clock.now += 1.5
    assert b.waiting and b.remaining == pytest.approx(0.5)
    clock.now += 0.5
    assert not b.waiting
    assert [b.fail(), b.fail(), b.fail()] == [4.0, 8.0, 16.0] and b.failures == 4
    b.reset()
    assert b.failures == 0 and not b.waiting
    assert b.fail() == 2.0


def test_a_stable_delay_is_the_same_for_one_key_and_differs_between_keys() -> None:
    p = Policy(start=10.0, cap=300.0)
    assert p.stable_delay(3, "c1") == p.stable_delay(3, "c1")
    delays = {p.stable_delay(3, f"container-{i}") for i in range(30)}
    assert len(delays) > 20 and all(32.0 <= d <= 40.0 for d in delays)


@pytest.mark.parametrize(
    "kw",
    [dict(start=0.0, cap=1.0), dict(start=2.0, cap=1.0), dict(start=1.0, cap=2.0, factor=0.5),
     dict(start=1.0, cap=2.0, jitter=1.0), dict(start=1.0, cap=2.0, jitter=-0.1)],
)  # fmt: skip
def test_a_policy_that_cannot_work_is_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Policy(**kw)
