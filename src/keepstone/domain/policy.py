"""The schedule policy of a job, as one immutable value shared by both wire dialects."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import time

from keepstone.domain.errors import InvalidInput

HOURS_PER_WEEK = 168
MAX_RETRY_NUMBER = 777  # the vendor's UI caps retries at 777; anything above is a typo
MAX_RETRY_WAIT_MINUTES = 10_080  # one week
MAX_MINUTE_OFFSET = 14 * 60  # the widest real UTC offsets are -12:00 and +14:00


class ScheduleType(enum.StrEnum):
    DAILY = "Daily"
    PERIODICALLY = "Periodically"
    MANUAL_ONLY = "ManualOnly"


class DailyType(enum.StrEnum):
    EVERYDAY = "Everyday"
    WORKDAYS = "Workdays"
    WEEKENDS = "Weekends"
    MONDAY = "Monday"
    TUESDAY = "Tuesday"
    WEDNESDAY = "Wednesday"
    THURSDAY = "Thursday"
    FRIDAY = "Friday"
    SATURDAY = "Saturday"
    SUNDAY = "Sunday"

    def weekdays(self) -> frozenset[int]:
        """Python weekday numbers (Monday = 0) on which a daily job of this type runs."""
        match self:
            case DailyType.EVERYDAY:
                return frozenset(range(7))
            case DailyType.WORKDAYS:
                return frozenset(range(5))
            case DailyType.WEEKENDS:
                return frozenset({5, 6})
        return frozenset({_DAY_NAMES.index(self.value)})


_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Period(enum.StrEnum):
    MINUTES5 = "Minutes5"
    MINUTES10 = "Minutes10"
    MINUTES15 = "Minutes15"
    MINUTES30 = "Minutes30"
    HOURS1 = "Hours1"
    HOURS2 = "Hours2"
    HOURS4 = "Hours4"
    HOURS8 = "Hours8"
    HOURS12 = "Hours12"

    @property
    def minutes(self) -> int:
        unit, count = re.fullmatch(r"(Minutes|Hours)(\d+)", self.value).groups()  # type: ignore[union-attr]
        return int(count) * (60 if unit == "Hours" else 1)


ALWAYS_OPEN: tuple[bool, ...] = (True,) * HOURS_PER_WEEK


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    """When a job runs.

    ``backup_window`` holds 168 hours, hour 0 being Sunday 00:00-01:00 on the window's clock,
    which runs ``minute_offset`` minutes ahead of UTC (the seed: "the current minute offset from
    the UTC time"). A periodic job's slots may also be shifted within the hour
    (``periodically_offset`` minutes, for periods in hours) and held to the hours its own
    window allows (``periodic_window``, on a clock ``periodic_minute_offset`` ahead of UTC), as
    the vendor's ``periodicallyOffsetMinutes`` and ``periodicallyWindowSettings`` ask
    (docs/scheduling.md).
    """

    type: ScheduleType = ScheduleType.DAILY
    daily_type: DailyType = DailyType.EVERYDAY
    daily_time: time = time(15, 0, 0)
    periodically_every: Period = Period.HOURS1
    backup_window_enabled: bool = False
    backup_window: tuple[bool, ...] = field(default=ALWAYS_OPEN)
    minute_offset: int = 0
    retry_enabled: bool = True
    retry_number: int = 3
    retry_wait_interval: int = 10
    periodically_offset: int = 0
    periodic_window_enabled: bool = False
    periodic_window: tuple[bool, ...] = field(default=ALWAYS_OPEN)
    periodic_minute_offset: int = 0

    def __post_init__(self) -> None:
        validate_policy(self)


def validate_policy(policy: SchedulePolicy) -> None:
    """Raise InvalidInput naming the first property whose value cannot be a schedule."""
    _validate_window(
        "backupWindow", policy.backup_window_enabled, policy.backup_window, policy.minute_offset
    )
    _validate_window(
        "periodicallyWindow",
        policy.periodic_window_enabled,
        policy.periodic_window,
        policy.periodic_minute_offset,
    )
    if not 0 <= policy.periodically_offset < 60:
        raise InvalidInput(
            "schedulePolicy.periodicallyOffsetMinutes must be 0 to 59 (a shift within the hour)",
            "schedulePolicy.periodicallyOffsetMinutes",
        )
    hourly = policy.periodically_every.minutes >= 60
    if policy.type is ScheduleType.PERIODICALLY and policy.periodically_offset and not hourly:
        raise InvalidInput(
            "schedulePolicy.periodicallyOffsetMinutes applies to periods in hours, not to "
            f"{policy.periodically_every.value}",
            "schedulePolicy.periodicallyOffsetMinutes",
        )
    if not 0 <= policy.retry_number <= MAX_RETRY_NUMBER:
        raise InvalidInput(
            f"schedulePolicy.retryNumber must be between 0 and {MAX_RETRY_NUMBER}",
            "schedulePolicy.retryNumber",
        )
    if not 1 <= policy.retry_wait_interval <= MAX_RETRY_WAIT_MINUTES:
        raise InvalidInput(
            f"schedulePolicy.retryWaitInterval must be 1 to {MAX_RETRY_WAIT_MINUTES} minutes",
            "schedulePolicy.retryWaitInterval",
        )


def _validate_window(name: str, enabled: bool, window: tuple[bool, ...], offset: int) -> None:
    """A window of 168 hours on a clock ``offset`` minutes from UTC, allowing some hour when
    ``enabled`` (``name``: the window's wire prefix, ``backupWindow`` or
    ``periodicallyWindow``)."""
    settings = f"schedulePolicy.{name}Settings"
    if len(window) != HOURS_PER_WEEK:
        raise InvalidInput(
            f"{settings}.backupWindow must have exactly {HOURS_PER_WEEK} booleans "
            f"(7 days x 24 hours, Sunday first); got {len(window)}",
            f"{settings}.backupWindow",
        )
    if not -MAX_MINUTE_OFFSET <= offset <= MAX_MINUTE_OFFSET:
        raise InvalidInput(
            f"{settings}.minuteOffset must be between {-MAX_MINUTE_OFFSET} and {MAX_MINUTE_OFFSET}",
            f"{settings}.minuteOffset",
        )
    if enabled and not any(window):
        raise InvalidInput(
            f"{settings}.backupWindow allows no hour at all while {name}Enabled is true",
            f"{settings}.backupWindow",
        )
