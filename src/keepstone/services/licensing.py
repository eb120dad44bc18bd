"""Licensed users: the users Keepstone has backed up, as the vendor's licensing views count them.

Keepstone needs no licence; every user a run backed up counts as ``Licensed``. The facts come from
the runs' per-user log items (their processed objects), so they survive restarts and need no
separate bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession, LogItem, Organization


@dataclass(frozen=True)
class LicensedUser:
    id: str
    name: str
    organization_id: str
    organization_name: str
    last_backup: datetime


def licensed_users(
    ctx: Context, organization_id: str | None = None, name: str | None = None
) -> list[LicensedUser]:
    """Users with at least one successful backup, by name; ``name`` matches a substring."""
    query = (
        select(
            LogItem.subject_id,
            LogItem.subject_name,
            Organization.id,
            Organization.name,
            func.max(LogItem.creation_time),
        )
        .join(JobSession, JobSession.id == LogItem.session_id)
        .join(Job, Job.id == JobSession.job_id)
        .join(Organization, Organization.id == Job.organization_id)
        .where(LogItem.subject_id.is_not(None), LogItem.status == SessionStatus.SUCCESS.value)
        .group_by(LogItem.subject_id, LogItem.subject_name, Organization.id, Organization.name)
        .order_by(LogItem.subject_name, LogItem.subject_id)
    )
    if organization_id is not None:
        query = query.where(Organization.id == organization_id)
    if name:
        query = query.where(LogItem.subject_name.contains(name, autoescape=True))
    with ctx.db.read() as s:
        return [
            LicensedUser(str(user_id), str(name), org_id, org_name, last)
            for user_id, name, org_id, org_name, last in s.execute(query)
        ]


# Keepstone is free software: nothing limits how many users it backs up. The vendor's largest
# unit count (an int32) stands for "no limit", so clients that compute usage see ~0 %.
UNLIMITED_UNITS = 2**31 - 1


@dataclass(frozen=True)
class License:
    """What Keepstone's "licence" is: valid for ever, for any number of users."""

    installation_id: str
    used_units: int  # users with a backup: what the vendor's licence counts
    new_units: int = 0  # the vendor's "new user" status does not exist: every user is Licensed
    total_units: int = UNLIMITED_UNITS
    status: str = "Valid"
    type: str = "Community"  # the spec's free, perpetual edition


def license_of(ctx: Context) -> License:
    return License(catalog.installation_id(ctx), used_units=len(licensed_users(ctx)))
