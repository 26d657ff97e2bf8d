"""The tasks backend on a real database without machines or a running runner: what a task
tells of its steps, whose tasks an account sees, and the effect starting one declares.
test_durability.py runs the same tasks through a server that is killed and restarted."""

from __future__ import annotations

import pytest

from openccs.backends import Work
from openccs.backends import tasks as backend
from openccs.domain import accounts
from openccs.errors import ApiError, Kind
from openccs.server import Services
from openccs.store.models import Task


def test_a_task_tells_its_steps_and_only_its_account_sees_it(services: Services) -> None:
    with services.store.session() as s:
        account = accounts.create_account(s).id
        w = Work(s, account, services)
        first = backend.start_test_task(w, 0.0, None, "cls-a")
        second = backend.start_test_task(w, 0.5, 2, None)
        # Handed to the runner after the commit, never before.
        assert w.effects.tasks == [first, second]
        row = s.get(Task, first)
        assert row is not None
        row.step, row.state = 2, {"progress": {"ins-1": "ready"}}
        state = backend.task(w, first)
        assert (state.request_id, state.resource_id, state.task_type) == (
            first,
            "cls-a",
            "test.sleep",
        )
        assert state.progress == {"ins-1": "ready"}
        assert [(st.name, st.status) for st in state.steps] == [
            ("step0", "done"),
            ("step1", "done"),
            ("step2", "running"),
            ("step3", "pending"),
            ("step4", "pending"),
        ]
        row.status, row.reason = "fail", "step 2 failed as the test asked"
        assert {st.status for st in backend.task(w, first).steps[2:]} == {"pending"}
        row.status = "succ"
        assert {st.status for st in backend.task(w, first).steps} == {"done"}
        # Newest first, by status and resource when given.
        assert [t.request_id for t in backend.tasks(w)] == [second, first]
        assert [t.request_id for t in backend.tasks(w, "running")] == [second]
        assert [t.request_id for t in backend.tasks(w, None, "cls-a")] == [first]
        # Another account's task does not exist for this one.
        other = Work(s, accounts.create_account(s).id, services)
        assert backend.tasks(other) == []
        with pytest.raises(ApiError) as err:
            backend.task(other, first)
        assert (err.value.code, err.value.kind) == (5000, Kind.NOT_FOUND)
        assert "Task (requestId)" in err.value.message
