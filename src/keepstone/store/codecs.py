"""How domain values are kept in JSON columns: a stable, dialect-independent record form."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from typing import Any

from keepstone.domain.policy import ALWAYS_OPEN, DailyType, Period, SchedulePolicy, ScheduleType
from keepstone.domain.retention import (
    RetentionFrequency,
    RetentionPeriodType,
    RetentionPolicy,
    RetentionType,
    YearlyPeriod,
)


def policy_to_record(policy: SchedulePolicy) -> dict[str, Any]:
    return {
        "type": policy.type.value,
        "daily_type": policy.daily_type.value,
        "daily_time": policy.daily_time.isoformat(timespec="seconds"),
        "periodically_every": policy.periodically_every.value,
        "backup_window_enabled": policy.backup_window_enabled,
        "backup_window": _window_text(policy.backup_window),
        "minute_offset": policy.minute_offset,
        "retry_enabled": policy.retry_enabled,
        "retry_number": policy.retry_number,
        "retry_wait_interval": policy.retry_wait_interval,
        "periodically_offset": policy.periodically_offset,
        "periodic_window_enabled": policy.periodic_window_enabled,
        "periodic_window": _window_text(policy.periodic_window),
        "periodic_minute_offset": policy.periodic_minute_offset,
    }


@lru_cache(maxsize=256)
def _window_text(window: tuple[bool, ...]) -> str:
    """A 168-hour window as its record's text. Jobs share a few windows and every edit of a
    job's schedule (the seed PUT's) writes its record again: the join, not the lookup, was the
    larger part of that (equal windows give equal text, so 1 and True as keys are alike)."""
    return "".join("1" if hour else "0" for hour in window)


def policy_from_record(record: dict[str, Any]) -> SchedulePolicy:
    """The policy a record holds: jobs share a few schedules, and a list of every job reads one
    per job (its 168-hour window parsed each time), so an equal record's policy is reused (a
    ``SchedulePolicy`` is immutable)."""
    # Each value with its type: True and 1 are equal keys, but not the same record.
    items = tuple((name, type(value), value) for name, value in record.items())
    try:
        return _cached_policy(items)
    except TypeError:  # a value that cannot be a key (not one this module writes)
        return _policy(record)


@lru_cache(maxsize=4096)
def _cached_policy(items: tuple[tuple[str, type, Any], ...]) -> SchedulePolicy:
    return _policy({name: value for name, _, value in items})


def _policy(record: dict[str, Any]) -> SchedulePolicy:
    return SchedulePolicy(
        type=ScheduleType(record["type"]),
        daily_type=DailyType(record["daily_type"]),
        daily_time=time.fromisoformat(record["daily_time"]),
        periodically_every=Period(record["periodically_every"]),
        backup_window_enabled=record["backup_window_enabled"],
        backup_window=tuple(bit == "1" for bit in record["backup_window"]),
        minute_offset=record["minute_offset"],
        retry_enabled=record["retry_enabled"],
        retry_number=record["retry_number"],
        retry_wait_interval=record["retry_wait_interval"],
        # a record written before these were kept holds none: the defaults, what it meant
        periodically_offset=record.get("periodically_offset", 0),
        periodic_window_enabled=record.get("periodic_window_enabled", False),
        periodic_window=tuple(
            bit == "1" for bit in record.get("periodic_window", _window_text(ALWAYS_OPEN))
        ),
        periodic_minute_offset=record.get("periodic_minute_offset", 0),
    )


def retention_to_record(policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "retention_type": policy.retention_type.value,
        "period_type": policy.period_type.value,
        "daily_period": policy.daily_period,
        "monthly_period": policy.monthly_period,
        "yearly_period": policy.yearly_period.value,
        "frequency": policy.frequency.value,
        "daily_time": policy.daily_time.isoformat(timespec="seconds"),
        "daily_type": policy.daily_type.value,
    }


def retention_from_record(record: dict[str, Any]) -> RetentionPolicy:
    return RetentionPolicy(
        retention_type=RetentionType(record["retention_type"]),
        period_type=RetentionPeriodType(record["period_type"]),
        daily_period=record["daily_period"],
        monthly_period=record["monthly_period"],
        yearly_period=YearlyPeriod(record["yearly_period"]),
        frequency=RetentionFrequency(record["frequency"]),
        daily_time=time.fromisoformat(record["daily_time"]),
        daily_type=DailyType(record["daily_type"]),
    )
