"""Repository upkeep: attach an existing repository, verify it, apply retention and prune.

The repository is self-describing; these operations read it and bring the catalog in line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keepstone.domain.retention import expired_snapshots
from keepstone.engine import LocalStore, Repository
from keepstone.proxy.backup import facts_of, open_repository
from keepstone.services import catalog, restore_points
from keepstone.services.context import Context
from keepstone.store.codecs import retention_from_record
from keepstone.store.tables import Repository as RepositoryRow

Progress = Callable[[int, int], None]


def is_repository(path: str) -> bool:
    return LocalStore(Path(path)).exists("config")


def rebuild_catalog(ctx: Context, row: RepositoryRow) -> int:
    """Make the catalog's restore points of ``row`` match its snapshots; returns the new count."""
    repo = open_repository(row.path)
    return restore_points.rebuild(ctx, row.id, [facts_of(repo, info) for info in repo.snapshots()])


def attach(ctx: Context, path: str, name: str) -> tuple[RepositoryRow, int]:
    """Register an existing repository directory and bring back its restore points."""
    return add_repository(ctx, catalog.RepositoryEdit(name=name, path=path))


def add_repository(ctx: Context, spec: catalog.RepositoryEdit) -> tuple[RepositoryRow, int]:
    """Create a repository; when its path already holds one, attach it: the catalog gets its
    restore points back (the server's database is only a cache of the repository)."""
    row = catalog.create_repository(ctx, spec)
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
    report = open_repository(row.path).verify(read_data=True, progress=progress)
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
    freed_bytes: int


def apply_retention(ctx: Context, repo_id: str) -> RetentionResult:
    """Forget the snapshots the repository's retention policy expires, then prune."""
    row = catalog.get_repository(ctx, repo_id)
    repo: Repository = open_repository(row.path)
    infos = repo.snapshots()
    expired = expired_snapshots(
        retention_from_record(row.retention),
        [(info.id, info.time) for info in infos],
        ctx.clock.now(),
    )
    repo.forget(expired)
    freed = repo.prune().freed_bytes
    rebuild_catalog(ctx, row)
    return RetentionResult(len(expired), freed)
