"""Schedule maths: worked examples, and properties against a brute-force minute-stepping oracle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import ScheduleEdit
from keepstone.domain.policy import (
    ALWAYS_OPEN,
    DailyType,
    Period,
    SchedulePolicy,
    ScheduleType,
)
from keepstone.domain.schedule import (
    HORIZON,
    next_run,
    next_window_open,
    window_allows,
    window_closes_at,
)
from keepstone.store.codecs import policy_from_record, policy_to_record

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")
NUUK = ZoneInfo("America/Nuuk")  # springs forward 23:00 -> 00:00: its gap crosses midnight
ZONES: list[tzinfo] = [UTC, BERLIN, NEW_YORK, SYDNEY, KOLKATA, NUUK]

MINUTE = timedelta(minutes=1)
ORACLE_BOUND = timedelta(days=8)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hours_open(*hours: int) -> tuple[bool, ...]:
    return tuple(h in hours for h in range(168))


def daily(
    at: time,
    daily_type: DailyType = DailyType.EVERYDAY,
    window: tuple[bool, ...] | None = None,
    offset: int = 0,
) -> SchedulePolicy:
    return SchedulePolicy(
        type=ScheduleType.DAILY,
        daily_type=daily_type,
        daily_time=at,
        backup_window_enabled=window is not None,
        backup_window=window or ALWAYS_OPEN,
        minute_offset=offset,
    )


def periodic(
    every: Period, window: tuple[bool, ...] | None = None, offset: int = 0
) -> SchedulePolicy:
    return SchedulePolicy(
        type=ScheduleType.PERIODICALLY,
        periodically_every=every,
        backup_window_enabled=window is not None,
        backup_window=window or ALWAYS_OPEN,
        minute_offset=offset,
    )


# ---------------------------------------------------------------------------------------------
# Oracle: written from the rules, stepping minute by minute, sharing no code with the module.


def floor_minute(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(second=0, microsecond=0)


def oracle_window(window: tuple[bool, ...], offset: int, minute: datetime) -> bool:
    clock = minute.astimezone(UTC).replace(tzinfo=None) + timedelta(minutes=offset)
    sunday_first_day = (clock.weekday() + 1) % 7
    return window[sunday_first_day * 24 + clock.hour]


def oracle_allows(policy: SchedulePolicy, minute: datetime) -> bool:
    if not policy.backup_window_enabled:
        return True
    return oracle_window(policy.backup_window, policy.minute_offset, minute)


def oracle_is_periodic_slot(policy: SchedulePolicy, minute: datetime) -> bool:
    """On the grid (window-clock midnight, shifted by the periodic offset) and in an hour the
    periodic window allows, when it is enabled."""
    clock = minute.replace(tzinfo=None) + timedelta(minutes=policy.minute_offset)
    since_midnight = clock.hour * 60 + clock.minute - policy.periodically_offset
    if since_midnight % policy.periodically_every.minutes:
        return False
    if not policy.periodic_window_enabled:
        return True
    return oracle_window(policy.periodic_window, policy.periodic_minute_offset, minute)


def oracle_daily_slots(
    policy: SchedulePolicy, tz: tzinfo, start: datetime, end: datetime
) -> set[datetime]:
    """Walk the local wall clock minute by minute; a target wall time W runs when the clock
    first shows W, or, when a gap skips W, at the last minute before the gap plus the wall time
    from then to W (so a gap shifts W forward by the gap; a repeated W runs at its first
    occurrence)."""
    at = policy.daily_time.replace(second=0, microsecond=0)
    walk_from = floor_minute(start) - timedelta(days=2)
    first_day = walk_from.astimezone(tz).date() - timedelta(days=1)
    targets = sorted(
        datetime.combine(first_day + timedelta(days=n), at)
        for n in range((end - start).days + 6)
        if (first_day + timedelta(days=n)).weekday() in policy.daily_type.weekdays()
    )
    slots: set[datetime] = set()
    index, previous = 0, None
    minute = walk_from
    while minute <= end + timedelta(days=1):
        wall = minute.astimezone(tz).replace(tzinfo=None)
        while index < len(targets) and targets[index] <= wall:
            if targets[index] == wall:
                slots.add(minute)  # reached exactly, even on the first minute after a gap
            elif previous is not None:
                slots.add(previous[0] + (targets[index] - previous[1]))  # skipped by a gap
            index += 1
        previous = (minute, wall)
        minute += MINUTE
    return slots


def oracle_next_run(
    policy: SchedulePolicy, after: datetime, tz: tzinfo
) -> tuple[bool, datetime | None]:
    """(searched to the end of the bound?, first allowed slot within ORACLE_BOUND or None)."""
    if policy.type is ScheduleType.MANUAL_ONLY:
        return True, None
    end = after + ORACLE_BOUND
    if policy.type is ScheduleType.DAILY:
        slots = oracle_daily_slots(policy, tz, after, end)

        def is_slot(minute: datetime) -> bool:
            return minute in slots
    else:

        def is_slot(minute: datetime) -> bool:
            return oracle_is_periodic_slot(policy, minute)

    minute = floor_minute(after) + MINUTE
    while minute <= end:
        if is_slot(minute) and oracle_allows(policy, minute):
            return True, minute
        minute += MINUTE
    return False, None


# ---------------------------------------------------------------------------------------------
# Examples: schedule types.


def test_manual_only_never_runs() -> None:
    policy = SchedulePolicy(type=ScheduleType.MANUAL_ONLY)
    assert next_run(policy, utc("2025-01-01T00:00")) is None


def test_periodic_hourly_runs_on_the_hour_and_strictly_after() -> None:
    policy = periodic(Period.HOURS1)
    assert next_run(policy, utc("2025-01-06T10:20:31")) == utc("2025-01-06T11:00")
    assert next_run(policy, utc("2025-01-06T11:00")) == utc("2025-01-06T12:00")
    assert next_run(policy, utc("2025-01-06T10:59:59.999999")) == utc("2025-01-06T11:00")


@pytest.mark.parametrize(
    ("every", "offset", "after", "expected"),
    [
        (Period.MINUTES5, 0, "2025-01-06T10:21", "2025-01-06T10:25"),
        (Period.MINUTES10, 0, "2025-01-06T10:20", "2025-01-06T10:30"),
        (Period.MINUTES30, 15, "2025-01-06T10:20", "2025-01-06T10:45"),  # grid on :15 and :45
        (Period.HOURS1, 330, "2025-01-06T10:20", "2025-01-06T10:30"),  # window hours start :30
        (Period.HOURS2, 330, "2025-01-06T00:00", "2025-01-06T00:30"),  # window 06:00
        (Period.HOURS8, 330, "2025-01-06T00:00", "2025-01-06T02:30"),  # window 08:00
        (Period.HOURS12, -300, "2025-01-06T05:00", "2025-01-06T17:00"),  # window 00:00, 12:00
        (Period.HOURS4, 840, "2025-01-06T00:00", "2025-01-06T02:00"),  # window 16:00
    ],
)
def test_periodic_grid_is_anchored_at_window_midnight(
    every: Period, offset: int, after: str, expected: str
) -> None:
    assert next_run(periodic(every, offset=offset), utc(after)) == utc(expected)


def test_periodic_slots_ignore_the_server_time_zone() -> None:
    policy = periodic(Period.HOURS4)
    for tz in ZONES:
        assert next_run(policy, utc("2025-03-30T00:30"), tz) == utc("2025-03-30T04:00")


WEDNESDAY_AFTER_RUN = utc("2025-01-08T16:00")  # a Wednesday, after its 15:00 run


@pytest.mark.parametrize(
    ("daily_type", "expected_day"),
    [
        (DailyType.EVERYDAY, "2025-01-09"),
        (DailyType.WORKDAYS, "2025-01-09"),
        (DailyType.WEEKENDS, "2025-01-11"),
        (DailyType.MONDAY, "2025-01-13"),
        (DailyType.TUESDAY, "2025-01-14"),
        (DailyType.WEDNESDAY, "2025-01-15"),
        (DailyType.THURSDAY, "2025-01-09"),
        (DailyType.FRIDAY, "2025-01-10"),
        (DailyType.SATURDAY, "2025-01-11"),
        (DailyType.SUNDAY, "2025-01-12"),
    ],
)
def test_daily_runs_on_its_days(daily_type: DailyType, expected_day: str) -> None:
    policy = daily(time(15, 0), daily_type)
    assert next_run(policy, WEDNESDAY_AFTER_RUN) == utc(f"{expected_day}T15:00")


def test_workdays_skip_the_weekend() -> None:
    policy = daily(time(15, 0), DailyType.WORKDAYS)
    assert next_run(policy, utc("2025-01-10T15:00")) == utc("2025-01-13T15:00")


def test_daily_after_exactly_on_a_slot_gives_the_next_day() -> None:
    policy = daily(time(15, 0))
    assert next_run(policy, utc("2025-01-08T15:00")) == utc("2025-01-09T15:00")
    assert next_run(policy, utc("2025-01-08T14:59:59")) == utc("2025-01-08T15:00")


def test_daily_time_seconds_are_truncated() -> None:
    policy = daily(time(15, 0, 45, 123))
    assert next_run(policy, utc("2025-01-08T14:00")) == utc("2025-01-08T15:00")
    assert next_run(policy, utc("2025-01-08T15:00:10")) == utc("2025-01-09T15:00")


@pytest.mark.parametrize(
    ("tz", "at", "daily_type", "after", "expected"),
    [
        (BERLIN, time(15, 0), DailyType.EVERYDAY, "2025-01-08T16:00", "2025-01-09T14:00"),
        (BERLIN, time(15, 0), DailyType.EVERYDAY, "2025-07-08T16:00", "2025-07-09T13:00"),
        (KOLKATA, time(9, 0), DailyType.EVERYDAY, "2025-01-08T12:00", "2025-01-09T03:30"),
        # Friday 22:30 in New York is Saturday 03:30 UTC; the local weekday is what counts.
        (NEW_YORK, time(22, 30), DailyType.FRIDAY, "2025-01-08T00:00", "2025-01-11T03:30"),
        # Monday 06:00 in Sydney is still Sunday in UTC.
        (SYDNEY, time(6, 0), DailyType.MONDAY, "2025-01-08T00:00", "2025-01-12T19:00"),
        (
            timezone(timedelta(hours=-3)),
            time(1, 0),
            DailyType.EVERYDAY,
            "2025-01-08T00:00",
            "2025-01-08T04:00",
        ),
    ],
)
def test_daily_time_is_wall_time_in_the_server_zone(
    tz: tzinfo, at: time, daily_type: DailyType, after: str, expected: str
) -> None:
    assert next_run(daily(at, daily_type), utc(after), tz) == utc(expected)


def test_after_in_any_zone_gives_utc_whole_minutes() -> None:
    after = datetime(2025, 1, 8, 17, 0, 30, tzinfo=BERLIN)  # 16:00:30 UTC
    result = next_run(daily(time(15, 0)), after)
    assert result == utc("2025-01-09T15:00")
    assert result is not None and result.tzinfo is UTC and result.second == 0


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(daily(time(15, 0)), datetime(2025, 1, 8))


# ---------------------------------------------------------------------------------------------
# Examples: DST.


@pytest.mark.parametrize(
    ("tz", "at", "after", "runs"),
    [
        # Berlin spring forward 2025-03-30 02:00 -> 03:00: 02:30 runs at 03:30 CEST.
        (BERLIN, time(2, 30), "2025-03-29T12:00", ["2025-03-30T01:30", "2025-03-31T00:30"]),
        (BERLIN, time(2, 0), "2025-03-29T12:00", ["2025-03-30T01:00", "2025-03-31T00:00"]),
        # Berlin fall back 2025-10-26 03:00 -> 02:00: 02:30 runs once, at the CEST one.
        (BERLIN, time(2, 30), "2025-10-25T12:00", ["2025-10-26T00:30", "2025-10-27T01:30"]),
        # New York spring forward 2025-03-09 02:00 -> 03:00, fall back 2025-11-02 02:00 -> 01:00.
        (NEW_YORK, time(2, 30), "2025-03-08T12:00", ["2025-03-09T07:30", "2025-03-10T06:30"]),
        (NEW_YORK, time(1, 30), "2025-11-01T12:00", ["2025-11-02T05:30", "2025-11-03T06:30"]),
        # Sydney spring forward 2025-10-05 02:00 -> 03:00, fall back 2025-04-06 03:00 -> 02:00.
        (SYDNEY, time(2, 30), "2025-10-04T00:00", ["2025-10-04T16:30", "2025-10-05T15:30"]),
        (SYDNEY, time(2, 30), "2025-04-05T00:00", ["2025-04-05T15:30", "2025-04-06T16:30"]),
    ],
)
def test_daily_runs_exactly_once_per_day_across_dst(
    tz: tzinfo, at: time, after: str, runs: list[str]
) -> None:
    policy, instant = daily(at), utc(after)
    for expected in runs:
        found = next_run(policy, instant, tz)
        assert found == utc(expected)
        instant = found


def test_a_slot_pushed_over_midnight_by_a_gap_still_runs() -> None:
    # Nuuk 2025-03-29 23:00 -> 2025-03-30 00:00: Saturday's 23:30 runs at Sunday 00:30 local.
    policy = daily(time(23, 30), DailyType.SATURDAY)
    sunday_00_10_local = utc("2025-03-30T01:10")
    assert next_run(policy, sunday_00_10_local, NUUK) == utc("2025-03-30T01:30")
    assert next_run(policy, utc("2025-03-30T01:30"), NUUK) == utc("2025-04-06T00:30")  # -01:00


# ---------------------------------------------------------------------------------------------
# Examples: backup window.

# Saturday 22:00 to Sunday 02:00 on the window's clock.
SATURDAY_NIGHT = hours_open(6 * 24 + 22, 6 * 24 + 23, 0, 1)


def test_window_wraps_from_saturday_night_into_sunday() -> None:
    policy = periodic(Period.HOURS1, SATURDAY_NIGHT)
    assert next_run(policy, utc("2025-01-11T12:00")) == utc("2025-01-11T22:00")  # Saturday
    assert next_run(policy, utc("2025-01-11T23:00")) == utc("2025-01-12T00:00")
    assert next_run(policy, utc("2025-01-12T01:00")) == utc("2025-01-18T22:00")
    assert window_closes_at(policy, utc("2025-01-11T22:10")) == utc("2025-01-12T02:00")
    assert next_window_open(policy, utc("2025-01-12T05:00")) == utc("2025-01-18T22:00")


def test_window_with_positive_half_hour_offset() -> None:
    # Monday 09:00-10:00 at UTC+05:30 is Monday 03:30-04:30 UTC.
    policy = periodic(Period.MINUTES15, hours_open(24 + 9), offset=330)
    assert next_run(policy, utc("2025-01-06T00:00")) == utc("2025-01-06T03:30")
    assert next_run(policy, utc("2025-01-06T04:00")) == utc("2025-01-06T04:15")
    assert next_run(policy, utc("2025-01-06T04:15")) == utc("2025-01-13T03:30")
    assert window_allows(policy, utc("2025-01-06T04:29:59"))
    assert not window_allows(policy, utc("2025-01-06T04:30"))


def test_window_with_negative_offset_wraps_back_over_the_utc_day() -> None:
    # Sunday 00:00-01:00 at UTC-05:00 is Sunday 05:00-06:00 UTC.
    policy = periodic(Period.MINUTES30, hours_open(0), offset=-300)
    assert next_run(policy, utc("2025-01-11T23:00")) == utc("2025-01-12T05:00")
    assert next_window_open(policy, utc("2025-01-12T05:45:10")) == utc("2025-01-12T05:45")
    assert window_closes_at(policy, utc("2025-01-12T05:45")) == utc("2025-01-12T06:00")


def test_window_with_quarter_hour_offset_and_long_period() -> None:
    # With +15 the window's hours start at :45 UTC; Hours2 slots fall on even window hours.
    policy = periodic(Period.HOURS2, hours_open(24 + 3, 24 + 4), offset=15)
    assert next_run(policy, utc("2025-01-06T00:00")) == utc("2025-01-06T03:45")  # window 04:00


def test_periodic_slots_that_never_meet_the_window_never_run() -> None:
    # Hours2 slots are on even window hours; only an odd hour is open.
    policy = periodic(Period.HOURS2, hours_open(24 + 3))
    assert next_run(policy, utc("2025-01-06T00:00")) is None


def test_daily_slot_outside_the_window_is_skipped_not_postponed() -> None:
    workdays_only = tuple(24 <= h < 6 * 24 for h in range(168))  # Monday..Friday, UTC
    policy = daily(time(15, 0), DailyType.EVERYDAY, workdays_only)
    assert next_run(policy, utc("2025-01-10T16:00")) == utc("2025-01-13T15:00")  # Fri -> Mon
    late_window = daily(time(15, 0), window=tuple(h % 24 == 16 for h in range(168)))
    assert next_run(late_window, utc("2025-01-10T16:00")) is None


def test_daily_slot_follows_dst_in_and_out_of_the_window() -> None:
    # 15:00 Berlin is 14:00 UTC in winter, 13:00 in summer; only Monday 14:00 UTC is open.
    policy = daily(time(15, 0), DailyType.MONDAY, hours_open(24 + 14))
    assert next_run(policy, utc("2025-04-01T00:00"), BERLIN) == utc("2025-10-27T14:00")


class _SwitchingZone(tzinfo):
    """UTC until 2030-06-01, UTC+1 from then on: a rule change longer than a DST season."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        switched = dt is not None and dt.replace(tzinfo=None) >= datetime(2030, 6, 1)
        return timedelta(hours=1 if switched else 0)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "SWITCH"


