"""GetMonitorData: the request checked against the document's tables, then one data point
per period step from the stored rollups.

Errors use the document's own codes: -505 a required parameter is missing, -503 a value is
wrong, -509 the dimensions do not make the object the metric needs, -502 no such object,
-507 more points than a request may return, -513 the database failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from openccs import timeutil
from openccs.errors import ApiError, Kind
from openccs.ids import parse_number
from openccs.monitor.metrics import DIMENSIONS, METRICS, NS_CVM, NS_DOCKER, PERIODS, Metric
from openccs.monitor.models import MonitorRollup
from openccs.monitor.rollup import bucket_start, count_points, points, value_of
from openccs.store.models import Cluster, Instance, Pod, Service

DEFAULT_PERIOD = 300
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CONTAINER_ID = re.compile(r"^[0-9a-f]{12,64}$")


def source_not_exists(message: str) -> ApiError:
    return ApiError(-502, "OperationDenied.SourceNotExists", message, Kind.NOT_FOUND)


def bad_parameter(name: str, why: str) -> ApiError:
    return ApiError(-503, "InvalidParameter", f"Invalid parameter {name}: {why}", Kind.INVALID)


def missing(name: str) -> ApiError:
    return ApiError(
        -505,
        "InvalidParameter.MissingParameter",
        f"Missing required parameter {name}",
        Kind.INVALID,
    )


def exceed_limit(message: str) -> ApiError:
    return ApiError(-507, "OperationDenied.ExceedLimit", message, Kind.LIMIT_EXCEEDED)


def dimension_group_error(message: str) -> ApiError:
    return ApiError(-509, "InvalidParameter.DimensionGroupError", message, Kind.INVALID)


def db_failure(message: str) -> ApiError:
    return ApiError(-513, "InternalError.DBoperationFail", message, Kind.INTERNAL)


@dataclass(frozen=True)
class Request:
    metric: Metric
    dims: dict[str, str]
    period: int
    start: float
    end: float
    start_text: str
    end_text: str

    @property
    def cluster_id(self) -> str:
        """The cluster the query reads (its dimensions name it)."""
        return self.dims.get("docker_clusterid") or self.dims["clusterId"]


def _text(raw: dict[str, Any], name: str, required: bool) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise bad_parameter(name, "must be a single string value")
    return value


def _time(name: str, value: str) -> float:
    try:
        parsed = datetime.strptime(value.strip(), TIME_FORMAT)
    except ValueError:
        raise bad_parameter(name, f"expected YYYY-MM-DD HH:MM:SS, got {value!r}") from None
    return parsed.replace(tzinfo=timeutil.zone()).timestamp()


def _fmt(ts: float) -> str:
    return datetime.fromtimestamp(ts, timeutil.zone()).strftime(TIME_FORMAT)


def parse(raw: dict[str, Any], now: float, max_points: int) -> Request:
    """The checked request; raises the document's error codes."""
    namespace = _text(raw, "namespace", True)
    metric_name = _text(raw, "metricName", True)
    dims_raw = raw.get("dimensions")
    if dims_raw is None or dims_raw == "":
        raise missing("dimensions.0.name")
    assert namespace is not None and metric_name is not None
    ns = namespace.replace(" ", "")
    if ns not in (NS_CVM, NS_DOCKER):
        raise bad_parameter("namespace", f"{namespace!r} is not one of {NS_CVM}, {NS_DOCKER}")
    metric = METRICS.get(metric_name)
    if metric is None:
        raise bad_parameter("metricName", f"unknown metric {metric_name!r}")
    if metric.namespace != ns:
        raise bad_parameter(
            "namespace", f"metric {metric.name} is in namespace {metric.namespace}, not {ns}"
        )
    if not isinstance(dims_raw, list):
        raise bad_parameter("dimensions", "expected dimensions.0.name, dimensions.0.value, ...")
    dims: dict[str, str] = {}
    for i, d in enumerate(dims_raw):
        if not isinstance(d, dict):
            raise bad_parameter(f"dimensions.{i}", "expected .name and .value")
        name = _text(d, "name", False)
        if name is None:
            raise missing(f"dimensions.{i}.name")
        value = _text(d, "value", False)
        if value is None:
            raise missing(f"dimensions.{i}.value")
        if name in dims:
            raise dimension_group_error(f"dimension {name} given more than once")
        dims[name] = value.strip()
    wanted = DIMENSIONS[metric.level]
    if set(dims) != set(wanted):
        raise dimension_group_error(
            f"metric {metric.name} needs exactly the dimensions {', '.join(wanted)}"
            f" (got {', '.join(dims) or 'none'})"
        )
    if "containerId" in dims:
        cid = dims["containerId"].lower()
        if not CONTAINER_ID.match(cid):
            raise bad_parameter(
                "containerId", "expected a container id (at least its first 12 hex characters)"
            )
        dims["containerId"] = cid[:12]
    period_raw = _text(raw, "period", False)
    period = DEFAULT_PERIOD
    if period_raw is not None:
        number = parse_number(period_raw.strip())
        if number is None or number not in PERIODS:
            raise bad_parameter("period", f"must be one of {', '.join(map(str, PERIODS))}")
        period = number
    start_raw = _text(raw, "startTime", False)
    end_raw = _text(raw, "endTime", False)
    end = _time("endTime", end_raw) if end_raw else float(int(now))
    # Without startTime: midnight of the day of endTime (today, when endTime is now too).
    start = _time("startTime", start_raw) if start_raw else float(bucket_start(end, 86400))
    if end < start:
        raise bad_parameter("endTime", "must not be earlier than startTime")
    n = count_points(start, end, period)
    if n > max_points:
        raise exceed_limit(
            f"{n} data points asked for; at most {max_points} per request:"
            " shorten the time range or use a longer period"
        )
    return Request(metric, dims, period, start, end, _fmt(start), _fmt(end))


