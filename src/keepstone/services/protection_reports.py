"""The v8 ``Reports/Generate*`` reports, from the catalog: which users are protected and by
which job with their last good restore point (``GenerateUserProtection``, and its mailbox and
OneDrive views), the repositories' size over time (``GenerateStorageConsumption``), the users
backed up per organization (``GenerateLicenseOverview``); each a :class:`Table`, written as CSV
or PDF (``services.report_files``).

The facts are those the summary reports use (``services.reports``: task sessions that backed a
user up, restore points) and the organizations' users (``catalog.organization_users``). Each
report reads a fixed number of statements plus one listing of users per organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from sqlalchemy import select

from keepstone.domain.errors import InvalidInput
from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.services.reports import BACKED_UP
from keepstone.store.tables import (
    Job,
    JobSession,
    LicensedUser,
    Organization,
    Repository,
    RestorePoint,
    TaskSession,
)

Cell = str | int
Part = Literal["user", "mailbox", "onedrive"]
NEVER = ""  # an empty cell: no restore point yet


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    subtitle: str
    columns: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True, slots=True)
class _Backup:
    job: str
    point_time: datetime
    size: int  # the user's data as that run found it
    mailbox: bool
    onedrive: bool


def _stamp(instant: datetime | None, tz: tzinfo) -> str:
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if instant else NEVER


def _organizations(ctx: Context, org_id: str | None) -> list[Organization]:
    if org_id is None:
        return catalog.list_organizations(ctx)
    return [catalog.get_organization(ctx, org_id)]


def _latest_backups(ctx: Context, org_ids: list[str]) -> dict[tuple[str, str, str], _Backup]:
    """(organization id, user name, part) -> the user's latest backup of that part that reached
    a restore point: one statement over the tasks that backed a user up."""
    with ctx.db.read() as s:
        rows = s.execute(
            select(
                Job.organization_id,
                TaskSession.name,
                Job.name,
                RestorePoint.backup_time,
                TaskSession.total_bytes,
                RestorePoint.is_exchange,
                RestorePoint.is_onedrive,
            )
            .join(JobSession, JobSession.id == TaskSession.session_id)
            .join(Job, Job.id == JobSession.job_id)
            .join(RestorePoint, RestorePoint.session_id == JobSession.id)
            .where(
                Job.organization_id.in_(org_ids),
                TaskSession.status.in_(BACKED_UP),
                JobSession.status.in_(BACKED_UP),
            )
        ).all()
    latest: dict[tuple[str, str, str], _Backup] = {}
    for org_id, user, job, point_time, size, mailbox, onedrive in rows:
        backup = _Backup(job, point_time, size, mailbox, onedrive)
        for part, holds in (("user", True), ("mailbox", mailbox), ("onedrive", onedrive)):
            key = (org_id, user, part)
            if holds and (key not in latest or latest[key].point_time < point_time):
                latest[key] = backup
    return latest


def user_protection(ctx: Context, org_id: str | None, tz: tzinfo, part: Part) -> Table:
    """Every user of the organization(s) (with a mailbox, or a OneDrive, for those views):
    protected or not, by which job, the last good restore point and the size it backed up."""
    orgs = _organizations(ctx, org_id)
    latest = _latest_backups(ctx, [org.id for org in orgs])
    rows: list[list[Cell]] = []
    for org in orgs:
        for user in catalog.organization_users(ctx, org.id):
            if (part == "mailbox" and not user.has_mailbox) or (
                part == "onedrive" and not user.has_onedrive
            ):
                continue
            backup = latest.get((org.id, user.name, part))
            rows.append(
                [
                    org.name,
                    user.name,
                    "Protected" if backup else "Unprotected",
                    backup.job if backup else NEVER,
                    _stamp(backup.point_time if backup else None, tz),
                    backup.size if backup else 0,
                ]
            )
    what = {"user": "User", "mailbox": "Mailbox", "onedrive": "OneDrive"}[part]
    protected = sum(1 for row in rows if row[2] == "Protected")
    return Table(
        f"{what} protection",
        f"{protected} of {len(rows)} protected; generated {_stamp(ctx.clock.now(), tz)}",
        ["Organization", "User", "Status", "Job", "Last restore point", "Backed-up bytes"],
        rows,
    )


def _interval(
    ctx: Context, start: datetime | None, end: datetime | None, tz: tzinfo
) -> tuple[datetime, datetime]:
    end = end or ctx.clock.now()
    start = start or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        start, end = start.replace(tzinfo=start.tzinfo or tz), end.replace(tzinfo=end.tzinfo or tz)
    if start > end:
        raise InvalidInput("startTime is after endTime", "startTime")
    return start, end


def storage_consumption(
    ctx: Context, start: datetime | None, end: datetime | None, tz: tzinfo
) -> Table:
    """Per repository and day of the interval: the restore points made that day, the bytes they
    stored, and the repository's restore point bytes at the day's end (size over time)."""
    start, end = _interval(ctx, start, end, tz)
    with ctx.db.read() as s:
        points = s.execute(
            select(Repository.name, RestorePoint.backup_time, RestorePoint.size)
            .join(Repository, Repository.id == RestorePoint.repository_id)
            .where(RestorePoint.backup_time <= end)
            .order_by(Repository.name, RestorePoint.backup_time)
        ).all()
    per_day: dict[tuple[str, date], list[int]] = {}
    before: dict[str, int] = {}  # bytes of the points made before the interval
    for repo, when, size in points:
        if when < start:
            before[repo] = before.get(repo, 0) + size
            continue
        made = per_day.setdefault((repo, when.astimezone(tz).date()), [0, 0])
        made[0], made[1] = made[0] + 1, made[1] + size
    rows: list[list[Cell]] = []
    totals = dict(before)
    for (repo, day), (count, size) in sorted(per_day.items()):
        totals[repo] = totals.get(repo, 0) + size
        rows.append([day.isoformat(), repo, count, size, totals[repo]])
    return Table(
        "Storage consumption",
        f"{_stamp(start, tz)} to {_stamp(end, tz)}",
        ["Date", "Repository", "Restore points", "Stored bytes", "Total bytes"],
        rows,
    )


def license_overview(
    ctx: Context, start: datetime | None, end: datetime | None, tz: tzinfo
) -> Table:
    """Per organization: the users backed up in the interval, and those backed up for the first
    time in it (the licence's users: ``licensed_users``)."""
    start, end = _interval(ctx, start, end, tz)
    with ctx.db.read() as s:
        rows = s.execute(
            select(Organization.name, LicensedUser.first_backup)
            .join(Organization, Organization.id == LicensedUser.organization_id)
            .where(LicensedUser.last_backup >= start, LicensedUser.first_backup <= end)
        ).all()
        names = list(s.scalars(select(Organization.name).order_by(Organization.name)))
    users = dict.fromkeys(names, 0)
    new = dict.fromkeys(names, 0)
    for org, first in rows:
        users[org] += 1
        new[org] += 1 if first >= start else 0
    return Table(
        "License overview",
        f"{_stamp(start, tz)} to {_stamp(end, tz)}",
        ["Organization", "Licensed users", "New users"],
        [[name, users[name], new[name]] for name in names],
    )
