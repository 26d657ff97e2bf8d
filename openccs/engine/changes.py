"""What a transaction changed, as the engine reads it: one set of session listeners for both
its consumers.

Every transaction of the store's sessions passes through these listeners, the API's
included (not the replay guard's nonces, written outside the ORM), so the common commit
(one that writes no row the engine works from, or none at all) must cost next to nothing.
After each flush the classes it wrote decide, each once, whether anyone cares (clusters,
machines, namespaces, services, replica sets, pods, load balancers): a flush of no such
class is done with after a dictionary lookup per class; in one that has some, any other
object costs a dictionary lookup and nothing more (no history, no `is_modified`). What
the cared-for ones changed goes into one `Changes` in `Session.info`, created by the first
of them, and on commit the one after-commit listener hands it over whole (`Engine` and
`Controllers` take what they need; a commit without one costs them a dictionary pop):

- the clusters whose rows the engine works from were written (their generations move),
- the machines whose pods (where they are and where they were) or row were written, and the
  clusters whose row was written or one of whose pods moved from a machine not known (all
  their agents read it),
- whether a load balancer was written (the VIPs are the engine's global pass's),
- the services whose rows (the service, a pod of it, a revision of it) were written, per
  cluster, for the controllers; whether some were written that cannot be named,
- whether an UPDATE or DELETE statement (not a flush) touched those tables: its rows are not
  known, so it counts for every cluster and machine (`bulk`) and, on services, pods or
  replica sets, for every service (`services_unknown`).

The note is taken after the flush, when new rows have their ids and every object still
holds its history. Values come from what the objects hold; a row written but not deleted
whose column is not loaded is read (as any attribute access would), and a deleted one whose
column is not loaded counts as a change of everything (the row is gone). Events, samples and
the like are no reason for a pass. A rollback drops the note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import InstanceState, ORMExecuteState, Session
from sqlalchemy.orm.attributes import get_history, instance_state
from sqlalchemy.orm.base import PassiveFlag
from sqlalchemy.orm.util import identity_key

from openccs.store.models import Cluster, Instance, K8sNamespace, Pod, ReplicaSet, Service
from openccs.traffic.models import LoadBalancer

# The Session.info key of a transaction's `Changes`.
CHANGES = "engine_changes"


@dataclass(slots=True, eq=False)
class Changes:
    """What one transaction wrote of the rows the engine works from (see the module)."""

    clusters: set[str] = field(default_factory=set)
    machines: set[str] = field(default_factory=set)
    shared: set[str] = field(default_factory=set)
    vips: bool = False
    bulk: bool = False
    services: dict[str, set[int]] = field(default_factory=dict)
    services_unknown: bool = False
    # The cluster whose controllers' pass this transaction is (its work is undone on
    # rollback, so that cluster's next pass does everything).
    taken: str | None = None

    def service(self, cluster_id: str | None, service_id: int | None) -> None:
        if cluster_id is None or service_id is None:
            self.services_unknown = True
        else:
            self.services.setdefault(cluster_id, set()).add(service_id)


def changes_of(session: Session) -> Changes:
    """The transaction's note (created on first use)."""
    note: Changes | None = session.info.get(CHANGES)
    if note is None:
        note = session.info[CHANGES] = Changes()
    return note


class _Gone(Exception):
    """A deleted row's column that its object does not hold."""


def _value(state: InstanceState[Any], key: str, deleted: bool) -> Any:
    have = state.dict
    if key in have:
        return have[key]
    if deleted:
        raise _Gone(key)
    return getattr(state.obj(), key)


# How each watched class is noted: (note, session, state, new, deleted).
_Noter = Callable[[Changes, Session, InstanceState[Any], bool, bool], None]


def _cluster(note: Changes, _s: Session, state: InstanceState[Any], _new: bool, gone: bool) -> None:
    cluster_id = _value(state, "id", gone)
    note.clusters.add(cluster_id)
    note.shared.add(cluster_id)


def _instance(
    note: Changes, _s: Session, state: InstanceState[Any], _new: bool, gone: bool
) -> None:
    cluster_id = _value(state, "cluster_id", gone)
    if cluster_id:
        note.clusters.add(cluster_id)
    note.machines.add(_value(state, "id", gone))  # also one that left its cluster


def _namespace(
    note: Changes, _s: Session, state: InstanceState[Any], _new: bool, gone: bool
) -> None:
    cluster_id = _value(state, "cluster_id", gone)
    if cluster_id:
        note.clusters.add(cluster_id)


