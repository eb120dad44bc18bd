"""Compact JWS encoding and decoding (no verification here): the part every token check shares."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any


class MalformedToken(ValueError):
    """Not three base64url parts of JSON."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise MalformedToken("not base64url") from exc


@dataclass(frozen=True)
class Jws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def decode(token: str) -> Jws:
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedToken("a JWS has three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedToken("the parts are not JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedToken("the parts are not JSON objects")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return Jws(header, claims, signing_input, b64url_decode(parts[2]))


def encode_unsigned(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    """The signing input `base64url(header).base64url(claims)`."""
    head = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    body = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}".encode("ascii")
