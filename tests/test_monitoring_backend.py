"""The monitoring backend on a real database without machines: a checked query reads one
point per period step from stored rollups, of the caller's own objects only, and answers
the document's codes with their kinds. test_monitor.py proves the same with machines that
burn CPU and send traffic."""

from __future__ import annotations

from datetime import datetime

import pytest

from openccs import timeutil
from openccs.backends import Work
from openccs.backends import monitoring as backend
from openccs.errors import ApiError, Kind
from openccs.monitor.models import MonitorRollup
from openccs.server import Services
from tests.conftest import UNIT_CLUSTER as CLUSTER
from tests.conftest import unit_account

START = "2026-11-02 10:00:00"


def _at(text: str) -> int:
    local = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timeutil.zone())
    return int(local.timestamp())


def _query(cluster: str = CLUSTER, **more: object) -> backend.MonitorQuery:
    given: dict[str, object] = {
        "namespace": "qce/cvm",
        "metric_name": "dc_cpu_usage",
        "dimensions": [{"name": "docker_clusterid", "value": cluster}],
        "period": "300",
        "start_time": START,
        "end_time": "2026-11-02 10:10:00",
        **more,
    }
    return backend.MonitorQuery(**given)


def _error(w: Work, q: backend.MonitorQuery) -> ApiError:
    with pytest.raises(ApiError) as err:
        backend.data(w, backend.checked(w, q))
    return err.value


def test_one_point_per_step_from_the_rollups(services: Services, account: int) -> None:
    with services.store.session() as s:
        first = _at(START)
        for bucket, entry in ((first, [30.0, 2]), (first + 600, [9.0, 1])):
            s.add(
                MonitorRollup(
                    cluster_id=CLUSTER,
                    obj="",
                    period=300,
                    bucket=bucket,
                    level="cluster",
                    data={"dc_cpu_usage": entry},
                )
            )
        s.flush()
        w = Work(s, account, services)
        req = backend.checked(w, _query())
        assert req.cluster_id == CLUSTER
        got = backend.data(w, req)
        assert got == backend.MonitorData(
            metric_name="dc_cpu_usage",
            start_text=START,
            end_text="2026-11-02 10:10:00",
            period=300,
            points=[15.0, None, 9.0],  # the mean of a period's samples; none sampled: None
        )


def test_the_documents_codes_and_their_kinds(services: Services, account: int) -> None:
    other = unit_account(services, 2)
    with services.store.session() as s:
        w = Work(s, account, services)
        cases = [
            (_query(metric_name=None), -505, Kind.INVALID),
            (_query(metric_name="nope"), -503, Kind.INVALID),
            (_query(period="61"), -503, Kind.INVALID),
            (_query(namespace="qce/docker"), -503, Kind.INVALID),
            (_query(dimensions=[{"name": "clusterId", "value": CLUSTER}]), -509, Kind.INVALID),
            (_query(start_time="2026-01-01 00:00:00", period="60"), -507, Kind.LIMIT_EXCEEDED),
            (_query("cls-nothere"), -502, Kind.NOT_FOUND),
            # Another account's cluster does not exist for this one.
            (_query("cls-unit0002"), -502, Kind.NOT_FOUND),
        ]
        for q, code, kind in cases:
            err = _error(w, q)
            assert (err.code, err.kind) == (code, kind), (q, err.message)
        # Its owner reads it (no data yet: a point per step, each None).
        mine = Work(s, other, services)
        points = backend.data(mine, backend.checked(mine, _query("cls-unit0002"))).points
        assert points == [None, None, None]
