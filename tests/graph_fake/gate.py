"""The middleware in front of every Graph route: mailbox throttling, then injected faults.

Throttling needs the caller (app id) and the mailbox (the user in the path, by id or UPN), so
it reads the bearer token itself; a request without a valid token is left to the route's 401.
"""

from __future__ import annotations

import asyncio
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.graph_fake import access_tokens
from tests.graph_fake.errors import graph_error
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.state import FakeState

# v1.0 and beta (the In-Place Archive's API) alike: one Outlook service, the same limits.
MAILBOX_PATH = re.compile(
    r"^/(?:v1\.0|beta)/users/([^/]+)/(mailFolders|messages|mailboxSettings|settings)(/|$)"
)
HOLD_DEADLINE_SECONDS = 60.0
FAULT_CODES = {
    500: "generalException",
    502: "UnknownError",
    503: "serviceNotAvailable",
    504: "UnknownError",
    507: "insufficientStorage",
}


def _mailbox_key(state: FakeState, scope: Scope) -> tuple[str, str] | None:
    match = MAILBOX_PATH.match(scope["path"])
    if match is None:
        return None
    headers = dict(scope["headers"])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    try:
        caller = access_tokens.verify(state, authorization)
    except access_tokens.TokenRefused:
        return None
    key = match.group(1)
    with state.lock:
        user = state.tenants[caller.tenant_id].find_user(key)
    return caller.client_id, user.id if user else key.lower()


def _abort_connection(receive: Receive) -> None:
    """Drop the TCP connection under the request (uvicorn's cycle owns the transport)."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("injected reset")
    transport.abort()


async def _unsent(message: Message) -> None:
    """The answer of a request whose connection is about to drop."""


class GraphGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: FakeState = scope["app"].state.fake
        key = _mailbox_key(state, scope)
        book = state.throttle
        if key is not None:
            with state.lock:
                refusal = book.admit(key, state.clock.now())
            if refusal is not None:
                answer = graph_error(
                    429,
                    "ApplicationThrottled",
                    refusal.message,
                    state.clock.now(),
                    {"Retry-After": str(refusal.retry_after)},
                )
                await answer(scope, receive, send)
                return
        try:
            await self._with_faults(state, scope, receive, send)
        finally:
            if key is not None:
                with state.lock:
                    book.release(key)

    async def _with_faults(
        self, state: FakeState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        with state.lock:
            rule = state.faults.pick(scope["path"], state.clock.now())
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.action == "hold":
            await self._hold(state)
            await self.app(scope, receive, send)
        elif rule.action == "reset":
            _abort_connection(receive)
        elif rule.action == "lose":
            await self.app(scope, receive, _unsent)  # done, but its answer never leaves
            _abort_connection(receive)
        else:
            await self._fail(state, rule, scope, receive, send)

    async def _hold(self, state: FakeState) -> None:
        with state.lock:
            state.faults.held += 1
        deadline = time.monotonic() + HOLD_DEADLINE_SECONDS
        while not state.faults.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def _fail(
        self, state: FakeState, rule: FaultRule, scope: Scope, receive: Receive, send: Send
    ) -> None:
        status = int(rule.action)
        headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
        answer = graph_error(
            status,
            FAULT_CODES.get(status, "generalException"),
            "Injected fault.",
            state.clock.now(),
            headers,
        )
        await answer(scope, receive, send)
