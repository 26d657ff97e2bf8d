"""DescribeClusterTaskResult, the OpenccsDescribeTasks extension, and the test-only task
used by the test suite. Each decodes, calls the tasks backend (`backends/tasks.py`), checks
what a sub-account may see, and encodes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openccs.api.context import RequestContext
from openccs.api.params import Paged, Params
from openccs.api.registry import action
from openccs.backends import tasks as backend
from openccs.domain.accounts import Caller
from openccs.errors import ApiError, Kind
from openccs.timeutil import fmt_time


class DescribeClusterTaskResultParams(Params):
    requestId: int = Field(ge=1)


def _may_see(caller: Caller, task: backend.TaskState) -> bool:
    # A task without a resource (the test task) is the owner's alone.
    return not caller.is_subuser or (
        task.resource_id is not None and caller.may_use(task.resource_id)
    )


def _state(task: backend.TaskState) -> dict[str, Any]:
    return {
        "status": task.status,
        "reason": task.reason,
        "taskType": task.task_type,
        "progress": task.progress,
        "steps": [{"name": step.name, "status": step.status} for step in task.steps],
    }


@action(
    "DescribeClusterTaskResult",
    DescribeClusterTaskResultParams,
    unscoped="a task belongs to the resource it acts on: the handler checks it",
    inline=True,
)
def describe_cluster_task_result(
    ctx: RequestContext, p: DescribeClusterTaskResultParams
) -> dict[str, Any]:
    task = backend.task(ctx.work(), p.requestId)
    if not _may_see(ctx.caller, task):
        raise ApiError(
            4102,
            "UnauthorizedResource",
            f"This sub-account is not allowed to use the resource task {p.requestId} acts on:"
            " ask the account owner to allow it",
            Kind.FORBIDDEN,
        )
    return _state(task)


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
    found = backend.tasks(ctx.work(), p.status, p.resourceId)
    rows = [t for t in found if _may_see(ctx.caller, t)]
    return {
        "totalCount": len(rows),
        "tasks": [
            {
                "requestId": t.request_id,
                "resourceId": t.resource_id or "",
                "createdAt": fmt_time(t.created_at),
                "finishedAt": fmt_time(t.finished_at),
                **_state(t),
            }
            for t in rows[p.offset : p.offset + p.limit]
        ],
    }


class RunTestTaskParams(Params):
    stepSeconds: float = Field(default=0.1, ge=0, le=30)
    failAt: int | None = Field(default=None, ge=0, lt=backend.TEST_STEPS)
    clusterId: str | None = None


@action(
    "OpenccsRunTestTask",
    RunTestTaskParams,
    host="ccs.api.qcloud.com",
    resources=("clusterId",),
    test_only=True,
)
def run_test_task(ctx: RequestContext, p: RunTestTaskParams) -> dict[str, Any]:
    task_id = backend.start_test_task(ctx.work(), p.stepSeconds, p.failAt, p.clusterId)
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
