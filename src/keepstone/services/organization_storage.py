"""The repositories an organization's backups use, and what its data takes in each (the
vendor's "used repositories" of an organization).

A repository an organization uses is one its backup or copy jobs write to, or one holding its
restore points. Keepstone deduplicates everything a repository stores, across organizations
too, so when several organizations share a repository a byte on disk may be part of all their
backups and none owns it alone. The repository's bytes are therefore apportioned among the
organizations with restore points there, by the logical size of their latest restore points
(each job's latest), to the byte: the shares always add up to what the repository takes, and
an organization alone in its repository (the layout the vendor recommends) is given all of
it. Reading what a repository takes walks its directory (or lists its bucket), as the
repository report does: a few files per pack, never one per item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, or_, select

from keepstone.services import object_storage, reports
from keepstone.services.context import Context
from keepstone.store.tables import CopyJob, Job, ObjectStorage, Repository, RestorePoint


@dataclass(frozen=True, slots=True)
class RepositoryShare:
    """One repository an organization uses."""

    repository_id: str
    name: str
    used_bytes: int  # the organization's share of what the repository takes
    in_object_storage: bool  # then ``used_bytes`` is in its bucket
    cached_bytes: int  # an object storage's share of its local cache directory; else 0
    available: bool  # its directory is there to back up to and restore from


def used_repositories(ctx: Context, organization_id: str) -> list[RepositoryShare]:
    """The repositories ``organization_id`` uses, by name, with its share of each."""
    repositories = _used_by(ctx, organization_id)
    if not repositories:
        return []
    sizes = _latest_sizes(ctx, [row.id for row in repositories])
    buckets = object_storage.storages_by_repository(ctx)
    return [
        _share(ctx, row, buckets.get(row.id), organization_id, sizes.get(row.id, {}))
        for row in repositories
    ]


def apportion(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """``total`` split among ``weights``' keys in proportion to their (non-negative) weights,
    in whole units that add up to ``total`` exactly: each key gets the floor of its exact share
    and the units left go to the largest remainders (ties to the smaller key, so the split is
    a function of its inputs). With no positive weight the keys share it equally."""
    keys = sorted(weights)
    if not keys:
        return {}
    if total <= 0:
        return dict.fromkeys(keys, 0)
    weight = {key: max(0, weights[key]) for key in keys}
    whole = sum(weight.values())
    if whole == 0:
        weight, whole = dict.fromkeys(keys, 1), len(keys)
    shares = {key: total * weight[key] // whole for key in keys}
    left = total - sum(shares.values())
    by_remainder = sorted(keys, key=lambda key: (-(total * weight[key] % whole), key))
    for key in by_remainder[:left]:
        shares[key] += 1
    return shares


def _used_by(ctx: Context, organization_id: str) -> list[Repository]:
    targets = select(Job.repository_id).where(Job.organization_id == organization_id)
    copies = (
        select(CopyJob.repository_id)
        .join(Job, Job.id == CopyJob.backup_job_id)
        .where(Job.organization_id == organization_id)
    )
    holding = select(RestorePoint.repository_id).where(
        RestorePoint.organization_id == organization_id
    )
    query = (
        select(Repository)
        .where(
            or_(
                Repository.id.in_(targets),
                Repository.id.in_(copies),
                Repository.id.in_(holding),
            )
        )
        .order_by(Repository.name)
    )
    with ctx.db.read() as s:
        return list(s.scalars(query))


def _latest_sizes(ctx: Context, repository_ids: list[str]) -> dict[str, dict[str, int]]:
    """Repository id -> organization id -> the logical size of its jobs' latest restore points
    there (one query: each job's latest point found through the points' (job, time) index)."""
    latest = (
        select(
            RestorePoint.repository_id,
            RestorePoint.job_id,
            func.max(RestorePoint.backup_time).label("backup_time"),
        )
        .where(RestorePoint.repository_id.in_(repository_ids))
        .group_by(RestorePoint.repository_id, RestorePoint.job_id)
        .subquery()
    )
    query = select(
        RestorePoint.repository_id, RestorePoint.organization_id, RestorePoint.size
    ).join(
        latest,
        (latest.c.repository_id == RestorePoint.repository_id)
        & (latest.c.job_id.is_not_distinct_from(RestorePoint.job_id))
        & (latest.c.backup_time == RestorePoint.backup_time),
    )
    sizes: dict[str, dict[str, int]] = {}
    with ctx.db.read() as s:
        for repository_id, organization_id, size in s.execute(query):
            of_repository = sizes.setdefault(repository_id, {})
            owner = organization_id or ""  # a point without its organization's tag
            of_repository[owner] = of_repository.get(owner, 0) + size
    return sizes


def _share(
    ctx: Context,
    row: Repository,
    storage: ObjectStorage | None,
    organization_id: str,
    sizes: dict[str, int],
) -> RepositoryShare:
    available = Path(row.path).is_dir()
    if organization_id not in sizes:  # only a target so far: nothing of it is stored there
        return RepositoryShare(row.id, row.name, 0, storage is not None, 0, available)
    cached = reports.bytes_in_directory(row.path)
    if storage is None:
        used = apportion(cached, sizes)[organization_id]
        return RepositoryShare(row.id, row.name, used, False, 0, available)
    in_bucket = reports.used_in_bucket(ctx, storage)
    used = apportion(in_bucket, sizes)[organization_id]
    return RepositoryShare(
        row.id, row.name, used, True, apportion(cached, sizes)[organization_id], available
    )
