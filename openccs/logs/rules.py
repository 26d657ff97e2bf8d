"""Collection rules as the shippers see them and which containers a rule takes. What the
front ends read and write (the rules' checks, the log daemon's status) is the logs backend
(`backends/logs.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openccs.logs.models import LogCollector, LogOffset


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