def test_slots_beyond_the_400_day_horizon_count_as_never() -> None:
    policy = daily(time(15, 0), DailyType.MONDAY, hours_open(24 + 14))
    assert next_run(policy, utc("2029-01-01T00:00"), _SwitchingZone()) is None
    assert next_run(policy, utc("2029-06-01T00:00"), _SwitchingZone()) == utc("2030-06-03T14:00")
    assert timedelta(days=400) == HORIZON


def test_window_functions_when_disabled_or_always_open() -> None:
    disabled = periodic(Period.HOURS1)
    always = periodic(Period.HOURS1, ALWAYS_OPEN)
    instant = utc("2025-01-06T10:20:30")
    assert window_allows(disabled, instant)
    assert next_window_open(disabled, instant) == utc("2025-01-06T10:20")
    assert window_closes_at(disabled, instant) is None
    assert window_closes_at(always, instant) is None
    assert next_window_open(always, instant) == utc("2025-01-06T10:20")


def test_window_closes_at_a_closed_instant_is_that_instant() -> None:
    policy = periodic(Period.HOURS1, hours_open(0))
    assert window_closes_at(policy, utc("2025-01-06T10:20:30")) == utc("2025-01-06T10:20")


# ---------------------------------------------------------------------------------------------
# Properties.


