"""The monitoring backend: GetMonitorData's metric of a cluster, node, service, pod or
container, one point per period step, from the monitor's stored rollups
(`monitor/query.py` checks a query against the document's tables and reads the points).

Errors are the document's own for this action (-502 no such object, -503 a wrong value,
-505 a missing one, -507 too many points, -509 dimensions that do not name the object,
-513 the database failed), each with its domain kind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from openccs.backends import Work
from openccs.monitor import query


@dataclass(frozen=True)
class MonitorQuery:
    """A query as the caller gave it: each value is checked here with the document's codes
    (the wire's types are not to be trusted for this action: a list where a string belongs
    is a -503, not a 4000)."""

    namespace: Any = None
    metric_name: Any = None
    dimensions: Any = None  # [{"name": ..., "value": ...}, ...]
    period: Any = None
    start_time: Any = None
    end_time: Any = None

    def as_document(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "metricName": self.metric_name,
            "dimensions": self.dimensions,
            "period": self.period,
            "startTime": self.start_time,
            "endTime": self.end_time,
        }


@dataclass(frozen=True)
class MonitorData:
    metric_name: str
    start_text: str  # the range as the answer shows it (local time of the API's zone)
    end_text: str
    period: int
    points: list[float | None]  # one per period step; None where nothing was sampled


def checked(w: Work, q: MonitorQuery) -> query.Request:
    """The query checked against the metric tables and the per-request limit; which cluster
    it reads is `Request.cluster_id` (for a front end's access check before `data`)."""
    return query.parse(q.as_document(), time.time(), w.services.settings.monitor_max_points)


def data(w: Work, req: query.Request) -> MonitorData:
    """The points of a checked query, of an object of the caller's account (another's does
    not exist for it: -502)."""
    return MonitorData(
        metric_name=req.metric.name,
        start_text=req.start_text,
        end_text=req.end_text,
        period=req.period,
        points=query.data_points(w.db, w.account_id, req),
    )
