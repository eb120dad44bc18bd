"""Error bodies in each dialect's format, and the mapping from domain errors to HTTP statuses."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from keepstone.domain.errors import (
    BadCredentials,
    Conflict,
    Forbidden,
    InvalidInput,
    KeepstoneError,
    NotFound,
    PreconditionFailed,
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
}


def status_of(error: KeepstoneError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 500


def error_response(
    path: str, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The error body of the dialect that owns ``path``."""
    del path  # only the JSON dialect exists so far; the Enterprise Manager one will branch here
    return JSONResponse(
        {"message": message}, status_code=status, headers=headers, media_type=JSON_MEDIA_TYPE
    )