def _dst_transitions(tz: tzinfo) -> list[datetime]:
    """UTC instants at which ``tz`` changes offset, 2023-2027 (found by scanning hourly)."""
    found: list[datetime] = []
    instant = utc("2023-01-01T00:00")
    offset = instant.astimezone(tz).utcoffset()
    while instant < utc("2028-01-01T00:00"):
        instant += timedelta(hours=1)
        now = instant.astimezone(tz).utcoffset()
        if now != offset:
            found.append(instant)
            offset = now
    return found


DST_ZONES: list[tzinfo] = [BERLIN, NEW_YORK, SYDNEY, NUUK]
TRANSITIONS = {tz: _dst_transitions(tz) for tz in DST_ZONES}

bool_windows = st.lists(st.booleans(), min_size=168, max_size=168).map(tuple)
mostly_open = st.lists(st.integers(0, 9).map(lambda n: n > 0), min_size=168, max_size=168)
windows = st.one_of(
    st.just(ALWAYS_OPEN),
    bool_windows.filter(any),
    mostly_open.map(tuple).filter(any),
    st.sets(st.integers(0, 167), min_size=1, max_size=4).map(lambda hs: hours_open(*hs)),
    st.tuples(st.integers(0, 23), st.integers(1, 23)).map(
        lambda band: tuple((h % 24 - band[0]) % 24 < band[1] for h in range(168))
    ),
)
daily_times = st.builds(
    time,
    hour=st.sampled_from([0, 1, 2, 3, 23]) | st.integers(0, 23),
    minute=st.sampled_from([0, 30, 59]) | st.integers(0, 59),
    second=st.sampled_from([0, 0, 59]),
)


@st.composite
def policies(draw: st.DrawFn) -> SchedulePolicy:
    every = draw(st.sampled_from(Period))
    return SchedulePolicy(
        type=draw(st.sampled_from([*ScheduleType, ScheduleType.DAILY, ScheduleType.PERIODICALLY])),
        daily_type=draw(st.sampled_from(DailyType)),
        daily_time=draw(daily_times),
        periodically_every=every,
        backup_window_enabled=draw(st.booleans()),
        backup_window=draw(windows),
        minute_offset=draw(st.integers(-720, 840)),
        # a shift within the hour is for periods in hours only
        periodically_offset=draw(st.integers(0, 59)) if every.minutes >= 60 else 0,
        periodic_window_enabled=draw(st.booleans()),
        periodic_window=draw(windows),
        periodic_minute_offset=draw(st.integers(-720, 840)),
    )


anywhere = st.datetimes(
    min_value=datetime(2019, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC)
)
near_dst = st.builds(
    lambda transition, seconds: transition + timedelta(seconds=seconds),
    st.sampled_from([t for tz in DST_ZONES for t in TRANSITIONS[tz]]),
    st.integers(-3 * 86_400, 86_400),
)
instants = st.one_of(anywhere, near_dst).flatmap(
    lambda t: st.sampled_from(ZONES).map(t.astimezone)  # `after` may come in any zone
)
zones = st.sampled_from(ZONES)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_against_oracle(policy: SchedulePolicy, after: datetime, tz: tzinfo) -> None:
    complete, expected = oracle_next_run(policy, after, tz)
    actual = next_run(policy, after, tz)
    if complete:
        assert actual == expected
    else:  # nothing within the oracle's bound: the module must agree
        assert actual is None or actual > after + ORACLE_BOUND
    if actual is not None:
        assert actual.tzinfo is UTC and actual.second == actual.microsecond == 0


