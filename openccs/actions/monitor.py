"""GetMonitorData (host monitor.api.qcloud.com): a metric of a cluster, service, pod or
container, one point per period step, from the monitor's stored rollups. The handler
decodes, lets the monitoring backend check the query, checks the caller may use the cluster
it names, and encodes the points."""

from __future__ import annotations

from typing import Any

from openccs.api.context import RequestContext
from openccs.api.envelope import TopLevel
from openccs.api.params import Params
from openccs.api.registry import action
from openccs.backends import monitoring as backend
from openccs.errors import resource_not_allowed


class GetMonitorDataParams(Params):
    # Checked by the backend, to answer with the document's own error codes (-503, -505...).
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
    w = ctx.work()
    q = backend.MonitorQuery(
        namespace=p.namespace,
        metric_name=p.metricName,
        dimensions=p.dimensions,
        period=p.period,
        start_time=p.startTime,
        end_time=p.endTime,
    )
    req = backend.checked(w, q)
    if not ctx.caller.may_use(req.cluster_id):
        raise resource_not_allowed(req.cluster_id)
    found = backend.data(w, req)
    return TopLevel(
        metricName=found.metric_name,
        startTime=found.start_text,
        endTime=found.end_text,
        period=found.period,
        dataPoints=found.points,
    )
