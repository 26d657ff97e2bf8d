"""DescribeClusterTaskResult, and the test-only task used by the test suite."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Paged, Params
from openccs.api.registry import action
from openccs.errors import ApiError, not_found
from openccs.tasks.runner import (
    StepContext,
    TaskFailed,
    account_tasks,
    create_task,
    describe,
    own_task,
    task_type,
)
from openccs.timeutil import fmt_time


class DescribeClusterTaskResultParams(Params):
    requestId: int = Field(ge=1)


@action(
    "DescribeClusterTaskResult",
    DescribeClusterTaskResultParams,
    unscoped="a task belongs to the resource it acts on: the handler checks it",
    inline=True,
)
def describe_cluster_task_result(
    ctx: RequestContext, p: DescribeClusterTaskResultParams
) -> dict[str, Any]:
    task = own_task(ctx.db, ctx.account_id, p.requestId)
    if task is None:
        raise not_found("Task (requestId)", p.requestId)
    caller = ctx.caller
    # A task without a resource (the test task) is the owner's alone.
    if caller.is_subuser and (task.resource_id is None or not caller.may_use(task.resource_id)):
        raise ApiError(
            4102,
            "UnauthorizedResource",
            f"This sub-account is not allowed to use the resource task {p.requestId} acts on:"
            " ask the account owner to allow it",
        )
    return describe(task)


class DescribeTasksParams(Paged):
    status: Literal["running", "succ", "fail"] | None = None
    resourceId: str | None = Field(default=None, min_length=1, max_length=64)


@action(
    "OpenccsDescribeTasks",
    DescribeTasksParams,
    host="ccs.api.qcloud.com",
    unscoped="a task belongs to the resource it acts on: the handler filters by it",
    inline=True,
    extension=True,
)
def describe_tasks(ctx: RequestContext, p: DescribeTasksParams) -> dict[str, Any]:
    """The account's tasks, newest first (what DescribeClusterTaskResult tells of each, with
    its requestId, resource and times); a sub-account sees those of its resources."""
    caller = ctx.caller
    rows = [
        t
        for t in account_tasks(ctx.db, ctx.account_id, p.status, p.resourceId)
        if not caller.is_subuser or (t.resource_id is not None and caller.may_use(t.resource_id))
    ]
    return {
        "totalCount": len(rows),
        "tasks": [
            {
                "requestId": t.id,
                "resourceId": t.resource_id or "",
                "createdAt": fmt_time(t.created_at),
                "finishedAt": fmt_time(t.finished_at),
                **describe(t),
            }
            for t in rows[p.offset : p.offset + p.limit]
        ],
    }


# A task type for the test suite only: five steps that each sleep, count their runs, and may fail.
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


class RunTestTaskParams(Params):
    stepSeconds: float = Field(default=0.1, ge=0, le=30)
    failAt: int | None = Field(default=None, ge=0, lt=TEST_STEPS)
    clusterId: str | None = None


@action(
    "OpenccsRunTestTask",
    RunTestTaskParams,
    host="ccs.api.qcloud.com",
    resources=("clusterId",),
    test_only=True,
)
def run_test_task(ctx: RequestContext, p: RunTestTaskParams) -> dict[str, Any]:
    task = create_task(
        ctx.db,
        ctx.account_id,
        TEST_TASK.name,
        {"stepSeconds": p.stepSeconds, "failAt": p.failAt},
        resource_id=p.clusterId,
    )
    runner = ctx.services.tasks
    task_id = task.id
    ctx.on_commit(lambda: runner.submit(task_id))
    return {"requestId": task_id}


@action(
    "OpenccsWhoAmI",
    host="ccs.api.qcloud.com",
    owner_only=True,
    test_only=True,
    unscoped="test-only: tells who the caller is",
)
def who_am_i(ctx: RequestContext, p: Params) -> dict[str, Any]:
    """An owner-only action for the tests of 4103."""
    return {"appId": ctx.caller.app_id, "uin": ctx.caller.uin}
