"""When a job runs next: pure schedule maths over a SchedulePolicy (rules in docs/scheduling.md).

Everything works on whole UTC minutes counted from the Unix epoch, so slots and window hours are
integer arithmetic; only a daily job's wall-clock time needs the server's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from keepstone.domain.policy import HOURS_PER_WEEK, SchedulePolicy, ScheduleType

HORIZON = timedelta(days=400)  # later than this a slot counts as "never"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_MINUTES_PER_WEEK = HOURS_PER_WEEK * 60
_EPOCH_WEEK_HOUR = 4 * 24  # 1970-01-01 was a Thursday: 96 hours after Sunday 00:00


@dataclass(frozen=True, slots=True)
class _WindowTable:
    """Per-hour distances precomputed once per window, so no lookup ever steps through time."""

    to_open: tuple[int | None, ...]  # hours from hour h until an open hour (0: h is open)
    to_closed: tuple[int | None, ...]  # hours from hour h until a closed hour (0: h is closed)


@lru_cache(maxsize=256)
def _window_table(window: tuple[bool, ...]) -> _WindowTable:
    return _WindowTable(
        tuple(_hours_until(window, h, want=True) for h in range(HOURS_PER_WEEK)),
        tuple(_hours_until(window, h, want=False) for h in range(HOURS_PER_WEEK)),
    )


def _hours_until(window: tuple[bool, ...], hour: int, *, want: bool) -> int | None:
    for k in range(HOURS_PER_WEEK):
        if bool(window[(hour + k) % HOURS_PER_WEEK]) == want:
            return k
    return None


def _require_aware(instant: datetime) -> None:
    # A naive datetime would silently mean the host's zone; refuse it instead.
    if instant.utcoffset() is None:
        raise ValueError(f"schedule instants must be timezone-aware, got {instant!r}")


def _minutes(instant: datetime) -> int:
    """Whole minutes since the epoch, floored."""
    _require_aware(instant)
    return (instant - _EPOCH) // _MINUTE


def _instant(minutes: int) -> datetime:
    return _EPOCH + timedelta(minutes=minutes)


def _week_hour(minutes: int, offset: int) -> int:
    """Index into backup_window (0 = Sunday 00:00 on the window's clock) of a UTC minute."""
    return ((minutes + offset) // 60 + _EPOCH_WEEK_HOUR) % HOURS_PER_WEEK


def _open_from(window: tuple[bool, ...], offset: int, minutes: int) -> int | None:
    """First minute >= ``minutes`` that ``window`` (on a clock ``offset`` minutes ahead of UTC)
    allows."""
    wait = _window_table(window).to_open[_week_hour(minutes, offset)]
    if wait is None:
        return None
    if wait == 0:
        return minutes
    return minutes - (minutes + offset) % 60 + 60 * wait


def window_allows(policy: SchedulePolicy, instant: datetime) -> bool:
    """Whether the backup window allows the minute ``instant`` falls in (always, if disabled)."""
    if not policy.backup_window_enabled:
        return True
    return bool(policy.backup_window[_week_hour(_minutes(instant), policy.minute_offset)])


def next_window_open(policy: SchedulePolicy, instant: datetime) -> datetime | None:
    """First instant >= ``instant`` (truncated to the minute) the window allows; None if none."""
    minutes = _minutes(instant)
    if not policy.backup_window_enabled:
        return _instant(minutes)
    opened = _open_from(policy.backup_window, policy.minute_offset, minutes)
    return None if opened is None else _instant(opened)


def window_closes_at(policy: SchedulePolicy, instant: datetime) -> datetime | None:
    """Start of the first hour at or after ``instant`` that the window forbids.

    None when the window is disabled or allows all 168 hours. For an instant the window already
    forbids this is the instant itself, truncated to the minute.
    """
    if not policy.backup_window_enabled:
        return None
    minutes, offset = _minutes(instant), policy.minute_offset
    run = _window_table(policy.backup_window).to_closed[_week_hour(minutes, offset)]
    if run is None:
        return None
    if run == 0:
        return _instant(minutes)
    return _instant(minutes - (minutes + offset) % 60 + 60 * run)


def next_run(policy: SchedulePolicy, after: datetime, tz: tzinfo = UTC) -> datetime | None:
    """First scheduled, window-allowed slot strictly after ``after``, in UTC; None if none.

    ``tz`` is the server's time zone, the clock of a daily job's ``daily_time``; periodic slots
    and the backup window ignore it.

    A slot ``run`` found after ``found_after`` is also the answer for any instant from
    ``found_after`` up to ``run`` (no allowed slot lies between them, and ``run`` is within
    the horizon of both): the last one found for a policy object and zone is kept and given
    again while it holds, as for every edit of a job whose schedule stays (a seed PUT).
    """
    key = (id(policy), id(tz))
    last = _LAST_RUNS.get(key)
    if (
        last is not None
        and last[0] is policy
        and last[1] is tz
        and after.utcoffset() is not None  # else _next_run refuses it, or compares naive
        and last[2] <= after < last[3]
    ):
        return last[3]
    found = _next_run(policy, after, tz)
    if found is not None:
        if len(_LAST_RUNS) >= _LAST_RUNS_KEPT:
            _LAST_RUNS.clear()
        # the policy and zone are kept with their ids: no other object takes those ids meanwhile
        _LAST_RUNS[key] = (policy, tz, after, found)
    return found


# (id(policy), id(tz)) -> (policy, tz, after, the run found after it)
_LAST_RUNS: dict[tuple[int, int], tuple[SchedulePolicy, tzinfo, datetime, datetime]] = {}
_LAST_RUNS_KEPT = 256


def _next_run(policy: SchedulePolicy, after: datetime, tz: tzinfo) -> datetime | None:
    match policy.type:
        case ScheduleType.DAILY:
            return _next_daily(policy, after, tz)
        case ScheduleType.PERIODICALLY:
            found = _next_periodic(policy, _minutes(after) + 1)
            return None if found is None else _instant(found)
    return None


def _next_periodic(policy: SchedulePolicy, start: int) -> int | None:
    """First grid minute >= ``start`` that the enabled windows (the backup window, the periodic
    one) both allow; the grid is anchored at window midnight, shifted by
    ``periodically_offset`` minutes."""
    period = policy.periodically_every.minutes
    anchor = policy.minute_offset - policy.periodically_offset
    slot = start + (-(start + anchor)) % period
    windows = _periodic_windows(policy)
    if not windows:
        return slot
    # Every period divides a week and both windows repeat weekly, so the pattern repeats weekly:
    # one week without a hit is never.
    limit = slot + _MINUTES_PER_WEEK
    while slot < limit:
        latest = slot
        for window, offset in windows:
            opened = _open_from(window, offset, slot)
            if opened is None:
                return None
            latest = max(latest, opened)
        if latest == slot:
            return slot
        slot = latest + (-(latest + anchor)) % period
    return None


def _periodic_windows(policy: SchedulePolicy) -> tuple[tuple[tuple[bool, ...], int], ...]:
    """The enabled windows a periodic slot must fall in, each with its clock's offset."""
    windows: tuple[tuple[tuple[bool, ...], int], ...] = ()
    if policy.backup_window_enabled:
        windows += ((policy.backup_window, policy.minute_offset),)
    if policy.periodic_window_enabled:
        windows += ((policy.periodic_window, policy.periodic_minute_offset),)
    return windows


def _next_daily(policy: SchedulePolicy, after: datetime, tz: tzinfo) -> datetime | None:
    _require_aware(after)
    # Seconds of daily_time are dropped: slots are whole minutes.
    wall = policy.daily_time.replace(second=0, microsecond=0, tzinfo=None)
    weekdays = policy.daily_type.weekdays()
    horizon = after + HORIZON
    # Start a day early: a wall time pushed forward over a DST gap can cross midnight.
    day = after.astimezone(tz).date() - _DAY
    last_day = day + HORIZON + 3 * _DAY
    refused_since: tuple[timedelta | None, date] = (None, day)  # (offset, first refused day)
    while day <= last_day:
        if day.weekday() in weekdays:
            slot = _daily_slot(day, wall, tz)
            if slot > after:
                if slot > horizon:
                    return None
                if window_allows(policy, slot):
                    return slot
                offset = _offset(day, wall, tz)
                if offset != refused_since[0]:
                    refused_since = (offset, day)
                elif day - refused_since[1] >= _WEEK:
                    # A whole week of slots at this UTC offset was refused, and the window repeats
                    # weekly: nothing changes until the zone's offset does. Jump there.
                    day = _next_offset_change(day, wall, tz, offset, last_day)
                    continue
        day += _DAY
    return None


def _offset(day: date, wall: time, tz: tzinfo) -> timedelta | None:
    return datetime.combine(day, wall, tz).utcoffset()


def _next_offset_change(
    day: date, wall: time, tz: tzinfo, offset: timedelta | None, last_day: date
) -> date:
    """The first day after ``day`` whose ``wall`` time has another UTC offset (or past
    ``last_day``), probing a week at a time: zones change offset at most twice a year."""
    while day <= last_day and _offset(day + _WEEK, wall, tz) == offset:
        day += _WEEK
    day += _DAY
    while day <= last_day and _offset(day, wall, tz) == offset:
        day += _DAY
    return day


def _daily_slot(day: date, wall: time, tz: tzinfo) -> datetime:
    """UTC instant of ``wall`` on local ``day``.

    fold=0 does both DST rules: a wall time in a gap is read with the offset before the gap (so it
    lands gap-length later), and a repeated wall time picks its first occurrence.
    """
    slot = datetime.combine(day, wall, tz).astimezone(UTC)
    # Only historic local-mean-time offsets carry seconds; keep slots on whole minutes anyway.
    return slot.replace(second=0) if slot.second else slot
