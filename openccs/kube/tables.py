"""The Tables kubectl prints: columns per kind, and a row per object."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def age(value: datetime | None, now: datetime) -> str:
    """Kubernetes' short durations: 45s, 12m, 3h5m, 2d4h."""
    if value is None:
        return "<unknown>"
    sec = max(0, int((now - value).total_seconds()))
    if sec < 120:
        return f"{sec}s"
    minutes = sec // 60
    if minutes < 10:
        return f"{minutes}m{sec % 60}s" if sec % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60}m" if hours < 8 and minutes % 60 else f"{hours}h"
    days = hours // 24
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": "", "priority": priority}


def _dur(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "<unknown>"
    return age(datetime.fromisoformat(stamp.rstrip("Z")), now)


def _images(obj: dict[str, Any]) -> tuple[str, str]:
    cs = obj["spec"]["template"]["spec"]["containers"]
    return ",".join(c["name"] for c in cs), ",".join(c["image"] for c in cs)


def _selector(sel: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sel.items()) or "<none>"


def _ports(obj: dict[str, Any]) -> str:
    return (
        ",".join(
            f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p['protocol']}"
            for p in obj["spec"].get("ports", [])
        )
        or "<none>"
    )


def _external_ip(obj: dict[str, Any]) -> str:
    if obj["spec"].get("type") != "LoadBalancer":
        return "<none>"
    ingress = obj.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    return ",".join(i["ip"] for i in ingress) or "<pending>"


def _node_row(o: dict[str, Any], now: datetime) -> list[Any]:
    ready = o["status"]["conditions"][0]["status"] == "True"
    status = "Ready" if ready else "NotReady"
    if o["spec"].get("unschedulable"):
        status += ",SchedulingDisabled"
    info = o["status"]["nodeInfo"]
    return [
        o["metadata"]["name"],
        status,
        "<none>",
        _dur(o["metadata"]["creationTimestamp"], now),
        info["kubeletVersion"],
        o["status"]["addresses"][0]["address"],
        "<none>",
        info["osImage"] or "<unknown>",
        info["kernelVersion"] or "<unknown>",
        info["containerRuntimeVersion"],
    ]


def pod_text(o: dict[str, Any]) -> str:
    """The STATUS column of `kubectl get pods`."""
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    if not o["spec"].get("nodeName"):
        return "Pending"
    cs = o["status"].get("containerStatuses", [])
    if not cs:
        return "ContainerCreating"
    for c in cs:
        state = c["state"]
        if "waiting" in state:
            reason = state["waiting"].get("reason", "")
            return "ContainerCreating" if reason in ("", "Pending", "Pulling") else str(reason)
        if "terminated" in state:
            return str(state["terminated"].get("reason") or "Error")
    return "Running"


