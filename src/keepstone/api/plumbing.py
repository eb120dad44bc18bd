"""Cross-cutting HTTP concerns shared by both dialects, as plain functions that the one
pure-ASGI layer in front of the app (``api.edge``) calls:

- request context: a request id on every response and log line, structured access logs (with
  the authenticated user's name, ``user=``, once a handler knows it), and a generic 500 (never a
  stack trace) when anything escapes a handler;
- body limit: request bodies over the limit are refused before a handler sees them;
- case-insensitive paths: ``/v2/jobs`` reaches the route declared as ``/v2/Jobs``.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable
from functools import lru_cache

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keepstone import logs
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


# A request's own id: unique in this process by its counter and across processes and restarts by
# a random prefix (a uuid4 per request costs a getrandom call and a UUID object); not a secret.
_ID_PREFIX = secrets.token_hex(10)
_next_id = itertools.count(1).__next__


def new_request_id() -> str:
    """32 hexadecimal digits, as a uuid4's hex was."""
    return f"{_ID_PREFIX}{_next_id():012x}"


def incoming_request_id(scope: Scope) -> str | None:
    """The client's ``X-Request-Id`` when it is a plausible id (else one is made up)."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.match(candidate) else None
    return None


# A catalog that cannot be reached at the moment (PostgreSQL restarting, SQLite locked past its
# busy timeout): the transaction was rolled back, so the client may simply ask again.
CATALOG_RETRY_AFTER_SECONDS = 2


def catalog_unavailable(error: BaseException) -> bool:
    """Whether ``error`` is the catalog being away, not a fault of the request or of the code."""
    return isinstance(error, OperationalError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


async def report_unhandled(
    scope: Scope,
    receive: Receive,
    send: Send,
    request_id: str,
    response_started: bool,
    error: BaseException,
) -> None:
    """Log what escaped a handler and, if no answer began, answer: 503 with ``Retry-After`` when
    the catalog was away (a client, a remote proxy, asks again), else a generic 500 (never a
    stack trace). Called from the ``except`` that caught ``error``."""
    if catalog_unavailable(error):
        log.warning(
            "catalog unavailable",
            method=scope["method"],
            path=loggable_path(scope["path"]),
            error=str(error),
        )
        if not response_started:
            seconds = CATALOG_RETRY_AFTER_SECONDS
            message = f"The catalog is unavailable for a moment; try again in {seconds} s"
            headers = {"Retry-After": str(seconds)}
            await error_response(scope["path"], 503, message, headers)(scope, receive, send)
        return
    log.exception("unhandled error", method=scope["method"], path=loggable_path(scope["path"]))
    if not response_started:
        message = f"Internal server error; quote request id {request_id} when reporting it"
        await error_response(scope["path"], 500, message)(scope, receive, send)


# An Enterprise Manager logon session's SessionId is a credential (``auth.logon_token``)
_LOGON_SESSION = re.compile(r"(/api/logonsessions/)[^/]+", re.IGNORECASE)
HIDDEN = "(hidden)"


def loggable_path(path: str) -> str:
    """``path`` as logs and the audit trail may keep it: a logon session's id hidden."""
    if "/api/logonsessions/" not in path.lower():
        return path
    return _LOGON_SESSION.sub(lambda found: found.group(1) + HIDDEN, path)


def log_request(scope: Scope, status: int, started: float) -> None:
    """The access log line (``started`` from ``time.perf_counter``)."""
    ms = round((time.perf_counter() - started) * 1000, 2)
    path = loggable_path(scope["path"])
    logs.request_line(log, scope["method"], path, status, ms, scope["state"].get("user_name"))


class BodyTooLarge(Exception):
    """The request body is (or declares itself) larger than the limit."""


async def read_body(scope: Scope, receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The whole request body, buffered up to ``limit`` (``BodyTooLarge`` past it); ``None``
    when the client went away first."""
    for name, declared in scope["headers"]:
        if name == b"content-length" and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def refuse_body(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    message = f"request body is larger than the limit of {limit} bytes"
    await error_response(scope["path"], 400, message)(scope, receive, send)


def with_content_length(scope: Scope, length: int) -> Scope:
    """``scope`` (a copy) whose body is now ``length`` bytes long, as its headers say."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode("ascii"))]}


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


def canonicaliser(paths: list[str]) -> Callable[[str], str]:
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
