"""Errors the domain and services raise; each wire dialect maps them to its own status and body."""

from __future__ import annotations


class KeepstoneError(Exception):
    """Base of every error a client may see. ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(KeepstoneError):
    """The request names something wrong; ``prop`` is the offending property path, if any."""

    def __init__(self, message: str, prop: str | None = None) -> None:
        super().__init__(f"{prop}: {message}" if prop and prop not in message else message)
        self.prop = prop


class NotFound(KeepstoneError):
    pass


class Conflict(KeepstoneError):
    """The request is valid but the current state forbids it (e.g. deleting a used repository)."""


class PreconditionFailed(KeepstoneError):
    """An ``If-Match`` precondition no longer holds."""


class Unauthenticated(KeepstoneError):
    pass


class Forbidden(KeepstoneError):
    pass


class BadCredentials(KeepstoneError):
    """Wrong user name or password: deliberately does not say which."""


class RetryLater(KeepstoneError):
    """The request may succeed later: ``retry_after`` seconds from now (a ``Retry-After``)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(RetryLater):
    """Too many failed logins for this user name (from this address, or from anywhere)."""


class Busy(RetryLater):
    """The server is at capacity for this kind of work (password verifications)."""
