"""The tasks backend: what the durable tasks of an account are doing (the answer of
DescribeClusterTaskResult, and the OpenccsDescribeTasks extension's list), and the test
suite's own task type.

A task belongs to the resource it acts on: which of them a caller may see is its front
end's check (a sub-account sees those of the resources it may use), on the typed results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from openccs.backends import Work
from openccs.errors import not_found
from openccs.store.models import Task
from openccs.tasks.runner import TASK_TYPES, StepContext, TaskFailed, create_task, task_type


@dataclass(frozen=True)
class StepState:
    name: str
    status: str  # done, running, pending


@dataclass(frozen=True)
class TaskState:
    request_id: int
    resource_id: str | None  # the cluster or machine it acts on; None for the test task
    task_type: str
    status: str  # running, succ, fail
    reason: str
    progress: dict[str, Any]  # what steps report as they go (e.g. machine by machine)
    steps: tuple[StepState, ...]
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, task: Task) -> TaskState:
        tt = TASK_TYPES.get(task.type)
        names = [n for n, _ in tt.steps] if tt else []
        return cls(
            request_id=task.id,
            resource_id=task.resource_id,
            task_type=task.type,
            status=task.status,
            reason=task.reason,
            progress=dict(task.state.get("progress", {})),
            steps=tuple(StepState(n, _step_status(task, i)) for i, n in enumerate(names)),
            created_at=task.created_at,
            finished_at=task.finished_at,
        )


def _step_status(task: Task, i: int) -> str:
    if i < task.step or task.status == "succ":
        return "done"
    return "running" if i == task.step and task.status == "running" else "pending"


def task(w: Work, request_id: int) -> TaskState:
    """A task of the caller's account (another account's does not exist for it: 5000)."""
    row = w.db.get(Task, request_id)
    if row is None or row.account_id != w.account_id:
        raise not_found("Task (requestId)", request_id)
    return TaskState.of(row)


def tasks(w: Work, status: str | None = None, resource_id: str | None = None) -> list[TaskState]:
    """The account's tasks, newest first, by status and resource when given."""
    q = select(Task).where(Task.account_id == w.account_id)
    if status:
        q = q.where(Task.status == status)
    if resource_id:
        q = q.where(Task.resource_id == resource_id)
    return [TaskState.of(t) for t in w.db.scalars(q.order_by(Task.id.desc()))]


# -- a task type for the test suite only: five steps that each sleep, count their runs, and
# may fail ------------------------------------------------------------------------------------


def _test_step(index: int) -> Any:
    def step(ctx: StepContext) -> None:
        ctx.sleep(float(ctx.params.get("stepSeconds", 0.1)))
        runs = ctx.state.setdefault("runs", {})
        runs[str(index)] = runs.get(str(index), 0) + 1
        if ctx.params.get("failAt") == index:
            raise TaskFailed(f"step {index} failed as the test asked")

    return step


def _test_rollback(ctx: StepContext) -> None:
    ctx.state["rolledBack"] = True


TEST_STEPS = 5
TEST_TASK = task_type(
    "test.sleep",
    [(f"step{i}", _test_step(i)) for i in range(TEST_STEPS)],
    rollback=_test_rollback,
)


def start_test_task(
    w: Work, step_seconds: float, fail_at: int | None, resource_id: str | None
) -> int:
    """A test task, handed to the runner after the commit; its requestId."""
    row = create_task(
        w.db,
        w.account_id,
        TEST_TASK.name,
        {"stepSeconds": step_seconds, "failAt": fail_at},
        resource_id=resource_id,
    )
    w.effects.tasks.append(row.id)
    return row.id
