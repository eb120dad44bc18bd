"""A job's schedule in the Enterprise Manager dialect: ``<JobScheduleOptions>`` <-> SchedulePolicy.

``render_schedule_options`` writes a policy as a ``JobScheduleOptionsInfoType`` element (children
in the XSD's sequence order); ``parse_schedule_options`` reads the ``<JobScheduleOptions>`` of a
PUT body, already validated against RestAPI.xsd by the caller, into a partial ``ScheduleEdit``
(``None`` = not sent). Whatever the schema can say and the domain cannot is refused with
``InvalidInput`` whose ``prop`` is the XML path of the offending node; nothing is dropped silently.

Mapping (paths below ``JobScheduleOptions``)::

    XML                                 SchedulePolicy
    ----------------------------------  -----------------------------------------------------------
    RetryOptions/RetryTimes             retry_number (0-777)
    RetryOptions/RetryTimeout           retry_wait_interval, minutes (1-10080)
    RetryOptions/RetrySpecified         retry_enabled
    WaitForBackupCompletion             rendered false; false accepted, true refused
    BackupCompetitionWaitingPeriodMin   never rendered; accepted and ignored (only meaningful with
                                        WaitForBackupCompletion true, which is refused)
    OptionsDaily/@Enabled               type == Daily
    OptionsDaily/Kind + Days            daily_type: Everyday <-> Kind Everyday (+ all 7 Days);
                                        Workdays <-> WeekDays (+ Monday-Friday);
                                        Weekends <-> SelectedDays Sunday, Saturday;
                                        Monday..Sunday <-> SelectedDays with that one day
    OptionsDaily/Time                   daily_time, wall-clock time on the server's schedule clock,
                                        without a UTC offset (HH:MM:SS[.ffffff])
    OptionsDaily/TimeOffsetUtc          minute_offset / 60: the window clock's offset from UTC in
                                        whole hours (-14..14), as Veeam writes it ("2" = UTC+2)
    OptionsMonthly                      rendered Enabled="false"; Enabled="true" refused
    OptionsPeriodically/@Enabled        type == Periodically
    OptionsPeriodically/Kind+FullPeriod periodically_every: Minutes 5/10/15/30, Hours 1/2/4/8/12
                                        (read by duration: Minutes 60 = Hours 1)
    OptionsPeriodically/Schedule        periodic_window: the hours a periodic job's slots may
                                        fall in (rows as in TimePeriods, on the periodic window's
                                        own clock); all 1 = periodic_window_enabled false, a 0
                                        anywhere = enabled (the JSON dialect's
                                        periodicallyWindowSettings)
    OptionsContinuous                   rendered Enabled="false"; Enabled="true" refused
    OptionsBackupWindow/@Enabled        backup_window_enabled
    OptionsBackupWindow/TimePeriods     backup_window: rows <Day Name="Sunday">24 x 0/1</Day> to
                                        Saturday; value h of row d (Sunday = 0) is
                                        backup_window[24*d + h]
    OptionsDaisyChaining                never rendered; Enabled="true" refused

Reading rules:

* ``Enabled`` selects the schedule type: Daily enabled -> Daily, Periodically enabled ->
  Periodically, both present with ``Enabled="false"`` -> ManualOnly, both enabled -> refused. A
  missing ``Enabled`` attribute says nothing, and neither does one disabled element on its own.
* The *settings* inside OptionsDaily and OptionsPeriodically are read whether or not the element
  is enabled: they are stored with the job whatever its type (TimeOffsetUtc, which lives in
  OptionsDaily, matters most to periodic jobs). Changing Kind, Days, Time, or Kind/FullPeriod
  therefore needs a body that also settles the type (see above); otherwise it is refused.
* Disabled OptionsMonthly, OptionsContinuous and OptionsDaisyChaining are ignored with all their
  content, since the domain has nothing for them to describe.
* SelectedDays (or Days without Kind) must name a set the domain has: one day, Monday-Friday
  (Workdays), Saturday+Sunday (Weekends), or all seven (Everyday). Days sent with Everyday or
  WeekDays must match those kinds' days.
* A Time with a UTC offset (``22:00:00-07:00``) is refused: converting it needs the server's time
  zone, which a schedule value does not have. Fractions finer than a microsecond must be zero.
* A TimePeriods/Schedule with Day rows must list each of the seven days exactly once, each with
  24 comma-separated 0/1 values; one with no Day rows at all counts as not sent.
* A minute_offset that is not a whole number of hours (set through the other dialect) has no
  TimeOffsetUtc to go in, so it is left out of the rendering; a client echoing the body back
  leaves it unchanged. Every other policy renders and reads back exactly.
* ``Kind`` values and ``Day/@Name`` (plain strings in the XSD) are read case-insensitively.
"""

