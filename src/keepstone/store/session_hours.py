"""Every job session, counted and paged by the hour of its creation, without reading them all.

``job_session_hours`` holds how many sessions were created in each hour (triggers keep it exact,
migration 0022). The set's count is the sum of those rows, and the session at any position of
the set (newest or oldest first) is found in the hour where the running sum passes that
position: a page skips only sessions of its own hour, from whichever edge of that hour is
nearer, never the half of a million sessions that an offset in the creation-time index skips.
The work is one row per hour that has sessions plus half an hour's sessions, whatever the
number of sessions in the other hours.

A listed set is pinned by a creation cutoff: the sessions created after it (counted through
the index, a range of the newest entries) are left out of its count and its positions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepstone.store.tables import JobSession, JobSessionHour

HOUR = timedelta(hours=1)
KEYS = (JobSession.creation_time, JobSession.id)


def count(s: Session, cutoff: datetime | None) -> int:
    """How many sessions were created (until ``cutoff``, if given)."""
    every = s.scalar(select(func.coalesce(func.sum(JobSessionHour.sessions), 0))) or 0
    return int(every) - _newer(s, cutoff)


def page(
    s: Session,
    offset: int,
    limit: int,
    *,
    descending: bool,
    cutoff: datetime | None,
    total: int | None = None,
) -> list[JobSession]:
    """The sessions at ``offset`` (at most ``limit``) of every session created until
    ``cutoff``, newest first (``descending``) or oldest first; ``total``, the set's count when
    known, spares counting it."""
    pinned = count(s, cutoff) if total is None else total
    end = min(offset + limit, pinned)
    if end <= offset:
        return []
    # Positions among every session: the newer ones come first when newest first.
    shift = _newer(s, cutoff) if descending else 0
    first, last = offset + shift, end - 1 + shift
    hours = _hours_holding(s, first, last, descending)
    hour_first, before_first, _ = hours[0]
    hour_last, before_last, in_last = hours[-1]
    from_start = first - before_first  # sessions of the first row's hour before it
    from_end = before_last + in_last - 1 - last  # sessions of the last row's hour after it
    backwards = from_end < from_start
    if backwards:
        edge, skip = hour_last, from_end
    else:
        edge, skip = hour_first, from_start
    # The hour's near edge: sessions of earlier positions' hours are past it.
    if descending == backwards:  # oldest first from the hour's start
        bound = JobSession.creation_time >= edge
    else:  # newest first from the hour's end
        bound = JobSession.creation_time < edge + HOUR
    toward_newer = descending == backwards
    order = [k.asc() if toward_newer else k.desc() for k in KEYS]
    ids = select(JobSession.id).where(bound).order_by(*order).offset(skip or None)
    window = ids.limit(end - offset).scalar_subquery()
    rows = list(s.scalars(select(JobSession).where(JobSession.id.in_(window)).order_by(*order)))
    return rows[::-1] if backwards else rows


def _hours_holding(
    s: Session, first: int, last: int, descending: bool
) -> list[tuple[datetime, int, int]]:
    """The hours holding the sessions at positions ``first`` and ``last`` (one hour if both
    are in it): each as (hour, sessions at earlier positions, sessions in it)."""
    hour = JobSessionHour.hour.desc() if descending else JobSessionHour.hour.asc()
    through = func.sum(JobSessionHour.sessions).over(order_by=hour, rows=(None, 0))
    running = select(
        JobSessionHour.hour, JobSessionHour.sessions, through.label("through")
    ).subquery()
    before = running.c.through - running.c.sessions

    def holds(position: int) -> Any:
        return (before <= position) & (running.c.through > position)

    found = s.execute(
        select(running.c.hour, before, running.c.sessions)
        .where(holds(first) | holds(last))
        .order_by(running.c.hour.desc() if descending else running.c.hour.asc())
    ).all()
    if not found:
        raise LookupError(f"no hour holds sessions {first}-{last}: job_session_hours is off")
    return [(r[0], int(r[1]), int(r[2])) for r in found]


def _newer(s: Session, cutoff: datetime | None) -> int:
    if cutoff is None:
        return 0
    newer = select(func.count()).select_from(JobSession).where(JobSession.creation_time > cutoff)
    return s.scalar(newer) or 0
