"""Outlook throttling per (app, mailbox), as graph.md §0 #1, §2.2 and §6.2 describe it.

- at most `concurrency` (4) requests in flight; the next one gets 429 `ApplicationThrottled`
  "MailboxConcurrency" at once;
- a sliding budget of `requests` (10,000) per `window` (600 s); every request counts, refused ones
  included ("Graph continues to log resource usage while a client is being throttled");
- a 429 for the budget blocks the scope until its `Retry-After`; a request before then is refused
  again and pushes the block out by the full penalty (the premature-retry penalty).
The clock is the fake's, so a test moves time instead of sleeping; the limits are settable, and
`scaled(k)` divides every window and budget by k (the same rate, shorter windows, Retry-After/k) so
a benchmark meets Microsoft's limits in minutes (graph.md §6.2 "Clock"). A request made while its
scope is blocked is counted in `premature` (a client must never send one) unless it was sent
before the block began: one that arrives within `IN_FLIGHT_GRACE` of the refusal was already on
the wire, and a `$batch`'s inner requests were all sent with their batch (`BATCH_SENT`), however
long the fake takes to run them one after another.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class Limits:
    concurrency: int = 4
    requests: int = 10_000
    window: timedelta = timedelta(minutes=10)
    enabled: bool = True

    def scaled(self, k: float) -> Limits:
        """Microsoft's limits k times faster: window/k and budget/k; concurrency stays."""
        return Limits(
            self.concurrency, scaled_count(self.requests, k), self.window / k, self.enabled
        )


def scaled_count(count: int, k: float) -> int:
    if k <= 0:
        raise ValueError("the time scale k must be positive")
    return max(1, round(count / k))


@dataclass
class CostWindow:
    """Costs charged in the sliding window `(now - window, now]`, with their running total."""

    window: timedelta
    charges: deque[tuple[datetime, int]] = field(default_factory=deque)
    total: int = 0

    def expire(self, now: datetime) -> None:
        while self.charges and self.charges[0][0] <= now - self.window:
            self.total -= self.charges.popleft()[1]

    def charge(self, now: datetime, cost: int) -> None:
        self.charges.append((now, cost))
        self.total += cost

    def frees(self, amount: int, now: datetime) -> timedelta:
        """How long until at least `amount` of the charged cost has aged out of the window."""
        freed = 0
        for stamp, cost in self.charges:
            freed += cost
            if freed >= amount:
                return max(stamp + self.window - now, timedelta(0))
        return self.window

    def oldest_ages_out(self, now: datetime) -> timedelta:
        if not self.charges:
            return timedelta(0)
        return max(self.charges[0][0] + self.window - now, timedelta(0))


@dataclass
class Refusal:
    message: str
    retry_after: int


# Requests already on the wire when a scope's first refusal went out (up to 4 per mailbox) arrive
# just after it: refused and counted by the service, but not a client's premature retry.
IN_FLIGHT_GRACE = timedelta(milliseconds=500)


# When the `$batch` whose inner request is being run arrived (batch.py sets it around its inner
# requests; they run in the batch's own task, so no other request sees it).
BATCH_SENT: ContextVar[datetime | None] = ContextVar("fake_graph_batch_sent", default=None)


def sent_at(now: datetime) -> datetime:
    """When the client sent the request being admitted: its batch's arrival, else now."""
    return BATCH_SENT.get() or now


@dataclass
class Block:
    """A scope refused until `until`; a request before then restarts it (the penalty)."""

    until: datetime | None = None
    penalty: timedelta = timedelta(0)
    started: datetime | None = None

    def early(self, now: datetime) -> bool:
        """True for a request before the block has passed; a premature one (not one already in
        flight when the block began) starts the block again from now: the penalty. An in-flight
        request must not extend it, or the client's honest retry after its Retry-After would
        meet a block it was never told of."""
        if self.until is None or now >= self.until:
            return False
        if self.premature(now):
            self.until = now + self.penalty
        return True

    def premature(self, now: datetime) -> bool:
        """Whether a request refused by `early` was sent later than one in flight could have
        been: its batch's arrival counts for an inner request, not when the fake reached it."""
        return self.started is not None and sent_at(now) - self.started >= IN_FLIGHT_GRACE

    def start(self, now: datetime, wait: timedelta) -> None:
        self.penalty = max(wait, timedelta(seconds=1))
        self.started, self.until = now, now + self.penalty


@dataclass
class _Scope:
    stamps: CostWindow
    in_flight: int = 0
    block: Block = field(default_factory=Block)


@dataclass
class ThrottleBook:
    """The throttling state of every (app, mailbox) scope; callers hold the fake's lock."""

    limits: Limits = field(default_factory=Limits)
    scopes: dict[tuple[str, str], _Scope] = field(default_factory=dict)
    refused: int = 0
    premature: int = 0
    # Every request per scope, limits on or off (what a benchmark reports as requests/item).
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)

    def admit(self, key: tuple[str, str], now: datetime) -> Refusal | None:
        """Count a request; None lets it run (call `release` after), else the 429 to send."""
        self.requests[key] += 1
        if not self.limits.enabled:
            return None
        scope = self.scopes.get(key)
        if scope is None:
            scope = self.scopes[key] = _Scope(CostWindow(self.limits.window))
        scope.stamps.window = self.limits.window  # limits may be changed between requests
        scope.stamps.expire(now)
        scope.stamps.charge(now, 1)
        refusal = self._blocked(scope, now) or self._over_budget(scope, now)
        if refusal is None and scope.in_flight >= self.limits.concurrency:
            refusal = Refusal("Application is over its MailboxConcurrency limit.", 1)
        if refusal is not None:
            self.refused += 1
            return refusal
        scope.in_flight += 1
        return None

    def release(self, key: tuple[str, str]) -> None:
        if self.limits.enabled:
            self.scopes[key].in_flight -= 1

    def _blocked(self, scope: _Scope, now: datetime) -> Refusal | None:
        if not scope.block.early(now):
            return None
        self.premature += scope.block.premature(now)
        return Refusal("Application is over its resource limit.", seconds(scope.block.penalty))

    def _over_budget(self, scope: _Scope, now: datetime) -> Refusal | None:
        if scope.stamps.total <= self.limits.requests:
            return None
        # Free again once enough of the window's requests have aged out of it.
        excess = scope.stamps.total - self.limits.requests
        scope.block.start(now, scope.stamps.frees(excess, now))
        return Refusal("Application is over its resource limit.", seconds(scope.block.penalty))


def seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
