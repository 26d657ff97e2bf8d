"""The console's pages: each reads and writes through `View.call` (the actions of the v2 API,
with their authorization) and renders a template. Forms post back and redirect (303)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import yaml
from starlette.responses import Response

from openccs.errors import ApiError
from openccs.timeutil import fmt_time

from .charts import RANGES, line_chart
from .web import PREFIX, View, http_status

PAGE_SIZE = 100
# Actions that page with offset/limit answer at most this many per call.
API_PAGE = 100


def _page_of(view: View, items: list[Any], param: str = "page") -> tuple[list[Any], dict[str, Any]]:
    """One page of a long list, and what the pager shows (`param` names the query
    parameter, for pages with two lists)."""
    raw = view.query.get(param, "1")
    page = max(1, int(raw)) if raw.isdigit() else 1
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(page, pages)
    return items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], {
        "page": page,
        "pages": pages,
        "total": len(items),
        "param": param,
    }


def _api_page(view: View, action: str, key: str, **params: Any) -> tuple[list[Any], dict[str, Any]]:
    """One page of a list action that pages with offset/limit and answers totalCount:
    only that page is asked for."""
    raw = view.query.get("page", "1")
    page = max(1, int(raw)) if raw.isdigit() else 1
    data = view.call(action, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, **params)
    total = int(data.get("totalCount", 0))
    pages = max(1, -(-total // PAGE_SIZE))
    return data.get(key, []), {"page": page, "pages": pages, "total": total, "param": "page"}


def _all_pages(view: View, action: str, key: str, **params: Any) -> list[Any]:
    """Every item of a list action that pages with offset/limit."""
    items: list[Any] = []
    while True:
        data = view.call(action, offset=len(items), limit=API_PAGE, **params)
        batch = data.get(key, [])
        items.extend(batch)
        if len(batch) < API_PAGE or len(items) >= int(data.get("totalCount", 1 << 30)):
            return items


def _clusters(view: View) -> list[dict[str, Any]]:
    return _all_pages(view, "DescribeCluster", "clusters")


def _cluster(view: View, cluster_id: str) -> dict[str, Any]:
    data = view.call("DescribeCluster", clusterIds=[cluster_id])
    if not data["clusters"]:
        raise ApiError(5000, "ResourceNotFound", f"cluster {cluster_id} does not exist")
    cluster: dict[str, Any] = data["clusters"][0]
    return cluster


# --- overview --------------------------------------------------------------------------------


def _count_cluster(
    view: View,
    cid: str,
    nodes: Counter[str],
    services: Counter[str],
    pods: Counter[str],
    events: list[dict[str, Any]],
) -> None:
    for n in _all_pages(view, "DescribeClusterInstances", "nodes", clusterId=cid):
        nodes["normal" if n["isNormal"] else "abnormal"] += 1
    for svc in view.call("DescribeClusterService", clusterId=cid, allnamespace=1)["services"]:
        services[svc["status"]] += 1
        ref = {"clusterId": cid, "serviceName": svc["serviceName"], "namespace": svc["namespace"]}
        for pod in _all_pages(view, "DescribeServiceInstance", "instances", **ref):
            pods[pod["status"]] += 1
        for ev in view.call("DescribeServiceEvent", **ref)["eventList"][:5]:
            events.append({**ev, "service": svc["serviceName"], "cluster": cid})


def overview(view: View) -> Response:
    clusters = _clusters(view)
    nodes: Counter[str] = Counter()
    services: Counter[str] = Counter()
    pods: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    for c in clusters:
        if c["status"] not in ("Running", "Abnormal"):
            continue
        try:
            _count_cluster(view, c["clusterId"], nodes, services, pods, events)
        except ApiError:
            continue  # what a sub-account may not read is left out of the counts
    events.sort(key=lambda e: e.get("lastSeen", ""), reverse=True)
    failed, failed_err = view.attempt("OpenccsDescribeTasks", status="fail", limit=20)
    page, pager = _page_of(view, clusters)
    return view.render(
        "overview.html",
        clusters=clusters,
        cluster_page=page,
        pager=pager,
        failed=(failed or {}).get("tasks", []),
        failed_total=(failed or {}).get("totalCount", 0),
        failed_err=failed_err,
        cluster_states=Counter(c["status"] for c in clusters),
        nodes=nodes,
        services=services,
        pods=pods,
        events=events[:20],
    )


# --- clusters --------------------------------------------------------------------------------


def _network(view: View) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The VPCs and subnets for the create form (none when the caller may not list them)."""
    vpcs, _ = view.attempt("DescribeVpcEx")
    subnets: list[dict[str, Any]] = []
    for v in (vpcs or {}).get("data", []):
        found, _ = view.attempt("DescribeSubnetEx", vpcId=v["unVpcId"])
        subnets += (found or {}).get("data", [])
    return (vpcs or {}).get("data", []), subnets


