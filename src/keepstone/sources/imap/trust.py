"""TLS contexts for each way of trusting a server, and the certificate pin check.

With a pinned certificate the CA and host name are deliberately not checked (self-signed
servers are the reason to pin); what decides is the SHA-256 of the peer's certificate DER,
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl

from keepstone.sources.imap.errors import TlsFailure
from keepstone.sources.imap.model import PinnedCertificate, SystemTrust, Trust, TrustedCa


def context_for(trust: Trust) -> ssl.SSLContext:
    if isinstance(trust, SystemTrust):
        context = ssl.create_default_context()
    elif isinstance(trust, TrustedCa):
        try:
            context = ssl.create_default_context(cadata=trust.pem)
        except (ssl.SSLError, ValueError) as error:
            raise TlsFailure(f"the CA certificate cannot be read: {error}") from error
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def check_pin(trust: Trust, sock: ssl.SSLSocket) -> None:
    if not isinstance(trust, PinnedCertificate):
        return
    der = sock.getpeercert(binary_form=True)
    seen = hashlib.sha256(der or b"").hexdigest()
    if not der or not hmac.compare_digest(seen, trust.sha256):
        raise TlsFailure(f"the server certificate is not the pinned one (it is sha256 {seen})")
