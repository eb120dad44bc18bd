"""The IMAP adapter: connect to any IMAP server, list folders, read and put back messages.

Everything the connectors need is exported here; see each module for one concept:
``model`` (values), ``transport``/``trust`` (TCP, TLS, pinning), ``wire``/``parse`` (the
protocol), ``login``, ``folders``, ``fetch``, ``append``, ``mutf7``, ``errors``, ``session``.
"""

from typing import TYPE_CHECKING, Any

from keepstone.sources.imap.errors import (
    AuthenticationFailed,
    ConnectionLost,
    FolderMissing,
    ImapError,
    ProtocolError,
    Throttled,
    TlsFailure,
    Unreachable,
    Unsupported,
)
from keepstone.sources.imap.model import (
    Appended,
    Credentials,
    Endpoint,
    Envelope,
    FlagChanges,
    Folder,
    FolderStatus,
    ImapAccess,
    MasterUser,
    Message,
    OAuth2,
    Password,
    PinnedCertificate,
    Security,
    SystemTrust,
    Timeouts,
    Trust,
    TrustedCa,
)

# The session (and under it the transport, the protocol, login, fetch and append) is imported
# at the first use of ``ImapSession`` or ``connect``: a server imports this package at its start
# for the settings' values (services/imap_settings.py) and connects only for an IMAP
# organization.
if TYPE_CHECKING:
    from keepstone.sources.imap.session import ImapSession, connect

__all__ = [
    "Appended",
    "AuthenticationFailed",
    "ConnectionLost",
    "Credentials",
    "Endpoint",
    "Envelope",
    "FlagChanges",
    "Folder",
    "FolderMissing",
    "FolderStatus",
    "ImapAccess",
    "ImapError",
    "ImapSession",
    "MasterUser",
    "Message",
    "OAuth2",
    "Password",
    "PinnedCertificate",
    "ProtocolError",
    "Security",
    "SystemTrust",
    "Throttled",
    "Timeouts",
    "TlsFailure",
    "Trust",
    "TrustedCa",
    "Unreachable",
    "Unsupported",
    "connect",
]


if not TYPE_CHECKING:  # hidden from mypy, which would type every unknown name of the package Any

    def __getattr__(name: str) -> Any:
        if name in ("ImapSession", "connect"):
            from keepstone.sources.imap import session

            return getattr(session, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