def _pod_row(o: dict[str, Any], now: datetime) -> list[Any]:
    text = pod_text(o)
    cs = o["status"].get("containerStatuses", [])
    total = len(o["spec"]["containers"])
    ready = sum(1 for c in cs if c["ready"])
    restarts = sum(c["restartCount"] for c in cs)
    return [
        o["metadata"]["name"],
        f"{ready}/{total}",
        text,
        restarts,
        _dur(o["metadata"]["creationTimestamp"], now),
        o["status"].get("podIP", "<none>"),
        o["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def _deploy_row(o: dict[str, Any], now: datetime) -> list[Any]:
    st = o["status"]
    names, images = _images(o)
    return [
        o["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{o['spec']['replicas']}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        _dur(o["metadata"]["creationTimestamp"], now),
        names,
        images,
        _selector(o["spec"]["selector"]["matchLabels"]),
    ]


def _rs_row(o: dict[str, Any], now: datetime) -> list[Any]:
    st = o["status"]
    names, images = _images(o)
    return [
        o["metadata"]["name"],
        o["spec"]["replicas"],
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        _dur(o["metadata"]["creationTimestamp"], now),
        names,
        images,
        _selector(o["spec"]["selector"]["matchLabels"]),
    ]


def _svc_row(o: dict[str, Any], now: datetime) -> list[Any]:
    return [
        o["metadata"]["name"],
        o["spec"]["type"],
        o["spec"].get("clusterIP", "<none>"),
        _external_ip(o),
        _ports(o),
        _dur(o["metadata"]["creationTimestamp"], now),
        _selector(o["spec"].get("selector", {})),
    ]


def _ep_row(o: dict[str, Any], now: datetime) -> list[Any]:
    eps = [
        f"{a['ip']}:{p['port']}"
        for s in o["subsets"]
        for a in s.get("addresses", [])
        for p in s["ports"]
    ]
    text = ",".join(eps[:3]) + (f" + {len(eps) - 3} more..." if len(eps) > 3 else "")
    return [o["metadata"]["name"], text or "<none>", _dur(o["metadata"]["creationTimestamp"], now)]


def _ns_row(o: dict[str, Any], now: datetime) -> list[Any]:
    return [
        o["metadata"]["name"],
        o["status"]["phase"],
        _dur(o["metadata"]["creationTimestamp"], now),
    ]


def _ev_row(o: dict[str, Any], now: datetime) -> list[Any]:
    inv = o["involvedObject"]
    return [
        _dur(o["lastTimestamp"], now),
        o["type"],
        o["reason"],
        f"{inv['kind'].lower()}/{inv['name']}",
        o["message"],
        o["source"]["component"],
        _dur(o["firstTimestamp"], now),
        o["count"],
        o["metadata"]["name"],
    ]


COLUMNS: dict[str, list[dict[str, Any]]] = {
    "nodes": [
        _col("Name", fmt="name"),
        _col("Status"),
        _col("Roles"),
        _col("Age"),
        _col("Version"),
        _col("Internal-IP", priority=1),
        _col("External-IP", priority=1),
        _col("OS-Image", priority=1),
        _col("Kernel-Version", priority=1),
        _col("Container-Runtime", priority=1),
    ],
    "pods": [
        _col("Name", fmt="name"),
        _col("Ready"),
        _col("Status"),
        _col("Restarts", "integer"),
        _col("Age"),
        _col("IP", priority=1),
        _col("Node", priority=1),
        _col("Nominated Node", priority=1),
        _col("Readiness Gates", priority=1),
    ],
    "deployments": [
        _col("Name", fmt="name"),
        _col("Ready"),
        _col("Up-to-date", "integer"),
        _col("Available", "integer"),
        _col("Age"),
        _col("Containers", priority=1),
        _col("Images", priority=1),
        _col("Selector", priority=1),
    ],
    "replicasets": [
        _col("Name", fmt="name"),
        _col("Desired", "integer"),
        _col("Current", "integer"),
        _col("Ready", "integer"),
        _col("Age"),
        _col("Containers", priority=1),
        _col("Images", priority=1),
        _col("Selector", priority=1),
    ],
    "services": [
        _col("Name", fmt="name"),
        _col("Type"),
        _col("Cluster-IP"),
        _col("External-IP"),
        _col("Port(s)"),
        _col("Age"),
        _col("Selector", priority=1),
    ],
    "endpoints": [_col("Name", fmt="name"), _col("Endpoints"), _col("Age")],
    "namespaces": [_col("Name", fmt="name"), _col("Status"), _col("Age")],
    "events": [
        _col("Last Seen"),
        _col("Type"),
        _col("Reason"),
        _col("Object"),
        _col("Message"),
        _col("Source", priority=1),
        _col("First Seen", priority=1),
        _col("Count", "integer", priority=1),
        _col("Name", priority=1),
    ],
}


def table_row(kind: str, obj: dict[str, Any], now: datetime) -> list[Any]:
    if kind == "nodes":
        return _node_row(obj, now)
    if kind == "pods":
        return _pod_row(obj, now)
    if kind == "deployments":
        return _deploy_row(obj, now)
    if kind == "replicasets":
        return _rs_row(obj, now)
    if kind == "services":
        return _svc_row(obj, now)
    if kind == "endpoints":
        return _ep_row(obj, now)
    if kind == "namespaces":
        return _ns_row(obj, now)
    return _ev_row(obj, now)
