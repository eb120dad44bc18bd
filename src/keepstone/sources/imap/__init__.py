"""The IMAP adapter: connect to any IMAP server, list folders, read and put back messages.

Everything the connectors need is exported here; see each module for one concept:
``model`` (values), ``transport``/``trust`` (TCP, TLS, pinning), ``wire``/``parse`` (the
protocol), ``login``, ``folders``, ``fetch``, ``append``, ``mutf7``, ``errors``, ``session``.
"""

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
