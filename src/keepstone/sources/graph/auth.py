"""App-only access tokens (OAuth client credentials) through MSAL, with a client secret or a
certificate, against the configured login URL and over the connector's own TLS context."""

from __future__ import annotations

import base64
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from keepstone.sources.graph.errors import TokenError
from keepstone.sources.graph.settings import GraphEndpoints


class CredentialError(ValueError):
    """The application credentials cannot be used (unreadable PFX, wrong password, none given)."""


@dataclass(frozen=True, slots=True)
class AppCredentials:
    tenant: str  # GUID or contoso.onmicrosoft.com
    client_id: str
    secret: str | None = None
    certificate_pfx: str | None = None  # base64 PFX, as the vendor API carries it
    certificate_password: str | None = None

    def __repr__(self) -> str:  # secrets never reach a log line through a repr
        return f"AppCredentials(tenant={self.tenant!r}, client_id={self.client_id!r})"


def certificate_credential(pfx_base64: str, password: str | None) -> dict[str, str]:
    """MSAL's certificate credential from a base64 PFX: the private key and the certificate
    (PEM), from which MSAL computes the assertion's thumbprint."""
    # imported here: PKCS #12 loads X.509, needed only for a certificate (20 ms of a start)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        data = base64.b64decode(pfx_base64, validate=True)
        key, certificate, _ = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None
        )
    except ValueError:
        raise CredentialError(
            "applicationCertificate is not a PFX readable with the password given"
        ) from None
    if key is None or certificate is None:
        raise CredentialError("applicationCertificate holds no private key and certificate")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # with the certificate itself MSAL signs PS256 with x5t#S256 (Entra's current form) and
    # sends x5c; a bare SHA-1 thumbprint would fall back to the older RS256/x5t
    return {
        "private_key": pem.decode(),
        "public_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
    }


class MsalHttpClient:
    """The ``requests``-like object MSAL accepts as ``http_client``, on httpx with the
    connector's TLS context (MSAL's default session would read REQUESTS_CA_BUNDLE instead)."""

    def __init__(self, tls: ssl.SSLContext, timeout: float = 30.0) -> None:
        self._http = httpx.Client(verify=tls, timeout=timeout, follow_redirects=False)

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self._http.get(url, params=params, headers=kwargs.get("headers"))

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._http.post(url, params=params, data=_form(data), headers=kwargs.get("headers"))

    def close(self) -> None:
        self._http.close()


def _form(data: Any) -> Any:
    """MSAL hands some form values (the client assertion) over as bytes; ``requests`` encodes
    them as their text, httpx would send their Python repr."""
    if not isinstance(data, Mapping):
        return data
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}


REFRESH_MARGIN = 300.0  # seconds before expiry a token is asked for again (as MSAL does)


class TokenSource:
    """A callable giving a valid app-only token; MSAL's in-memory cache keeps it until near
    expiry, so calling it before every request costs no round trip."""

    def __init__(
        self, endpoints: GraphEndpoints, credentials: AppCredentials, http_client: MsalHttpClient
    ) -> None:
        if credentials.secret:
            credential: Any = credentials.secret
        elif credentials.certificate_pfx:
            credential = certificate_credential(
                credentials.certificate_pfx, credentials.certificate_password
            )
        else:
            raise CredentialError("neither applicationSecret nor applicationCertificate given")
        self._http = http_client
        self._scopes = [endpoints.scope]
        self._lock = threading.Lock()
        self._token: str | None = None
        self._fresh_until = 0.0
        import msal  # type: ignore[import-untyped]  # here: a server that never logs in to
        # Microsoft 365 need not import it (with requests and urllib3) before its first answer

        self._app = msal.ConfidentialClientApplication(
            credentials.client_id,
            client_credential=credential,
            authority=endpoints.authority(credentials.tenant),
            instance_discovery=False,  # never ask Microsoft about a configured login URL
            http_client=http_client,
        )

    def __call__(self) -> str:
        with self._lock:  # one token request at a time, the others then hit the cache
            if self._token is not None and time.monotonic() < self._fresh_until:
                return self._token  # MSAL's cache lookup costs ms per request under this lock
            result = self._app.acquire_token_for_client(scopes=self._scopes)
            token = result.get("access_token") if isinstance(result, dict) else None
            if not token:
                error = result if isinstance(result, dict) else {}
                raise TokenError(
                    str(error.get("error", "no_token")),
                    str(error.get("error_description", "the login service gave no token")),
                )
            # kept as MSAL keeps it: until 5 minutes before it expires, then asked again
            lifetime = result.get("expires_in")
            left = float(lifetime) if isinstance(lifetime, int | float) else 0.0
            self._token, self._fresh_until = str(token), time.monotonic() + left - REFRESH_MARGIN
            return self._token

    def close(self) -> None:
        self._http.close()
