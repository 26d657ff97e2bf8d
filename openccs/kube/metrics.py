"""metrics.k8s.io/v1beta1 (what metrics-server serves, for kubectl top): NodeMetrics and
PodMetrics from the monitor sampler's last pass, CPU in cores and memory as working set."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from openccs.kube.errors import KubeError
from openccs.monitor.sampler import Sampler, Series

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
MiB = 1024 * 1024


def group() -> dict[str, Any]:
    gv = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def resource_list() -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
             "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
             "verbs": ["get", "list"]},
        ],
    }  # fmt: skip


def _cpu(cores: float) -> str:
    return f"{max(0, round(cores * 1e9))}n"


def _memory(b: float) -> str:
    return f"{max(0, int(b) // 1024)}Ki"


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _window(sampler: Sampler) -> str:
    return f"{sampler.interval:g}s"


def _mine(sampler: Sampler, cluster_id: str, level: str) -> list[Series]:
    return [s for s in sampler.latest if s.level == level and s.labels.get("cluster") == cluster_id]


def node_metrics(
    sampler: Sampler, cluster_id: str, nodes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Nodes (Kubernetes objects, named by LAN address) with a CPU rate in the last pass."""
    by_instance = {
        n["metadata"].get("annotations", {}).get("openccs.io/instance-id"): n for n in nodes
    }
    out = []
    for s in _mine(sampler, cluster_id, "node"):
        node = by_instance.get(s.labels.get("node"))
        if node is None or "node_cpu_usage" not in s.values:
            continue
        cap = node["status"]["capacity"]
        cores = float(cap["cpu"])
        mem = int(cap["memory"].removesuffix("Ki")) * 1024
        out.append(
            {
                "kind": "NodeMetrics",
                "apiVersion": GROUP_VERSION,
                "metadata": {
                    "name": node["metadata"]["name"],
                    "labels": node["metadata"].get("labels", {}),
                    "creationTimestamp": _stamp(sampler.latest_ts),
                },
                "timestamp": _stamp(sampler.latest_ts),
                "window": _window(sampler),
                "usage": {
                    "cpu": _cpu(s.values["node_cpu_usage"] / 100 * cores),
                    "memory": _memory(s.values.get("node_mem_usage", 0.0) / 100 * mem),
                },
            }
        )
    return sorted(out, key=lambda m: m["metadata"]["name"])


def pod_metrics(
    sampler: Sampler, cluster_id: str, pods: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Pods whose every container has a CPU rate in the last pass."""
    usage: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for s in _mine(sampler, cluster_id, "container"):
        key = (s.labels.get("namespace", ""), s.labels.get("pod", ""))
        usage.setdefault(key, {})[s.labels.get("container_name", "")] = s.values
    out = []
    for pod in pods:
        meta = pod["metadata"]
        seen = usage.get((meta.get("namespace", ""), meta["name"]))
        names = [c["name"] for c in pod["spec"]["containers"]]
        if not seen or any("container_cpu_used" not in seen.get(n, {}) for n in names):
            continue
        out.append(
            {
                "kind": "PodMetrics",
                "apiVersion": GROUP_VERSION,
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta.get("namespace", ""),
                    "labels": meta.get("labels", {}),
                    "creationTimestamp": _stamp(sampler.latest_ts),
                },
                "timestamp": _stamp(sampler.latest_ts),
                "window": _window(sampler),
                "containers": [
                    {
                        "name": n,
                        "usage": {
                            "cpu": _cpu(seen[n]["container_cpu_used"]),
                            "memory": _memory(seen[n].get("container_mem_used", 0.0) * MiB),
                        },
                    }
                    for n in names
                ],
            }
        )
    return sorted(out, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))


def answer(
    sampler: Sampler,
    cluster_id: str,
    rest: list[str],
    objects: Callable[[str], list[dict[str, Any]]],
    keep: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """GET /apis/metrics.k8s.io/v1beta1/REST: a list, or one object by name.
    `objects(kind)` gives the cluster's nodes or pods, `keep` applies the selectors."""
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] not in ("nodes", "pods") or len(rest) > 2:
        raise KubeError(404, f"the server could not find the requested resource ({rest})")
    resource, name = rest[0], rest[1] if len(rest) == 2 else ""
    if resource == "nodes" and namespace:
        raise KubeError(404, "nodes are not namespaced")
    found = [
        o
        for o in objects(resource)
        if (not namespace or o["metadata"].get("namespace") == namespace)
        and (not name or o["metadata"]["name"] == name)
        and keep(o)
    ]
    items = (
        node_metrics(sampler, cluster_id, found)
        if resource == "nodes"
        else pod_metrics(sampler, cluster_id, found)
    )
    kind = "NodeMetrics" if resource == "nodes" else "PodMetrics"
    if name:
        if not items:
            raise KubeError(
                404,
                f'{resource}.{GROUP} "{name}" not found',
                details={"name": name, "group": GROUP, "kind": resource},
            )
        return items[0]
    return {
        "kind": f"{kind}List",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": items,
    }
