"""Injected faults by rule: every Nth request to a path pattern gets an error status, a reset
connection, is held until the test releases it (to make requests overlap on purpose), or is
served and its answer lost ("lose": the route runs, say a message is created, then the
connection drops before the answer; a client that simply sends it again makes a duplicate).

A fault sent with `Retry-After` closes its path until then: a request to that path before the
time has passed is counted in `premature` (a client must never send one; graph.md §2.1).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class FaultRule:
    """`action`: an HTTP status (500, 502, 503, 504, 507; or 400, a request Graph refuses),
    "reset", "hold", or "lose"."""

    pattern: str
    action: int | str
    every: int = 1
    retry_after: int | None = None
    limit: int | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, path: str) -> bool:
        """Count a request to a matching path; True when this one gets the fault."""
        if re.search(self.pattern, path) is None:
            return False
        if self.limit is not None and self.fired >= self.limit:
            return False
        self.seen += 1
        if self.seen % self.every != 0:
            return False
        self.fired += 1
        return True


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    # Held requests wait (without blocking the server's loop) until this is set.
    release: threading.Event = field(default_factory=threading.Event)
    held: int = 0
    # path -> when its Retry-After has passed; and the requests sent before that.
    closed: dict[str, datetime] = field(default_factory=dict)
    premature: list[tuple[str, datetime]] = field(default_factory=list)

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def pick(self, path: str, now: datetime | None = None) -> FaultRule | None:
        if now is not None and now < self.closed.get(path, now):
            self.premature.append((path, now))
        rule = next((rule for rule in self.rules if rule.matches(path)), None)
        if rule is not None and rule.retry_after is not None and now is not None:
            self.closed[path] = now + timedelta(seconds=rule.retry_after)
        return rule
