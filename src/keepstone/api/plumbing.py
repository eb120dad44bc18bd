"""Cross-cutting HTTP concerns shared by both dialects, as small pure-ASGI middlewares.

- ``RequestContext``: a request id on every response and log line, structured access logs (with
  the authenticated user's name, ``user=``, once a handler knows it), and a generic 500 (never a
  stack trace) when anything escapes a handler.
- ``BodyLimit``: request bodies over the limit are refused before a handler sees them.
- ``CaseInsensitivePaths``: ``/v2/jobs`` reaches the route declared as ``/v2/Jobs``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from functools import lru_cache

import structlog
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keepstone.api.errors import error_response

log = structlog.get_logger("keepstone.http")
MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class HttpMiddleware:
    """A pure-ASGI middleware that sees HTTP requests (``handle``) and passes the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestContext(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        # bind/reset rather than bound_contextvars, which copies the whole context twice a request
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled error", method=scope["method"], path=scope["path"])
                if not response_started:
                    message = (
                        f"Internal server error; quote request id {request_id} when reporting it"
                    )
                    await error_response(scope["path"], 500, message)(scope, receive, send_with_id)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                **({"user": state["user_name"]} if state.get("user_name") else {}),
            )
        finally:
            structlog.contextvars.reset_contextvars(**bound)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.match(candidate) else None
    return None


class BodyLimit(HttpMiddleware):
    """Buffers the request body up to ``limit`` bytes; a larger body is refused with a 400."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.limit = limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replaying(whole, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than the limit of {self.limit} bytes"
        await error_response(scope["path"], 400, message)(scope, receive, send)


def replaying(first: Message, receive: Receive) -> Receive:
    """``receive`` that hands out ``first`` (a body already read) once, then the real ones."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return first

    return replay


class CaseInsensitivePaths:
    """Rewrites the literal segments of a request path to the case its route declares."""

    def __init__(self, app: ASGIApp, templates: list[str]) -> None:
        self.app = app
        self._canonical = _canonicaliser(templates)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "path": self._canonical(scope["path"])}
        await self.app(scope, receive, send)


def _canonicaliser(paths: list[str]) -> Callable[[str], str]:
    """``paths`` are route templates such as ``/v2/Jobs/{job_id}``."""
    templates: dict[tuple[int, str], list[list[str]]] = {}
    for path in paths:
        segments = path.split("/")
        templates.setdefault((len(segments), segments[1].lower()), []).append(segments)

    @lru_cache(maxsize=4096)
    def canonical(path: str) -> str:
        segments = path.split("/")
        if len(segments) < 2:
            return path
        for template in templates.get((len(segments), segments[1].lower()), []):
            if all(
                t.startswith("{") or t.lower() == s.lower()
                for t, s in zip(template, segments, strict=True)
            ):
                return "/".join(
                    s if t.startswith("{") else t for t, s in zip(template, segments, strict=True)
                )
        return path

    return canonical


def plain(status: int, media_type: str = "application/json; charset=utf-8") -> Response:
    """An empty response with the JSON content type the vendor sends even for empty bodies."""
    return Response(status_code=status, media_type=media_type)


def plain_with(status: int, headers: dict[str, str]) -> Response:
    response = plain(status)
    response.headers.update(headers)
    return response
