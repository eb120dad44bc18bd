"""Opaque, signed `$skiptoken`s: the next page's position and the frozen query options.

Graph's links are to be followed verbatim; a client that edits one (or invents one) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from tests.graph_fake.jwt_codec import MalformedToken, b64url_decode, b64url_encode
from tests.graph_fake.query import parse_top, project


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


def page_of(
    key: bytes, params: Mapping[str, str], default: int, maximum: int
) -> tuple[int, int, list[str] | None, str | None]:
    """(offset, size, frozen select, raw select) from a first request or a `$skiptoken` link."""
    if "$skiptoken" in params:
        frozen = unseal(key, params["$skiptoken"])
        return int(frozen["offset"]), int(frozen["top"]), frozen["select"], None
    return 0, parse_top(params.get("$top"), default, maximum), None, params.get("$select")


def list_body(
    key: bytes,
    items: list[dict[str, Any]],
    offset: int,
    top: int,
    select: list[str] | None,
    context: str,
    link: str,
) -> dict[str, Any]:
    """One page of a plain (non-delta) collection, with `@odata.nextLink` if more remain."""
    body: dict[str, Any] = {"@odata.context": context}
    if offset + top < len(items):
        token = seal(key, {"offset": offset + top, "top": top, "select": select})
        separator = "&" if "?" in link else "?"
        body["@odata.nextLink"] = f"{link}{separator}" + urlencode({"$skiptoken": token})
    body["value"] = [project(i, select) for i in items[offset : offset + top]]
    return body
