"""SharePoint/OneDrive throttling: resource units (RU) per (app, tenant), as graph.md §2.3 has it.

Every OneDrive request costs RU (Graph's v1.0 and beta, the download and the upload host): 1
for a single item, a delta page with a token or a download; 2 for a multi-item query (children,
a delta without token) or any write (an upload fragment too); 5 for a permission call. The app
may spend `per_minute` RU in any minute and `per_day` in any 24 hours (sliding windows). Over
either budget the request is refused with 429 (or 503, as SharePoint may answer) and
`Retry-After`; once 80 % of the minute's budget is spent, answers carry `RateLimit-Limit`,
`RateLimit-Remaining` and `RateLimit-Reset`. A request while blocked is refused again, restarts
the block (the premature-retry penalty) and is counted in `premature`. Refused requests spend no
RU. `scaled(k)` runs Microsoft's limits k times faster (same rate); `microsoft_limits` also
sets the upload byte budget (SharePoint's ingress per user, scaled alike).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.types import Message, Receive, Scope, Send

from keepstone.api.plumbing import HttpMiddleware
from tests.graph_fake import paging
from tests.graph_fake.errors import graph_error
from tests.graph_fake.throttle import Block, CostWindow, Limits, scaled_count, seconds

if TYPE_CHECKING:  # state.py holds a ResourceUnitBook
    from tests.graph_fake.state import FakeState

# v1.0 and beta alike: the beta endpoint is the same service with the same limits.
SHAREPOINT_PATH = re.compile(r"^/(v1\.0|beta)/(drives/|sites(/|$)|users/[^/]+/drives?(/|$))")
DOWNLOAD_HOST = re.compile(r"^/_download/")
UPLOAD_HOST = re.compile(r"^/_upload/([^/]+)$")
# SharePoint's ingress per user (graph.md §2.3: 50 GB an hour), the upload byte budget of
# `uploads.py` once Microsoft's limits are on.
UPLOAD_BYTES_PER_HOUR = 50 * 1000**3
HOUR_SECONDS = 3600.0
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The scope key the gate leaves for routes: the caller's app id, so the download URL it mints
# can charge the same (app, tenant) budget when it is fetched without a bearer token.
APP_SCOPE_KEY = "fake_graph_app"
WARN_AT = 0.8


@dataclass
class ResourceUnitLimits:
    """Defaults: the smallest tenants (0-1k licences) in Microsoft's table."""

    per_minute: int = 1_250
    per_day: int = 1_200_000
    minute: timedelta = timedelta(minutes=1)
    day: timedelta = timedelta(days=1)
    status: int = 429
    enabled: bool = True

    def scaled(self, k: float) -> ResourceUnitLimits:
        return ResourceUnitLimits(
            scaled_count(self.per_minute, k),
            scaled_count(self.per_day, k),
            self.minute / k,
            self.day / k,
            self.status,
            self.enabled,
        )


def microsoft_limits(state: FakeState, k: float = 1.0) -> None:
    """Switch on Microsoft's Outlook and SharePoint limits, k times faster (k=1: real time):
    the request budgets, the resource units and the upload byte budget alike."""
    from tests.graph_fake.uploads import uploads  # uploads imports state, which imports us

    book = uploads(state)
    with state.lock:
        state.throttle.limits = Limits().scaled(k)
        state.resource_units.limits = ResourceUnitLimits().scaled(k)
        book.budget_bytes = scaled_count(UPLOAD_BYTES_PER_HOUR, k)
        book.budget_window = HOUR_SECONDS / k


def cost_of(method: str, path: str, query: str) -> int:
    """The RU a request costs (graph.md §2.3; `$batch` inner requests arrive one by one)."""
    params = parse_qs(query)
    if path.endswith("/permissions") or "/permissions/" in path:
        return 5
    if any("permissions" in expand for expand in params.get("$expand", [])):
        return 5
    if method in WRITES:
        return 2
    if path.endswith("/delta"):
        return 1 if "token" in params else 2
    if path.endswith(("/children", "/drives")):
        return 2
    return 1