@SETTINGS
@given(policies(), instants, zones)
def test_next_run_matches_the_oracle(policy: SchedulePolicy, after: datetime, tz: tzinfo) -> None:
    _check_against_oracle(policy, after, tz)


@SETTINGS
@given(policies(), instants, zones)
def test_next_run_from_a_slot_matches_the_oracle(
    policy: SchedulePolicy, after: datetime, tz: tzinfo
) -> None:
    slot = next_run(policy, after, tz)
    assume(slot is not None)
    assert slot is not None
    _check_against_oracle(policy, slot, tz)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([BERLIN, NEW_YORK, SYDNEY]).flatmap(
        lambda tz: st.tuples(st.just(tz), st.sampled_from(TRANSITIONS[tz]))
    ),
    st.integers(0, 23),
    st.integers(0, 59),
)
def test_a_daily_job_runs_once_on_each_day_around_dst(
    zone_and_transition: tuple[tzinfo, datetime], hour: int, minute: int
) -> None:
    tz, transition = zone_and_transition
    policy = daily(time(hour, minute))
    instant = transition - timedelta(days=3)
    days: list[date] = []
    for _ in range(6):
        found = next_run(policy, instant, tz)
        assert found is not None
        days.append(found.astimezone(tz).date())  # gaps in these zones never cross midnight
        instant = found
    assert days == [days[0] + timedelta(days=n) for n in range(6)]


