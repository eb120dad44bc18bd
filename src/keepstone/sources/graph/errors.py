"""Graph failures as typed exceptions carrying what Graph said: status, code, message and the
request id (for a support ticket), never the token or the request body."""

from __future__ import annotations

import json
from typing import Any


class GraphError(Exception):
    """Graph answered with an error. Branch on ``code``, never on ``message`` (graph.md §2.4)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None,
        *,
        details: tuple[str, ...] = (),
        location: str | None = None,
    ) -> None:
        super().__init__(
            f"{status} {code}: {message}" + (f" (request-id {request_id})" if request_id else "")
        )
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details  # the more specific codes nested in innerError, outermost first
        self.location = location  # the answer's Location (a 410 resync's fresh enumeration)


class GraphAuthError(GraphError):
    """401/403: the token or the application's permissions."""


class GraphNotFound(GraphError):
    """404: the item, mailbox or drive is not there (a per-item warning for a backup)."""


class GraphSyncStateLost(GraphError):
    """410 (``SyncStateNotFound``, ``resyncRequired``...): restart the delta without a token."""


class GraphThrottled(GraphError):
    """429/503/504 still failing once the retries allowed are spent."""


class GraphUnavailable(GraphError):
    """5xx or connection failures still failing once the retries allowed are spent."""


class GraphAnswerLost(GraphUnavailable):
    """The connection was lost after a create was sent: Graph may have made it or not."""


class TokenError(Exception):
    """The login service refused the application's credentials (AADSTS code and text)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


def _error_body(body: bytes) -> tuple[str, str, str | None, tuple[str, ...]]:
    try:
        document: Any = json.loads(body)
        error = document["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
        inner = error.get("innerError") or error.get("innererror") or {}
        request_id = inner.get("request-id") if isinstance(inner, dict) else None
        return code, message, str(request_id) if request_id else None, _nested_codes(inner)
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", body[:200].decode("utf-8", "replace"), None, ()


def _nested_codes(inner: Any, depth: int = 0) -> tuple[str, ...]:
    """``innerError`` may nest further ``innerError``s with more specific codes (graph.md
    §2.4); a few levels are read, never an unbounded chain from a hostile body."""
    if not isinstance(inner, dict) or depth >= 4:
        return ()
    code = inner.get("code")
    here = (code,) if isinstance(code, str) and code else ()
    deeper = inner.get("innerError") or inner.get("innererror")
    return here + _nested_codes(deeper, depth + 1)


def graph_error(
    status: int, body: bytes, request_id: str | None = None, location: str | None = None
) -> GraphError:
    """The typed exception for an error answer; the header request-id wins over the body's."""
    code, message, body_request_id, details = _error_body(body)
    kind: type[GraphError] = GraphError
    if status in (401, 403):
        kind = GraphAuthError
    elif status == 404:
        kind = GraphNotFound
    elif status == 410:
        kind = GraphSyncStateLost
    elif status in (429, 503, 504):
        kind = GraphThrottled
    elif status >= 500:
        kind = GraphUnavailable
    return kind(
        status,
        code or f"http{status}",
        message,
        request_id or body_request_id,
        details=details,
        location=location,
    )
