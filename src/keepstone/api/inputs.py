"""The text of a request is well-formed before any handler reads it.

Every request passes ``check_request`` (``api.edge`` calls it before any handler): its path and
query must be valid UTF-8 once percent-decoded, a form body's fields too, and a JSON body (one
FastAPI would parse: no content type, or a JSON one) must hold only real Unicode (no lone
surrogates, which SQLite and the filesystem cannot store), numbers that fit SQLite's 64-bit
integers (or are finite floats), and nest at most ``MAX_DEPTH`` levels. What breaks a rule is
refused with a 400 that names the property; a body that is not JSON at all is left to the
handler, which says so in its own words.
"""

from __future__ import annotations

import json
import math
import re
import threading
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import Scope

from keepstone.domain.errors import InvalidInput

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_INT64_DIGITS = 19


class _Refused:
    """A JSON number that cannot be kept, standing in for it until the walk names its place."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why
        _parsing.refused = True  # the parse in progress in this thread made one


def _integer(text: str) -> int | _Refused:
    digits = text.lstrip("-")
    if len(digits) <= _INT64_DIGITS and INT64_MIN <= (value := int(text)) <= INT64_MAX:
        return value
    return _Refused(text, "is out of range (integers must fit in 64 bits)")


def _real(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(text, "is not a finite number")


def _constant(text: str) -> _Refused:
    return _Refused(text, "is not a number (NaN and Infinity are not JSON)")


def load_json(raw: bytes) -> Any:
    """The JSON value of ``raw``; ``ValueError`` if it is not JSON (an XML body without a
    content type, bytes that are not text), ``InvalidInput`` if it is JSON no handler may see."""
    return _load(raw)[0]


def _load(raw: bytes) -> tuple[Any, str | None]:
    """``raw``'s JSON value, and the text it was read from when that is not ``raw``'s own: the
    vendor's servers read JSON with Json.NET, which takes a comma before a closing bracket as
    nothing, and real clients send such commas (a v3/v4 portal's ``{"items": [{"Id": "…"}, ]}``).
    Keepstone reads them too, but only once the strict parse has failed: valid JSON pays
    nothing, and no other leniency (comments, single quotes) is taken."""
    text = raw.decode(json.detect_encoding(raw))  # UnicodeDecodeError: not JSON either
    _parsing.refused = False
    lenient = None
    try:
        value = _decode(text)
    except json.JSONDecodeError as error:
        lenient = without_trailing_commas(text)
        if lenient == text:
            raise
        try:
            value = _decode(lenient)
        except json.JSONDecodeError:
            raise error from None
    # The walk that names the offending place costs more than the rest of a request for a body
    # of a few hundred values (seed 003's backup window has 168): it runs only when the text can
    # hold something to refuse. A lone surrogate can only come from a \uD800-\uDFFF escape (the
    # text decoded strictly), and nesting deeper than MAX_DEPTH needs more brackets than that.
    if _parsing.refused or _SURROGATE_ESCAPE.search(text) or _brackets(text) > MAX_DEPTH:
        check_value(value)
    return value, lenient


def _decode(text: str) -> Any:
    try:
        return _decoder().decode(text)
    except RecursionError:
        raise InvalidInput(f"request body is nested deeper than {MAX_DEPTH} levels") from None


# A JSON string (group 1: kept as it is), or a comma after a value (a string's quote, a
# bracket, a number's or a literal's last character; group 2: the space before it, kept) that
# only space separates from a closing bracket. ``[,]`` has no value before its comma: it stays.
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|(?<=[\]}"\w])(\s*),(?=\s*[\]}])', re.DOTALL)


def without_trailing_commas(text: str) -> str:
    """``text`` without the commas that end a list or an object, outside its strings. Pure."""
    return _TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), text)


# Per thread: its decoder (made once: making one for every body, as json.loads does when given
# hooks, cost a third of the parse of seed 003's body) and whether its parse in progress made a
# _Refused (the hooks are plain functions, so the decoder can be kept).
_parsing = threading.local()


def _decoder() -> json.JSONDecoder:
    made: json.JSONDecoder | None = getattr(_parsing, "decoder", None)
    if made is None:
        made = _parsing.decoder = json.JSONDecoder(
            parse_int=_integer, parse_float=_real, parse_constant=_constant
        )
    return made


def _brackets(text: str) -> int:
    return text.count("[") + text.count("{")


def check_value(value: Any) -> None:
    """Walk a parsed JSON value without recursion; refuse the first bad string or number."""
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        node, where, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"nested deeper than {MAX_DEPTH} levels", where or "request body")
        if isinstance(node, _Refused):
            raise InvalidInput(f"{shorten(node.text)} {node.why}", where or "request body")
        if isinstance(node, str):
            check_text(node, where or "request body")
        elif isinstance(node, dict):
            for key, child in node.items():
                check_text(key, f"{where}.{_printable(key)}".lstrip(".") or "request body")
                pending.append((child, f"{where}.{key}".lstrip("."), depth + 1))
        elif isinstance(node, list):
            pending.extend((child, f"{where}[{n}]", depth + 1) for n, child in enumerate(node))


def check_text(text: str, where: str) -> None:
    if _LONE_SURROGATE.search(text):
        raise InvalidInput("contains a lone surrogate (not valid Unicode)", _printable(where))


def decode(raw: bytes, encoding: str, where: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise InvalidInput(f"is not valid {encoding.upper()}", where) from None


def fields(raw: bytes, kind: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` (``+`` for space) of a form body or a query (``kind`` names them in errors),
    each name and value strictly UTF-8 once percent-decoded."""
    found = []
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.replace(b"+", b" ").partition(b"=")
        key = decode(unquote_to_bytes(name), "utf-8", f"{kind} name")
        found.append((key, decode(unquote_to_bytes(value), "utf-8", f"{kind} {_printable(key)}")))
    return found


PARSED_BODY = "keepstone.parsed_body"  # the scope state's key for a JSON body's value


def check_request(scope: Scope, body: bytes) -> bytes:
    """``InvalidInput`` (answered with the dialect's 400) if the path, query or ``body`` (the
    whole body, already buffered) breaks the rules above; else the body the app is to read:
    ``body`` itself, or, for JSON with commas before closing brackets, that JSON without them
    (so every parser after this one reads what Json.NET would)."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    path = raw_path.partition(b"?")[0]
    if b"%" in path or not path.isascii():  # else it is ASCII, and so UTF-8, as it is
        decode(unquote_to_bytes(path), "utf-8", "path")
    query = scope.get("query_string", b"")
    if query:
        fields(query, "query parameter")
    if not body:
        return body
    media_type = _header(scope, b"content-type").partition(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        fields(body, "form field")
    elif not media_type or media_type.endswith(("/json", "+json")):
        try:
            value, lenient = _load(body)
        except ValueError:  # not JSON: the handler's parser says so
            return body
        # the value json.loads(body) gives (numbers as int and float, as json.loads makes
        # them): a direct handler takes it rather than parsing the body again (api.direct)
        scope.setdefault("state", {})[PARSED_BODY] = value
        if lenient is not None:
            return lenient.encode("utf-8")
    return body


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


def _printable(text: str) -> str:
    """``text`` safe to quote in a message: lone surrogates escaped, at most 100 characters."""
    return shorten(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
