"""Errors the engine raises; all are ``KeepstoneError`` so the server can show their message."""

from __future__ import annotations

from keepstone.domain.errors import KeepstoneError, NotFound


class WrongPassword(KeepstoneError):
    """The password opens no key of this repository."""


class PasswordRequired(WrongPassword):
    """The repository is encrypted and no password was given."""


class RepositoryCorrupt(KeepstoneError):
    """An object is missing, unreadable, or does not match its id."""


class UnsupportedFormat(KeepstoneError):
    """An object has a format version this engine does not know."""


class NotARepository(KeepstoneError):
    """The store has no ``config`` object."""


class RepositoryExists(KeepstoneError):
    """``init`` on a store that already holds a repository."""


class RepositoryLocked(KeepstoneError):
    """Another process holds a lock that excludes this operation, or this writer lost its lock."""


class BackupFailed(KeepstoneError):
    """A backup run could not store its data (its cause is chained); it cannot be committed."""


class SnapshotNotFound(NotFound):
    pass


class ObjectNotFound(KeepstoneError):
    """The store has no object of that name."""


class ObjectExists(KeepstoneError):
    """``put`` of a name that already exists: objects are never overwritten."""