window_policies = st.builds(
    periodic,
    every=st.just(Period.HOURS1),
    window=windows,
    offset=st.integers(-720, 840),
)


@settings(max_examples=150, deadline=None)
@given(window_policies, anywhere)
def test_window_allows_matches_the_oracle(policy: SchedulePolicy, instant: datetime) -> None:
    assert window_allows(policy, instant) == oracle_allows(policy, floor_minute(instant))


@settings(max_examples=100, deadline=None)
@given(window_policies, anywhere)
def test_next_window_open_is_the_first_open_minute(
    policy: SchedulePolicy, instant: datetime
) -> None:
    opened = next_window_open(policy, instant)
    assert opened is not None  # validation forbids enabling an all-closed window
    assert window_allows(policy, opened)
    minute = floor_minute(instant)
    assert opened >= minute
    while minute < opened:
        assert not oracle_allows(policy, minute)
        minute += MINUTE


@settings(max_examples=100, deadline=None)
@given(window_policies, anywhere)
def test_window_closes_at_is_the_first_closed_minute(
    policy: SchedulePolicy, instant: datetime
) -> None:
    closes = window_closes_at(policy, instant)
    if all(policy.backup_window):
        assert closes is None
        return
    assert closes is not None
    assert not window_allows(policy, closes)
    minute = floor_minute(instant)
    if not oracle_allows(policy, minute):
        assert closes == minute
        return
    assert closes > instant
    assert (closes.minute + policy.minute_offset) % 60 == 0  # a window hour boundary
    while minute < closes:
        assert oracle_allows(policy, minute)
        minute += MINUTE


