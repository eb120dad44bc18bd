"""Properties of the throttling discipline (domain/throttle.py)."""

from __future__ import annotations

import bisect
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepstone.domain.throttle import APP_SCOPE, Backoff, Discipline, RetryGates, SlidingBudget

steps = st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=300)


def _drive(budget: SlidingBudget, gaps: list[float]) -> list[float]:
    """Requests arriving after ``gaps``; each waits as long as the budget says, then goes."""
    now, sent = 0.0, []
    for gap in gaps:
        now += gap
        while (wait := budget.admit(now)) > 0:
            now += wait
        sent.append(now)
    return sent


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(1, 8), st.floats(min_value=0.5, max_value=20))
def test_no_window_holds_more_than_the_budget(gaps: list[float], limit: int, window: float) -> None:
    sent = _drive(SlidingBudget(limit, window), gaps)
    for t in sent:  # the fullest windows end at an admitted instant
        inside = bisect.bisect_right(sent, t) - bisect.bisect_right(sent, t - window)
        assert inside <= limit


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(1, 8), st.floats(min_value=0.5, max_value=20))
def test_a_budget_wait_is_bounded_by_the_window(
    gaps: list[float], limit: int, window: float
) -> None:
    budget, now = SlidingBudget(limit, window), 0.0
    for gap in gaps:
        now += gap
        wait = budget.admit(now)
        assert 0 <= wait <= window
        if wait:  # the promised instant is honoured, up to float rounding
            now += wait
            for _ in range(3):
                if (wait := budget.admit(now)) == 0:
                    break
                assert wait <= 1e-9 * max(1.0, now)
                now += wait
            assert wait == 0


def test_a_full_budget_refuses_until_the_oldest_leaves() -> None:
    budget = SlidingBudget(2, 10)
    assert budget.admit(0) == 0
    assert budget.admit(1) == 0
    assert budget.admit(5) == 5
    assert budget.admit(10) == 0  # the request at 0 left the window (10-10, 10]
    with pytest.raises(ValueError):
        SlidingBudget(0, 10)


def _ops(n: int) -> int:
    budget = SlidingBudget(100, 10)
    _drive(budget, [0.01] * n)
    return budget.ops


def test_work_per_request_is_constant_amortised() -> None:
    n = 5_000
    small, large = _ops(n), _ops(4 * n)
    assert small <= 2 * n  # one append and at most one drop per request
    assert large <= 2 * 4 * n
    assert large < 4.1 * small  # linear, not quadratic


gate_events = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),  # time step
        st.sampled_from(["a", "b", APP_SCOPE]),
        st.one_of(st.none(), st.floats(min_value=0, max_value=30, allow_nan=False)),
    ),
    min_size=1,
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(gate_events)
def test_no_request_goes_before_a_gate_opens(events: list[tuple[float, str, float | None]]) -> None:
    """Interleave Retry-After answers (a scope closes) and requests (which obey the wait): no
    request is sent before any instant its scope or the app was closed until."""
    discipline, now = Discipline(limit=1_000_000, window=1), 0.0
    closed: dict[str, float] = {}
    for step, scope, retry_after in events:
        now += step
        if retry_after is not None:
            discipline.throttled(scope, now, retry_after)
            closed[scope] = max(closed.get(scope, 0.0), now + retry_after)
            continue
        while (wait := discipline.admit(scope, now)) > 0:
            now += wait
        assert now >= closed.get(scope, 0.0)
        assert now >= closed.get(APP_SCOPE, 0.0)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1))
def test_a_gate_only_moves_later(instants: list[float]) -> None:
    gates = RetryGates()
    for at in instants:
        gates.close("m", at)
    assert gates.wait("m", 0.0) == max(instants)
    assert gates.wait("other", 0.0) == 0.0


@given(
    st.floats(min_value=0.01, max_value=10),
    st.floats(min_value=0.01, max_value=500),
    st.integers(0, 20),
    st.floats(min_value=0, max_value=1),
)
def test_backoff_is_monotone_bounded_and_finite(
    base: float, cap: float, attempts: int, jitter: float
) -> None:
    backoff = Backoff(base, cap, attempts)
    delays = [backoff.delay(n, jitter) for n in range(attempts + 3)]
    real = [d for d in delays if d is not None]
    assert len(real) == attempts  # bounded number of retries
    assert all(d is None for d in delays[attempts:])
    assert all(0 < d <= cap for d in real)
    assert all(a <= b for a, b in itertools.pairwise(real))
