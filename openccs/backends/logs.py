"""The logs backend: a cluster's log collection rules (which containers' logs or which
machine files go to which Kafka topic) and the status of its log daemon.

Inputs are typed (`CollectorSpec`: what to read, `ContainerLogs` or `HostLogs`, and where
to ship it, `KafkaOutput`), checked here against the rules and the cluster's namespaces;
answers are small typed results each front end encodes. A change wakes the shippers after
its commit (`Effects.wake_logs`): the first rule of a cluster starts a shipper on each of
its machines, the last one's deletion stops them. The shippers read the rules through
`logs/rules.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from openccs.backends import Work
from openccs.domain import cloud
from openccs.errors import already_exists, invalid_parameter, not_found, operation_failed
from openccs.logs import rules
from openccs.logs.models import LogCollector
from openccs.store.models import Cluster, Instance, K8sNamespace
from openccs.timeutil import utcnow

LABEL_KEY = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
SERVICE_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# Where the rule's options were given, for the errors that name them.
INPUT = "inputOption"
OUTPUT = "outputType"


# -- typed inputs and results ----------------------------------------------------------------


@dataclass(frozen=True)
class NamespaceLogs:
    """The containers of one namespace a rule takes: all, or those of `services`."""

    namespace: str
    all_containers: bool
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerLogs:
    """Containers' standard output and error: of every namespace, or of those named."""

    all_namespaces: bool
    namespaces: tuple[NamespaceLogs, ...] = ()

    input_type = "container-log"

    def stored(self) -> dict[str, Any]:
        if self.all_namespaces:
            return {"allNamespaces": True}
        return {
            "allNamespaces": False,
            "namespaces": [
                {
                    "namespace": ns.namespace,
                    "allContainers": ns.all_containers,
                    "services": list(ns.services),
                }
                for ns in self.namespaces
            ],
        }


@dataclass(frozen=True)
class HostLogs:
    """Files of the cluster's machines (a path or glob inside each machine's disk), shipped
    with `labels`."""

    path: str
    labels: dict[str, str] = field(default_factory=dict)

    input_type = "host-log"

    def stored(self) -> dict[str, Any]:
        return {"path": self.path, "labels": dict(self.labels)}


@dataclass(frozen=True)
class KafkaOutput:
    """A Kafka broker and topic; a CKafka output names its instance and topic ids too."""

    host: str
    port: int
    topic: str
    instance_id: str | None = None
    topic_id: str | None = None

    def stored(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "port": self.port, "topic": self.topic}
        if self.instance_id is not None:
            out["instanceId"] = self.instance_id
        if self.topic_id is not None:
            out["topicId"] = self.topic_id
        return out


@dataclass(frozen=True)
class CollectorSpec:
    """What a rule says. `output` is None for an output type this deployment cannot ship
    to (CLS), which the rules refuse."""

    description: str
    input: ContainerLogs | HostLogs
    output_type: str  # kafka, ckafka, cls
    output: KafkaOutput | None


@dataclass(frozen=True)
class Collector:
    """A rule as the front ends show it."""

    name: str
    description: str
    cluster_id: str
    cluster_name: str
    created_at: datetime
    input_type: str
    output_type: str
    input_option: dict[str, Any]
    output_option: dict[str, Any]

    @classmethod
    def of(cls, rule: LogCollector, cluster: Cluster) -> Collector:
        return cls(
            name=rule.name,
            description=rule.description,
            cluster_id=cluster.id,
            cluster_name=cluster.name,
            created_at=rule.created_at,
            input_type=rule.input_type,
            output_type=rule.output_type,
            input_option=rule.input_option,
            output_option=rule.output_option,
        )


@dataclass(frozen=True)
class DaemonStatus:
    """The cluster's log daemon: enabled while the cluster has a rule; `desired` its running
    machines, `current` those whose shipper runs and can read the machine's logs."""

    enabled: bool
    current: int
    desired: int
    message: str


# -- the rules ------------------------------------------------------------------------------


def cluster_of(w: Work, cluster_id: str, changing: bool = False) -> Cluster:
    """A cluster of the caller's account (5000 for any other); one whose rules change must
    not be being created or deleted (5100)."""
    cluster = cloud.get_cluster(w.db, w.account_id, cluster_id)
    if changing and cluster.status in ("Creating", "Deleting"):
        raise operation_failed(
            f"cluster {cluster.id} is {cluster.status}: try again later", "ClusterStateError"
        )
    return cluster


def _check_host(host: HostLogs) -> None:
    path = host.path
    if "\0" in path or ".." in path.split("/") or path.endswith("/"):
        raise invalid_parameter(
            f"{INPUT}.path", "an absolute file path or glob, without '..', not a directory"
        )
    for key, value in host.labels.items():
        if len(key) > 63 or not re.match(LABEL_KEY, key):
            raise invalid_parameter(f"{INPUT}.labels.{key}", "not a valid label key")
        if len(value) > 1024:
            raise invalid_parameter(f"{INPUT}.labels.{key}", "at most 1024 characters")


