"""The audit trail: who logged in (or failed to), whose credentials were revoked, and who got
which backed-up data out (saved, downloaded) or put it back, and where.

Append-only: events are written by the services as the thing happens and never changed; they
are read newest first, for the whole server or for one organization.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import InvalidInput
from keepstone.services.context import Context
from keepstone.store.tables import AuditEvent

__all__ = ["AuditAction", "AuditEvent", "Entry", "Origin", "add", "audited_users", "events"]

MAX_LIMIT = 10_000


class AuditAction(enum.StrEnum):
    LOGIN = "Login"
    LOGOUT = "Logout"
    REVOKE_TOKENS = "RevokeTokens"
    PASSWORD_CHANGE = "PasswordChange"
    USER_REMOVAL = "UserRemoval"
    USER_ADDITION = "UserAddition"  # from the console (the CLI's `user add` runs on the host)
    USER_ROLE_CHANGE = "UserRoleChange"  # a user's global role
    REFRESH_TOKEN_REUSE = "RefreshTokenReuse"
    EXPLORE = "Explore"
    SAVE = "Save"
    RESTORE = "Restore"
    PREVIEW = "Preview"  # a message's text read in the console (its content, not a copy)
    OPERATOR_REQUEST = "OperatorRequest"  # any request of a user without a global role
    ROLE_CHANGE = "RoleChange"  # an organization role created, changed or removed


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: the client's address and the API dialect it spoke."""

    address: str | None = None
    dialect: str = "cli"  # vb365 | em | cli


CLI = Origin()


@dataclass(frozen=True, slots=True)
class Entry:
    action: AuditAction
    user_name: str
    origin: Origin = CLI
    success: bool = True
    organization_id: str | None = None
    subject: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def add(s: Session, now: datetime, entry: Entry) -> None:
    """Append ``entry`` inside the caller's transaction (it stands or falls with the change)."""
    s.add(
        AuditEvent(
            time=now,
            action=entry.action.value,
            outcome="Success" if entry.success else "Failure",
            user_name=entry.user_name,
            address=entry.origin.address,
            dialect=entry.origin.dialect,
            organization_id=entry.organization_id,
            subject=entry.subject,
            details=entry.details,
        )
    )


def record(ctx: Context, entry: Entry) -> None:
    with ctx.db.write() as s:
        add(s, ctx.clock.now(), entry)


def events(
    ctx: Context,
    *,
    since: datetime | None = None,
    limit: int = 100,
    organization_id: str | None = None,
    before: int | None = None,
) -> list[AuditEvent]:
    """The newest ``limit`` events (at or after ``since``; older than the event ``before``),
    newest first. ``before`` continues a listing by key, so a deep page costs what the first
    does."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", "limit")
    query = select(AuditEvent).order_by(AuditEvent.time.desc(), AuditEvent.id.desc()).limit(limit)
    if before is not None:
        # The order is (time, id), not id alone: a clock set back writes older times later.
        at = select(AuditEvent.time).where(AuditEvent.id == before).scalar_subquery()
        query = query.where(
            (AuditEvent.time < at) | ((AuditEvent.time == at) & (AuditEvent.id < before))
        )
    if since is not None:
        query = query.where(AuditEvent.time >= since)
    if organization_id is not None:
        query = query.where(AuditEvent.organization_id == organization_id)
    with ctx.db.read() as s:
        return list(s.scalars(query))


def audited_users(ctx: Context, organization_id: str) -> list[str]:
    """The organization's users whose backed-up data the trail records anything about.

    Found one index entry per user, not per event (a trail grows with every explore, save and
    put back): each next user is the smallest subject above the previous one, a lookup in the
    (organization, subject) index, walked by a recursive query."""
    events = AuditEvent.__table__
    of_org = events.c.organization_id == organization_id
    first = select(func.min(events.c.subject).label("subject")).where(
        of_org, events.c.subject.is_not(None)
    )
    found = first.cte("found", recursive=True)
    following = (
        select(func.min(events.c.subject))
        .where(of_org, events.c.subject > found.c.subject)
        .scalar_subquery()
    )
    found = found.union_all(select(following).where(found.c.subject.is_not(None)))
    with ctx.db.read() as s:
        names = s.scalars(select(found.c.subject).where(found.c.subject.is_not(None)))
        # Sorted here: the catalog's collation (PostgreSQL's locale) may order otherwise.
        return sorted(name for name in names if name)