def clusters(view: View, error: ApiError | None = None, status: int = 200) -> Response:
    items, pager = _page_of(view, _clusters(view))
    vpcs, subnets = _network(view)
    zones = view.console.services.settings.zones
    return view.render(
        "clusters.html",
        status=status,
        clusters=items,
        pager=pager,
        vpcs=vpcs,
        subnets=subnets,
        zones=zones,
        error=error,
        form=view.form,
    )


CLUSTER_FIELDS = (
    "clusterName", "clusterDesc", "clusterCIDR", "vpcId", "subnetId", "zoneId", "goodsNum",
    "cpu", "mem", "osName", "rootSize", "storageSize", "bandwidthType", "bandwidth",
    "isVpcGateway", "instanceType", "password",
)  # fmt: skip


def create_cluster(view: View) -> Response:
    params = {k: view.form[k] for k in CLUSTER_FIELDS if view.form.get(k, "") != ""}
    data, err = view.attempt("CreateCluster", **params)
    if err is not None:
        return clusters(view, err, http_status(err))
    return view.redirect(f"{PREFIX}/clusters/{data['clusterId']}?task={data['requestId']}")


def cluster(view: View, error: ApiError | None = None, status: int = 200) -> Response:
    cid = view.path["cid"]
    info = _cluster(view, cid)
    nodes: list[dict[str, Any]] = []
    namespaces: list[dict[str, Any]] = []
    if info["status"] not in ("Creating",):
        nodes = _all_pages(view, "DescribeClusterInstances", "nodes", clusterId=cid)
        namespaces = view.call("DescribeClusterNameSpaces", clusterId=cid)["namespaces"]
    task = None
    rid = view.query.get("task", "")
    if rid.isdigit():
        task, _ = view.attempt("DescribeClusterTaskResult", requestId=int(rid))
    nodes_page, pager = _page_of(view, nodes)
    ns_page, ns_pager = _page_of(view, namespaces, "nspage")
    return view.render(
        "cluster.html",
        status=status,
        cluster=info,
        nodes=nodes_page,
        pager=pager,
        namespaces=ns_page,
        ns_pager=ns_pager,
        task=task,
        task_id=rid,
        error=error,
    )


def delete_cluster(view: View) -> Response:
    cid = view.path["cid"]
    data, err = view.attempt("DeleteCluster", clusterId=cid)
    if err is not None:
        return cluster(view, err, http_status(err))
    return view.redirect(f"{PREFIX}/clusters/{cid}?task={data['requestId']}")


def add_nodes(view: View) -> Response:
    cid = view.path["cid"]
    info = _cluster(view, cid)
    params = {k: view.form[k] for k in CLUSTER_FIELDS if view.form.get(k, "") != ""}
    data, err = view.attempt("AddClusterInstances", clusterId=info["clusterId"], **params)
    if err is not None:
        return cluster(view, err, http_status(err))
    return view.redirect(f"{PREFIX}/clusters/{cid}?task={data['requestId']}")


def node_op(view: View) -> Response:
    cid, iid, op = view.path["cid"], view.path["iid"], view.path["op"]
    err: ApiError | None
    if op in ("cordon", "uncordon"):
        _, err = view.attempt(
            "ModifyClusterNodeSchedulable",
            clusterId=cid,
            instanceIds=[iid],
            unschedulable=1 if op == "cordon" else 0,
        )
    elif op == "drain":
        _, err = view.attempt("DrainClusterNode", ClusterId=cid, InstanceId=iid, DryRun=0)
    elif op == "remove":
        _, err = view.attempt("DeleteClusterInstances", clusterId=cid, instanceIds=[iid])
    elif op == "label":
        labels = _pairs(view.form.get("labels", ""), "=")
        _, err = view.attempt(
            "ModifyClusterNodeLabel",
            clusterId=cid,
            instanceId=iid,
            labels=[{"key": k, "value": v.strip()} for k, v in labels],
        )
    else:
        err = ApiError(4000, "InvalidParameter", f"Invalid parameter operation: {op!r}")
    if err is not None:
        return cluster(view, err, http_status(err))
    return view.redirect(f"{PREFIX}/clusters/{cid}")


