"""The registry's notifications (push, pull, delete) keep the tag index, pull counts,
triggers and retention current; reconciliation repairs what a lost notification missed."""

from __future__ import annotations

import collections
import threading
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from openccs.errors import ApiError
from openccs.instruments import REGISTRY_EVENTS
from openccs.log import get_logger, log_event
from openccs.timeutil import utcnow

from . import domain, retention, triggers
from .client import INDEX_TYPES, INTERNAL_SUBJECT, MANIFEST_TYPES, RegistryError
from .index import image_details, parse_time
from .models import CcrRepository, CcrTag
from .runtime import RegistryRuntime

log = get_logger("openccs.registry.notifications")

_MANIFESTS = frozenset(MANIFEST_TYPES + INDEX_TYPES)


class EventLog:
    """Ids of recently handled events: a retried delivery is not counted twice."""

    def __init__(self, size: int = 10000) -> None:
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def seen(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self._seen

    def add(self, event_id: str) -> None:
        with self._lock:
            self._seen[event_id] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)


def _ensure_repository(s: Any, name: str) -> CcrRepository | None:
    """The repository of a push; a first push into an own namespace creates it (private)."""
    repo = domain.repository_by_name(s, name)
    if repo is not None:
        return repo
    if not domain.REPOSITORY_RE.match(name):
        return None
    ns = domain.namespace_by_name(s, name.split("/", 1)[0])
    if ns is None:
        return None
    # The token server checked the quota when it granted the push.
    return domain.create_repository(s, ns, name, check_quota=False)


def on_push(rt: RegistryRuntime, repo_name: str, tag: str, digest: str, timestamp: str) -> None:
    client = rt.need_client()
    details = image_details(client, repo_name, digest)
    if details is None:
        return
    push_time = parse_time(timestamp) or utcnow()
    removal = None
    for attempt in (1, 2):
        try:
            with rt.store.session() as s:
                repo = _ensure_repository(s, repo_name)
                if repo is None:
                    log_event(log, "push outside any namespace ignored", repository=repo_name)
                    return
                domain.record_tag(s, repo, tag, details, push_time)
                triggers.fire_matching(s, repo, tag, rt.host)
                removal = retention.on_push(s, repo)
            break
        except (IntegrityError, ApiError):
            # DuplicateImage created the repository or tag meanwhile: once more sees its row.
            if attempt == 2:
                raise
    log_event(log, "tag pushed", repository=repo_name, tag=tag, digest=digest)
    if removal is not None:
        # The registry's half outside the transaction that recorded the push.
        retention.carry_out(rt, removal)


def on_pull(rt: RegistryRuntime, repo_name: str) -> None:
    with rt.store.session() as s:
        s.execute(
            update(CcrRepository)
            .where(CcrRepository.name == repo_name)
            .values(pull_count=CcrRepository.pull_count + 1)
        )


def on_delete(rt: RegistryRuntime, repo_name: str, digest: str, tag: str) -> None:
    with rt.store.session() as s:
        repo = domain.repository_by_name(s, repo_name)
        if repo is None:
            return
        q = delete(CcrTag).where(CcrTag.repository_id == repo.id)
        # Bulk deletes: the rows may already be gone (the API removed them first).
        s.execute(q.where(CcrTag.name == tag) if tag else q.where(CcrTag.digest == digest))


def handle_events(rt: RegistryRuntime, seen: EventLog, events: list[dict[str, Any]]) -> None:
    for ev in events:
        event_id = str(ev.get("id", "")) if isinstance(ev, dict) else ""
        if not event_id or seen.seen(event_id):
            continue
        action = ev.get("action")
        target = ev.get("target") or {}
        repo_name = str(target.get("repository", ""))
        media_type = str(target.get("mediaType", ""))
        actor = (ev.get("actor") or {}).get("name", "")
        method = (ev.get("request") or {}).get("method", "")
        try:
            if action == "push" and target.get("tag") and media_type in _MANIFESTS:
                REGISTRY_EVENTS.inc("push")
                on_push(rt, repo_name, target["tag"], target["digest"], ev.get("timestamp", ""))
            elif (
                action == "pull"
                and media_type in _MANIFESTS
                and method == "GET"
                and actor != INTERNAL_SUBJECT
            ):
                REGISTRY_EVENTS.inc("pull")
                on_pull(rt, repo_name)
            elif action == "delete" and (target.get("digest") or target.get("tag")):
                on_delete(rt, repo_name, target.get("digest", ""), target.get("tag", ""))
        except RegistryError as exc:
            # The periodic reconciliation catches up with what could not be read now.
            log_event(log, "notification not applied", action=action, error=str(exc))
        # Other failures propagate: the registry retries the delivery, which is then new.
        seen.add(event_id)


def reconcile(rt: RegistryRuntime) -> dict[str, int]:
    """Make the tag index equal to what the registry holds."""
    client = rt.need_client()
    added = removed = 0
    with rt.store.session() as s:
        known = list(s.scalars(select(CcrRepository.name)))
    names = sorted(set(client.catalog()) | set(known))
    for name in names:
        actual: dict[str, str] = {}
        for tag in client.tags(name):
            digest = client.head_manifest(name, tag)
            if digest:
                actual[tag] = digest
        with rt.store.session() as s:
            repo = domain.repository_by_name(s, name) if not actual else _ensure_repository(s, name)
            if repo is None:
                continue
            rows = {
                t.name: t for t in s.scalars(select(CcrTag).where(CcrTag.repository_id == repo.id))
            }
            gone = [row.id for tag, row in rows.items() if tag not in actual]
            if gone:
                s.execute(delete(CcrTag).where(CcrTag.id.in_(gone)))
                removed += len(gone)
            missing = [t for t, d in actual.items() if t not in rows or rows[t].digest != d]
        for tag in missing:
            details = image_details(client, name, actual[tag])
            if details is None:
                continue
            with rt.store.session() as s:
                repo = domain.repository_by_name(s, name)
                if repo is not None:
                    domain.record_tag(s, repo, tag, details, utcnow())
                    added += 1
    if added or removed:
        log_event(log, "tag index reconciled", added=added, removed=removed)
    return {"added": added, "removed": removed}
