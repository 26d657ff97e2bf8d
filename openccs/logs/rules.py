"""Collection rules as the shippers see them, which containers a rule takes, and the status of
a cluster's log daemon (one shipper per machine while the cluster has rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from openccs.logs.models import LogCollector, LogOffset
from openccs.store.models import Instance


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