def _check_containers(w: Work, cluster: Cluster, opt: ContainerLogs) -> None:
    if opt.all_namespaces:
        if opt.namespaces:
            raise invalid_parameter(f"{INPUT}.namespaces", "only with allNamespaces=false")
        return
    if not opt.namespaces:
        raise invalid_parameter(
            f"{INPUT}.namespaces", "required when allNamespaces is false (at least one)"
        )
    existing = set(
        w.db.scalars(select(K8sNamespace.name).where(K8sNamespace.cluster_id == cluster.id))
    )
    seen: set[str] = set()
    for i, ns in enumerate(opt.namespaces):
        at = f"{INPUT}.namespaces.{i}"
        if ns.namespace in seen:
            raise invalid_parameter(f"{at}.namespace", f"{ns.namespace} given twice")
        seen.add(ns.namespace)
        if ns.namespace not in existing:
            raise invalid_parameter(
                f"{at}.namespace", f"no namespace {ns.namespace} in cluster {cluster.id}"
            )
        if ns.all_containers and ns.services:
            raise invalid_parameter(f"{at}.services", "only with allContainers=false")
        if not ns.all_containers and not ns.services:
            raise invalid_parameter(
                f"{at}.services", "required when allContainers is false (at least one service)"
            )
        for j, svc in enumerate(ns.services):
            if len(svc) > 63 or not re.match(SERVICE_NAME, svc):
                raise invalid_parameter(f"{at}.services.{j}", f"{svc!r} is not a service name")
        if len(set(ns.services)) != len(ns.services):
            raise invalid_parameter(f"{at}.services", "a service is given twice")


def _checked(w: Work, cluster: Cluster, spec: CollectorSpec) -> dict[str, Any]:
    """The rule's columns, once what it reads and where it ships are allowed."""
    if isinstance(spec.input, HostLogs):
        _check_host(spec.input)
    else:
        _check_containers(w, cluster, spec.input)
    if spec.output is None:
        raise invalid_parameter(
            OUTPUT,
            f"{spec.output_type}: this deployment has no CLS (Cloud Log Service);"
            " ship to kafka or ckafka",
        )
    return {
        "description": spec.description,
        "input_type": spec.input.input_type,
        "output_type": spec.output_type,
        "input_option": spec.input.stored(),
        "output_option": spec.output.stored(),
    }


def _by_name(w: Work, cluster: Cluster, name: str) -> LogCollector | None:
    return w.db.scalars(
        select(LogCollector).where(LogCollector.cluster_id == cluster.id, LogCollector.name == name)
    ).first()


def find_collector(w: Work, cluster: Cluster, name: str) -> LogCollector:
    """The cluster's rule of that name (5000 if it has none)."""
    rule = _by_name(w, cluster, name)
    if rule is None:
        raise not_found("log collector", f"{name} in cluster {cluster.id}")
    return rule


def create_collector(w: Work, cluster: Cluster, name: str, spec: CollectorSpec) -> Collector:
    columns = _checked(w, cluster, spec)
    if _by_name(w, cluster, name) is not None:
        raise already_exists(
            "LogCollectorExists",
            f"Invalid parameter name: a log collector named {name} already exists in"
            f" cluster {cluster.id}",
        )
    rule = LogCollector(account_id=w.account_id, cluster_id=cluster.id, name=name, **columns)
    w.db.add(rule)
    w.db.flush()
    w.effects.wake_logs = True
    return Collector.of(rule, cluster)


def update_collector(
    w: Work, cluster: Cluster, rule: LogCollector, spec: CollectorSpec
) -> Collector:
    """The whole rule again; a rule that reads another kind of input starts afresh."""
    columns = _checked(w, cluster, spec)
    if rule.input_type != columns["input_type"]:
        # Offsets belong to the files a rule reads.
        rules.forget_offsets(w.db, rule.id)
    for attr, value in columns.items():
        setattr(rule, attr, value)
    rule.updated_at = utcnow()
    w.effects.wake_logs = True
    return Collector.of(rule, cluster)


def collectors(w: Work, cluster: Cluster, offset: int, limit: int) -> tuple[int, list[Collector]]:
    """The cluster's rules, oldest first: the total and one page."""
    where = LogCollector.cluster_id == cluster.id
    total = w.db.scalar(select(func.count()).select_from(LogCollector).where(where)) or 0
    page = w.db.scalars(
        select(LogCollector)
        .where(where)
        .order_by(LogCollector.created_at, LogCollector.id)
        .offset(offset)
        .limit(limit)
    )
    return total, [Collector.of(rule, cluster) for rule in page]


def collector(w: Work, cluster: Cluster, name: str) -> Collector:
    return Collector.of(find_collector(w, cluster, name), cluster)


def name_taken(w: Work, cluster: Cluster, name: str) -> bool:
    return _by_name(w, cluster, name) is not None


def delete_collector(w: Work, cluster: Cluster, name: str) -> None:
    rule = find_collector(w, cluster, name)
    rules.forget_offsets(w.db, rule.id)
    w.db.delete(rule)
    w.effects.wake_logs = True


def daemon_status(w: Work, cluster: Cluster) -> DaemonStatus:
    has_rules = bool(
        w.db.scalar(
            select(func.count())
            .select_from(LogCollector)
            .where(LogCollector.cluster_id == cluster.id)
        )
    )
    if not has_rules:
        return DaemonStatus(enabled=False, current=0, desired=0, message="")
    nodes = list(
        w.db.scalars(
            select(Instance.id).where(
                Instance.cluster_id == cluster.id, Instance.state == "Running"
            )
        )
    )
    logs = w.services.subsystems.logs
    running, problems = logs.machine_status(nodes) if logs is not None else (0, [])
    return DaemonStatus(
        enabled=True, current=running, desired=len(nodes), message="; ".join(problems)
    )
