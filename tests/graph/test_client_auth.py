"""App-only tokens through MSAL over the connector's TLS context, with no instance discovery."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from keepstone.sources.graph.auth import (
    AppCredentials,
    CredentialError,
    MsalHttpClient,
    TokenSource,
)
from keepstone.sources.graph.errors import TokenError
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from tests.graph.client_helpers import Answer, Scripted, Seen, scripted_server

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    with scripted_server(tmp_path_factory.mktemp("auth")) as running:
        yield running


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _login(server: Scripted, secret: str = "s3cret") -> list[dict[str, list[str]]]:
    """Serve OIDC discovery and the token endpoint; return the token forms received."""
    forms: list[dict[str, list[str]]] = []

    def handle(seen: Seen) -> Answer:
        base = f"{server.url}/{TENANT}"
        if seen.path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
            return Answer.json(
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                }
            )
        if seen.method == "POST" and seen.path == f"/{TENANT}/oauth2/v2.0/token":
            form = parse_qs(seen.body.decode())
            forms.append(form)
            if "client_secret" in form and form["client_secret"] != [secret]:
                return Answer.json(
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                    401,
                )
            return Answer.json(
                {"token_type": "Bearer", "expires_in": 3599, "access_token": f"token-{len(forms)}"}
            )
        return Answer(404)

    server.serve(handle)
    return forms


def _source(server: Scripted, credentials: AppCredentials) -> TokenSource:
    endpoints = GraphEndpoints("https://graph.test", server.url)
    tls = graph_tls_context({"SSL_CERT_FILE": str(server.ca_pem)})
    return TokenSource(endpoints, credentials, MsalHttpClient(tls))


def test_a_secret_gets_a_cached_token_without_instance_discovery(server: Scripted) -> None:
    forms = _login(server)
    source = _source(server, AppCredentials(TENANT, CLIENT, secret="s3cret"))
    assert source() == "token-1"
    assert source() == "token-1"  # cached until near expiry: no second token request
    # exactly discovery of the configured authority plus one token POST: nothing else was asked
    assert [(s.method, s.path.split("?")[0]) for s in server.seen] == [
        ("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{TENANT}/oauth2/v2.0/token"),
    ]
    form = forms[0]
    assert form["grant_type"] == ["client_credentials"] and form["client_id"] == [CLIENT]
    assert form["scope"] == ["https://graph.test/.default"]


def test_a_wrong_secret_is_a_token_error_with_the_login_code(server: Scripted) -> None:
    _login(server, secret="right")
    with pytest.raises(TokenError, match="AADSTS7000215") as raised:
        _source(server, AppCredentials(TENANT, CLIENT, secret="wrong"))()
    assert raised.value.code == "invalid_client"


def _certificate() -> tuple[x509.Certificate, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keepstone-test-app")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pfx = pkcs12.serialize_key_and_certificates(
        b"app", key, certificate, None, serialization.BestAvailableEncryption(b"pfx-pass")
    )
    return certificate, base64.b64encode(pfx).decode()


def test_a_certificate_signs_the_assertion(server: Scripted) -> None:
    forms = _login(server)
    certificate, pfx = _certificate()
    credentials = AppCredentials(
        TENANT, CLIENT, certificate_pfx=pfx, certificate_password="pfx-pass"
    )
    assert _source(server, credentials)() == "token-1"
    assert len(server.seen) == 2  # discovery and token only
    form = forms[0]
    assert "client_secret" not in form
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    header_b64, claims_b64, signature_b64 = form["client_assertion"][0].split(".")
    header = json.loads(_b64url(header_b64))
    claims = json.loads(_b64url(claims_b64))
    der = certificate.public_bytes(serialization.Encoding.DER)
    if "x5t#S256" in header:
        assert _b64url(header["x5t#S256"]) == hashlib.sha256(der).digest()
    else:
        assert _b64url(header["x5t"]) == hashlib.sha1(der).digest()
    assert claims["iss"] == claims["sub"] == CLIENT
    assert claims["aud"] == f"{server.url}/{TENANT}/oauth2/v2.0/token"
    signed = f"{header_b64}.{claims_b64}".encode()
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    if header["alg"] == "PS256":
        scheme: padding.AsymmetricPadding = padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
        )
    else:
        assert header["alg"] == "RS256"
        scheme = padding.PKCS1v15()
    # raises InvalidSignature unless the certificate's key signed the assertion
    public_key.verify(_b64url(signature_b64), signed, scheme, hashes.SHA256())


def test_a_bad_pfx_or_no_credential_is_refused_before_any_request(server: Scripted) -> None:
    _login(server)
    _, pfx = _certificate()
    with pytest.raises(CredentialError, match="password"):
        _source(
            server, AppCredentials(TENANT, CLIENT, certificate_pfx=pfx, certificate_password="no")
        )
    with pytest.raises(CredentialError):
        _source(server, AppCredentials(TENANT, CLIENT))
    assert server.seen == []
    assert "s3cret" not in repr(AppCredentials(TENANT, CLIENT, secret="s3cret"))
