"""Test-side credentials: an app certificate and client assertions, right or deliberately wrong."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.graph_fake.assertion import thumbprints
from tests.graph_fake.jwt_codec import b64url_encode, encode_unsigned


def make_app_certificate() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed RSA certificate, as administrators upload to an app registration."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keepstone backup app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_assertion(
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    claims: dict[str, Any],
    alg: str = "PS256",
) -> str:
    """A signed client assertion with the thumbprint header matching `alg`."""
    sha1, sha256 = thumbprints(cert)
    header = {"alg": alg, "typ": "JWT"} | (
        {"x5t": sha1} if alg == "RS256" else {"x5t#S256": sha256}
    )
    signing_input = encode_unsigned(header, claims)
    pad: padding.AsymmetricPadding
    if alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    else:
        pad = padding.PKCS1v15()
    signature = key.sign(signing_input, pad, hashes.SHA256())
    return f"{signing_input.decode()}.{b64url_encode(signature)}"


def assertion_claims(
    client_id: str, audience: str, now: int, lifetime: int = 600
) -> dict[str, Any]:
    return {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + lifetime,
    }
