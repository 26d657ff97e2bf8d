"""The faults backend (extension actions, outside the API document): a fault's target among
the caller's resources, injecting it through the fault keeper, the account's faults, ending
one, and its report.

Inputs are typed (`faults.records.FaultRequest`); results are the fault rows (and the
report), which the front end encodes. Which faults a sub-account may see or start is its
front end's check, on the resolved target (`FaultSpec`) or the row.
"""

from __future__ import annotations

from typing import Any

from openccs.backends import Work
from openccs.errors import invalid_parameter, operation_failed
from openccs.faults import records
from openccs.faults.backend import NO_DISK, FaultError
from openccs.faults.component import Faults, FaultSpec
from openccs.faults.models import Fault
from openccs.faults.report import fault_report
from openccs.subsystems import need


def _keeper(w: Work) -> Faults:
    return need(w.services.subsystems.faults, "faults")


def target(w: Work, req: records.FaultRequest) -> FaultSpec:
    """What the fault breaks, among the caller's own resources (another account's are not
    found), or the document's error for what is missing or wrong."""
    return records.resolve(w.db, w.account_id, req)


def inject(w: Work, spec: FaultSpec) -> str:
    """Record the fault and break what it names; its id. A disk can only fill on a machine
    with a disk of its own; a fault that could not be injected is a 5100 saying why (the
    keeper has undone it). The keeper records the fault and breaks the machine in
    transactions of its own, with the call's (which only read the target) ended."""
    keeper = _keeper(w)
    with w.outside():
        if spec.kind == "disk-fill" and not keeper.backend.has_disk(spec.instance_id):
            raise invalid_parameter("kind", f"machine {spec.instance_id} {NO_DISK}")
        try:
            return keeper.start_fault(spec)
        except FaultError as exc:
            raise operation_failed(str(exc), "FaultNotInjected") from None


def faults(w: Work, fault_id: str | None, cluster_id: str | None, state: str | None) -> list[Fault]:
    """The account's faults, newest first, by id, cluster and state when given."""
    return records.list_faults(w.db, w.account_id, fault_id, cluster_id, state)


def fault(w: Work, fault_id: str) -> Fault:
    """A fault of the caller's account (5000 for any other)."""
    return records.own_fault(w.db, w.account_id, fault_id)


def end(w: Work, found: Fault) -> Fault:
    """Restore what an active fault changed, now; an ended fault stays as it is. The fault
    as it then is."""
    fault_id = found.id
    with w.outside():  # the keeper restores the machine and records it on its own
        _keeper(w).end_fault(fault_id)
    return fault(w, fault_id)  # read again: the keeper changed it


def report(w: Work, found: Fault) -> dict[str, Any]:
    """For the fault's window: the services it touched, their pods lost and replaced, and
    the probe loop's failed requests."""
    return fault_report(w.db, found)
