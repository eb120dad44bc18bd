"""A repository's retention policy: how long restore points are kept, and when that is applied."""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from keepstone.domain.errors import InvalidInput
from keepstone.domain.policy import DailyType, SchedulePolicy, ScheduleType
from keepstone.domain.schedule import next_run

MAX_DAILY_PERIOD = 9999
MAX_MONTHLY_PERIOD = 999


class RetentionType(enum.StrEnum):
    ITEM_LEVEL = "ItemLevel"
    SNAPSHOT_BASED = "SnapshotBased"


class RetentionPeriodType(enum.StrEnum):
    DAILY = "Daily"
    MONTHLY = "Monthly"
    YEARLY = "Yearly"


class YearlyPeriod(enum.StrEnum):
    YEAR1 = "Year1"
    YEARS2 = "Years2"
    YEARS3 = "Years3"
    YEARS5 = "Years5"
    YEARS7 = "Years7"
    YEARS10 = "Years10"
    YEARS25 = "Years25"
    KEEP = "Keep"


class RetentionFrequency(enum.StrEnum):
    DAILY = "Daily"
    MONTHLY = "Monthly"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Defaults follow the vendor's: snapshot-based, three years, applied every day at 18:00."""

    retention_type: RetentionType = RetentionType.SNAPSHOT_BASED
    period_type: RetentionPeriodType = RetentionPeriodType.YEARLY
    daily_period: int = 30
    monthly_period: int = 1
    yearly_period: YearlyPeriod = YearlyPeriod.YEARS3
    frequency: RetentionFrequency = RetentionFrequency.DAILY
    daily_time: time = time(18, 0)
    daily_type: DailyType = DailyType.EVERYDAY

    def __post_init__(self) -> None:
        if not 1 <= self.daily_period <= MAX_DAILY_PERIOD:
            raise InvalidInput(
                f"dailyRetentionPeriod must be between 1 and {MAX_DAILY_PERIOD} days",
                "dailyRetentionPeriod",
            )
        if not 1 <= self.monthly_period <= MAX_MONTHLY_PERIOD:
            raise InvalidInput(
                f"monthlyRetentionPeriod must be between 1 and {MAX_MONTHLY_PERIOD} months",
                "monthlyRetentionPeriod",
            )


def keep_after(policy: RetentionPolicy, now: datetime) -> datetime | None:
    """Restore points older than this instant expire (None: keep forever)."""
    match policy.period_type:
        case RetentionPeriodType.DAILY:
            return now - timedelta(days=policy.daily_period)
        case RetentionPeriodType.MONTHLY:
            return _months_before(now, policy.monthly_period)
    if policy.yearly_period is YearlyPeriod.KEEP:
        return None
    years = int(policy.yearly_period.value.removeprefix("Years").removeprefix("Year"))
    return _months_before(now, 12 * years)


def expired_snapshots(
    policy: RetentionPolicy, snapshots: list[tuple[str, datetime]], now: datetime
) -> list[str]:
    """Snapshot-based retention: the ids of restore points older than the retention period.

    The newest restore point is never expired, so a job that stopped running keeps its last
    state however old it is.
    """
    cutoff = keep_after(policy, now)
    if cutoff is None or not snapshots:
        return []
    newest = max(snapshots, key=lambda s: s[1])[0]
    return [sid for sid, taken in snapshots if taken < cutoff and sid != newest]


def _months_before(instant: datetime, months: int) -> datetime:
    month_index = instant.year * 12 + instant.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(instant.day, calendar.monthrange(year, month + 1)[1])
    return instant.replace(year=year, month=month + 1, day=day)


def next_retention_run(policy: RetentionPolicy, after: datetime, tz: tzinfo) -> datetime:
    """When retention next runs: daily at ``daily_time`` on ``daily_type`` days, or monthly on
    the first day of the month at ``daily_time`` (on the server's clock, like job schedules)."""
    if policy.frequency is RetentionFrequency.DAILY:
        daily = SchedulePolicy(
            type=ScheduleType.DAILY, daily_type=policy.daily_type, daily_time=policy.daily_time
        )
        found = next_run(daily, after, tz)
        assert found is not None  # a daily schedule without a window always has a next slot
        return found
    local = after.astimezone(tz)
    first = local.replace(
        day=1, hour=policy.daily_time.hour, minute=policy.daily_time.minute, second=0, microsecond=0
    )
    if first <= local:
        first = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return first.astimezone(UTC)