from __future__ import annotations

import re
from copy import deepcopy
from datetime import time
from functools import lru_cache
from typing import Any

from lxml import etree

from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import ScheduleEdit
from keepstone.domain.policy import (
    ALWAYS_OPEN,
    MAX_MINUTE_OFFSET,
    MAX_RETRY_NUMBER,
    MAX_RETRY_WAIT_MINUTES,
    DailyType,
    Period,
    SchedulePolicy,
    ScheduleType,
)

NS = "http://www.veeam.com/ent/v1.0"
ROOT = "JobScheduleOptions"

HOURS_PER_DAY = 24
WEEK = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
"""Day names in the order of the XSD's DaysOfWeekEnumeration and of the window's rows."""

_DAY_BY_LOWER = {name.lower(): name for name in WEEK}
_WORKDAYS = frozenset(WEEK[1:6])
_WEEKENDS = frozenset({"Saturday", "Sunday"})
_DAYS_OF: dict[DailyType, frozenset[str]] = {
    DailyType.EVERYDAY: frozenset(WEEK),
    DailyType.WORKDAYS: _WORKDAYS,
    DailyType.WEEKENDS: _WEEKENDS,
    **{DailyType(name): frozenset({name}) for name in WEEK},
}
_DAILY_TYPE_OF = {days: daily_type for daily_type, days in _DAYS_OF.items()}
_KIND_EVERYDAY, _KIND_WEEKDAYS, _KIND_SELECTED = "Everyday", "WeekDays", "SelectedDays"
_PERIOD_BY_MINUTES = {period.minutes: period for period in Period}
_MAX_OFFSET_HOURS = MAX_MINUTE_OFFSET // 60
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?")

_NOT_IN_DOMAIN = {
    "OptionsMonthly": "monthly schedules are not supported; use OptionsDaily or "
    'OptionsPeriodically, or send OptionsMonthly with Enabled="false"',
    "OptionsContinuous": "continuous schedules are not supported; the shortest period is "
    "OptionsPeriodically Kind Minutes, FullPeriod 5",
    "OptionsDaisyChaining": "job chaining is not supported; schedule the job daily or "
    "periodically instead",
}


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _path(*parts: str) -> str:
    return "/".join((ROOT, *parts))


def _xml_bool(value: bool) -> str:
    return "true" if value else "false"


def _sub(parent: etree._Element, name: str, text: str) -> etree._Element:
    made = etree.SubElement(parent, _q(name))
    made.text = text
    return made


# --- rendering -----------------------------------------------------------------------------------


def render_schedule_options(policy: SchedulePolicy) -> etree._Element:
    """The policy as a ``<JobScheduleOptions>`` element in ``NS``, children in XSD order: a
    copy of the one rendered for an equal policy. Rendering one is about 80 elements built in
    Python, most of a job entity's cost; jobs share a few schedules, and a copy is made in C
    (``GET /api/jobs?format=Entity`` builds one per job)."""
    return deepcopy(_rendered(policy))


