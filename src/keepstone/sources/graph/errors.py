"""Graph failures as typed exceptions carrying what Graph said: status, code, message and the
request id (for a support ticket), never the token or the request body."""

from __future__ import annotations

import json
from typing import Any


class GraphError(Exception):
    """Graph answered with an error. Branch on ``code``, never on ``message`` (graph.md §2.4)."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        super().__init__(
            f"{status} {code}: {message}" + (f" (request-id {request_id})" if request_id else "")
        )
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


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


def _error_body(body: bytes) -> tuple[str, str, str | None]:
    try:
        document: Any = json.loads(body)
        error = document["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
        inner = error.get("innerError") or error.get("innererror") or {}
        request_id = inner.get("request-id") if isinstance(inner, dict) else None
        return code, message, str(request_id) if request_id else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", body[:200].decode("utf-8", "replace"), None


def graph_error(status: int, body: bytes, request_id: str | None = None) -> GraphError:
    """The typed exception for an error answer; the header request-id wins over the body's."""
    code, message, body_request_id = _error_body(body)
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
    return kind(status, code or f"http{status}", message, request_id or body_request_id)
