"""What can go wrong talking to an IMAP server, and whether trying again later may help.

Every error is a ``KeepstoneError`` whose message is safe to show (it never holds a password or
a token) and says whether a retry may succeed (``retryable``): the backup retries those with
backoff and turns the others into a per-user warning.
"""

from __future__ import annotations

from keepstone.domain.errors import KeepstoneError


class ImapError(KeepstoneError):
    retryable = False


class Unreachable(ImapError):
    """No TCP connection (refused, no route, name not found, connect timeout)."""

    retryable = True


class TlsFailure(ImapError):
    """The TLS handshake failed or the certificate is not the trusted (or pinned) one."""


class AuthenticationFailed(ImapError):
    """The server refused the credentials."""


class Throttled(ImapError):
    """``NO [THROTTLED]``/``[UNAVAILABLE]``/``[LIMIT]``: try again after ``retry_after`` s."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConnectionLost(ImapError):
    """``BYE``, end of stream, a reset or a timeout: the session is gone."""

    retryable = True


class ProtocolError(ImapError):
    """The server answered ``NO``/``BAD`` or something this client cannot read."""


class FolderMissing(ImapError):
    """The folder does not exist (any more)."""


class Unsupported(ImapError):
    """The server lacks the extension the call needs (e.g. ``changes_since`` without
    CONDSTORE): the caller uses the fallback (``uids_and_flags``)."""