def test_a_daily_time_at_the_end_of_a_gap_runs_when_the_clock_shows_it() -> None:
    """New York, 2023-03-12: 02:00 EST jumps to 03:00 EDT; a 03:00 job runs at 03:00 EDT (07:00Z),
    not an hour later (a counterexample hypothesis once found in the oracle)."""
    new_york = ZoneInfo("America/New_York")
    policy = SchedulePolicy(type=ScheduleType.DAILY, daily_time=time(3, 0))
    assert next_run(policy, utc("2023-03-12T06:00"), new_york) == utc("2023-03-12T07:00")
    assert next_run(policy, utc("2023-03-12T07:00"), new_york) == utc("2023-03-13T07:00")
    assert oracle_next_run(policy, utc("2023-03-12T07:00"), new_york) == (
        True,
        utc("2023-03-13T07:00"),
    )


def test_an_edit_that_changes_nothing_keeps_the_policy() -> None:
    """The same policy, not an equal one made and validated anew; one value of another type
    (1 for True: its record would differ) is a change."""
    policy = SchedulePolicy(type=ScheduleType.DAILY, retry_enabled=True, retry_number=3)
    same = ScheduleEdit(type=ScheduleType.DAILY, retry_enabled=True, retry_number=3)
    assert same.apply(policy) is policy
    assert ScheduleEdit().apply(policy) is policy
    other_type = ScheduleEdit(retry_enabled=1)  # type: ignore[arg-type]
    assert other_type.apply(policy) is not policy
    changed = ScheduleEdit(retry_number=4).apply(policy)
    assert changed.retry_number == 4 and changed is not policy


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    policies(),
    instants,
    zones,
    st.lists(st.integers(0, 3 * 86_400), min_size=1, max_size=6),
)
def test_the_kept_run_is_the_run_computed_again(
    policy: SchedulePolicy, after: datetime, tz: tzinfo, steps: list[int]
) -> None:
    """next_run keeps the last run it found for a policy and zone, and gives it again for a
    later instant before that run: always the run found without it."""
    from keepstone.domain import schedule

    for step in [0, *steps]:
        after += timedelta(seconds=step)
        assert next_run(policy, after, tz) == schedule._next_run(policy, after, tz)


def test_a_later_instant_before_the_kept_run_computes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keepstone.domain import schedule

    policy = daily(time(15, 0), DailyType.WEDNESDAY)
    run = next_run(policy, WEDNESDAY_AFTER_RUN, BERLIN)
    assert run is not None

    def computed(*_args: object) -> datetime | None:
        raise AssertionError("computed again")

    monkeypatch.setattr(schedule, "_next_run", computed)
    for later in (WEDNESDAY_AFTER_RUN, WEDNESDAY_AFTER_RUN + timedelta(days=3), run - MINUTE):
        assert next_run(policy, later, BERLIN) == run
    with pytest.raises(AssertionError, match="computed again"):
        next_run(policy, run, BERLIN)  # at the run itself: the next one is another
    with pytest.raises(AssertionError, match="computed again"):
        next_run(policy, WEDNESDAY_AFTER_RUN - MINUTE, BERLIN)  # before what it was found after
    monkeypatch.undo()
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(policy, datetime(2025, 1, 9, 12, 0), BERLIN)  # naive: refused, never compared


# ---------------------------------------------------------------------------------------------
# The vendor's periodic offset and window (periodicallyOffsetMinutes, periodicallyWindowSettings).


def test_an_hourly_job_shifted_by_its_offset_runs_at_that_minute() -> None:
    policy = SchedulePolicy(
        type=ScheduleType.PERIODICALLY, periodically_every=Period.HOURS2, periodically_offset=15
    )
    assert next_run(policy, utc("2025-01-08T10:15")) == utc("2025-01-08T12:15")
    assert next_run(policy, utc("2025-01-08T10:14")) == utc("2025-01-08T10:15")
    half_hour_clock = replace(policy, minute_offset=30)  # the grid's midnight on the window clock
    assert next_run(half_hour_clock, utc("2025-01-08T10:00")) == utc("2025-01-08T11:45")


