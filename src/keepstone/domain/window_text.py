"""A backup window (168 hours, Sunday 00:00 first) summarised in words, e.g.
``Mon-Fri 22:00-06:00`` (with en dashes): what the console shows beside the grid and in job lists.

Pure functions. ``window_spans`` cuts the window into spans (the days a same-shaped stretch of
open hours starts on, its start hour and its length); ``hours_of`` turns spans back into the 168
hours, so the summary provably says exactly what the window allows (tests/test_window_text.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from keepstone.domain.policy import HOURS_PER_WEEK

# Monday first, as people read a week; the window itself starts on Sunday.
DASH = "\u2013"  # an en dash, as ranges are typeset
DAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def week_hour(day: int, hour: int) -> int:
    """The index in a backup window of ``hour`` on ``day`` (0 = Monday)."""
    return ((day + 1) % 7) * 24 + hour


def day_and_hour(index: int) -> tuple[int, int]:
    """(day, 0 = Monday; hour) of a backup window's index."""
    return (index // 24 - 1) % 7, index % 24


@dataclass(frozen=True, slots=True)
class Span:
    """Open hours starting at ``start`` o'clock on each of ``days`` (0 = Monday), ``hours``
    long (up to a whole week)."""

    days: tuple[int, ...]
    start: int
    hours: int


def _runs(window: tuple[bool, ...]) -> list[tuple[int, int]]:
    """(first index, length) of each maximal run of open hours, a run crossing the week's end
    (Saturday night into Sunday) kept whole."""
    if all(window):
        return [(week_hour(0, 0), HOURS_PER_WEEK)]
    closed = next(i for i, open_ in enumerate(window) if not open_)
    runs: list[tuple[int, int]] = []
    length = 0
    for k in range(1, HOURS_PER_WEEK + 1):
        index = (closed + k) % HOURS_PER_WEEK
        if window[index]:
            length += 1
        elif length:
            runs.append(((index - length) % HOURS_PER_WEEK, length))
            length = 0
    return runs


def window_spans(window: tuple[bool, ...]) -> list[Span]:
    """The window's open hours as spans, Monday's first; runs of the same start hour and
    length are one span with their days."""
    shapes: dict[tuple[int, int], list[int]] = {}
    for first, length in _runs(window):
        day, hour = day_and_hour(first)
        if hour == 0 and length % 24 == 0 and length < HOURS_PER_WEEK:
            # whole days: "Sat-Sun all day", not "Sat 00:00 - Mon 00:00"
            for k in range(length // 24):
                shapes.setdefault((0, 24), []).append((day + k) % 7)
        else:
            shapes.setdefault((hour, length), []).append(day)
    spans = [Span(tuple(sorted(days)), hour, length) for (hour, length), days in shapes.items()]
    return sorted(spans, key=lambda span: (span.days[0], span.start, span.hours))


def hours_of(spans: list[Span]) -> tuple[bool, ...]:
    """The 168 hours ``spans`` open (the inverse of ``window_spans``)."""
    hours = [False] * HOURS_PER_WEEK
    for span in spans:
        for day in span.days:
            first = week_hour(day, span.start)
            for k in range(span.hours):
                hours[(first + k) % HOURS_PER_WEEK] = True
    return tuple(hours)


def _day_ranges(days: tuple[int, ...]) -> str:
    """``Mon-Fri, Sun`` for Monday to Friday and Sunday."""
    groups: list[list[int]] = []
    for day in days:
        if groups and groups[-1][-1] == day - 1:
            groups[-1].append(day)
        else:
            groups.append([day])
    return ", ".join(
        DAY_ABBREVIATIONS[g[0]]
        if len(g) == 1
        else f"{DAY_ABBREVIATIONS[g[0]]}{DASH}{DAY_ABBREVIATIONS[g[-1]]}"
        for g in groups
    )


def _span_text(span: Span) -> str:
    days = _day_ranges(span.days)
    if span.hours == HOURS_PER_WEEK:
        return "always"
    if span.hours == 24 and span.start == 0:
        return f"{days} all day"
    end_hour = (span.start + span.hours) % 24
    if span.hours < 24:
        return f"{days} {span.start:02d}:00{DASH}{end_hour:02d}:00"
    # Longer than a day: name the day it ends on too (e.g. a weekend, Fri 18:00 - Mon 06:00).
    last_day = (span.days[0] + (span.start + span.hours) // 24) % 7
    ending = f"{DAY_ABBREVIATIONS[last_day]} {end_hour:02d}:00"
    return f"{days} {span.start:02d}:00 {DASH} {ending}" + (
        f" (each, {span.hours} h)" if len(span.days) > 1 else ""
    )


def describe_window(window: tuple[bool, ...], enabled: bool = True) -> str:
    """The window in words: ``Mon-Fri 22:00-06:00; Sat-Sun all day``."""
    if not enabled or all(window):
        return "any time (no backup window)" if not enabled else "any time"
    if not any(window):
        return "never"
    return "; ".join(_span_text(span) for span in window_spans(window))