def create_namespace(view: View) -> Response:
    cid = view.path["cid"]
    _, err = view.attempt(
        "CreateClusterNamespace",
        clusterId=cid,
        name=view.form.get("namespace", ""),
        description=view.form.get("description", ""),
    )
    if err is not None:
        return cluster(view, err, http_status(err))
    return view.redirect(f"{PREFIX}/clusters/{cid}")


def kubeconfig(view: View) -> Response:
    cid = view.path["cid"]
    sec = view.call("DescribeClusterSecurityInfo", clusterId=cid)
    import base64

    server = sec["clusterExternalEndpoint"] or sec["clusterInternalEndpoint"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cid,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(
                        sec["certificationAuthority"].encode()
                    ).decode(),
                },
            }
        ],
        "users": [{"name": f"{cid}-admin", "user": {"token": sec["password"]}}],
        "contexts": [{"name": cid, "context": {"cluster": cid, "user": f"{cid}-admin"}}],
        "current-context": cid,
    }
    return Response(
        yaml.safe_dump(config, sort_keys=False),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{cid}.kubeconfig"'},
    )


# --- services --------------------------------------------------------------------------------


def services(view: View) -> Response:
    cid = view.path["cid"]
    info = _cluster(view, cid)
    namespaces = view.call("DescribeClusterNameSpaces", clusterId=cid)["namespaces"]
    ns = view.query.get("namespace", "default")
    if ns == "*":
        data = view.call("DescribeClusterService", clusterId=cid, allnamespace=1)
    else:
        data = view.call("DescribeClusterService", clusterId=cid, namespace=ns)
    items, pager = _page_of(view, data["services"])
    return view.render(
        "services.html",
        cluster=info,
        namespaces=namespaces,
        namespace=ns,
        services=items,
        pager=pager,
    )


