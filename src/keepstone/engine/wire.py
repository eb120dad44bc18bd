"""Canonical JSON, times, base64 and ids as they appear inside objects."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from keepstone.engine.errors import RepositoryCorrupt, UnsupportedFormat

FORMAT_VERSION = 1
ID_SIZE = 32


def _make_encoder() -> Callable[[object, int], Sequence[str]] | None:
    """The C encoder ``json.dumps`` makes for the format's options, made once: ``json.dumps``
    with options builds a ``JSONEncoder`` and a C encoder for every value (half the cost of an
    item's JSON, which a backup makes for every item). The same arguments ``JSONEncoder``
    passes (``check_circular`` aside: the format's values hold no cycles), so the same text."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator in this Python: json.dumps's own path
        return None
    plain = json.JSONEncoder()
    encoder: Callable[[object, int], Sequence[str]] = make(
        None, plain.default, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
    return encoder


_ENCODER = _make_encoder()


def dumps(value: object) -> bytes:
    """The one JSON spelling the format uses: sorted keys, no spaces, UTF-8."""
    if _ENCODER is None or isinstance(value, str):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return "".join(_ENCODER(value, 0)).encode()


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
