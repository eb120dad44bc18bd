"""Logging in: LOGIN (own or master user) or SASL XOAUTH2, and the capabilities after it."""

from __future__ import annotations

import base64
import re

from keepstone.sources.imap.errors import AuthenticationFailed, ImapError
from keepstone.sources.imap.model import Credentials, MasterUser, OAuth2, Password
from keepstone.sources.imap.parse import Response
from keepstone.sources.imap.wire import Result, Wire, quoted

_CAPABILITY = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.I)


def capabilities_in(responses: list[Response], code: bytes = b"") -> frozenset[str] | None:
    """Capabilities announced by ``[CAPABILITY ...]`` codes or a ``* CAPABILITY`` line."""
    if code.upper().startswith(b"CAPABILITY "):
        return _split(code[len(b"CAPABILITY ") :])
    for response in responses:
        head = response.head
        if head.upper().startswith(b"* CAPABILITY "):
            return _split(head[len(b"* CAPABILITY ") :])
        match = _CAPABILITY.search(head)
        if match:
            return _split(match.group(1))
    return None


def ask_capabilities(wire: Wire) -> frozenset[str]:
    result = wire.run(b"CAPABILITY")
    return capabilities_in(result.untagged) or frozenset()


def log_in(wire: Wire, credentials: Credentials, before: frozenset[str]) -> frozenset[str]:
    """Log in and return the capabilities of the authenticated session."""
    if isinstance(credentials, OAuth2):
        result = _xoauth2(wire, credentials, before)
    else:
        if "LOGINDISABLED" in before:
            raise AuthenticationFailed("the server refuses LOGIN on this connection (use TLS)")
        user = credentials.login
        secret = credentials.password if isinstance(credentials, Password) else ""
        if isinstance(credentials, MasterUser):
            user = f"{credentials.login}{credentials.separator}{credentials.master_login}"
            secret = credentials.master_password
        result = wire.run(b"LOGIN", quoted(user), quoted(secret))
    return capabilities_in(result.untagged, result.code) or ask_capabilities(wire)


def _xoauth2(wire: Wire, credentials: OAuth2, before: frozenset[str]) -> Result:
    try:
        token = credentials.token()
    except ImapError:
        raise
    except Exception as error:  # the token endpoint's failure is a login failure here
        raise AuthenticationFailed(f"no OAuth2 access token: {error}") from error
    payload = base64.b64encode(f"user={credentials.login}\x01auth=Bearer {token}\x01\x01".encode())
    sent = False

    def answer(_challenge: bytes) -> bytes:
        # the first continuation asks for the payload (no SASL-IR); a later one carries the
        # server's error details and must be answered with an empty line
        nonlocal sent
        if sent:
            return b""
        sent = True
        return payload

    if "SASL-IR" in before:
        sent = True
        return wire.run(b"AUTHENTICATE", b"XOAUTH2", payload, challenge=answer)
    return wire.run(b"AUTHENTICATE", b"XOAUTH2", challenge=answer)


def _split(text: bytes) -> frozenset[str]:
    return frozenset(word.decode("ascii", "replace").upper() for word in text.split())