def test_a_periodic_job_runs_only_in_the_hours_its_periodic_window_allows() -> None:
    """Hourly, Monday to Friday 08:00-18:00 on a UTC+1 clock: Friday's last run is 17:00 local
    (16:00 UTC), the next Monday 08:00 local (07:00 UTC); the backup window, when enabled too,
    narrows it further."""
    working = tuple(1 <= h // 24 <= 5 and 8 <= h % 24 < 18 for h in range(168))
    policy = SchedulePolicy(
        type=ScheduleType.PERIODICALLY,
        periodically_every=Period.HOURS1,
        periodic_window_enabled=True,
        periodic_window=working,
        periodic_minute_offset=60,
    )
    assert next_run(policy, utc("2025-01-10T15:30")) == utc("2025-01-10T16:00")  # Friday
    assert next_run(policy, utc("2025-01-10T16:00")) == utc("2025-01-13T07:00")  # Monday
    mornings = replace(policy, backup_window_enabled=True, backup_window=hours_open(24 + 10))
    assert next_run(mornings, utc("2025-01-10T16:00")) == utc("2025-01-13T10:00")
    assert next_run(replace(policy, periodic_window_enabled=False), utc("2025-01-10T16:00")) == (
        utc("2025-01-10T17:00")
    )
    never = replace(mornings, backup_window=hours_open(0))  # Sunday: the periodic one is shut
    assert next_run(never, utc("2025-01-10T16:00")) is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"periodically_offset": 60}, "periodicallyOffsetMinutes"),
        ({"periodically_offset": -1}, "periodicallyOffsetMinutes"),
        ({"periodically_offset": 5, "periodically_every": Period.MINUTES30}, "periodicallyOffset"),
        ({"periodic_window": (True,) * 167}, "periodicallyWindowSettings.backupWindow"),
        ({"periodic_window_enabled": True, "periodic_window": (False,) * 168}, "periodicallyWin"),
        ({"periodic_minute_offset": 15 * 60}, "periodicallyWindowSettings.minuteOffset"),
    ],
)
def test_an_impossible_periodic_setting_is_refused_by_name(
    changes: dict[str, object], named: str
) -> None:
    base = SchedulePolicy(type=ScheduleType.PERIODICALLY, periodically_every=Period.HOURS1)
    with pytest.raises(InvalidInput) as refused:
        replace(base, **changes)
    assert refused.value.prop is not None and named in refused.value.prop


def test_schedule_enabled_must_agree_with_the_type_the_edit_leaves() -> None:
    daily_policy = SchedulePolicy(type=ScheduleType.DAILY)
    assert ScheduleEdit(schedule_enabled=True).apply(daily_policy) is daily_policy
    manual = ScheduleEdit(type=ScheduleType.MANUAL_ONLY, schedule_enabled=False).apply(daily_policy)
    assert manual.type is ScheduleType.MANUAL_ONLY
    for edit in (
        ScheduleEdit(schedule_enabled=False),
        ScheduleEdit(type=ScheduleType.MANUAL_ONLY, schedule_enabled=True),
    ):
        with pytest.raises(InvalidInput) as refused:
            edit.apply(daily_policy)
        assert refused.value.prop == "schedulePolicy.scheduleEnabled"


def test_a_record_written_before_the_periodic_settings_reads_as_their_defaults() -> None:
    record = policy_to_record(SchedulePolicy(type=ScheduleType.PERIODICALLY))
    for name in ("periodically_offset", "periodic_window_enabled", "periodic_window"):
        del record[name]
    del record["periodic_minute_offset"]
    assert policy_from_record(record) == SchedulePolicy(type=ScheduleType.PERIODICALLY)
    shifted = SchedulePolicy(
        type=ScheduleType.PERIODICALLY,
        periodically_offset=20,
        periodic_window_enabled=True,
        periodic_window=hours_open(3, 4),
        periodic_minute_offset=-300,
    )
    assert policy_from_record(policy_to_record(shifted)) == shifted
