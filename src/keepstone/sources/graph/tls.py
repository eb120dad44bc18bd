"""The one TLS context every Graph connection uses: the system store plus the extra CAs named
by the standard ``SSL_CERT_FILE``. There is deliberately no way to turn verification off."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping


class TlsSettingsError(ValueError):
    """``SSL_CERT_FILE`` names something that is not a readable PEM bundle."""


def graph_tls_context(environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    env = os.environ if environ is None else environ
    context = ssl.create_default_context()  # CERT_REQUIRED, hostname checks, system store
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    extra = env.get("SSL_CERT_FILE")
    if extra:
        try:
            context.load_verify_locations(cafile=extra)
        except (OSError, ssl.SSLError) as error:
            raise TlsSettingsError(f"SSL_CERT_FILE={extra!r}: {error}") from None
    return context
