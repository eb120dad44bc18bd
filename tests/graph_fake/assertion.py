"""Checks of a certificate client assertion as Entra makes them (graph.md §1.1 [E-cert]).

Header: RS256 with `x5t` (SHA-1 of the certificate DER) or PS256 with `x5t#S256` (SHA-256);
claims: `aud` = the tenant's token endpoint, `iss` = `sub` = client id, `nbf` <= now < `exp`.
The signature is verified with the public key of a certificate registered on the app.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.graph_fake import jwt_codec
from tests.graph_fake.jwt_codec import b64url_encode
from tests.graph_fake.state import RegisteredApp, Tenant

# Clock skew Entra tolerates on nbf/exp.
SKEW_SECONDS = 300


class AssertionRefused(Exception):
    """Why Entra refuses an assertion: AADSTS number and its text."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    der = cert.public_bytes(serialization.Encoding.DER)
    return b64url_encode(hashlib.sha1(der).digest()), b64url_encode(hashlib.sha256(der).digest())


def _find_certificate(app: RegisteredApp, header: dict[str, object]) -> x509.Certificate:
    alg = header.get("alg")
    if alg == "RS256":
        wanted, index = header.get("x5t"), 0
    elif alg == "PS256":
        wanted, index = header.get("x5t#S256"), 1
    else:
        raise AssertionRefused(700027, f"Client assertion uses an unsupported algorithm '{alg}'.")
    # Entra accepts the base64url thumbprint with or without its "=" padding (MSAL pads it).
    if isinstance(wanted, str):
        wanted = wanted.rstrip("=")
    for cert in app.certificates:
        if thumbprints(cert)[index] == wanted:
            return cert
    raise AssertionRefused(
        700027,
        "Client assertion contains an invalid signature. [Reason - The key was not found., "
        f"Thumbprint of key used by client: '{wanted}']",
    )


def _check_signature(cert: x509.Certificate, jws: jwt_codec.Jws) -> None:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AssertionRefused(700027, "Client assertion contains an invalid signature.")
    pad: padding.AsymmetricPadding
    if jws.header.get("alg") == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    else:
        pad = padding.PKCS1v15()
    try:
        key.verify(jws.signature, jws.signing_input, pad, hashes.SHA256())
    except InvalidSignature as exc:
        raise AssertionRefused(700027, "Client assertion failed signature validation.") from exc


def _check_claims(
    claims: dict[str, object], app: RegisteredApp, audiences: set[str], now: int
) -> None:
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise AssertionRefused(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        )
    if claims.get("aud") not in audiences:
        raise AssertionRefused(
            700023, "Client assertion audience claim does not match Realm issuer."
        )
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    # RFC 7519 NumericDate: any JSON number (MSAL sends time.time() fractions), never a bool
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, nbf)):
        raise AssertionRefused(50013, "Assertion is invalid: exp and nbf must be numbers.")
    if now >= exp + SKEW_SECONDS or now + SKEW_SECONDS < nbf:
        raise AssertionRefused(
            700024,
            f"Client assertion is not within its valid time range. Current time: {now}, "
            f"assertion valid from {nbf}, expiry time of assertion {exp}.",
        )


def accepted_audiences(login_base: str, tenant: Tenant) -> set[str]:
    """The token endpoint URL in every form a client may address the tenant by."""
    bases = {login_base.rstrip("/"), "https://login.microsoftonline.com"}
    return {f"{b}/{t}/oauth2/v2.0/token" for b in bases for t in (tenant.id, tenant.domain)}


def verify_assertion(assertion: str, app: RegisteredApp, audiences: set[str], now: int) -> None:
    """Raise `AssertionRefused` unless `assertion` proves possession of the app's certificate."""
    try:
        jws = jwt_codec.decode(assertion)
    except jwt_codec.MalformedToken as exc:
        raise AssertionRefused(50027, "JWT token is invalid or malformed.") from exc
    cert = _find_certificate(app, jws.header)
    _check_signature(cert, jws)
    _check_claims(jws.claims, app, audiences, now)
