"""The kinds the Kubernetes API serves (resource, kind, group, scope, verbs), and the names
and ids every object carries (labels and annotations of our own, uids, timestamps)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

K8S_VERSION = "v1.32.0"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_UID_NS = uuid.UUID("6f1c0d4e-8f7a-4c1b-9d35-0c1e5a7b9a10")


@functools.lru_cache(maxsize=65536)
def uid(*parts: object) -> str:
    return str(uuid.uuid5(_UID_NS, "/".join(str(p) for p in parts)))


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass(frozen=True)
class Kind:
    name: str  # plural resource name
    kind: str
    group: str  # "" for core
    version: str
    namespaced: bool
    short: tuple[str, ...]
    verbs: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


READ = ("get", "list", "watch")
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "namespaces",
            "Namespace",
            "",
            "v1",
            False,
            ("ns",),
            (*READ, "create", "delete", "patch", "update"),
        ),
        Kind("nodes", "Node", "", "v1", False, ("no",), (*READ, "patch", "update")),
        Kind("pods", "Pod", "", "v1", True, ("po",), (*READ, "delete")),
        Kind(
            "services",
            "Service",
            "",
            "v1",
            True,
            ("svc",),
            (*READ, "create", "delete", "patch", "update"),
        ),
        Kind("endpoints", "Endpoints", "", "v1", True, ("ep",), READ),
        Kind("events", "Event", "", "v1", True, ("ev",), READ),
        Kind(
            "deployments",
            "Deployment",
            "apps",
            "v1",
            True,
            ("deploy",),
            (*READ, "create", "delete", "patch", "update"),
        ),
        Kind("replicasets", "ReplicaSet", "apps", "v1", True, ("rs",), READ),
    )
}
CATEGORY_ALL = {"pods", "services", "deployments", "replicasets"}