def _pairs(text: str, sep: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        if line.strip():
            k, _, v = line.partition(sep)
            out.append((k.strip(), v))
    return out


def _ports(text: str) -> list[dict[str, Any]]:
    """`80:8080/TCP` per line: the service's port, the container's, the protocol."""
    out = []
    for i, line in enumerate(text.split()):
        ports, _, proto = line.partition("/")
        lb, _, container = ports.partition(":")
        if not lb.isdigit() or not (container or lb).isdigit():
            raise ApiError(
                4000,
                "InvalidParameter",
                f"Invalid parameter portMappings.{i}: write PORT:CONTAINERPORT/TCP (got {line!r})",
            )
        out.append(
            {"lbPort": lb, "containerPort": container or lb, "protocol": (proto or "TCP").upper()}
        )
    return out


def _probe(form: dict[str, str], kind: str) -> dict[str, Any] | None:
    method = form.get(f"{kind}_method", "")
    if not method:
        return None
    probe: dict[str, Any] = {"checkMethod": method}
    for field in ("delayTime", "intervalTime", "timeOut", "healthNum", "unhealthNum"):
        if form.get(f"{kind}_{field}"):
            probe[field] = form[f"{kind}_{field}"]
    if method == "methodHttp":
        probe["methodHttp"] = {
            "port": form.get(f"{kind}_port", ""),
            "path": form.get(f"{kind}_path") or "/",
        }
    elif method == "methodTcp":
        probe["methodTcp"] = {"port": form.get(f"{kind}_port", "")}
    else:
        probe["methodCmd"] = {"cmd": form.get(f"{kind}_cmd", "")}
    return probe


def service_spec(form: dict[str, str]) -> dict[str, Any]:
    """CreateClusterService's parameters from the form."""
    container: dict[str, Any] = {
        "containerName": form.get("containerName") or "main",
        "image": form.get("image", "").strip(),
        "envs": [{"name": k, "value": v} for k, v in _pairs(form.get("envs", ""), "=")],
        "cpu": form.get("cpu") or None,
        "memory": form.get("memory") or None,
        "cpuLimits": form.get("cpuLimits") or None,
        "memoryLimits": form.get("memoryLimits") or None,
        "command": form.get("command") or None,
        "arguments": [a for a in form.get("arguments", "").splitlines() if a] or None,
        "liveProbe": _probe(form, "live"),
        "readyProbe": _probe(form, "ready"),
    }
    volumes, mounts = [], []
    for name, path in _pairs(form.get("hostPaths", ""), "="):
        host, _, mount = path.partition(":")
        volumes.append({"name": name, "volumeType": "hostPath", "hostPath": host})
        mounts.append({"volumeName": name, "mountPath": mount or host})
    if mounts:
        container["volumeMounts"] = mounts
    return {
        "serviceName": form.get("serviceName", "").strip(),
        "serviceDesc": form.get("serviceDesc") or None,
        "namespace": form.get("namespace") or "default",
        "replicas": form.get("replicas", ""),
        "accessType": form.get("accessType") or "ClusterIP",
        "portMappings": _ports(form.get("ports", "")),
        "strategy": form.get("strategy") or "RollingUpdate",
        "volumes": volumes,
        "containers": [container],
    }


def _images(view: View) -> list[str]:
    """The images of the account's registry, for the form's picker."""
    repos, err = view.attempt("SearchUserRepository", limit=100)
    if err is not None:
        return []
    out = []
    for repo in repos["repoInfo"][:20]:
        tags, err = view.attempt("GetTagList", reponame=repo["reponame"], limit=20)
        if err is None:
            out += [f"{tags['server']}/{repo['reponame']}:{t['tagName']}" for t in tags["tagInfo"]]
    return out


def new_service(view: View, error: ApiError | None = None, status: int = 200) -> Response:
    cid = view.path["cid"]
    info = _cluster(view, cid)
    namespaces = view.call("DescribeClusterNameSpaces", clusterId=cid)["namespaces"]
    return view.render(
        "service_new.html",
        status=status,
        cluster=info,
        namespaces=namespaces,
        images=_images(view),
        error=error,
        form=view.form,
    )


def create_service(view: View) -> Response:
    cid = view.path["cid"]
    try:
        spec = service_spec(view.form)
        view.call("CreateClusterService", clusterId=cid, **spec)
    except ApiError as err:
        return new_service(view, err, http_status(err))
    ns, name = spec["namespace"], spec["serviceName"]
    return view.redirect(f"{PREFIX}/clusters/{cid}/services/{quote(ns)}/{quote(name)}")


def _ref(view: View) -> dict[str, str]:
    p = view.path
    return {"clusterId": p["cid"], "namespace": p["ns"], "serviceName": p["name"]}


def service(view: View, error: ApiError | None = None, status: int = 200) -> Response:
    """The service and one page of its pods (its events have a page of their own: a busy
    service has thousands within the hour)."""
    ref = _ref(view)
    info = view.call("DescribeClusterServiceInfo", **ref)["service"]
    pods, pager = _api_page(view, "DescribeServiceInstance", "instances", **ref)
    ingresses, _ = view.attempt(
        "DescribeIngress", clusterId=ref["clusterId"], namespace=ref["namespace"]
    )
    routes = [
        {**rule, "ingressName": ing["ingressName"], "ingressIp": ing["ingressIp"]}
        for ing in (ingresses or {}).get("ingressList", [])
        for rule in ing["rules"]
        if rule["serviceName"] == ref["serviceName"]
    ]
    return view.render(
        "service.html",
        status=status,
        ref=ref,
        service=info,
        routes=routes,
        pods=pods,
        pager=pager,
        images=_images(view) if not view.live else [],
        error=error,
    )


def service_events(view: View) -> Response:
    ref = _ref(view)
    events, pager = _page_of(view, view.call("DescribeServiceEvent", **ref)["eventList"])
    return view.render("events.html", ref=ref, events=events, pager=pager)


SERVICE_OPS = {
    "pause": "PauseClusterService",
    "resume": "ResumeClusterService",
    "rollback": "RollBackClusterService",
    "redeploy": "RedeployClusterService",
}


def service_op(view: View) -> Response:
    ref, op = _ref(view), view.path["op"]
    base = f"{PREFIX}/clusters/{quote(ref['clusterId'])}"
    try:
        if op == "scale":
            view.call("ModifyServiceReplicas", scaleTo=view.form.get("replicas", ""), **ref)
        elif op == "image":
            view.call("ModifyClusterServiceImage", image=view.form.get("image", ""), **ref)
        elif op == "delete":
            view.call("DeleteClusterService", **ref)
            return view.redirect(f"{base}/services?namespace={quote(ref['namespace'])}")
        elif op in SERVICE_OPS:
            view.call(SERVICE_OPS[op], **ref)
        else:
            raise ApiError(4000, "InvalidParameter", f"Invalid parameter operation: {op!r}")
    except ApiError as err:
        return service(view, err, http_status(err))
    return view.redirect(f"{base}/services/{quote(ref['namespace'])}/{quote(ref['serviceName'])}")


def service_yaml(view: View) -> Response:
    ref = _ref(view)
    text = view.call("DescribeClusterServiceText", **ref)
    return view.render("yaml.html", ref=ref, text=text["serviceText"])


LOG_TAILS = ("100", "500", "2000", "10000")


def pod(view: View) -> Response:
    ref = _ref(view)
    name = view.path["pod"]
    pods = _all_pages(view, "DescribeServiceInstance", "instances", **ref)
    found = next((p for p in pods if p["name"] == name), None)
    if found is None:
        raise ApiError(5000, "ResourceNotFound", f"instance (podName) {name} does not exist")
    tail = view.query.get("tail", "500")
    tail = tail if tail in LOG_TAILS else "500"
    logs = view.call("DescribeInstanceLog", podName=name, tail=tail, **ref)["podLog"]
    previous: list[dict[str, Any]] = []
    if int(found.get("restartCount") or 0) > 0:
        # The run before this one (after a crash, the one that crashed).
        prev, _ = view.attempt("OpenccsDescribeInstancePreviousLog", podName=name, tail=tail, **ref)
        previous = (prev or {}).get("podLog", [{}])[0].get("containerLog", [])
    events = [
        e
        for e in view.call("DescribeServiceEvent", **ref)["eventList"]
        if e.get("objName") == name or name in e.get("message", "")
    ]
    return view.render(
        "pod.html",
        ref=ref,
        pod=found,
        logs=logs[0]["containerLog"] if logs else [],
        previous=previous,
        tail=tail,
        tails=LOG_TAILS,
        events=events[:50],
    )


# --- monitoring ------------------------------------------------------------------------------


CLUSTER_METRICS = (("dc_cpu_usage", "CPU"), ("dc_mem_usage", "Memory"))
NODE_METRICS = (("node_cpu_usage", "CPU"), ("node_mem_usage", "Memory"))
SERVICE_METRICS = (
    ("service_cpu_used", "CPU"),
    ("service_mem_used", "Memory"),
    ("service_in_bandwidth", "Network in"),
    ("service_out_bandwidth", "Network out"),
)
POD_METRICS = (("pod_in_bandwidth", "Network in"), ("pod_out_bandwidth", "Network out"))


def monitoring(view: View) -> Response:
    all_clusters = [c for c in _clusters(view) if c["status"] != "Creating"]
    cid = view.query.get("cluster") or (all_clusters[0]["clusterId"] if all_clusters else "")
    svc_name = view.query.get("service", "")
    ns = view.query.get("namespace", "default")
    if "/" in svc_name:  # the picker's NAMESPACE/SERVICE
        ns, _, svc_name = svc_name.partition("/")
    pod_name = view.query.get("pod", "")
    node_id = view.query.get("node", "")
    span = view.query.get("range", "hour")
    if span not in RANGES:
        span = "hour"
    period, seconds = RANGES[span]
    now = time.time()
    window = {
        "period": period,
        "startTime": fmt_time_ts(now - seconds),
        "endTime": fmt_time_ts(now),
    }
    charts: list[tuple[str, str, Any]] = []
    services_list: list[dict[str, Any]] = []
    pods_list: list[dict[str, Any]] = []
    nodes_list: list[dict[str, Any]] = []
    error = None
    if cid:
        try:
            services_list = view.call("DescribeClusterService", clusterId=cid, allnamespace=1)[
                "services"
            ]
            nodes_list = _all_pages(view, "DescribeClusterInstances", "nodes", clusterId=cid)
            if svc_name:
                ref = {"clusterId": cid, "serviceName": svc_name, "namespace": ns}
                pods_list = _all_pages(view, "DescribeServiceInstance", "instances", **ref)
                dims = [{"name": k, "value": v} for k, v in ref.items()]
                if pod_name:
                    dims.append({"name": "podName", "value": pod_name})
                metrics, namespace = (POD_METRICS if pod_name else SERVICE_METRICS), "qce/docker"
            elif node_id:
                dims = [{"name": "docker_clusterid", "value": cid},
                        {"name": "unInstanceId", "value": node_id}]  # fmt: skip
                metrics, namespace = NODE_METRICS, "qce/cvm"
            else:
                dims = [{"name": "docker_clusterid", "value": cid}]
                metrics, namespace = CLUSTER_METRICS, "qce/cvm"
            for metric, title in metrics:
                res = view.call(
                    "GetMonitorData",
                    namespace=namespace,
                    metricName=metric,
                    dimensions=dims,
                    **window,
                )
                charts.append((metric, title, line_chart(title, metric, res, period)))
        except ApiError as err:
            error = err
    return view.render(
        "monitoring.html",
        clusters=all_clusters,
        cluster_id=cid,
        services=services_list,
        service_name=svc_name,
        namespace=ns,
        pods=pods_list,
        pod_name=pod_name,
        nodes=nodes_list,
        node_id=node_id,
        span=span,
        ranges=list(RANGES),
        charts=charts,
        error=error,
    )


def fmt_time_ts(ts: float) -> str:
    import datetime

    return fmt_time(datetime.datetime.fromtimestamp(int(ts), datetime.UTC).replace(tzinfo=None))


# --- registry --------------------------------------------------------------------------------


def registry(view: View) -> Response:
    namespaces = _all_pages(view, "GetNamespaceInfo", "namespaceInfo")
    repos = _all_pages(view, "SearchUserRepository", "repoInfo")
    favors, _ = view.attempt("GetFavor", limit=100)
    items, pager = _page_of(view, repos)
    registry = view.console.services.subsystems.registry
    server = registry.rt.host if registry is not None else ""
    return view.render(
        "registry.html",
        namespaces=namespaces,
        repos=items,
        pager=pager,
        favors={f.get("reponame") for f in (favors or {}).get("repoInfo", [])},
        server=server,
    )


def repository(view: View, error: ApiError | None = None, status: int = 200) -> Response:
    name = view.query.get("name", "") or view.form.get("reponame", "")
    tags = _all_pages(view, "GetTagList", "tagInfo", reponame=name)
    head = view.call("GetTagList", reponame=name, limit=1)
    triggers, _ = _listed(view, "ListTrigger", "triggerInfo", True, reponame=name)
    retention, _ = view.attempt("GetAutoDelStrategy", reponame=name)
    items, pager = _page_of(view, tags)
    trigger_page, trigger_pager = _page_of(view, triggers, "tpage")
    own = view.call("SearchUserRepository", reponame=name, limit=1)["repoInfo"]
    clusters, _ = view.attempt("DescribeCluster", limit=100)
    return view.render(
        "repository.html",
        status=status,
        name=name,
        public=bool(own and own[0]["public"]),
        server=head["server"],
        tags=items,
        pager=pager,
        triggers=trigger_page,
        trigger_pager=trigger_pager,
        retention=(retention or {}).get("strategyInfo", []),
        clusters=[c["clusterId"] for c in (clusters or {}).get("clusters", [])],
        regions=view.console.services.settings.regions,
        uin=view.caller.uin,
        error=error,
        form=view.form,
    )


# --- the rest of a cluster: ingresses, autoscaling groups, log collection rules ------------

# The tasks the autoscaler runs on a cluster: its groups' activity.
ASG_TASKS = ("cluster.scale_out", "asg.scale_in", "asg.delete")


def _listed(
    view: View, action: str, key: str, paged: bool, **params: Any
) -> tuple[list[Any], ApiError | None]:
    """Every item of a list action, or the API's refusal (a sub-account's page shows what it
    may read and says what it may not)."""
    try:
        if paged:
            return _all_pages(view, action, key, **params), None
        return view.call(action, **params).get(key, []), None
    except ApiError as err:
        return [], err


def cluster_more(view: View, error: ApiError | None = None, status: int = 200) -> Response:
    cid = view.path["cid"]
    info = _cluster(view, cid)
    ingresses, ing_err = _listed(view, "DescribeIngress", "ingressList", False,
                                 clusterId=cid, allnamespace=1)  # fmt: skip
    groups, asg_err = _listed(view, "DescribeClusterAsg", "asgInfo", True, clusterId=cid)
    rules, log_err = _listed(view, "ListLogCollector", "logCollectorList", True, clusterId=cid)
    tasks, _ = view.attempt("OpenccsDescribeTasks", resourceId=cid, limit=100)
    activity = [t for t in (tasks or {}).get("tasks", []) if t["taskType"] in ASG_TASKS]
    namespaces, _ = view.attempt("DescribeClusterNameSpaces", clusterId=cid)
    nodes: list[dict[str, Any]] = []
    if info["status"] != "Creating":
        nodes, _ = _listed(view, "DescribeClusterInstances", "nodes", True, clusterId=cid)
    ing_page, ing_pager = _page_of(view, ingresses, "ipage")
    asg_page, asg_pager = _page_of(view, groups, "gpage")
    rule_page, rule_pager = _page_of(view, rules, "rpage")
    return view.render(
        "cluster_more.html",
        status=status,
        cluster=info,
        ingresses=ing_page,
        ing_pager=ing_pager,
        groups=asg_page,
        asg_pager=asg_pager,
        rules=rule_page,
        rule_pager=rule_pager,
        activity=activity[:20],
        namespaces=(namespaces or {}).get("namespaces", []),
        nodes=nodes,
        errors=[e for e in (ing_err, asg_err, log_err) if e is not None],
        error=error,
        form=view.form,
    )


def ingress_rules(text: str) -> list[dict[str, Any]]:
    """`PROTOCOL DOMAIN PATH SERVICE:PORT [LBPORT]` per line (e.g. `http shop.example /
    web:80`): CreateIngress's rules."""
    out = []
    for i, line in enumerate(x for x in text.splitlines() if x.strip()):
        fields = line.split()
        svc, _, port = fields[3].partition(":") if len(fields) >= 4 else ("", "", "")
        if len(fields) not in (4, 5) or not svc or not port:
            raise ApiError(
                4000,
                "InvalidParameter",
                f"Invalid parameter rules.{i}: write PROTOCOL DOMAIN PATH SERVICE:PORT [LBPORT],"
                f" e.g. 'http shop.example / web:80' (got {line!r})",
            )
        protocol = fields[0].lower()
        default_lb = "443" if protocol == "https" else "80"
        out.append(
            {
                "protocol": protocol,
                "domain": fields[1],
                "url": fields[2],
                "serviceName": svc,
                "servicePort": port,
                "LoadBalancePort": fields[4] if len(fields) == 5 else default_lb,
            }
        )
    return out


def _collector(form: dict[str, str]) -> dict[str, Any]:
    """CreateLogCollector's parameters from the form: containers of every namespace or of
    the named ones, or a host path; out to Kafka."""
    params: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "description": form.get("description") or None,
        "inputType": form.get("inputType", ""),
        "outputType": form.get("outputType") or "kafka",
    }
    if params["inputType"] == "host-log":
        params["inputOption"] = {"path": form.get("path", "").strip()}
    else:
        names = form.get("namespaces", "").split()
        params["inputOption"] = {
            "allNamespaces": "false" if names else "true",
            "namespaces": [{"namespace": n, "allContainers": "true"} for n in names],
        }
    out = {k: form.get(k, "").strip() for k in ("host", "port", "topic") if form.get(k)}
    if params["outputType"] == "ckafka":
        out.update({k: form[k].strip() for k in ("instanceId", "topicId") if form.get(k)})
    params["outputOption"] = out
    return params


