"""Collection rules as the shippers see them, which containers a rule takes, and the status of
a cluster's log daemon (one shipper per machine while the cluster has rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from openccs.errors import ApiError, not_found
from openccs.logs.models import LogCollector, LogOffset
from openccs.store.models import Instance, K8sNamespace
from openccs.timeutil import utcnow


@dataclass(frozen=True)
class Rule:
    id: int
    cluster_id: str
    name: str
    input_type: str
    input_option: dict[str, Any]
    bootstrap: str  # host:port of the Kafka broker
    topic: str

    @classmethod
    def of(cls, row: LogCollector) -> Rule:
        out = row.output_option
        return cls(
            id=row.id,
            cluster_id=row.cluster_id,
            name=row.name,
            input_type=row.input_type,
            input_option=dict(row.input_option),
            bootstrap=f"{out['host']}:{int(out['port'])}",
            topic=str(out["topic"]),
        )

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.input_option.get("labels") or {})

    def takes_container(self, namespace: str, service: str) -> bool:
        """Whether a container of a pod in `namespace`, made by `service` ("" when the pod
        belongs to no service), is collected by this rule."""
        if self.input_type != "container-log":
            return False
        if self.input_option.get("allNamespaces"):
            return True
        for ns in self.input_option.get("namespaces") or []:
            if ns["namespace"] != namespace:
                continue
            if ns.get("allContainers"):
                return True
            return bool(service) and service in (ns.get("services") or [])
        return False


def load_rules(s: Session) -> dict[str, list[Rule]]:
    """Every cluster's rules, by cluster id."""
    by_cluster: dict[str, list[Rule]] = {}
    for row in s.scalars(select(LogCollector).order_by(LogCollector.id)):
        by_cluster.setdefault(row.cluster_id, []).append(Rule.of(row))
    return by_cluster


def forget_offsets(s: Session, rule_id: int) -> None:
    s.execute(delete(LogOffset).where(LogOffset.rule_id == rule_id))


def wake(services: Any) -> None:
    logs = services.subsystems.logs
    if logs is not None:
        logs.wake()


def daemon_status(s: Session, services: Any, cluster_id: str) -> dict[str, Any]:
    """GetLogDaemonStatus: enabled while the cluster has a rule; desired = its running
    machines, current = machines whose shipper runs and can read the machine's logs."""
    has_rules = bool(
        s.scalar(
            select(func.count())
            .select_from(LogCollector)
            .where(LogCollector.cluster_id == cluster_id)
        )
    )
    if not has_rules:
        return {
            "enabled": False,
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "message": "",
        }
    nodes = list(
        s.scalars(
            select(Instance.id).where(
                Instance.cluster_id == cluster_id, Instance.state == "Running"
            )
        )
    )
    logs = services.subsystems.logs
    running, problems = logs.machine_status(nodes) if logs is not None else (0, [])
    return {
        "enabled": True,
        "currentNumberScheduled": running,
        "desiredNumberScheduled": len(nodes),
        "message": "; ".join(problems),
    }


# --- what the actions read and write ---------------------------------------------------------
def cluster_namespaces(s: Session, cluster_id: str) -> set[str]:
    return set(s.scalars(select(K8sNamespace.name).where(K8sNamespace.cluster_id == cluster_id)))


def collector_by_name(s: Session, cluster_id: str, name: str) -> LogCollector | None:
    return s.scalars(
        select(LogCollector).where(LogCollector.cluster_id == cluster_id, LogCollector.name == name)
    ).first()


def get_collector(s: Session, cluster_id: str, name: str) -> LogCollector:
    rule = collector_by_name(s, cluster_id, name)
    if rule is None:
        raise not_found("log collector", f"{name} in cluster {cluster_id}")
    return rule


@dataclass
class CollectorSpec:
    """What a log collector rule says, checked by its front end."""

    description: str
    input_type: str
    output_type: str
    input_option: dict[str, Any]
    output_option: dict[str, Any]


def create_collector(
    s: Session, account_id: int, cluster_id: str, name: str, spec: CollectorSpec
) -> LogCollector:
    if collector_by_name(s, cluster_id, name) is not None:
        raise ApiError(
            4000,
            "LogCollectorExists",
            f"Invalid parameter name: a log collector named {name} already exists in"
            f" cluster {cluster_id}",
        )
    rule = LogCollector(account_id=account_id, cluster_id=cluster_id, name=name, **spec.__dict__)
    s.add(rule)
    s.flush()
    return rule


def update_collector(s: Session, rule: LogCollector, spec: CollectorSpec) -> None:
    if rule.input_type != spec.input_type:
        # Offsets belong to the files a rule reads: a new kind of input starts afresh.
        forget_offsets(s, rule.id)
    for attr, value in spec.__dict__.items():
        setattr(rule, attr, value)
    rule.updated_at = utcnow()


def list_collectors(
    s: Session, cluster_id: str, offset: int, limit: int
) -> tuple[int, list[LogCollector]]:
    where = LogCollector.cluster_id == cluster_id
    total = s.scalar(select(func.count()).select_from(LogCollector).where(where)) or 0
    page = s.scalars(
        select(LogCollector)
        .where(where)
        .order_by(LogCollector.created_at, LogCollector.id)
        .offset(offset)
        .limit(limit)
    )
    return total, list(page)


def delete_collector(s: Session, rule: LogCollector) -> None:
    forget_offsets(s, rule.id)
    s.delete(rule)
