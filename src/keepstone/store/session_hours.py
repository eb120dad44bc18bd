"""Every job session, or those of some statuses and retries, counted and paged by the hour of
its creation, without reading them all.

``job_session_tallies`` holds how many sessions were created in each hour with each status,
retried or not (triggers keep it exact, migration 0031). A set of sessions that keeps some of
those (status, retried) pairs (``Kinds``; None: every session) is counted by the sum of their
tallies, and the session at any position of the set (newest or oldest first) is found in the
hour where their running sum passes that position: a page skips only sessions of its own hour,
from whichever edge of that hour is nearer, never the half of a million sessions that an offset
in the creation-time index skips. The work is a few rows per hour that has sessions plus half
an hour's sessions, whatever the number of sessions in the other hours.

A listed set is pinned by a creation cutoff: the sessions created after it (counted through
the index, a range of the newest entries) are left out of its count and its positions.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from keepstone.store.tables import JobSession, JobSessionTally

HOUR = timedelta(hours=1)
KEYS = (JobSession.creation_time, JobSession.id)
Kinds = Set[tuple[str, bool]]  # the (status, retried) pairs a set keeps


class unindexed(FunctionElement[Any]):
    """A column SQLite must not look up by its own index (``+column``): it would read every
    session of a common status and sort them, where the creation-time index gives the order
    and the page's few rows. PostgreSQL's planner weighs that from its statistics."""

    inherit_cache = True
    name = "unindexed"


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def of_kinds(kinds: Kinds | None, status: Any, retried: Any) -> ColumnElement[bool]:
    """The rows whose ``status`` and ``retried`` (boolean expressions of the row) are one of
    ``kinds`` (None: every row)."""
    if kinds is None:
        return true()
    either = []
    for name in sorted({k[0] for k in kinds}):
        flags = {r for k, r in kinds if k == name}
        shown = status == name
        if len(flags) == 1:
            shown = and_(shown, retried if True in flags else ~retried)
        either.append(shown)
    return or_(*either) if either else false()


def session_of_kinds(kinds: Kinds | None) -> ColumnElement[bool]:
    """The sessions of ``kinds``, compared row by row (never through the status index)."""
    return of_kinds(kinds, unindexed(JobSession.status), JobSession.retry_count > 0)


def count(s: Session, cutoff: datetime | None, kinds: Kinds | None = None) -> int:
    """How many sessions of ``kinds`` were created (until ``cutoff``, if given)."""
    tallied = func.coalesce(func.sum(JobSessionTally.sessions), 0)
    every = s.scalar(select(tallied).where(_tallies_of(kinds))) or 0
    return int(every) - _newer(s, cutoff, kinds)


def _tallies_of(kinds: Kinds | None) -> ColumnElement[bool]:
    return of_kinds(kinds, JobSessionTally.status, JobSessionTally.retried.is_(True))


def page(
    s: Session,
    offset: int,
    limit: int,
    *,
    descending: bool,
    cutoff: datetime | None,
    total: int | None = None,
    kinds: Kinds | None = None,
) -> list[JobSession]:
    """The sessions at ``offset`` (at most ``limit``) of the sessions of ``kinds`` created
    until ``cutoff``, newest first (``descending``) or oldest first; ``total``, the set's count
    when known, spares counting it."""
    pinned = count(s, cutoff, kinds) if total is None else total
    end = min(offset + limit, pinned)
    if end <= offset:
        return []
    # Positions among every session: the newer ones come first when newest first.
    shift = _newer(s, cutoff, kinds) if descending else 0
    first, last = offset + shift, end - 1 + shift
    hours = _hours_holding(s, first, last, descending, kinds)
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
    ids = select(JobSession.id).where(bound, session_of_kinds(kinds))
    ids = ids.order_by(*order).offset(skip or None)
    window = ids.limit(end - offset).scalar_subquery()
    rows = list(s.scalars(select(JobSession).where(JobSession.id.in_(window)).order_by(*order)))
    return rows[::-1] if backwards else rows


def _hours_holding(
    s: Session, first: int, last: int, descending: bool, kinds: Kinds | None
) -> list[tuple[datetime, int, int]]:
    """The hours holding the sessions of ``kinds`` at positions ``first`` and ``last`` (one
    hour if both are in it): each as (hour, sessions at earlier positions, sessions in it)."""
    hours = (
        select(JobSessionTally.hour, func.sum(JobSessionTally.sessions).label("sessions"))
        .where(_tallies_of(kinds))
        .group_by(JobSessionTally.hour)
        .subquery()
    )
    hour = hours.c.hour.desc() if descending else hours.c.hour.asc()
    through = func.sum(hours.c.sessions).over(order_by=hour, rows=(None, 0))
    running = select(hours.c.hour, hours.c.sessions, through.label("through")).subquery()
    before = running.c.through - running.c.sessions

    def holds(position: int) -> Any:
        return (before <= position) & (running.c.through > position)

    found = s.execute(
        select(running.c.hour, before, running.c.sessions)
        .where(holds(first) | holds(last))
        .order_by(running.c.hour.desc() if descending else running.c.hour.asc())
    ).all()
    if not found:
        raise LookupError(f"no hour holds sessions {first}-{last}: job_session_tallies is off")
    return [(r[0], int(r[1]), int(r[2])) for r in found]


def _newer(s: Session, cutoff: datetime | None, kinds: Kinds | None) -> int:
    if cutoff is None:
        return 0
    newer = select(func.count()).select_from(JobSession)
    newer = newer.where(JobSession.creation_time > cutoff, session_of_kinds(kinds))
    return s.scalar(newer) or 0
