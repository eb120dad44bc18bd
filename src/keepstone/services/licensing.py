"""Licensed users: the users Keepstone has backed up, as the vendor's licensing views count them.

Keepstone needs no licence; every user a run backed up counts as ``Licensed``. A run finishing a
user (its successful per-user log item) writes the user's row of ``licensed_users``: one row per
(organization, user) with its first and latest backup, so every answer here reads that table
and costs the same however many runs there were. A user stays licensed until its organization
is removed (the vendor's licence, too, outlives the jobs that backed a user up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession, Organization
from keepstone.store.tables import LicensedUser as Row


@dataclass(frozen=True)
class LicensedUser:
    id: str
    name: str
    organization_id: str
    organization_name: str
    last_backup: datetime


def backed_up_in(s: Session, session_id: str, subject: tuple[str, str], now: datetime) -> None:
    """The run ``session_id`` backed ``subject`` (id, name) up at ``now``: one upsert, which two
    runs finishing the same user at once cannot turn into a conflict."""
    organization_id = s.scalar(
        select(Job.organization_id)
        .join(JobSession, JobSession.job_id == Job.id)
        .where(JobSession.id == session_id)
    )
    if organization_id is None:
        return  # its job was deleted meanwhile
    user_id, name = subject
    parameters = {"organization": organization_id, "user": user_id, "name": name, "now": now}
    s.execute(_upsert(s.get_bind().dialect.name), parameters)


_UPSERTS: dict[str, Any] = {}  # by dialect: the statement is built once per process


def _upsert(dialect: str) -> Any:
    """The licence's upsert with bound parameters (organization, user, name, now), built once:
    building it (its ``excluded`` columns, its cases) was most of a run's per-user catalog
    work, as much again as executing it."""
    statement = _UPSERTS.get(dialect)
    if statement is not None:
        return statement
    insert: Any = _upsert_of(dialect)
    columns = Row.__table__.c
    now = bindparam("now", type_=columns.last_backup.type)
    values = insert(Row).values(
        organization_id=bindparam("organization", type_=columns.organization_id.type),
        user_id=bindparam("user", type_=columns.user_id.type),
        user_name=bindparam("name", type_=columns.user_name.type),
        first_backup=now,
        last_backup=now,
    )
    new = values.excluded
    later = new.last_backup >= Row.last_backup  # clocks may disagree between servers
    statement = _UPSERTS[dialect] = values.on_conflict_do_update(
        index_elements=[Row.organization_id, Row.user_id],
        set_={
            "user_name": case((later, new.user_name), else_=Row.user_name),
            "last_backup": case((later, new.last_backup), else_=Row.last_backup),
            "first_backup": case(
                (new.first_backup < Row.first_backup, new.first_backup),
                else_=Row.first_backup,
            ),
        },
    )
    return statement


def licensed_users(
    ctx: Context, organization_id: str | None = None, name: str | None = None
) -> list[LicensedUser]:
    """Users with at least one successful backup, by name; ``name`` matches a substring."""
    query = (
        select(Row.user_id, Row.user_name, Organization.id, Organization.name, Row.last_backup)
        .join(Organization, Organization.id == Row.organization_id)
        .order_by(Row.user_name, Row.user_id)
    )
    if organization_id is not None:
        query = query.where(Row.organization_id == organization_id)
    if name:
        query = query.where(Row.user_name.contains(name, autoescape=True))
    with ctx.db.read() as s:
        return [LicensedUser(*row) for row in s.execute(query)]


def count_licensed(ctx: Context, organization_id: str | None = None) -> int:
    """How many users are licensed (in one organization): one statement, however large."""
    query = select(func.count()).select_from(Row)
    if organization_id is not None:
        query = query.where(Row.organization_id == organization_id)
    with ctx.db.read() as s:
        return s.scalar(query) or 0


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
    return License(catalog.installation_id(ctx), used_units=count_licensed(ctx))


def _upsert_of(dialect: str) -> Any:
    """The dialect's INSERT with ON CONFLICT. PostgreSQL's dialect module is imported only by a
    process on a PostgreSQL catalog (every server and proxy start paid about 0.04 s for it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
