"""The backup window's summary in words (domain/window_text.py): examples, and the property that
the spans it is written from open exactly the window's hours."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.policy import HOURS_PER_WEEK
from keepstone.domain.window_text import (
    DASH,
    day_and_hour,
    describe_window,
    hours_of,
    week_hour,
    window_spans,
)

windows = st.lists(st.booleans(), min_size=HOURS_PER_WEEK, max_size=HOURS_PER_WEEK).map(tuple)


def _window(*stretches: tuple[int, int, int]) -> tuple[bool, ...]:
    """Open ``length`` hours from ``hour`` on ``day`` (0 = Monday), for each stretch."""
    hours = [False] * HOURS_PER_WEEK
    for day, hour, length in stretches:
        for k in range(length):
            hours[(week_hour(day, hour) + k) % HOURS_PER_WEEK] = True
    return tuple(hours)


def test_workday_nights() -> None:
    window = _window(*((day, 22, 8) for day in range(5)))
    assert describe_window(window) == "Mon-Fri 22:00-06:00".replace("-", DASH)


def test_whole_days_and_a_weekend_across_the_week_end() -> None:
    assert describe_window(_window((5, 0, 48))) == "Sat-Sun all day".replace("-", DASH)
    assert describe_window(_window((4, 18, 60))) == "Fri 18:00 - Mon 06:00".replace("-", DASH)
    assert describe_window(_window((6, 23, 2))) == "Sun 23:00-01:00".replace("-", DASH)


def test_mixed_shapes_are_listed_monday_first() -> None:
    window = _window((0, 1, 2), (2, 1, 2), (3, 1, 2), (6, 0, 24))
    assert describe_window(window) == "Mon, Wed-Thu 01:00-03:00; Sun all day".replace("-", DASH)


def test_always_never_and_disabled() -> None:
    assert describe_window((True,) * HOURS_PER_WEEK) == "any time"
    assert describe_window((False,) * HOURS_PER_WEEK) == "never"
    assert describe_window(_window((0, 1, 1)), enabled=False) == "any time (no backup window)"


def test_index_mapping_is_sunday_first() -> None:
    assert week_hour(6, 0) == 0  # the vendor's window starts on Sunday 00:00
    assert week_hour(0, 0) == 24
    assert all(week_hour(*day_and_hour(i)) == i for i in range(HOURS_PER_WEEK))


@given(windows)
def test_the_spans_open_exactly_the_window(window: tuple[bool, ...]) -> None:
    spans = window_spans(window)
    assert hours_of(spans) == window
    # one span per shape: no two spans share a start hour and a length
    assert len({(span.start, span.hours) for span in spans}) == len(spans)
    text = describe_window(window)
    assert text and "\n" not in text
