"""Canonical JSON, times, base64 and ids as they appear inside objects."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from keepstone.engine.errors import RepositoryCorrupt, UnsupportedFormat

FORMAT_VERSION = 1
ID_SIZE = 32


def dumps(value: object) -> bytes:
    """The one JSON spelling the format uses: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RepositoryCorrupt(f"{what} is not valid JSON: {e}") from None


def load_object(data: bytes, what: str) -> dict[str, Any]:
    """A versioned JSON object: refuse anything but a dict of a known version."""
    value = loads(data, what)
    if not isinstance(value, dict):
        raise RepositoryCorrupt(f"{what} is not a JSON object")
    check_version(value.get("version"), what)
    return value


def check_version(version: object, what: str) -> None:
    if version != FORMAT_VERSION:
        raise UnsupportedFormat(f"{what} has format version {version!r}; this engine reads 1")


def format_time(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: object, what: str) -> datetime:
    try:
        instant = datetime.fromisoformat(str(text))
    except ValueError:
        raise RepositoryCorrupt(f"{what} has a bad time {text!r}") from None
    if instant.tzinfo is None:
        raise RepositoryCorrupt(f"{what} has a time without a zone: {text!r}")
    return instant.astimezone(UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except binascii.Error:
        raise RepositoryCorrupt(f"{what} has bad base64") from None


def parse_id(text: object, what: str) -> bytes:
    """A 64-hex-character id, as bytes."""
    try:
        raw = bytes.fromhex(str(text))
    except ValueError:
        raw = b""
    if len(raw) != ID_SIZE or str(text) != raw.hex():
        raise RepositoryCorrupt(f"{what} has a bad id {text!r}")
    return raw
