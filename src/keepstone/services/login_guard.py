"""The login guard of both dialects: slows password guessing without locking everyone out.

Each attempt is counted *before* its password is hashed (reserve, then verify), so N concurrent
wrong guesses cost N attempts, under two keys:

- (user name, address): after ``PAIR_FREE`` failures the next attempt waits 1 s, then 2 s, 4 s...
  up to 5 minutes; a success from that address for that user clears this key only.
- the user name alone: a distributed guess against one account from many addresses waits too,
  but only after ``USER_FREE`` failures and for at most one minute, so an attacker can slow an
  account down, never shut it.

A failure is forgotten an hour after the last one. Password verifications (Argon2id, memory and
CPU hungry) run at most ``MAX_VERIFICATIONS`` at a time; a login that cannot start one within
``VERIFY_QUEUE_SECONDS`` is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from keepstone.clock import Clock
from keepstone.domain.errors import Busy, TooManyAttempts
from keepstone.services import metrics

PAIR_FREE = 5
PAIR_MAX_DELAY = timedelta(minutes=5)
USER_FREE = 20
USER_MAX_DELAY = timedelta(minutes=1)
FIRST_DELAY = timedelta(seconds=1)
FORGET_AFTER = timedelta(hours=1)
MAX_VERIFICATIONS = 4
VERIFY_QUEUE_SECONDS = 10.0
MAX_KEYS = 100_000  # bounds memory under an attack from many addresses or user names


@dataclass(frozen=True, slots=True)
class Rule:
    free: int
    max_delay: timedelta

    def wait(self, failures: int, last: datetime, now: datetime) -> timedelta:
        if failures < self.free:
            return timedelta(0)
        delay = min(FIRST_DELAY * (1 << min(failures - self.free, 30)), self.max_delay)
        return max(last + delay - now, timedelta(0))


PAIR_RULE = Rule(PAIR_FREE, PAIR_MAX_DELAY)
USER_RULE = Rule(USER_FREE, USER_MAX_DELAY)


@dataclass(slots=True)
class _Count:
    failures: int
    last: datetime


class LoginGuard:
    def __init__(
        self,
        clock: Clock,
        max_verifications: int = MAX_VERIFICATIONS,
        queue_seconds: float = VERIFY_QUEUE_SECONDS,
    ) -> None:
        self.clock = clock
        self.max_verifications = max_verifications
        self.queue_seconds = queue_seconds
        self._counts: OrderedDict[tuple[str, str], _Count] = OrderedDict()
        self._lock = threading.Lock()
        self._verifying = threading.BoundedSemaphore(max_verifications)
        self._active = 0
        self.peak_verifications = 0  # the most verifications ever seen running at once

    @contextmanager
    def attempt(self, user_name: str, address: str) -> Iterator[None]:
        """Count one login attempt, or refuse it (TooManyAttempts) while its key must wait.
        Leaving the block normally means the password was right; an exception means it was not
        (the attempt stays counted), except Busy: that password was never checked."""
        pair, user = ("pair", f"{user_name.casefold()}\0{address}"), ("user", user_name.casefold())
        self._reserve(pair, user)
        try:
            yield
        except Busy:
            self._refund(pair, user)
            raise
        except BaseException:
            self._restart_delay(pair, user)  # the wait runs from the answer, not the question
            metrics.LOGIN_FAILURES.inc()
            raise
        self._refund(pair, user)
        with self._lock:
            self._counts.pop(pair, None)  # a success clears its own key, and nobody else's

    def _restart_delay(self, *keys: tuple[str, str]) -> None:
        now = self.clock.now()
        with self._lock:
            for key in keys:
                counted = self._counts.get(key)
                if counted is not None:
                    counted.last = max(counted.last, now)

    def _refund(self, *keys: tuple[str, str]) -> None:
        with self._lock:
            for key in keys:
                counted = self._counts.get(key)
                if counted is not None:
                    counted.failures = max(0, counted.failures - 1)

    @contextmanager
    def verifying(self) -> Iterator[None]:
        """A slot to run one password verification in (at most ``max_verifications`` at once)."""
        if not self._verifying.acquire(timeout=self.queue_seconds):
            raise Busy("the server is busy verifying other logins; retry in 1 s", 1)
        with self._lock:
            self._active += 1
            self.peak_verifications = max(self.peak_verifications, self._active)
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
            self._verifying.release()

    def _reserve(self, pair: tuple[str, str], user: tuple[str, str]) -> None:
        now = self.clock.now()
        with self._lock:
            wait = max(
                self._wait(pair, PAIR_RULE, now),
                self._wait(user, USER_RULE, now),
            )
            if wait > timedelta(0):
                seconds = max(1, math.ceil(wait.total_seconds()))
                raise TooManyAttempts(
                    f"too many failed logins for this user; retry in {seconds} s", seconds
                )
            for key in (pair, user):
                counted = self._current(key, now)
                self._counts[key] = _Count(counted.failures + 1 if counted else 1, now)
                self._counts.move_to_end(key)
            while len(self._counts) > MAX_KEYS:
                self._counts.popitem(last=False)

    def _wait(self, key: tuple[str, str], rule: Rule, now: datetime) -> timedelta:
        counted = self._current(key, now)
        return rule.wait(counted.failures, counted.last, now) if counted else timedelta(0)

    def _current(self, key: tuple[str, str], now: datetime) -> _Count | None:
        counted = self._counts.get(key)
        if counted is not None and now - counted.last >= FORGET_AFTER:
            del self._counts[key]
            return None
        return counted