@dataclass
class Verdict:
    """A refusal (status set) or the headers an admitted answer carries."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Budget:
    minute: CostWindow
    day: CostWindow
    block: Block = field(default_factory=Block)


@dataclass
class ResourceUnitBook:
    """The RU state of every (app, tenant); callers hold the fake's lock."""

    limits: ResourceUnitLimits = field(default_factory=ResourceUnitLimits)
    budgets: dict[tuple[str, str], _Budget] = field(default_factory=dict)
    spent: int = 0
    refused: int = 0
    premature: int = 0
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # limits on or off

    def admit(self, key: tuple[str, str], cost: int, now: datetime) -> Verdict:
        self.requests[key] += 1
        if not self.limits.enabled:
            return Verdict()
        budget = self._budget(key, now)
        if budget.block.early(now):
            self.premature += budget.block.premature(now)
            return self._refuse(budget, budget.block.penalty)
        wait = self._wait(budget, cost, now)
        if wait is not None:
            budget.block.start(now, wait)
            return self._refuse(budget, budget.block.penalty)
        budget.minute.charge(now, cost)
        budget.day.charge(now, cost)
        self.spent += cost
        return Verdict(headers=self._rate_headers(budget, now))

    def _budget(self, key: tuple[str, str], now: datetime) -> _Budget:
        budget = self.budgets.get(key)
        if budget is None:
            budget = _Budget(CostWindow(self.limits.minute), CostWindow(self.limits.day))
            self.budgets[key] = budget
        budget.minute.window, budget.day.window = self.limits.minute, self.limits.day
        budget.minute.expire(now)
        budget.day.expire(now)
        return budget

    def _wait(self, budget: _Budget, cost: int, now: datetime) -> timedelta | None:
        waits = [
            window.frees(window.total + cost - limit, now)
            for window, limit in (
                (budget.minute, self.limits.per_minute),
                (budget.day, self.limits.per_day),
            )
            if window.total + cost > limit
        ]
        return max(waits) if waits else None

    def _refuse(self, budget: _Budget, retry_after: timedelta) -> Verdict:
        self.refused += 1
        headers = {
            "Retry-After": str(seconds(retry_after)),
            "RateLimit-Limit": str(self.limits.per_minute),
            "RateLimit-Remaining": str(max(0, self.limits.per_minute - budget.minute.total)),
            "RateLimit-Reset": str(seconds(retry_after)),
        }
        return Verdict(self.limits.status, headers)

    def _rate_headers(self, budget: _Budget, now: datetime) -> dict[str, str]:
        if budget.minute.total < WARN_AT * self.limits.per_minute:
            return {}
        return {
            "RateLimit-Limit": str(self.limits.per_minute),
            "RateLimit-Remaining": str(max(0, self.limits.per_minute - budget.minute.total)),
            "RateLimit-Reset": str(seconds(budget.minute.oldest_ages_out(now))),
        }


def _download_key(state: FakeState, query: str) -> tuple[str, str] | None:
    """(app, tenant) of a download URL: the drive's tenant and the app that was given it."""
    token = parse_qs(query).get("tempauth", [""])[0]
    try:
        sealed = paging.unseal(state.token_key, token)
    except (paging.BadSkipToken, ValueError):
        return None  # the download host answers 401 itself
    with state.lock:
        drive = next((d for d in state.drives.values() if d.id == sealed.get("drive")), None)
        tenant = next(
            (t for t in state.tenants.values() if drive and drive.owner_id in t.users), None
        )
    if tenant is None:
        return None
    return str(sealed.get("app", "")), tenant.id


def _upload_key(state: FakeState, session_id: str) -> tuple[str, str] | None:
    """(app, tenant) of an upload URL: the app that opened the session, its drive's tenant."""
    from tests.graph_fake.uploads import uploads  # uploads imports state, which imports us

    book = uploads(state)
    with state.lock:
        session = book.sessions.get(session_id)
        owner = session.owner if session is not None else None
        tenant = next((t for t in state.tenants.values() if owner and owner[1] in t.users), None)
    if owner is None or tenant is None:
        return None  # the upload host answers 404 itself
    return owner[0], tenant.id


def _key(state: FakeState, scope: Scope) -> tuple[str, str] | None:
    path, query = scope["path"], scope.get("query_string", b"").decode("latin-1")
    if DOWNLOAD_HOST.match(path):
        return _download_key(state, query)
    upload = UPLOAD_HOST.match(path)
    if upload is not None:  # no bearer token there either: the session says whose it is
        return _upload_key(state, upload.group(1))
    if not SHAREPOINT_PATH.match(path):
        return None
    authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    # imported here: access_tokens imports state, which imports this module
    from tests.graph_fake import access_tokens

    try:
        caller = access_tokens.verify(state, authorization)
    except access_tokens.TokenRefused:
        return None  # the route answers 401
    scope[APP_SCOPE_KEY] = caller.client_id
    return caller.client_id, caller.tenant_id


class ResourceUnitGate(HttpMiddleware):
    """The middleware charging OneDrive/SharePoint requests against their (app, tenant) RU."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: FakeState = scope["app"].state.fake
        key = _key(state, scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        cost = cost_of(scope["method"], scope["path"], scope.get("query_string", b"").decode())
        with state.lock:
            verdict = state.resource_units.admit(key, cost, state.clock.now())
        if verdict.status is not None:
            code = "activityLimitReached" if verdict.status == 429 else "serviceNotAvailable"
            message = "The request has been throttled."
            answer = graph_error(verdict.status, code, message, state.clock.now(), verdict.headers)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send, verdict.headers))


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    if not headers:
        return send
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending
