"""The adapter's values: where and how to connect, how a user logs in, folders and messages."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from keepstone.domain.errors import InvalidInput


class Security(StrEnum):
    TLS = "Tls"
    STARTTLS = "StartTls"
    NONE = "None"


@dataclass(frozen=True)
class SystemTrust:
    """The machine's CA store, with host name checking."""


@dataclass(frozen=True)
class TrustedCa:
    """Only certificates issued by this CA (PEM), with host name checking."""

    pem: str


@dataclass(frozen=True)
class PinnedCertificate:
    """Exactly this server certificate (hex SHA-256 of its DER; ``:`` and case ignored)."""

    sha256: str

    def __post_init__(self) -> None:
        normal = re.sub(r"[\s:]", "", self.sha256).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", normal):
            raise InvalidInput("not a SHA-256 fingerprint (64 hex digits)", "sha256")
        object.__setattr__(self, "sha256", normal)


Trust = SystemTrust | TrustedCa | PinnedCertificate


@dataclass(frozen=True)
class Timeouts:
    connect: float = 15
    command: float = 120  # the longest wait for any read from the server


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: Security
    trust: Trust = field(default_factory=SystemTrust)
    timeouts: Timeouts = field(default_factory=Timeouts)


@dataclass(frozen=True)
class Password:
    login: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class MasterUser:
    """Dovecot-style master login: ``<login><separator><master_login>`` with the master's
    password."""

    login: str
    master_login: str
    master_password: str = field(repr=False)
    separator: str = "*"


@dataclass(frozen=True)
class OAuth2:
    """SASL XOAUTH2; ``token()`` returns a current access token (fetching/caching is its job)."""

    login: str
    token: Callable[[], str] = field(repr=False)


Credentials = Password | MasterUser | OAuth2


@dataclass(frozen=True)
class ImapAccess:
    """One organization's way in: the endpoint, and each listed user's credentials."""

    endpoint: Endpoint
    logins: Mapping[str, Credentials]
    max_connections: int = 4


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    messages: int
    highestmodseq: int | None  # None: the server keeps no modification sequences


@dataclass(frozen=True)
class Folder:
    """``wire_name``: the server's exact name (surrogate escapes for bytes that are not UTF-8);
    ``path``: the decoded display parts (``INBOX`` -> ``("Inbox",)``); ``role``: the
    SPECIAL-USE attribute (``\\Sent``, ``\\Trash``, ...) or None."""

    wire_name: str
    path: tuple[str, ...]
    separator: str | None
    role: str | None
    selectable: bool
    status: FolderStatus | None = None


@dataclass(frozen=True)
class FlagChanges:
    """Flags of the messages changed since a modseq; ``vanished``: UIDs expunged since then, or
    None when the server cannot say (no QRESYNC): the caller diffs UIDs. The modseq to keep
    for the next run is the one ``select`` returned before this call (changes racing with it
    are reported again next time, never lost)."""

    flags: dict[int, tuple[str, ...]]
    vanished: frozenset[int] | None


@dataclass(frozen=True)
class Envelope:
    uid: int
    size: int
    internal_date: datetime
    flags: tuple[str, ...]
    message_id: str  # "" when the message has none


@dataclass(frozen=True)
class Message:
    uid: int
    size: int
    internal_date: datetime
    flags: tuple[str, ...]
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Appended:
    body: bytes = field(repr=False)
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None  # None: the server's clock
