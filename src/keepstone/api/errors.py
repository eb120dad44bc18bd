"""Error bodies in each dialect's format, and the mapping from domain errors to HTTP statuses."""

from __future__ import annotations

from functools import lru_cache
from http import HTTPStatus

from starlette.responses import JSONResponse, Response

from keepstone.api.vb365.versions import version_of
from keepstone.domain.errors import (
    BadCredentials,
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    KeepstoneError,
    NotFound,
    PreconditionFailed,
    TooManyAttempts,
    Unauthenticated,
)

JSON_MEDIA_TYPE = "application/json; charset=utf-8"

STATUS_OF: dict[type[KeepstoneError], int] = {
    InvalidInput: 400,
    BadCredentials: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    TooManyAttempts: 429,
    Busy: 503,
}


# v8's RESTExceptionInfo.errorCode, by status (v7's enum has only ProxyOffline, which Keepstone's
# in-process proxy never is, so v7 errors carry no code). 401 and 429 have no code in the enum.
V8_ERROR_CODES = {
    400: "ParameterValidationFailure",
    403: "ResourceAccessDenied",
    404: "ResourceNotFound",
    405: "HttpError",
    409: "OperationConflict",
    412: "OutdatedChangeToken",
}


def status_of(error: KeepstoneError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 500


def error_response(
    path: str, status: int, message: str, headers: dict[str, str] | None = None, accept: str = ""
) -> Response:
    """The error body of the dialect that owns ``path``."""
    em = path == "/api" or path.startswith("/api/")
    flavour = ("json" in accept.lower()) if em else version_of(path) >= 8
    extra = tuple(headers.items()) if headers else ()
    encode = _encoded_error if len(message) <= MESSAGE_KEPT else _encoded_error.__wrapped__
    body, raw_headers = encode(em, flavour, status, message, extra)
    return PreparedResponse(status, body, raw_headers)


# A message longer than this (one quoting a long input) is encoded each time, never kept.
MESSAGE_KEPT = 256


class PreparedResponse(Response):
    """A response whose body and headers were encoded before (``_encoded_error``'s)."""

    def __init__(self, status: int, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.body = body
        self.raw_headers = list(raw_headers)  # its own list: a layer may add to it
        self.background = None


@lru_cache(maxsize=256)
def _encoded_error(
    em: bool, flavour: bool, status: int, message: str, headers: tuple[tuple[str, str], ...]
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """An error answer's body and headers, encoded once: the same few errors (a 401 above all)
    are answered again and again, and encoding one was a sixth of a refused request's CPU.
    ``flavour``: JSON for EM, version 8 or later for the JSON dialect."""
    extra = dict(headers) or None
    if em:
        made = em_error(status, message, extra, "application/json" if flavour else "")
    else:
        body: dict[str, str] = {"message": message}
        if flavour and status in V8_ERROR_CODES:
            body["errorCode"] = V8_ERROR_CODES[status]
        made = JSONResponse(body, status_code=status, headers=extra, media_type=JSON_MEDIA_TYPE)
    return bytes(made.body), list(made.raw_headers)


def em_error(status: int, message: str, headers: dict[str, str] | None, accept: str) -> Response:
    """``<Error Message StatusCode Status/>`` in the EM namespace, or its JSON form. Built like
    every EM answer, so a message quoting the client's bad input is still valid XML and UTF-8."""
    # here: lxml is imported by the first EM answer, not by a server's start (docs/benchmarks.md)
    from keepstone.api.em.xml import element, render, to_json

    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    error = element("Error", {"Message": message, "StatusCode": str(status), "Status": reason})
    if "json" in accept.lower():
        return JSONResponse(
            to_json(error),
            status_code=status,
            headers=headers,
            media_type=JSON_MEDIA_TYPE,
        )
    return Response(
        render(error),
        status_code=status,
        headers=headers,
        media_type="application/xml; charset=utf-8",
    )