def _asg_labels(text: str) -> list[dict[str, str]]:
    return [{"key": k, "value": v.strip()} for k, v in _pairs(text, "=")]


def cluster_more_op(view: View) -> Response:
    """The writes of the 'more' page: ingresses, autoscaling groups and their settings, log
    collection rules."""
    cid, op, form = view.path["cid"], view.path["op"], view.form
    ing = {"clusterId": cid, "ingressName": form.get("ingressName", "").strip(),
           "namespace": form.get("namespace") or "default"}  # fmt: skip
    group = {"clusterId": cid, "autoScalingGroupIds": [form.get("autoScalingGroupId", "")]}
    try:
        if op == "ingress":
            view.call("CreateIngress", ingressDesc=form.get("ingressDesc") or None,
                      rules=ingress_rules(form.get("rules", "")), **ing)  # fmt: skip
        elif op == "ingress-rules":
            view.call("ModifyIngress", rules=ingress_rules(form.get("rules", "")), **ing)
        elif op == "ingress-delete":
            view.call("DeleteIngress", **ing)
        elif op == "asg":
            view.call(
                "CreateClusterAsg",
                clusterId=cid,
                instanceId=form.get("instanceId", ""),
                minSize=form.get("minSize", ""),
                maxSize=form.get("maxSize", ""),
                autoScalingGroupName=form.get("autoScalingGroupName") or None,
                password=form.get("password") or None,
                label=_asg_labels(form.get("labels", "")) or None,
            )
        elif op == "asg-range":
            view.call(
                "ModifyClusterAsgRange",
                clusterId=cid,
                autoScalingGroupId=form.get("autoScalingGroupId", ""),
                minSize=form.get("minSize") or None,
                maxSize=form.get("maxSize") or None,
            )
        elif op in ("asg-enable", "asg-disable", "asg-delete"):
            action = {"asg-enable": "EnableClusterAsg", "asg-disable": "DisableClusterAsg",
                      "asg-delete": "DeleteClusterAsg"}[op]  # fmt: skip
            view.call(action, **group)
        elif op == "scale-down":
            fields = ("expander", "scaleDownDelay", "scaleDownUnneededTime",
                      "scaleDownUtilizationThreshold", "maxEmptyBulkDelete")  # fmt: skip
            view.call(
                "ModifyClusterAsgScaleDown",
                clusterId=cid,
                scaleDownEnabled=form.get("scaleDownEnabled", "0"),
                **{f: form[f] for f in fields if form.get(f)},
            )
        elif op == "log":
            view.call("CreateLogCollector", clusterId=cid, **_collector(form))
        elif op == "log-delete":
            view.call("DeleteLogCollector", clusterId=cid, name=form.get("name", ""))
        else:
            raise ApiError(4000, "InvalidParameter", f"Invalid parameter operation: {op!r}")
    except ApiError as err:
        return cluster_more(view, err, http_status(err))
    return view.redirect(f"{PREFIX}/clusters/{quote(cid)}/more")