@lru_cache(maxsize=64)
def _rendered(policy: SchedulePolicy) -> etree._Element:
    """Never handed out (callers get copies), so no caller can change another's."""
    root = etree.Element(_q(ROOT), nsmap={None: NS})

    retry = etree.SubElement(root, _q("RetryOptions"))
    _sub(retry, "RetryTimes", str(policy.retry_number))
    _sub(retry, "RetryTimeout", str(policy.retry_wait_interval))
    _sub(retry, "RetrySpecified", _xml_bool(policy.retry_enabled))

    _sub(root, "WaitForBackupCompletion", "false")

    daily = etree.SubElement(
        root, _q("OptionsDaily"), Enabled=_xml_bool(policy.type is ScheduleType.DAILY)
    )
    _sub(daily, "Kind", _daily_kind(policy.daily_type))
    days = _DAYS_OF[policy.daily_type]
    for name in WEEK:
        if name in days:
            _sub(daily, "Days", name)
    _sub(daily, "Time", policy.daily_time.replace(tzinfo=None).isoformat())
    if policy.minute_offset % 60 == 0:
        _sub(daily, "TimeOffsetUtc", str(policy.minute_offset // 60))

    etree.SubElement(root, _q("OptionsMonthly"), Enabled="false")

    periodic = etree.SubElement(
        root,
        _q("OptionsPeriodically"),
        Enabled=_xml_bool(policy.type is ScheduleType.PERIODICALLY),
    )
    minutes = policy.periodically_every.minutes
    kind, full_period = ("Minutes", minutes) if minutes < 60 else ("Hours", minutes // 60)
    _sub(periodic, "Kind", kind)
    _sub(periodic, "FullPeriod", str(full_period))
    hours = policy.periodic_window if policy.periodic_window_enabled else ALWAYS_OPEN
    _render_week(periodic, "Schedule", hours)

    etree.SubElement(root, _q("OptionsContinuous"), Enabled="false")

    window = etree.SubElement(
        root, _q("OptionsBackupWindow"), Enabled=_xml_bool(policy.backup_window_enabled)
    )
    _render_week(window, "TimePeriods", policy.backup_window)
    return root


def _daily_kind(daily_type: DailyType) -> str:
    if daily_type is DailyType.EVERYDAY:
        return _KIND_EVERYDAY
    if daily_type is DailyType.WORKDAYS:
        return _KIND_WEEKDAYS
    return _KIND_SELECTED


def _render_week(parent: etree._Element, name: str, hours: tuple[bool, ...]) -> None:
    periods = etree.SubElement(parent, _q(name))
    for index, day in enumerate(WEEK):
        row = hours[index * HOURS_PER_DAY : (index + 1) * HOURS_PER_DAY]
        _sub(periods, "Day", ",".join("1" if hour else "0" for hour in row)).set("Name", day)


# --- parsing -------------------------------------------------------------------------------------


def parse_schedule_options(element: etree._Element) -> ScheduleEdit:
    """The edit a (schema-valid) ``<JobScheduleOptions>`` asks for: only what is present changes.

    Raises ``InvalidInput`` with ``prop`` naming the XML path of anything the domain cannot hold.
    """
    if element.tag != _q(ROOT):
        raise InvalidInput(f"expected a <{ROOT}> element in the namespace {NS}", ROOT)
    changes: dict[str, Any] = {}

    retry = element.find(_q("RetryOptions"))
    if retry is not None:
        _parse_retry(retry, changes)

    wait = element.find(_q("WaitForBackupCompletion"))
    if wait is not None and _bool(wait.text, _path("WaitForBackupCompletion")):
        raise InvalidInput(
            "Keepstone jobs never wait for another job to complete; "
            "WaitForBackupCompletion must be false",
            _path("WaitForBackupCompletion"),
        )
    # BackupCompetitionWaitingPeriodMin only matters while waiting, which is never: ignored.

    daily = element.find(_q("OptionsDaily"))
    daily_enabled = _parse_daily(daily, changes) if daily is not None else None

    for name in ("OptionsMonthly", "OptionsContinuous", "OptionsDaisyChaining"):
        node = element.find(_q(name))
        if node is not None and _enabled(node, _path(name)):
            raise InvalidInput(_NOT_IN_DOMAIN[name], _path(name))

    periodic = element.find(_q("OptionsPeriodically"))
    periodic_enabled = _parse_periodic(periodic, changes) if periodic is not None else None

    window = element.find(_q("OptionsBackupWindow"))
    if window is not None:
        _parse_window(window, changes)

    if daily_enabled and periodic_enabled:
        raise InvalidInput(
            "OptionsDaily and OptionsPeriodically cannot both be enabled; a job has one schedule",
            _path("OptionsPeriodically"),
        )
    if daily_enabled:
        changes["type"] = ScheduleType.DAILY
    elif periodic_enabled:
        changes["type"] = ScheduleType.PERIODICALLY
    elif daily_enabled is False and periodic_enabled is False:
        changes["type"] = ScheduleType.MANUAL_ONLY
    else:
        _require_type(changes)
    return ScheduleEdit(**changes)


def _require_type(changes: dict[str, Any]) -> None:
    """Daily or periodic settings without a decided type: the domain needs the type with them."""
    for field, name in (
        ("daily_type", "OptionsDaily"),
        ("daily_time", "OptionsDaily"),
        ("periodically_every", "OptionsPeriodically"),
    ):
        if field in changes:
            raise InvalidInput(
                "changing Kind, Days, Time or FullPeriod needs a body that says which schedule "
                'the job uses: OptionsDaily or OptionsPeriodically with Enabled="true", or both '
                'with Enabled="false" for a job that only runs manually',
                _path(name),
            )


def _parse_retry(retry: etree._Element, changes: dict[str, Any]) -> None:
    times = retry.find(_q("RetryTimes"))
    if times is not None:
        prop = _path("RetryOptions", "RetryTimes")
        number = _int(times.text, prop)
        if not 0 <= number <= MAX_RETRY_NUMBER:
            raise InvalidInput(f"must be between 0 and {MAX_RETRY_NUMBER}; got {number}", prop)
        changes["retry_number"] = number
    timeout = retry.find(_q("RetryTimeout"))
    if timeout is not None:
        prop = _path("RetryOptions", "RetryTimeout")
        minutes = _int(timeout.text, prop)
        if not 1 <= minutes <= MAX_RETRY_WAIT_MINUTES:
            raise InvalidInput(
                f"must be 1 to {MAX_RETRY_WAIT_MINUTES} minutes; got {minutes}", prop
            )
        changes["retry_wait_interval"] = minutes
    specified = retry.find(_q("RetrySpecified"))
    if specified is not None:
        changes["retry_enabled"] = _bool(specified.text, _path("RetryOptions", "RetrySpecified"))


def _parse_daily(daily: etree._Element, changes: dict[str, Any]) -> bool | None:
    enabled = _enabled(daily, _path("OptionsDaily"))
    kind_node = daily.find(_q("Kind"))
    day_nodes = daily.findall(_q("Days"))
    days_prop = _path("OptionsDaily", "Days")
    days: set[str] = set()
    for node in day_nodes:
        text = _text(node)
        name = _DAY_BY_LOWER.get(text.lower())
        if name is None:
            raise InvalidInput(
                f"unknown day {text!r}; expected one of {', '.join(WEEK)}", days_prop
            )
        days.add(name)

    if kind_node is not None:
        kind_prop = _path("OptionsDaily", "Kind")
        kind = _text(kind_node).lower()
        if kind in (_KIND_EVERYDAY.lower(), _KIND_WEEKDAYS.lower()):
            daily_type = DailyType.EVERYDAY if kind == "everyday" else DailyType.WORKDAYS
            if day_nodes and days != _DAYS_OF[daily_type]:
                raise InvalidInput(
                    f"Days {_listed(days)} contradict Kind {_text(kind_node)}; list its days "
                    "exactly or leave Days out (or use SelectedDays)",
                    days_prop,
                )
            changes["daily_type"] = daily_type
        elif kind == _KIND_SELECTED.lower():
            changes["daily_type"] = _selected(days, days_prop)
        else:
            raise InvalidInput(
                f"must be {_KIND_EVERYDAY}, {_KIND_WEEKDAYS} or {_KIND_SELECTED}; "
                f"got {_text(kind_node)!r}",
                kind_prop,
            )
    elif day_nodes:
        changes["daily_type"] = _selected(days, days_prop)

    time_node = daily.find(_q("Time"))
    if time_node is not None:
        changes["daily_time"] = _time(time_node.text, _path("OptionsDaily", "Time"))

    offset_node = daily.find(_q("TimeOffsetUtc"))
    if offset_node is not None:
        prop = _path("OptionsDaily", "TimeOffsetUtc")
        hours = _int(offset_node.text, prop)
        if not -_MAX_OFFSET_HOURS <= hours <= _MAX_OFFSET_HOURS:
            raise InvalidInput(
                f"is the backup window's offset from UTC in whole hours and must be between "
                f"{-_MAX_OFFSET_HOURS} and {_MAX_OFFSET_HOURS}; got {hours}",
                prop,
            )
        changes["minute_offset"] = hours * 60
    return enabled


def _selected(days: set[str], prop: str) -> DailyType:
    daily_type = _DAILY_TYPE_OF.get(frozenset(days))
    if daily_type is None:
        raise InvalidInput(
            f"Days {_listed(days)} cannot be scheduled: select one day, Monday to Friday, "
            "Saturday and Sunday, or all seven",
            prop,
        )
    return daily_type


def _listed(days: set[str]) -> str:
    return "{" + ", ".join(name for name in WEEK if name in days) + "}"


def _parse_periodic(periodic: etree._Element, changes: dict[str, Any]) -> bool | None:
    enabled = _enabled(periodic, _path("OptionsPeriodically"))
    kind_node = periodic.find(_q("Kind"))
    full_node = periodic.find(_q("FullPeriod"))
    kind_prop = _path("OptionsPeriodically", "Kind")
    full_prop = _path("OptionsPeriodically", "FullPeriod")
    if kind_node is not None or full_node is not None:
        if kind_node is None:
            raise InvalidInput("Kind (Hours or Minutes) must be sent with FullPeriod", kind_prop)
        if full_node is None:
            raise InvalidInput("FullPeriod must be sent with Kind", full_prop)
        kind = _text(kind_node).lower()
        if kind not in ("hours", "minutes"):
            raise InvalidInput(
                f"must be Hours or Minutes; got {_text(kind_node)!r}"
                + (" (continuous schedules are not supported)" if kind == "continuously" else ""),
                kind_prop,
            )
        count = _int(full_node.text, full_prop)
        period = _PERIOD_BY_MINUTES.get(count * (60 if kind == "hours" else 1))
        if count <= 0 or period is None:
            raise InvalidInput(
                f"{count} {_text(kind_node)} is not a supported period; use Minutes 5, 10, 15 "
                "or 30, or Hours 1, 2, 4, 8 or 12",
                full_prop,
            )
        changes["periodically_every"] = period

    schedule = periodic.find(_q("Schedule"))
    if schedule is not None:
        prop = _path("OptionsPeriodically", "Schedule")
        hours = _parse_week(schedule, prop)
        if hours is not None:
            if not any(hours):
                raise InvalidInput("allows no hour at all: a periodic job would never run", prop)
            changes["periodic_window_enabled"] = not all(hours)
            changes["periodic_window"] = hours
    return enabled


def _parse_window(window: etree._Element, changes: dict[str, Any]) -> None:
    enabled = _enabled(window, _path("OptionsBackupWindow"))
    if enabled is not None:
        changes["backup_window_enabled"] = enabled
    periods = window.find(_q("TimePeriods"))
    if periods is None:
        return
    prop = _path("OptionsBackupWindow", "TimePeriods")
    hours = _parse_week(periods, prop)
    if hours is None:
        return
    if enabled and not any(hours):
        raise InvalidInput("allows no hour at all while the backup window is enabled", prop)
    changes["backup_window"] = hours


def _parse_week(node: etree._Element, prop: str) -> tuple[bool, ...] | None:
    """168 hours from seven ``<Day Name=...>`` rows (Sunday first); None when there are no rows."""
    rows: dict[str, tuple[bool, ...]] = {}
    for day in node.findall(_q("Day")):
        raw = (day.get("Name") or "").strip()
        day_prop = f"{prop}/Day[@Name='{raw}']"
        name = _DAY_BY_LOWER.get(raw.lower())
        if name is None:
            raise InvalidInput(f"unknown day {raw!r}; expected one of {', '.join(WEEK)}", day_prop)
        if name in rows:
            raise InvalidInput(f"{name} is listed more than once", day_prop)
        values = [value.strip() for value in (day.text or "").split(",")]
        if len(values) != HOURS_PER_DAY:
            raise InvalidInput(
                f"must hold {HOURS_PER_DAY} comma-separated values (one per hour); "
                f"got {len(values)}",
                day_prop,
            )
        wrong = next((value for value in values if value not in ("0", "1")), None)
        if wrong is not None:
            raise InvalidInput(f"values must be 0 or 1; got {wrong!r}", day_prop)
        rows[name] = tuple(value == "1" for value in values)
    if not rows:
        return None
    missing = [name for name in WEEK if name not in rows]
    if missing:
        raise InvalidInput(
            f"must list all seven days (one Day row each); missing {', '.join(missing)}", prop
        )
    return tuple(hour for name in WEEK for hour in rows[name])


# --- simple types --------------------------------------------------------------------------------


def _text(node: etree._Element) -> str:
    return (node.text or "").strip()


def _enabled(node: etree._Element, prop: str) -> bool | None:
    value = node.get("Enabled")
    return None if value is None else _bool(value, f"{prop}/@Enabled")


def _bool(text: str | None, prop: str) -> bool:
    value = (text or "").strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidInput(f"must be true or false; got {value!r}", prop)


def _int(text: str | None, prop: str) -> int:
    value = (text or "").strip()
    if not re.fullmatch(r"[+-]?\d+", value):
        raise InvalidInput(f"must be an integer; got {value!r}", prop)
    return int(value)


def _time(text: str | None, prop: str) -> time:
    value = (text or "").strip()
    match = _TIME.fullmatch(value)
    if match is None:
        raise InvalidInput(f"must be a time of day like 22:00:00; got {value!r}", prop)
    hour, minute, second, fraction, zone = match.groups()
    if zone is not None:
        raise InvalidInput(
            f"must be a wall-clock time on the server's clock without a UTC offset "
            f"(e.g. {value[: -len(zone)]}); got {value!r}",
            prop,
        )
    fraction = fraction or ""
    if fraction[6:].strip("0"):
        raise InvalidInput(f"cannot be finer than a microsecond; got {value!r}", prop)
    try:
        return time(int(hour), int(minute), int(second), int(fraction[:6].ljust(6, "0")))
    except ValueError:
        raise InvalidInput(
            f"is not a time of day (00:00:00 to 23:59:59); got {value!r}", prop
        ) from None
