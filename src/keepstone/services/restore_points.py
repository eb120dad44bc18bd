"""Restore points: the catalog's view of the snapshots in each repository.

The repository is the truth (it is self-describing); the catalog rows are a cache that a backup
run adds to and that attaching a repository rebuilds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keepstone.domain.errors import InvalidInput, NotFound
from keepstone.services import access
from keepstone.services.auth import Principal
from keepstone.services.context import Context, new_id
from keepstone.store.paging import page_of
from keepstone.store.tables import CopyJob, RestorePoint

TAG_JOB, TAG_ORGANIZATION, TAG_SESSION = "job_id", "organization_id", "session_id"


@dataclass(frozen=True, slots=True)
class SnapshotFacts:
    """What the catalog keeps of one snapshot."""

    snapshot_id: str
    time: datetime
    tags: dict[str, str]
    item_count: int
    size: int
    has_mail: bool
    has_files: bool


def record(ctx: Context, repository_id: str, facts: SnapshotFacts) -> RestorePoint:
    """Add a snapshot to the catalog, once: a session or snapshot already recorded is returned."""
    with ctx.db.write() as s:
        existing = _existing(s, repository_id, facts)
        if existing is not None:
            return existing
        point = _row(repository_id, facts)
        s.add(point)
        try:
            s.flush()
        except IntegrityError:  # lost a race with another recorder of the same run
            s.rollback()
            raise
        return point


def rebuild(ctx: Context, repository_id: str, snapshots: list[SnapshotFacts]) -> int:
    """Make the catalog of one repository match its snapshots; returns how many were added.

    A snapshot rewritten by item-level retention keeps its run's session tag: its restore point
    keeps its id and follows the new snapshot.
    """
    with ctx.db.write() as s:
        known = {
            p.snapshot_id: p
            for p in s.scalars(
                select(RestorePoint).where(RestorePoint.repository_id == repository_id)
            )
        }
        present = {facts.snapshot_id for facts in snapshots}
        orphans = {
            p.session_id: p for sid, p in known.items() if sid not in present and p.session_id
        }
        added = 0
        for facts in snapshots:
            if facts.snapshot_id in known:
                continue
            moved = orphans.pop(facts.tags.get(TAG_SESSION, ""), None)
            if moved is not None:
                _follow(moved, facts)
            else:
                s.add(_row(repository_id, facts))
                added += 1
        for point in orphans.values():  # what no snapshot holds any more
            s.delete(point)
        for snapshot_id, point in known.items():
            if snapshot_id not in present and not point.session_id:
                s.delete(point)
        return added


def _follow(point: RestorePoint, facts: SnapshotFacts) -> None:
    point.snapshot_id, point.item_count, point.size = (
        facts.snapshot_id,
        facts.item_count,
        facts.size,
    )
    point.is_exchange, point.is_onedrive = facts.has_mail, facts.has_files


@dataclass(frozen=True)
class PointFilter:
    """Which restore points a listing shows, and in which order."""

    job_id: str | None = None
    organization_id: str | None = None
    repository_id: str | None = None
    ascending: bool = False
    organizations: frozenset[str] | None = None  # a scoped caller's (access.organizations_of)
    taken_before: datetime | None = None  # only the points taken before this instant
    taken_from: datetime | None = None  # only the points taken at or after this instant
    taken_until: datetime | None = None  # only the points taken at or before this instant
    copies: bool | None = None  # only the points copy jobs made (True) or the others (False)
    none: bool = False  # asks for what Keepstone never stores (a team's points): no point

    def apply(self, query: Any) -> Any:
        if self.none:
            return query.where(false())
        if self.organizations is not None:
            query = query.where(RestorePoint.organization_id.in_(self.organizations))
        if self.taken_until is not None:
            query = query.where(RestorePoint.backup_time <= self.taken_until)
        if self.copies is not None:
            query = query.where(_OF_COPIES if self.copies else ~_OF_COPIES)
        if self.taken_before is not None:
            query = query.where(RestorePoint.backup_time < self.taken_before)
        if self.taken_from is not None:
            query = query.where(RestorePoint.backup_time >= self.taken_from)
        for column, value in (
            (RestorePoint.job_id, self.job_id),
            (RestorePoint.organization_id, self.organization_id),
            (RestorePoint.repository_id, self.repository_id),
        ):
            if value is not None:
                query = query.where(column == value)
        return query

    KEYS = (RestorePoint.backup_time, RestorePoint.id)


@dataclass(frozen=True)
class Asked:
    """The vendor's filters of ``GET /RestorePoints`` beyond job, organization and repository
    (v6-v8), as a client sends them (None: not sent)."""

    taken_from: datetime | None = None  # v7 ``from``
    taken_until: datetime | None = None  # v7 ``to``
    copies: bool | None = None  # v7 ``isCopy``
    long_term: bool | None = None  # ``isLongTermCopy``: archive-tier copies
    retrieved: bool | None = None  # ``isRetrieved``: points a data retrieval brought back
    user_id: str | None = None  # v8: the points holding one user's data
    others: tuple[str | None, ...] = ()  # v8 ``groupId``, ``siteId``, ``teamId``


def narrowed(where: PointFilter, asked: Asked) -> PointFilter:
    """``where`` with the vendor's other filters: ``from``/``to`` (inclusive), copy jobs' points
    or the others. Keepstone makes no archive-tier copies, retrieves nothing and backs up no
    group, site or team, so asking for those finds no point. Which points hold one user is not
    in the catalog (a point's users are in its snapshot): ``userId`` is refused, never ignored
    (every point would be listed as that user's)."""
    if asked.user_id is not None:
        raise InvalidInput(
            "listing restore points by user is not served: explore a point (POST "
            "/Jobs/{jobId}/explore with its backupTime) and list its mailboxes and OneDrives",
            "userId",
        )
    never = asked.long_term is True or asked.retrieved is True
    never = never or any(other is not None for other in asked.others)
    return replace(
        where,
        taken_from=_utc(asked.taken_from) if asked.taken_from else where.taken_from,
        taken_until=_utc(asked.taken_until),
        copies=asked.copies,
        none=never,
    )


def _utc(instant: datetime | None) -> datetime | None:
    """An instant without a zone is UTC, as the vendor's server reads it."""
    if instant is None or instant.tzinfo is not None:
        return instant
    return instant.replace(tzinfo=UTC)


# A copy job's point is its backup job's, kept in the copy job's repository (its snapshot's
# tags name the copy; the catalog's row names the job, as the backup's point does).
_OF_COPIES = (
    select(CopyJob.id)
    .where(
        CopyJob.backup_job_id == RestorePoint.job_id,
        CopyJob.repository_id == RestorePoint.repository_id,
    )
    .exists()
)


def made_by_copies(ctx: Context, points: Sequence[RestorePoint]) -> set[str]:
    """The ids of ``points`` that copy jobs made (one query for a page of them)."""
    ids = [p.id for p in points]
    if not ids:
        return set()
    query = select(RestorePoint.id).where(RestorePoint.id.in_(ids), _OF_COPIES)
    with ctx.db.read() as s:
        return set(s.scalars(query))


def list_points(
    ctx: Context,
    *,
    job_id: str | None = None,
    organization_id: str | None = None,
    repository_id: str | None = None,
    caller: Principal | None = None,
) -> list[RestorePoint]:
    """Every point selected, of a scoped ``caller``'s organizations only."""
    where = PointFilter(
        job_id, organization_id, repository_id, organizations=access.organizations_of(caller)
    )
    return page_points(ctx, where)


def page_points(
    ctx: Context,
    where: PointFilter,
    offset: int = 0,
    limit: int | None = None,
    total: int | None = None,
) -> list[RestorePoint]:
    """One window of the restore points ``where`` selects (all of them by default)."""
    with ctx.db.read() as s:
        return page_of(
            s,
            RestorePoint,
            where.apply,
            where.KEYS,
            descending=not where.ascending,
            offset=offset,
            limit=limit,
            total=total,
        )


def count_points(ctx: Context, where: PointFilter) -> int:
    with ctx.db.read() as s:
        return s.scalar(where.apply(select(func.count()).select_from(RestorePoint))) or 0


def newest_time(ctx: Context, where: PointFilter) -> datetime | None:
    """When the newest point ``where`` selects was taken (None: it selects none)."""
    with ctx.db.read() as s:
        newest: datetime | None = s.scalar(where.apply(select(func.max(RestorePoint.backup_time))))
        return newest


def days_with_points(ctx: Context, where: PointFilter, bounds: list[datetime]) -> set[int]:
    """Which of the days ``bounds`` delimits hold a point ``where`` selects: day ``i`` runs from
    ``bounds[i]`` to ``bounds[i + 1]``. One aggregate query over the whole span, whatever the
    number of points: each point is put in its day's bucket by comparing it with the bounds
    (computed by the caller on the server's clock, so a day of a zone change is right), and the
    catalog returns each day that holds any once (DISTINCT)."""
    if len(bounds) < 2:
        return set()
    column = RestorePoint.backup_time
    day = case(
        *((column < bound, index) for index, bound in enumerate(bounds[1:-1])),
        else_=len(bounds) - 2,
    )
    span = PointFilter(
        where.job_id,
        where.organization_id,
        where.repository_id,
        organizations=where.organizations,
        taken_from=bounds[0],
        taken_before=bounds[-1],
    )
    with ctx.db.read() as s:
        return {int(index) for index in s.scalars(span.apply(select(day).distinct()))}


def get_point(ctx: Context, point_id: str, caller: Principal | None = None) -> RestorePoint:
    """The point; a 404 for a scoped ``caller`` outside its organizations."""
    with ctx.db.read() as s:
        point = s.get(RestorePoint, point_id)
    what = f"restore point '{point_id}'"
    if point is None:
        raise NotFound(f"{what} does not exist")
    access.require_organization(caller, point.organization_id, what)
    return point


def point_at(
    ctx: Context,
    instant: datetime,
    *,
    job_id: str | None = None,
    organization_id: str | None = None,
) -> RestorePoint:
    """The latest restore point taken at or before ``instant`` (what "explore at time" means)."""
    where = PointFilter(job_id=job_id, organization_id=organization_id)
    with ctx.db.read() as s:
        query = where.apply(select(RestorePoint)).where(RestorePoint.backup_time <= instant)
        found: RestorePoint | None = s.scalar(
            query.order_by(RestorePoint.backup_time.desc(), RestorePoint.id.desc()).limit(1)
        )
    if found is None:
        raise NotFound(f"no restore point exists at or before {instant.isoformat()}")
    return found


def _existing(s: Session, repository_id: str, facts: SnapshotFacts) -> RestorePoint | None:
    session_id = facts.tags.get(TAG_SESSION)
    query = select(RestorePoint).where(
        (RestorePoint.repository_id == repository_id)
        & (RestorePoint.snapshot_id == facts.snapshot_id)
        | ((RestorePoint.session_id == session_id) if session_id else False)
    )
    return s.scalar(query)


def _row(repository_id: str, facts: SnapshotFacts) -> RestorePoint:
    return RestorePoint(
        id=new_id(),
        repository_id=repository_id,
        snapshot_id=facts.snapshot_id,
        job_id=facts.tags.get(TAG_JOB),
        organization_id=facts.tags.get(TAG_ORGANIZATION),
        session_id=facts.tags.get(TAG_SESSION),
        backup_time=facts.time,
        is_exchange=facts.has_mail,
        is_onedrive=facts.has_files,
        item_count=facts.item_count,
        size=facts.size,
    )


@dataclass(frozen=True, slots=True)
class JobBackup:
    """A job's backup: the restore points one job made, kept where its latest one is."""

    job_id: str
    repository_id: str
    latest: datetime


def job_backups(ctx: Context, repository_id: str | None = None) -> list[JobBackup]:
    """One backup per job that has restore points (the Enterprise Manager ``Backup``), in one
    query; with ``repository_id``, only those kept there."""
    found: dict[str, JobBackup] = {}
    for point in list_points(ctx):  # newest first: the first point of a job is its latest
        if point.job_id is not None and point.job_id not in found:
            found[point.job_id] = JobBackup(point.job_id, point.repository_id, point.backup_time)
    return [b for b in found.values() if repository_id in (None, b.repository_id)]
