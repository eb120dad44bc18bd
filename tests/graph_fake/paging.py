"""Opaque, signed `$skiptoken`s: the next page's position and the frozen query options.

Graph's links are to be followed verbatim; a client that edits one (or invents one) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.graph_fake.jwt_codec import MalformedToken, b64url_decode, b64url_encode


class BadSkipToken(ValueError):
    pass


def seal(key: bytes, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return b64url_encode(mac + body)


def unseal(key: bytes, token: str) -> dict[str, Any]:
    try:
        raw = b64url_decode(token)
    except MalformedToken as exc:
        raise BadSkipToken(token) from exc
    mac, body = raw[:16], raw[16:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:16]):
        raise BadSkipToken(token)
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise BadSkipToken(token)
    return payload
