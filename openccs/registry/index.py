"""The tag index against the registry: reading an image's details, removing tags and
repositories from the registry and the index together."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openccs.log import get_logger, log_event

from . import domain
from .client import INDEX_TYPES, RegistryClient, untag
from .models import CcrRepository, CcrTag
from .runtime import RegistryRuntime

log = get_logger("openccs.registry.index")


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 with up to nanoseconds, as Go writes it, to naive UTC."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def image_details(client: RegistryClient, repo: str, ref: str) -> domain.TagDetails | None:
    """What GetTagList shows of an image: from its manifest and its config blob."""
    manifest = client.get_manifest(repo, ref)
    if manifest is None:
        return None
    body = manifest.json()
    media_type = manifest.media_type or str(body.get("mediaType", ""))
    details = domain.TagDetails(digest=manifest.digest, media_type=media_type)
    if media_type in INDEX_TYPES or "manifests" in body:
        details.size_bytes = sum(int(m.get("size", 0)) for m in body.get("manifests", []))
        return details
    config = body.get("config") or {}
    details.image_id = str(config.get("digest", ""))
    details.size_bytes = int(config.get("size", 0)) + sum(
        int(layer.get("size", 0)) for layer in body.get("layers", [])
    )
    if details.image_id:
        cfg = client.get_blob_json(repo, details.image_id)
        details.architecture = str(cfg.get("architecture", ""))[:32]
        details.os = str(cfg.get("os", ""))[:32]
        details.author = str(cfg.get("author", ""))[:255]
        details.docker_version = str(cfg.get("docker_version", ""))[:64]
        details.created = parse_time(cfg.get("created"))
    return details


@dataclass
class TagRemoval:
    """Tags to remove, read in one transaction, removed from the registry outside any, then
    forgotten in another (read, work, write)."""

    repository: str
    repository_id: int
    tag_ids: list[int]
    names: list[str]
    # Manifests no other tag of the repository uses: deleted so that gc can free their blobs.
    orphans: list[str] = field(default_factory=list)


def plan_tag_removal(s: Session, repo: CcrRepository, tags: list[CcrTag]) -> TagRemoval:
    names = {t.name for t in tags}
    remaining = {
        t.digest
        for t in s.scalars(select(CcrTag).where(CcrTag.repository_id == repo.id))
        if t.name not in names
    }
    return TagRemoval(
        repository=repo.name,
        repository_id=repo.id,
        tag_ids=sorted({t.id for t in tags}),
        names=sorted(names),
        orphans=sorted({t.digest for t in tags} - remaining),
    )


def untag_in_registry(rt: RegistryRuntime, removal: TagRemoval) -> None:
    """The registry's half: each tag removed alone, then the manifests left without a tag."""
    client = rt.need_client()
    repo_dir = rt.daemon.repository_dir(removal.repository)
    for name in removal.names:
        untag(repo_dir, name)
    for digest in removal.orphans:
        client.delete_manifest(removal.repository, digest)


def forget_tags(rt: RegistryRuntime, s: Session, removal: TagRemoval) -> None:
    """The index's half."""
    s.execute(delete(CcrTag).where(CcrTag.id.in_(removal.tag_ids)))
    rt.deleted_something()
    log_event(log, "tags removed", repository=removal.repository, tags=",".join(removal.names))


def purge_repository(rt: RegistryRuntime, name: str) -> None:
    """The registry's half of removing a repository: its manifests, then its directory."""
    client = rt.need_client()
    names = client.tags(name)
    digests = {d for d in (client.head_manifest(name, t) for t in names) if d}
    for digest in digests:
        client.delete_manifest(name, digest)
    # Distribution has no repository deletion: drop its directory so the catalog forgets it.
    shutil.rmtree(rt.daemon.repository_dir(name), ignore_errors=True)


def forget_repository(rt: RegistryRuntime, s: Session, repository_id: int) -> None:
    """The index's half: the repository's rows (gone already if another request won)."""
    repo = s.get(CcrRepository, repository_id)
    if repo is None:
        return
    domain.delete_repository_rows(s, repo)
    rt.deleted_something()
    log_event(log, "repository removed", repository=repo.name)
