"""Repository upkeep: attach an existing repository, verify it, apply retention and prune.

The repository is self-describing; these operations read it and bring the catalog in line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from keepstone.domain.retention import (
    RetentionType,
    expired_snapshots,
    keep_after,
    next_retention_run,
)
from keepstone.engine import LocalStore, Repository
from keepstone.proxy.backup import facts_of
from keepstone.services import catalog, restore_points, vault
from keepstone.services.context import Context
from keepstone.services.vault import open_repository
from keepstone.store.codecs import retention_from_record
from keepstone.store.tables import Repository as RepositoryRow

if TYPE_CHECKING:
    from keepstone.services.leadership import Fence

Progress = Callable[[int, int], None]


def is_repository(path: str) -> bool:
    return LocalStore(Path(path)).exists("config")


def rebuild_catalog(ctx: Context, row: RepositoryRow) -> int:
    """Make the catalog's restore points of ``row`` match its snapshots; returns the new count."""
    repo = open_repository(ctx, row.id, row.path)
    return restore_points.rebuild(ctx, row.id, [facts_of(repo, info) for info in repo.snapshots()])


def attach(ctx: Context, path: str, name: str) -> tuple[RepositoryRow, int]:
    """Register an existing repository directory and bring back its restore points."""
    return add_repository(ctx, catalog.RepositoryEdit(name=name, path=path))


def add_repository(
    ctx: Context, spec: catalog.RepositoryEdit, password: str | None = None
) -> tuple[RepositoryRow, int]:
    """Create a repository; when its path already holds one, attach it: the catalog gets its
    restore points back (the server's database is only a cache of the repository).

    With a password the repository is created encrypted (or must already be, with that password);
    the password is kept in the vault for unattended runs. Nothing is kept when it does not fit.
    """
    row = catalog.create_repository(ctx, spec)
    try:
        if password is not None or is_repository(row.path):
            vault.open_or_create(row.path, password)
        if password is not None:
            vault.keep_password(ctx, row.id, password)
    except BaseException:
        catalog.delete_repository(ctx, row.id)
        raise
    return row, rebuild_catalog(ctx, row) if is_repository(row.path) else 0


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked_bytes: int
    damaged_packs: list[str]
    damaged_items: list[tuple[str, str]]  # (restore point id, item key)
    damaged_restore_points: list[str]


def verify(ctx: Context, repo_id: str, progress: Progress | None = None) -> VerifyResult:
    """Read everything back and check every hash; name what is damaged in the catalog's terms."""
    row = catalog.get_repository(ctx, repo_id)
    report = open_repository(ctx, row.id, row.path).verify(read_data=True, progress=progress)
    points = {p.snapshot_id: p.id for p in restore_points.list_points(ctx, repository_id=row.id)}
    return VerifyResult(
        ok=report.ok,
        checked_bytes=report.checked_bytes,
        damaged_packs=sorted(report.damaged_packs),
        damaged_items=sorted((points.get(s, s), key) for s, key in report.damaged_items),
        damaged_restore_points=sorted(points.get(s, s) for s in report.damaged_snapshots),
    )


@dataclass(frozen=True, slots=True)
class RetentionResult:
    removed_restore_points: int
    removed_items: int
    freed_bytes: int


def apply_retention(ctx: Context, repo_id: str, fence: Fence | None = None) -> RetentionResult:
    """Apply the repository's retention policy (snapshot-based: forget expired restore points;
    item-level: drop expired items from every restore point), then prune. ``fence`` (the
    leader's) is checked before anything is touched and again in the closing write."""
    if fence is not None:
        with ctx.db.write() as s:
            fence(s)
    row = catalog.get_repository(ctx, repo_id)
    repo: Repository = open_repository(ctx, row.id, row.path)
    policy = retention_from_record(row.retention)
    expired: list[str] = []
    removed_items = 0
    if policy.retention_type is RetentionType.SNAPSHOT_BASED:
        taken = [(info.id, info.time) for info in repo.snapshots()]
        expired = expired_snapshots(policy, taken, ctx.clock.now())
        repo.forget(expired)
    else:
        removed_items = _expire_items(repo, keep_after(policy, ctx.clock.now()))
    freed = repo.prune().freed_bytes
    rebuild_catalog(ctx, row)
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        stored = s.get(RepositoryRow, row.id)
        if stored is not None:
            stored.retention_applied_at = ctx.clock.now()
    return RetentionResult(len(expired), removed_items, freed)


def _expire_items(repo: Repository, cutoff: datetime | None) -> int:
    """Item-level retention: items last modified before ``cutoff`` leave every restore point.
    A snapshot that loses items is rewritten (same time and tags), then the old one forgotten.
    Folder items stay: they are a source's state for its next run, not content (one that
    names a removed item only makes that run read it again)."""
    if cutoff is None:
        return 0
    removed = 0
    for info in repo.snapshots():
        items = list(repo.items(info.id))
        kept = [i for i in items if i.kind == "folder" or i.mtime >= cutoff.timestamp()]
        if len(kept) == len(items):
            continue
        writer = repo.writer(dict(info.tags), parent=info.parent)
        try:
            for item in kept:
                writer.add_item(item)
            writer.commit(info.time)
        except BaseException:
            writer.abort()
            raise
        repo.forget([info.id])
        removed += len(items) - len(kept)
    return removed


def due_retention(ctx: Context) -> list[str]:
    """Ids of repositories whose retention time has come since retention last ran there."""
    now = ctx.clock.now()
    due = []
    for row in catalog.list_repositories(ctx):
        since = row.retention_applied_at
        if since is None:  # never ran: start counting from now, do not expire at first sight
            _mark_retention(ctx, row.id, now)
            continue
        if next_retention_run(retention_from_record(row.retention), since, ctx.tz) <= now:
            due.append(row.id)
    return due


def _mark_retention(ctx: Context, repo_id: str, when: datetime) -> None:
    with ctx.db.write() as s:
        stored = s.get(RepositoryRow, repo_id)
        if stored is not None and stored.retention_applied_at is None:
            stored.retention_applied_at = when
