"""Access tokens the fake issues (HS256 with the fake's key) and their check on Graph routes.

Real tokens are RS256 from Microsoft; a client must treat them as opaque, so the algorithm is
the fake's business. What matters is that expiry, tenant and roles are enforced.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from tests.graph_fake import jwt_codec
from tests.graph_fake.state import FakeState, RegisteredApp


@dataclass(frozen=True)
class Caller:
    """Who a valid token says is calling."""

    tenant_id: str
    client_id: str
    roles: frozenset[str]


class TokenRefused(Exception):
    """A Graph route refuses the bearer token; `message` is Graph's text for the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def issue(state: FakeState, app: RegisteredApp) -> tuple[str, int]:
    """A token for `app` and its lifetime in seconds."""
    now = state.now_ts()
    lifetime = state.token_lifetime_seconds
    claims = {
        "aud": "https://graph.microsoft.com",
        "iss": f"https://sts.windows.net/{app.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": app.client_id,
        "tid": app.tenant_id,
        "roles": sorted(app.roles),
        "idtyp": "app",
        "uti": str(uuid.uuid4()),
    }
    signing_input = jwt_codec.encode_unsigned({"typ": "JWT", "alg": "HS256"}, claims)
    signature = hmac.new(state.token_key, signing_input, hashlib.sha256).digest()
    state.tokens_issued += 1
    return f"{signing_input.decode()}.{jwt_codec.b64url_encode(signature)}", lifetime


def verify(state: FakeState, authorization: str | None) -> Caller:
    """The caller named by an `Authorization: Bearer` header, or `TokenRefused`."""
    if not authorization:
        raise TokenRefused("Access token is empty.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("Access token is empty.")
    try:
        jws = jwt_codec.decode(token.strip())
    except jwt_codec.MalformedToken as exc:
        raise TokenRefused("IDX14100: JWT is not well formed.") from exc
    expected = hmac.new(state.token_key, jws.signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, jws.signature):
        raise TokenRefused("Access token validation failure. Invalid signature.")
    claims = jws.claims
    if claims.get("aud") != "https://graph.microsoft.com":
        raise TokenRefused("Access token validation failure. Invalid audience.")
    now = state.now_ts()
    if not isinstance(claims.get("exp"), int) or now >= claims["exp"]:
        raise TokenRefused("Lifetime validation failed, the token is expired.")
    with state.lock:
        tenant_known = claims.get("tid") in state.tenants
        app = state.apps.get(str(claims.get("appid")))
    if not tenant_known or app is None or app.tenant_id != claims.get("tid"):
        raise TokenRefused("Access token validation failure. Invalid issuer or tenant.")
    return Caller(claims["tid"], app.client_id, frozenset(claims.get("roles", [])))
