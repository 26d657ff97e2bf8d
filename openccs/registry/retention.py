"""Tag retention: a repository's keep_last_nums / keep_last_days strategy, and its tag quota.

The document's strategy cleans tags "when the tag quota is reached": it runs on a push that
brings a repository to its quota, and in the periodic pass (which also applies it to
repositories below the quota, so that keep_last_days ages tags out).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.domain.accounts import quota
from openccs.log import get_logger, log_event
from openccs.timeutil import utcnow

from . import domain
from .index import TagRemoval, forget_tags, plan_tag_removal, untag_in_registry
from .models import CcrRepository, CcrRetention, CcrTag
from .runtime import RegistryRuntime

log = get_logger("openccs.registry.retention")

TYPES = ("keep_last_days", "keep_last_nums")


def _newest_first(s: Session, repo: CcrRepository) -> list[CcrTag]:
    return list(
        s.scalars(
            select(CcrTag)
            .where(CcrTag.repository_id == repo.id)
            .order_by(CcrTag.push_time.desc(), CcrTag.id.desc())
        )
    )


def plan(s: Session, repo: CcrRepository) -> TagRemoval | None:
    """What the repository's strategy, then its tag quota, remove (None: nothing). The
    caller removes it from the registry outside its transaction, then forgets it in
    another (`index.untag_in_registry`, `index.forget_tags`)."""
    tags = _newest_first(s, repo)
    doomed: list[CcrTag] = []
    strategy = s.get(CcrRetention, repo.id)
    if strategy is not None and strategy.valid:
        if strategy.type == "keep_last_nums":
            doomed = tags[strategy.value :]
        elif strategy.type == "keep_last_days":
            cutoff = utcnow() - timedelta(days=strategy.value)
            doomed = [t for t in tags if t.push_time < cutoff]
    kept = [t for t in tags if t not in doomed]
    limit = quota(s, repo.account_id, domain.QUOTA_TAGS)
    if len(kept) > limit:
        # The quota wins over a lenient strategy: the oldest beyond it go too.
        doomed += kept[limit:]
    return plan_tag_removal(s, repo, doomed) if doomed else None


def on_push(s: Session, repo: CcrRepository) -> TagRemoval | None:
    """After a push: the strategy applies once the repository reaches its tag quota."""
    limit = quota(s, repo.account_id, domain.QUOTA_TAGS)
    if domain.tag_count(s, repo.id) >= limit:
        return plan(s, repo)
    return None


def carry_out(rt: RegistryRuntime, removal: TagRemoval) -> int:
    """Remove planned tags: from the registry (no transaction open), then from the index."""
    untag_in_registry(rt, removal)
    with rt.store.session() as s:
        forget_tags(rt, s, removal)
    log_event(log, "retention applied", repository=removal.repository, removed=len(removal.names))
    return len(removal.names)


def periodic(rt: RegistryRuntime) -> int:
    removed = 0
    with rt.store.session() as s:
        ids = list(s.scalars(select(CcrRetention.repository_id).where(CcrRetention.valid)))
    for rid in ids:
        with rt.store.session() as s:
            repo = s.get(CcrRepository, rid)
            removal = plan(s, repo) if repo is not None else None
        if removal is not None:
            removed += carry_out(rt, removal)
    return removed
