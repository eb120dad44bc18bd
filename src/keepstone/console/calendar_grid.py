"""A month of restore points as a calendar: the month's grid of days (weeks Monday first), the
bounds of its days on the server's clock, and which days link to their points.

Pure: the days that hold points come from one aggregate query (``restore_points.days_with_points``)
over the bounds computed here; nothing here reads the catalog.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from keepstone.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    link: str | None  # the page of that day's points; None: the day holds none


@dataclass(frozen=True, slots=True)
class Month:
    first: date  # the month's first day
    weeks: list[list[Day | None]]  # Monday first; None pads the first and last weeks

    @property
    def caption(self) -> str:
        return f"{calendar.month_name[self.first.month]} {self.first.year}"

    @property
    def previous(self) -> date:
        if self.first.month == 1:
            return date(self.first.year - 1, 12, 1)
        return date(self.first.year, self.first.month - 1, 1)

    @property
    def next(self) -> date:
        if self.first.month == 12:
            return date(self.first.year + 1, 1, 1)
        return date(self.first.year, self.first.month + 1, 1)


WEEKDAYS = [(calendar.day_name[n], calendar.day_abbr[n]) for n in range(7)]


def parse_month(text: str, field: str = "month") -> date:
    """The first day of the month ``text`` (YYYY-MM) names."""
    try:
        parsed = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise InvalidInput(f"'{text}' is not a month (YYYY-MM)", field) from None
    return parsed.date()


def parse_day(text: str, field: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(f"'{text}' is not a date (YYYY-MM-DD)", field) from None


def start_of(day: date, tz: tzinfo) -> datetime:
    """The instant ``day`` begins on the server's clock."""
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def bounds(first: date, tz: tzinfo) -> list[datetime]:
    """The starts of the month's days and of the next month's first day (one more than days)."""
    days = calendar.monthrange(first.year, first.month)[1]
    starts = [start_of(first.replace(day=n), tz) for n in range(1, days + 1)]
    following = Month(first, []).next
    return [*starts, start_of(following, tz)]


def month_grid(first: date, with_points: set[int], link: Callable[[date], str]) -> Month:
    """The month's weeks; day ``n`` (0 the first) links when ``n`` is in ``with_points``."""
    weeks: list[list[Day | None]] = []
    for week in calendar.Calendar(firstweekday=0).monthdayscalendar(first.year, first.month):
        row: list[Day | None] = []
        for number in week:
            if number == 0:
                row.append(None)
                continue
            day = first.replace(day=number)
            row.append(Day(day, link(day) if number - 1 in with_points else None))
        weeks.append(row)
    return Month(first, weeks)
