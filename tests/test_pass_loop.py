"""The loop of level-triggered components: a wake during a pass runs the next at once, a
pass can ask for the next one at a given time, and a loop stops when cancelled."""

from __future__ import annotations

import logging
import threading
import time

from openccs.components import PassLoop

from .workload_helpers import until

HOUR = 3600.0
log = logging.getLogger("test")


def test_a_pass_that_changes_something_runs_again_until_nothing_changes() -> None:
    runs: list[int] = []
    left = [5]  # five passes find work, each waking the loop, as a committed change does

    def step() -> None:
        runs.append(1)
        if left[0]:
            left[0] -= 1
            loop.wake()

    loop = PassLoop("t-chain", step, HOUR, log)
    loop.start()
    try:
        until("six passes", lambda: len(runs) == 6, 10, 0.05)
        time.sleep(0.5)
        assert len(runs) == 6  # then it waits: the interval is an hour
    finally:
        loop.cancel()
        loop.join(5)


def test_a_pass_asks_for_the_next_one_and_a_wake_from_elsewhere_is_heard() -> None:
    runs: list[float] = []
    asked = threading.Event()

    def step() -> None:
        runs.append(time.monotonic())
        if not asked.is_set():
            asked.set()
            loop.wake_at(time.monotonic() + 0.3)  # e.g. a probe due

    loop = PassLoop("t-due", step, HOUR, log)
    loop.start()
    try:
        until("the pass asked for", lambda: len(runs) == 2, 10, 0.05)
        loop.wake()
        until("the pass woken", lambda: len(runs) == 3, 10, 0.05)
    finally:
        loop.cancel()
        loop.join(5)
    assert not any(t.name == "t-due" for t in threading.enumerate())


def test_a_pass_that_always_finds_work_never_stops_the_loop() -> None:
    runs: list[int] = []

    def step() -> None:
        runs.append(1)
        loop.wake()
        if len(runs) == 3:
            raise RuntimeError("a failing pass is logged, the next one runs")

    loop = PassLoop("t-spin", step, HOUR, log)
    loop.start()
    try:
        until("more passes than the chain allows", lambda: len(runs) > 2 * PassLoop.MAX_CHAINED)
    finally:
        loop.cancel()
        loop.join(5)
