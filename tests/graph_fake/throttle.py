"""Outlook throttling per (app, mailbox), as graph.md §0 #1, §2.2 and §6.2 describe it.

- at most `concurrency` (4) requests in flight; the next one gets 429 `ApplicationThrottled`
  "MailboxConcurrency" at once;
- a sliding budget of `requests` (10,000) per `window` (600 s); every request counts, refused ones
  included ("Graph continues to log resource usage while a client is being throttled");
- a 429 for the budget blocks the scope until its `Retry-After`; a request before then is refused
  again and pushes the block out by the full penalty (the premature-retry penalty).
The clock is the fake's, so a test moves time instead of sleeping; the limits are settable.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class Limits:
    concurrency: int = 4
    requests: int = 10_000
    window: timedelta = timedelta(minutes=10)
    enabled: bool = True


@dataclass
class Refusal:
    message: str
    retry_after: int


@dataclass
class _Scope:
    in_flight: int = 0
    stamps: deque[datetime] = field(default_factory=deque)
    blocked_until: datetime | None = None
    penalty: timedelta = timedelta(0)


@dataclass
class ThrottleBook:
    """The throttling state of every (app, mailbox) scope; callers hold the fake's lock."""

    limits: Limits = field(default_factory=Limits)
    scopes: dict[tuple[str, str], _Scope] = field(default_factory=dict)
    refused: int = 0

    def admit(self, key: tuple[str, str], now: datetime) -> Refusal | None:
        """Count a request; None lets it run (call `release` after), else the 429 to send."""
        if not self.limits.enabled:
            return None
        scope = self.scopes.setdefault(key, _Scope())
        self._count(scope, now)
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

    def _count(self, scope: _Scope, now: datetime) -> None:
        scope.stamps.append(now)
        while scope.stamps and scope.stamps[0] <= now - self.limits.window:
            scope.stamps.popleft()

    def _blocked(self, scope: _Scope, now: datetime) -> Refusal | None:
        if scope.blocked_until is None or now >= scope.blocked_until:
            return None
        # Premature retry: the block starts again from now.
        scope.blocked_until = now + scope.penalty
        return Refusal("Application is over its resource limit.", _seconds(scope.penalty))

    def _over_budget(self, scope: _Scope, now: datetime) -> Refusal | None:
        if len(scope.stamps) <= self.limits.requests:
            return None
        # Free again once enough of the window's requests have aged out of it.
        excess = len(scope.stamps) - self.limits.requests
        frees_at = scope.stamps[excess - 1] + self.limits.window
        scope.penalty = max(frees_at - now, timedelta(seconds=1))
        scope.blocked_until = now + scope.penalty
        return Refusal("Application is over its resource limit.", _seconds(scope.penalty))


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