def _load_balancer(
    note: Changes, _s: Session, state: InstanceState[Any], _new: bool, gone: bool
) -> None:
    cluster_id = _value(state, "cluster_id", gone)
    if cluster_id:
        note.clusters.add(cluster_id)
        note.vips = True


def _service(note: Changes, _s: Session, state: InstanceState[Any], _new: bool, gone: bool) -> None:
    cluster_id = _value(state, "cluster_id", gone)
    if cluster_id:
        note.clusters.add(cluster_id)
    have = state.dict
    note.service(have.get("cluster_id"), have.get("id"))


def _pod(note: Changes, _s: Session, state: InstanceState[Any], new: bool, gone: bool) -> None:
    cluster_id = _value(state, "cluster_id", gone)
    if cluster_id:
        note.clusters.add(cluster_id)
        # The machines it is on and was on; where it was is not known when its machine
        # changed without the old value loaded: every machine of the cluster then.
        node_id = _value(state, "node_id", gone)
        if node_id:
            note.machines.add(node_id)
        history = get_history(state.obj(), "node_id", PassiveFlag.PASSIVE_NO_INITIALIZE)
        note.machines.update(n for n in history.deleted if n)
        if not (new or not history.added or history.deleted):
            note.shared.add(cluster_id)
    have = state.dict
    if "service_id" not in have:
        note.services_unknown = True
    elif have["service_id"] is not None:
        note.service(have.get("cluster_id"), have["service_id"])


def _replica_set(
    note: Changes, session: Session, state: InstanceState[Any], _new: bool, _gone: bool
) -> None:
    # Controllers only: a revision is the business of its service's controller.
    service_id = state.dict.get("service_id")
    svc = session.identity_map.get(identity_key(Service, service_id))
    cluster_id = instance_state(svc).dict.get("cluster_id") if svc is not None else None
    note.service(cluster_id, service_id)


_NOTERS: dict[type, _Noter] = {
    Cluster: _cluster,
    Instance: _instance,
    K8sNamespace: _namespace,
    LoadBalancer: _load_balancer,
    Service: _service,
    Pod: _pod,
    ReplicaSet: _replica_set,
}
# Per class met so far: its noter, None for a class nobody watches (decided once).
_BY_CLASS: dict[type, _Noter | None] = dict(_NOTERS)
# The tables whose UPDATE/DELETE statements count for every cluster and machine, and
# those that also count for every service.
_BULK_CLASSES = frozenset(_NOTERS)
_SERVICE_CLASSES = frozenset((Service, Pod, ReplicaSet))


def _noter(cls: type) -> _Noter | None:
    try:
        return _BY_CLASS[cls]
    except KeyError:  # a class not met yet: a subclass of a watched one, or nobody's
        found = next((fn for base, fn in _NOTERS.items() if issubclass(cls, base)), None)
        _BY_CLASS[cls] = found
        return found


def _written(obj: object, state: InstanceState[Any]) -> bool:
    """Whether a dirty object's values changed (as `Session.is_modified`, which asks every
    attribute; only those set since the object was loaded can have changed)."""
    return any(
        get_history(obj, key, PassiveFlag.NO_CHANGE).has_changes() for key in state.committed_state
    )


def note_flush(session: Session, flush_context: Any) -> None:
    """After each flush: note what its watched objects wrote (see the module)."""
    # The classes the flush wrote, one entry each: none watched, nothing to look at (the
    # flush context's own record; without it, every object is asked).
    mappers = getattr(flush_context, "mappers", None)
    if mappers is not None and not any(_noter(m.class_) for m in mappers):
        return
    note: Changes | None = None
    for objects, new, deleted in (
        (session.new, True, False),
        (session.dirty, False, False),
        (session.deleted, False, True),
    ):
        for obj in objects:
            noter = _noter(type(obj))
            if noter is None:
                continue
            state = instance_state(obj)
            if not (new or deleted or _written(obj, state)):
                continue
            if note is None:
                note = changes_of(session)
            try:
                noter(note, session, state, new, deleted)
            except _Gone:  # which cluster, machine or service it was is not known
                note.bulk = note.services_unknown = True


def note_statement(state: ORMExecuteState) -> None:
    """An UPDATE or DELETE statement (not a flush) on the watched tables: its rows are not
    known."""
    if not (state.is_update or state.is_delete):
        return
    classes = {m.class_ for m in state.all_mappers}
    if classes & _BULK_CLASSES:
        note = changes_of(state.session)
        note.bulk = True
        if classes & _SERVICE_CLASSES:
            note.services_unknown = True


def take(session: Session) -> Changes | None:
    """The transaction's note, removed from the session (on commit or rollback)."""
    return session.info.pop(CHANGES, None)
