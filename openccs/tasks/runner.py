"""The durable task runner.

A task is a row (its id is the API's integer requestId) of a registered type, which is a
list of named steps. After each step the runner records the step number and the task's
state in the same transaction, so a killed server resumes at the step that was running.
Steps must therefore be idempotent. A step that raises `TaskFailed` (or any error, after
its retries) fails the task: the type's rollback runs, then the task answers `fail` with
the reason.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openccs.backoff import Backoff, Policy
from openccs.instruments import TASKS
from openccs.log import get_logger, log_event
from openccs.store.db import Store
from openccs.store.models import Task
from openccs.timeutil import utcnow

log = get_logger("openccs.tasks")


class TaskFailed(Exception):
    """A step's definitive failure; its message becomes the task's reason."""


class TaskInterrupted(Exception):
    """The runner is stopping; the step will run again after the restart."""


@dataclass
class StepContext:
    task_id: int
    account_id: int
    params: dict[str, Any]
    state: dict[str, Any]
    runner: TaskRunner

    @property
    def services(self) -> dict[str, Any]:
        return self.runner.services

    def sleep(self, seconds: float) -> None:
        if self.runner._stopping.wait(seconds):
            raise TaskInterrupted()

    def save(self) -> None:
        """Persist `state` now (for long steps that want to record progress)."""
        with self.runner.store.session() as s:
            task = s.get(Task, self.task_id)
            if task is not None:
                task.state = dict(self.state)
                task.updated_at = utcnow()


Step = Callable[[StepContext], None]
# A step that raised is run again (up to its type's `retries`) after 1 s, 2 s, 4 s... 10 s.
STEP_BACKOFF = Policy(start=1.0, cap=10.0)


@dataclass(frozen=True)
class TaskType:
    name: str
    steps: tuple[tuple[str, Step], ...]
    rollback: Step | None = None
    retries: int = 3


TASK_TYPES: dict[str, TaskType] = {}


def task_type(
    name: str, steps: list[tuple[str, Step]], rollback: Step | None = None, retries: int = 3
) -> TaskType:
    tt = TaskType(name=name, steps=tuple(steps), rollback=rollback, retries=retries)
    TASK_TYPES[name] = tt
    return tt


class TaskRunner:
    def __init__(self, store: Store, workers: int = 8, services: dict[str, Any] | None = None):
        self.store = store
        self.services: dict[str, Any] = services or {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._active: set[int] = set()

    def resume(self) -> int:
        """Schedule every task that was running when the server stopped."""
        with self.store.session() as s:
            ids = list(s.scalars(select(Task.id).where(Task.status == "running")))
        for task_id in ids:
            self.submit(task_id)
        if ids:
            log_event(log, "tasks resumed", count=len(ids), ids=",".join(map(str, ids)))
        return len(ids)

    def submit(self, task_id: int) -> None:
        with self._lock:
            if task_id in self._active or self._stopping.is_set():
                return
            self._active.add(task_id)
        self._pool.submit(self._run, task_id)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._active:
                    break
            time.sleep(0.05)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, task_id: int) -> None:
        try:
            self._drive(task_id)
        except TaskInterrupted:
            log_event(log, "task interrupted", task=task_id)
        except Exception:
            log.exception("task runner error", extra={"fields": {"task": task_id}})
        finally:
            with self._lock:
                self._active.discard(task_id)

    def _drive(self, task_id: int) -> None:
        with self.store.session() as s:
            task = s.get(Task, task_id)
            if task is None or task.status != "running":
                return
            tt = TASK_TYPES.get(task.type)
            ctx = StepContext(task_id, task.account_id, dict(task.params), dict(task.state), self)
            step = task.step
        if tt is None:
            self._finish(task_id, ctx, "fail", f"unknown task type {task.type!r}")
            return
        while step < len(tt.steps):
            if self._stopping.is_set():
                raise TaskInterrupted()
            name, fn = tt.steps[step]
            try:
                self._run_step(tt, name, fn, ctx)
            except TaskInterrupted:
                raise
            except Exception as exc:
                reason = str(exc) if isinstance(exc, TaskFailed) else f"step {name}: {exc}"
                log_event(log, "task step failed", task=task_id, step=name, reason=reason)
                if tt.rollback is not None:
                    try:
                        tt.rollback(ctx)
                    except Exception:
                        log.exception("task rollback failed", extra={"fields": {"task": task_id}})
                self._finish(task_id, ctx, "fail", reason)
                return
            step += 1
            with self.store.session() as s:
                row = s.get(Task, task_id)
                if row is None:
                    return
                row.step = step
                row.state = dict(ctx.state)
                row.updated_at = utcnow()
            log_event(log, "task step done", task=task_id, type=tt.name, step=name)
        self._finish(task_id, ctx, "succ", "")

    def _run_step(self, tt: TaskType, name: str, fn: Step, ctx: StepContext) -> None:
        backoff = Backoff(STEP_BACKOFF)
        while True:
            try:
                fn(ctx)
                return
            except (TaskFailed, TaskInterrupted):
                raise
            except Exception:
                if backoff.failures >= tt.retries:
                    raise
                delay = backoff.fail()
                log_event(
                    log,
                    "task step retry",
                    task=ctx.task_id,
                    step=name,
                    attempt=backoff.failures,
                    retry_in=round(delay, 2),
                    error=traceback.format_exc(limit=1).strip().splitlines()[-1],
                )
                ctx.sleep(delay)

    def _finish(self, task_id: int, ctx: StepContext, status: str, reason: str) -> None:
        with self.store.session() as s:
            row = s.get(Task, task_id)
            if row is None:
                return
            row.status = status
            row.reason = reason
            row.state = dict(ctx.state)
            row.updated_at = row.finished_at = utcnow()
            TASKS.inc(row.type, status)
        log_event(log, "task finished", task=task_id, status=status, reason=reason)


def create_task(
    s: Any, account_id: int, type_name: str, params: dict[str, Any], resource_id: str | None = None
) -> Task:
    if type_name not in TASK_TYPES:
        raise ValueError(f"unknown task type {type_name}")
    task = Task(
        account_id=account_id,
        type=type_name,
        params=params,
        state={},
        status="running",
        resource_id=resource_id,
    )
    s.add(task)
    s.flush()
    return task