def _has_data(s: Session, cluster_id: str, obj: str) -> bool:
    found = s.scalars(
        select(MonitorRollup.bucket)
        .where(MonitorRollup.cluster_id == cluster_id, MonitorRollup.obj == obj)
        .limit(1)
    ).first()
    return found is not None


def _object(s: Session, account_id: int, req: Request) -> tuple[str, str]:
    """(cluster id, object key) of an object that exists or has data; -502 otherwise."""
    d = req.dims
    cluster_id = req.cluster_id
    cluster = s.scalars(
        select(Cluster).where(Cluster.id == cluster_id, Cluster.account_id == account_id)
    ).first()
    if cluster is None:
        raise source_not_exists(f"cluster {cluster_id} does not exist")
    if req.metric.level == "cluster":
        return cluster_id, ""
    if req.metric.level == "node":
        # The sampler's key of a machine's series (no namespace or service has a colon).
        obj = f"node:{d['unInstanceId']}"
        node = s.scalars(
            select(Instance.id).where(
                Instance.id == d["unInstanceId"], Instance.cluster_id == cluster_id
            )
        ).first()
        if node is None and not _has_data(s, cluster_id, obj):
            raise source_not_exists(f"node {d['unInstanceId']} of {cluster_id} does not exist")
        return cluster_id, obj
    parts = [d["namespace"], d["serviceName"]]
    if req.metric.level in ("pod", "container"):
        parts.append(d["podName"])
    if req.metric.level == "container":
        parts.append(d["containerId"])
    obj = "/".join(parts)
    if _has_data(s, cluster_id, obj):
        return cluster_id, obj
    svc = s.scalars(
        select(Service).where(
            Service.cluster_id == cluster_id,
            Service.namespace == d["namespace"],
            Service.name == d["serviceName"],
        )
    ).first()
    what = f"service {d['namespace']}/{d['serviceName']} in {cluster_id}"
    if svc is None:
        raise source_not_exists(f"{what} does not exist")
    if req.metric.level == "service":
        return cluster_id, obj
    pod = s.scalars(
        select(Pod).where(
            Pod.cluster_id == cluster_id,
            Pod.namespace == d["namespace"],
            Pod.name == d["podName"],
            Pod.service_id == svc.id,
        )
    ).first()
    if pod is None:
        raise source_not_exists(f"pod {d['podName']} of {what} does not exist")
    if req.metric.level == "pod":
        return cluster_id, obj
    ids = [str(c.get("containerId") or "")[:12] for c in pod.status.get("containers") or []]
    if d["containerId"] not in ids:
        raise source_not_exists(
            f"container {d['containerId']} of pod {d['podName']} does not exist"
        )
    return cluster_id, obj


def data_points(s: Session, account_id: int, req: Request) -> list[float | None]:
    """The request's points; a database failure is the document's -513."""
    try:
        return _data_points(s, account_id, req)
    except SQLAlchemyError as exc:
        raise db_failure(f"reading monitor data failed: {type(exc).__name__}") from None


def _data_points(s: Session, account_id: int, req: Request) -> list[float | None]:
    cluster_id, obj = _object(s, account_id, req)
    rows = s.execute(
        select(MonitorRollup.bucket, MonitorRollup.data).where(
            MonitorRollup.cluster_id == cluster_id,
            MonitorRollup.obj == obj,
            MonitorRollup.period == req.period,
            MonitorRollup.bucket >= bucket_start(req.start, req.period),
            MonitorRollup.bucket <= req.end,
        )
    ).all()
    found = {bucket: data.get(req.metric.name) for bucket, data in rows}
    result: list[float | None] = []
    for b in points(req.start, req.end, req.period):
        value = value_of(found.get(b), req.metric.rollup)
        result.append(None if value is None else round(value, 6))
    return result
