"""GetMonitorData (host monitor.api.qcloud.com): a metric of a cluster, service, pod or
container, one point per period step, from the monitor's stored rollups."""

from __future__ import annotations

import time
from typing import Any

from openccs.api.context import RequestContext
from openccs.api.envelope import TopLevel
from openccs.api.params import Params
from openccs.api.registry import action
from openccs.errors import resource_not_allowed
from openccs.monitor import query


class GetMonitorDataParams(Params):
    # Checked by the handler, to answer with the document's own error codes (-503, -505...).
    namespace: Any = None
    metricName: Any = None
    dimensions: Any = None
    period: Any = None
    startTime: Any = None
    endTime: Any = None


@action(
    "GetMonitorData",
    GetMonitorDataParams,
    unscoped="the handler checks the cluster its dimensions name (clusterId, docker_clusterid)",
)
def get_monitor_data(ctx: RequestContext, p: GetMonitorDataParams) -> TopLevel:
    req = query.parse(p.model_dump(), time.time(), ctx.services.settings.monitor_max_points)
    cluster_id = req.dims.get("docker_clusterid") or req.dims["clusterId"]
    if not ctx.caller.may_use(cluster_id):
        raise resource_not_allowed(cluster_id)
    values = query.data_points(ctx.db, ctx.account_id, req)
    return TopLevel(
        metricName=req.metric.name,
        startTime=req.start_text,
        endTime=req.end_text,
        period=req.period,
        dataPoints=values,
    )