def registry_op(view: View) -> Response:
    """Create a namespace; make a repository public or private; mark or unmark a favourite;
    delete tags; a repository's retention and its triggers."""
    op, form = view.path["op"], view.form
    repo = form.get("reponame", "")
    back = f"{PREFIX}/registry"
    on_repo = f"{PREFIX}/registry/repository?name={quote(repo, safe='')}"
    try:
        if op == "namespace":
            view.call("CreateCCRNamespace", namespace=form.get("namespace", ""))
        elif op in ("favor", "unfavor"):
            action = "AddFavor" if op == "favor" else "DeleteFavor"
            view.call(action, reponame=repo, repotype="QCLOUD HUB")
        else:
            back = on_repo
            if op == "public":
                view.call("UpdateRepositoryPublic", reponame=repo, public=form.get("public", ""))
            elif op == "tags-delete":
                tags = form.get("tags", "").split()
                view.call("BatchDeleteTag", reponame=repo, tags=tags or [""])
            elif op == "retention":
                view.call("SetAutoDelStrategy", reponame=repo, type=form.get("type", ""),
                          val=form.get("val", ""))  # fmt: skip
            elif op == "retention-close":
                view.call("CloseAutoDelStrategy", reponame=repo)
            elif op == "trigger":
                view.call(
                    "AddUpdateServiceTrigger",
                    reponame=repo,
                    triggerName=form.get("triggerName", "").strip(),
                    invokeMethod=form.get("invokeMethod", ""),
                    invokeExpr=form.get("invokeExpr", ""),
                    clusterId=form.get("clusterId", ""),
                    namespace=form.get("namespace") or "default",
                    serviceName=form.get("serviceName", "").strip(),
                    containerName=form.get("containerName") or "main",
                    clusterRegion=form.get("clusterRegion") or "1",
                )
            elif op == "trigger-delete":
                view.call("DeleteUpdateServiceTrigger", triggerName=form.get("triggerName", ""))
            else:
                raise ApiError(4000, "InvalidParameter", f"Invalid parameter operation: {op!r}")
    except ApiError as err:
        if back == on_repo and repo:
            return repository(view, err, http_status(err))
        return view.render("error.html", status=http_status(err), error=err)
    return view.redirect(back)
