"""Backends: each resource group's rules under every front end (the v2 actions, the
Kubernetes API, the console), like moto's models: typed inputs, typed results, and the
effects a change leaves to do once its transaction commits, declared on one `Work`.

A front end decodes its wire into a backend call and encodes the result; it holds no rule
and calls no other front end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from openccs.server import Services


@dataclass
class Effects:
    """What a change leaves to do after its transaction commits (never before: a task or a
    controller must see the committed state). The workload engine needs no entry: it is
    woken by the commit itself (it notes the clusters whose rows a transaction changed)."""

    tasks: list[int] = field(default_factory=list)  # task ids to hand to the runner
    wake_traffic: bool = False  # load balancers, node ports, ingresses changed
    wake_logs: bool = False  # log collection rules changed (shippers start or stop)

    def run(self, services: Services) -> None:
        for task_id in self.tasks:
            services.tasks.submit(task_id)
        if self.wake_traffic and services.subsystems.traffic is not None:
            services.subsystems.traffic.wake()
        if self.wake_logs and services.subsystems.logs is not None:
            services.subsystems.logs.wake()


@dataclass
class Work:
    """One backend call's unit of work: its transaction, the account it acts for, the
    server's services, and the effects it declares. The front end runs `effects` once the
    transaction has committed (and drops them when it rolls back, e.g. a dry run)."""

    db: Session
    account_id: int
    services: Services
    effects: Effects = field(default_factory=Effects)

    def end_transaction(self) -> None:
        """Commit now, before I/O the call does next (read, work, write: no docker, network
        or subprocess I/O while a transaction is open). The database is not used again in
        this unit of work: it refuses."""
        self.db.commit()
