"""The one pure-ASGI layer in front of the app: every cross-cutting concern of a request, in one
``__call__`` (five stacked middlewares cost a coroutine, a closure and a header copy each on every
request). Outermost first, as they were stacked:

1. security headers on every answer (``api.headers``), even the generic 500;
2. request context: a request id, the access log, a generic 500 for what escapes (``api.plumbing``);
3. body limit: the body is buffered and refused past the limit (``api.plumbing``);
4. well-formed input: path, query and body checked before any handler (``api.inputs``);
5. case-insensitive paths: the app sees the path in the case its route declares
   (``api.plumbing``), and the query's parameter names as declared, without the empty values
   that mean "not sent" (``api.query_names``); everything above sees (and logs) the path as
   the client sent it; the routes put in the app at the first request for their paths
   (``api.deferred``) are put in before, so their templates, direct routes, credential checks
   and query parameters apply to that request too;
6. before the app: a direct route's handler (``api.direct``), else the credential gate, which
   refuses a request without the credentials its route needs as the app would refuse it
   (``api.credential_gate``); a domain error either raises is answered by the app's own
   handler. Neither goes through Starlette's exception middleware or FastAPI's router.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keepstone.api import plumbing
from keepstone.api.credential_gate import CredentialGate
from keepstone.api.deferred import DeferredRoutes
from keepstone.api.errors import error_response
from keepstone.api.headers import adding, security_headers
from keepstone.api.inputs import check_request
from keepstone.api.prefix_routing import DirectRoutes, first_segment
from keepstone.api.query_names import QueryNames
from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.services import metrics

# the app's answer to a domain error (its exception handler)
Refusal = Callable[[Request, KeepstoneError], Awaitable[Response]]


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        templates: list[str],
        public: str | None = None,
        pages: dict[str, str] | None = None,
        body_limit: int = plumbing.MAX_BODY_BYTES,
        direct: DirectRoutes | None = None,
        gate: CredentialGate | None = None,
        refusal: Refusal | None = None,
        deferred: list[DeferredRoutes] | None = None,
        query_names: QueryNames | None = None,
    ) -> None:
        self.app = app
        self.query_names = query_names
        self.direct = direct
        self.gate = gate
        self.refusal = refusal  # without it, everything goes to the app
        self.public = public
        self.pages = pages or {}  # path -> Content-Security-Policy of the page served there
        self.body_limit = body_limit
        self.templates = templates
        self.canonical = plumbing.canonicaliser(templates)
        # until their first request: a path's first segment is compared without its case, as
        # the canonical path's is
        self.deferred = list(deferred or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope, self.public, self.pages)
        request_id = plumbing.incoming_request_id(scope) or plumbing.new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_out(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = adding([*message.get("headers", []), id_header], extra)
            await send(message)

        # bind/reset rather than bound_contextvars, which copies the whole context twice a request
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        routed: dict[str, object] = {}  # the scope the app saw: its route, once matched
        try:
            try:
                await self._checked(scope, receive, send_out, routed)
            except Exception as error:
                await plumbing.report_unhandled(
                    scope, receive, send_out, request_id, response_started, error
                )
            plumbing.log_request(scope, status, started)
            route = getattr(routed.get("route"), "path", None)
            elapsed = time.perf_counter() - started
            metrics.observe_request(scope["method"], route, status, elapsed, scope["path"])
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    async def _checked(
        self, scope: Scope, receive: Receive, send: Send, routed: dict[str, object]
    ) -> None:
        """Body limit, well-formed input, a direct route or the credential gate, then the app
        on the canonical path (whose scope, with the route the router chose, ends up in
        ``routed``)."""
        try:
            body = await plumbing.read_body(scope, receive, self.body_limit)
        except plumbing.BodyTooLarge:
            await plumbing.refuse_body(scope, receive, send, self.body_limit)
            return
        if body is None:  # the client went away
            return
        try:
            checked = check_request(scope, body)
        except InvalidInput as error:
            await error_response(scope["path"], 400, error.message)(scope, receive, send)
            return
        if checked is not body:  # JSON as Json.NET reads it (api.inputs): its new length too
            scope, body = plumbing.with_content_length(scope, len(checked)), checked
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        if self.deferred:
            self._install_for(scope["path"])
        canonical = {**scope, "path": self.canonical(scope["path"])}
        query = scope.get("query_string")
        if query and self.query_names is not None:  # nothing to do without a query
            canonical["query_string"] = self.query_names.canonical(canonical["path"], query)
        if await self._answered(canonical, body, plumbing.replaying(whole, receive), send):
            routed["route"] = canonical.get("route")
            return
        try:
            await self.app(canonical, plumbing.replaying(whole, receive), send)
        finally:
            routed["route"] = canonical.get("route")

    def _install_for(self, path: str) -> None:
        """The deferred routes of ``path``'s first segment put in the app, and their templates
        in the canonical paths."""
        segment = first_segment(path).lower()
        for deferred in [d for d in self.deferred if segment in d.segments]:
            deferred.install()
            self.deferred.remove(deferred)
            self.templates = [*self.templates, *deferred.templates]
            self.canonical = plumbing.canonicaliser(self.templates)

    async def _answered(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> bool:
        """Whether the request was answered before the app: by its direct route's handler
        (unless the handler declined it), or by the gate (its route's credential check raised,
        given no credentials and no body); a domain error is answered as the app's handler
        answers it."""
        if self.refusal is None:
            return False
        found = None if self.direct is None else self.direct.match(scope["method"], scope["path"])
        if found is not None:
            route, params = found
            request = Request(scope, receive)
            try:
                answer = await route.route.handler(request, params, body)
            except KeepstoneError as error:
                answer = await self.refusal(request, error)
        elif body or self.gate is None:  # FastAPI would parse a body before any check
            return False
        else:
            check = self.gate.check_without_credentials(scope)
            if check is None:
                return False
            request = Request(scope, receive)
            refused = await self.gate.refusal(check, request)
            if refused is None:
                return False
            answer = await self.refusal(request, refused)
        if answer is None:  # declined: the app's route answers
            return False
        await answer(scope, receive, send)
        return True
