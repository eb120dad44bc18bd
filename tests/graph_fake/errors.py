"""Error bodies in the two shapes Microsoft uses: Graph's `error` object and Entra's AADSTS form."""

from __future__ import annotations

import uuid
from datetime import datetime

from starlette.responses import JSONResponse


def graph_error(
    status: int,
    code: str,
    message: str,
    now: datetime,
    headers: dict[str, str] | None = None,
    inner_code: str | None = None,
) -> JSONResponse:
    """`{"error": {"code", "message", "innerError": {"request-id", "date"}}}` (graph.md §2.4);
    `inner_code` is the more specific code some errors nest in `innerError`."""
    request_id = str(uuid.uuid4())
    inner: dict[str, str] = {
        "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": request_id,
    }
    if inner_code is not None:
        inner["code"] = inner_code
    body = {"error": {"code": code, "message": message, "innerError": inner}}
    all_headers = {"request-id": request_id, "client-request-id": request_id}
    all_headers.update(headers or {})
    return JSONResponse(body, status_code=status, headers=all_headers)


def aad_error(status: int, error: str, code: int, description: str, now: datetime) -> JSONResponse:
    """The token endpoint's failure body, as seen in the wild (graph.md §1.1)."""
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    text = (
        f"AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
    )
    body = {
        "error": error,
        "error_description": text,
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return JSONResponse(body, status_code=status)
