from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.retention import (
    RetentionPeriodType,
    RetentionPolicy,
    YearlyPeriod,
    expired_snapshots,
    keep_after,
)

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)


def test_periods() -> None:
    daily = RetentionPolicy(period_type=RetentionPeriodType.DAILY, daily_period=14)
    assert keep_after(daily, NOW) == NOW - timedelta(days=14)
    monthly = RetentionPolicy(period_type=RetentionPeriodType.MONTHLY, monthly_period=3)
    assert keep_after(monthly, datetime(2026, 5, 31, tzinfo=UTC)) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    yearly = RetentionPolicy(
        period_type=RetentionPeriodType.YEARLY, yearly_period=YearlyPeriod.YEAR1
    )
    assert keep_after(yearly, NOW) == datetime(2025, 6, 10, 12, tzinfo=UTC)
    keep = RetentionPolicy(period_type=RetentionPeriodType.YEARLY, yearly_period=YearlyPeriod.KEEP)
    assert keep_after(keep, NOW) is None


def test_expires_only_what_is_older_than_the_period() -> None:
    policy = RetentionPolicy(period_type=RetentionPeriodType.DAILY, daily_period=7)
    points = [
        ("old", NOW - timedelta(days=8)),
        ("edge", NOW - timedelta(days=7)),
        ("new", NOW - timedelta(days=1)),
    ]
    assert expired_snapshots(policy, points, NOW) == ["old"]


@given(
    st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=400),
)
def test_the_newest_point_always_survives_and_only_old_ones_expire(
    ages: list[int], days: int
) -> None:
    policy = RetentionPolicy(period_type=RetentionPeriodType.DAILY, daily_period=days)
    points = [(f"s{n}", NOW - timedelta(days=age, minutes=n)) for n, age in enumerate(ages)]
    expired = set(expired_snapshots(policy, points, NOW))
    newest = max(points, key=lambda p: p[1])[0]
    assert newest not in expired
    for sid, taken in points:
        assert (sid in expired) == (taken < NOW - timedelta(days=days) and sid != newest)


def test_next_retention_run_daily_and_monthly() -> None:
    from keepstone.domain.policy import DailyType
    from keepstone.domain.retention import RetentionFrequency, next_retention_run

    daily = RetentionPolicy(daily_type=DailyType.WEEKENDS)  # 18:00 by default
    assert next_retention_run(daily, NOW, UTC) == datetime(2026, 6, 13, 18, tzinfo=UTC)
    monthly = RetentionPolicy(frequency=RetentionFrequency.MONTHLY)
    assert next_retention_run(monthly, NOW, UTC) == datetime(2026, 7, 1, 18, tzinfo=UTC)
    december = datetime(2026, 12, 5, tzinfo=UTC)
    assert next_retention_run(monthly, december, UTC) == datetime(2027, 1, 1, 18, tzinfo=UTC)
