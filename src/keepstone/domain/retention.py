"""A repository's retention policy: how long restore points are kept, and when that is applied."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import time

from keepstone.domain.errors import InvalidInput
from keepstone.domain.policy import DailyType

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
