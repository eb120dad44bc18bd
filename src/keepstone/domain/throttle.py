"""The Graph throttling discipline as pure maths: a sliding request budget per mailbox, the
``Retry-After`` gates per scope, and backoff with jitter for transient failures.

Times are seconds on one monotonic clock the caller owns; nothing here sleeps or reads a clock,
so the rules are tested with arbitrary time sequences (tests/domain/test_throttle.py).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

APP_SCOPE = ""  # the gate of the whole application: it closes every mailbox as well

# Microsoft's Outlook limit per app ID and mailbox (graph.md §2.2)
DEFAULT_BUDGET = 10_000
DEFAULT_WINDOW = 600.0


@dataclass
class SlidingBudget:
    """At most ``limit`` admitted requests in any half-open window ``(t - window, t]``.

    ``ops`` counts deque operations so a test can show the work per request is O(1) amortised:
    every admitted instant is appended once and dropped at most once.
    """

    limit: int = DEFAULT_BUDGET
    window: float = DEFAULT_WINDOW
    _admitted: deque[float] = field(default_factory=deque)
    _latest: float = float("-inf")
    ops: int = 0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a budget needs limit >= 1 and window > 0")

    def admit(self, now: float) -> float:
        """Admit a request at ``now`` and return 0, or return how long to wait (nothing recorded).

        ``now`` is clamped to the latest instant seen: a clock that stepped back must not let a
        request slip in under an older window.
        """
        now = max(now, self._latest)
        self._latest = now
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
            self.ops += 1
        if len(self._admitted) < self.limit:
            self._admitted.append(now)
            self.ops += 1
            return 0.0
        # at least one ulp: rounding may make the exact difference 0, which would read "admitted"
        wait = max(self._admitted[0] + self.window - now, math.ulp(now))
        return min(wait, self.window)


@dataclass
class RetryGates:
    """``Retry-After`` instants per scope. A gate only ever moves later: Graph counts a request
    sent early and extends its penalty, so an earlier instant from a later answer is ignored."""

    _until: dict[str, float] = field(default_factory=dict)

    def close(self, scope: str, until: float) -> None:
        if until > self._until.get(scope, float("-inf")):
            self._until[scope] = until

    def wait(self, scope: str, now: float) -> float:
        """Seconds until a request for ``scope`` may be sent: its own gate and the app's."""
        until = max(self._until.get(scope, now), self._until.get(APP_SCOPE, now))
        return max(0.0, until - now)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter" for failures that name no ``Retry-After``
    (500/502/503/504, connection resets): at attempt n the ceiling is ``min(cap, base * 2**n)``
    and the delay lies in ``[ceiling / 2, ceiling]``, so for a given jitter draw the delays never
    shrink from one attempt to the next and never exceed ``cap``."""

    base: float = 1.0
    cap: float = 60.0
    attempts: int = 6  # retries after the first try

    def delay(self, attempt: int, jitter: float) -> float | None:
        """The wait before retry ``attempt`` (0-based), or None when no retry is left.
        ``jitter`` is a uniform draw in [0, 1]."""
        if attempt >= self.attempts:
            return None
        exponent = min(attempt, 62)  # 2**62 already exceeds any sensible cap
        ceiling = min(self.cap, self.base * float(2**exponent))
        return ceiling / 2 * (1.0 + min(max(jitter, 0.0), 1.0))


@dataclass
class Discipline:
    """The budget per mailbox and the gates per scope, asked together before every request."""

    limit: int = DEFAULT_BUDGET
    window: float = DEFAULT_WINDOW
    gates: RetryGates = field(default_factory=RetryGates)
    _budgets: dict[str, SlidingBudget] = field(default_factory=dict)

    def admit(self, scope: str, now: float) -> float:
        """0 when a request for ``scope`` may go now (and it is counted), else seconds to wait.
        The gate is asked first so that a request held by a gate never uses budget."""
        wait = self.gates.wait(scope, now)
        if wait > 0:
            return wait
        budget = self._budgets.get(scope)
        if budget is None:
            budget = self._budgets[scope] = SlidingBudget(self.limit, self.window)
        return budget.admit(now)

    def throttled(self, scope: str, now: float, retry_after: float) -> None:
        self.gates.close(scope, now + max(0.0, retry_after))
