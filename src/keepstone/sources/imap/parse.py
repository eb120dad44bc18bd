"""Reading IMAP response data: atoms, strings, literals, lists, NIL.

A response arrives as text segments with the literals between them (``Response``); literal
contents are never scanned, so a message body costs nothing to parse. Atoms come back as
``Atom`` (a ``bytes``), quoted strings and literals as plain ``bytes``, ``NIL`` as None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from keepstone.sources.imap.errors import ProtocolError

Value = bytes | None | list["Value"]


class Atom(bytes):
    """An unquoted atom (``FLAGS``, ``\\Seen``, ``BODY[HEADER.FIELDS (MESSAGE-ID)]``, ``42``)."""


@dataclass(frozen=True)
class Response:
    """One server response line: ``texts[i]`` is followed by ``literals[i]``."""

    texts: tuple[bytes, ...]
    literals: tuple[bytes, ...]

    @property
    def head(self) -> bytes:
        return self.texts[0]


_TOKEN = re.compile(
    rb"""\s*(?:
      (?P<open>\()
    | (?P<close>\))
    | "(?P<quoted>(?:[^"\\]|\\.)*)"
    | (?P<atom>[^\s()"\[\]]+(?:\[[^\]]*\])?(?:<[0-9.]+>)?|\[[^\]]*\])
    )""",
    re.VERBOSE | re.DOTALL,
)
_UNQUOTE = re.compile(rb"\\(.)", re.DOTALL)


def values(response: Response, start: int = 0) -> list[Value]:
    """All values of a response, from byte ``start`` of its first text."""
    stack: list[list[Value]] = [[]]
    for index, text in enumerate(response.texts):
        pos = start if index == 0 else 0
        while True:
            match = _TOKEN.match(text, pos)
            if match is None:
                if text[pos:].strip():
                    raise ProtocolError(f"unreadable server response near {text[pos : pos + 40]!r}")
                break
            pos = match.end()
            if match.group("open"):
                stack.append([])
            elif match.group("close"):
                if len(stack) == 1:
                    raise ProtocolError("unbalanced ')' in a server response")
                done = stack.pop()
                stack[-1].append(done)
            elif match.group("quoted") is not None:
                stack[-1].append(_UNQUOTE.sub(rb"\1", match.group("quoted")))
            else:
                atom = match.group("atom")
                stack[-1].append(None if atom.upper() == b"NIL" else Atom(atom))
        if index < len(response.literals):
            stack[-1].append(response.literals[index])
    if len(stack) != 1:
        raise ProtocolError("unbalanced '(' in a server response")
    return stack[0]


def as_int(value: Value) -> int:
    if isinstance(value, bytes) and value.isdigit():
        return int(value)
    raise ProtocolError(f"expected a number, got {value!r}")


def as_list(value: Value) -> list[Value]:
    if isinstance(value, list):
        return value
    raise ProtocolError(f"expected a list, got {value!r}")


def as_text(value: Value) -> str:
    """Server text as ``str``; bytes that are not UTF-8 kept as surrogate escapes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    raise ProtocolError(f"expected a string, got {value!r}")


def pairs(items: list[Value]) -> dict[bytes, Value]:
    """``(KEY value KEY value)`` -> ``{KEY: value}`` with upper-case keys."""
    if len(items) % 2:
        raise ProtocolError("odd number of items in a key/value list")
    out: dict[bytes, Value] = {}
    for key, value in zip(items[::2], items[1::2], strict=True):
        if not isinstance(key, bytes):
            raise ProtocolError("a key/value list has a non-atom key")
        out[bytes(key).upper()] = value
    return out


_MONTHS = {
    name: number
    for number, name in enumerate(
        b"JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(),
        start=1,
    )
}
_DATE = re.compile(rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


def internal_date(value: Value) -> datetime:
    """``"17-Jul-1996 02:44:25 -0700"`` as an aware datetime keeping its offset."""
    match = _DATE.match(value) if isinstance(value, bytes) else None
    month = _MONTHS.get(match.group(2).upper()) if match else None
    if match is None or month is None:
        raise ProtocolError(f"not an INTERNALDATE: {value!r}")
    day, _, year, hour, minute, second, sign, off_h, off_m = match.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == b"-" else 1)
    try:
        return datetime(
            int(year),
            month,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(offset),
        )
    except ValueError as error:
        raise ProtocolError(f"not an INTERNALDATE: {value!r}") from error


def format_internal_date(moment: datetime) -> bytes:
    """An aware datetime as a quoted INTERNALDATE, in its own offset (naive: UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    month = list(_MONTHS)[moment.month - 1].decode().title()
    text = (
        f"{moment.day:02d}-{month}-{moment.year:04d} {moment:%H:%M:%S} {sign}{hours:02d}{mins:02d}"
    )
    return f'"{text}"'.encode("ascii")


def flags_of(value: Value) -> tuple[str, ...]:
    """A FLAGS list as text, ``\\Recent`` dropped (it describes the session, not the message)."""
    return tuple(
        as_text(flag)
        for flag in as_list(value)
        if isinstance(flag, bytes) and flag.lower() != b"\\recent"
    )


def uid_set(uids: list[int]) -> bytes:
    """Sorted UIDs as a compact sequence set: ``1:3,7,9:10``."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            ranges.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    ranges.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(ranges).encode("ascii")


def parse_uid_set(text: bytes, limit: int, most: int | None = None) -> list[int]:
    """``1:3,7`` -> ``[1, 2, 3, 7]`` (server order; ``a:b`` either way round), only UIDs up to
    ``limit`` and at most ``most`` of them: a hostile ``1:4294967295`` costs nothing."""
    out: list[int] = []
    try:
        for part in text.split(b","):
            low, _, high = part.partition(b":")
            first, last = sorted((int(low), int(high or low)))
            span = range(max(first, 1), min(last, limit) + 1)
            if most is not None and len(out) + len(span) > most:
                raise ProtocolError("a UID set larger than expected")
            out.extend(span if int(low) <= int(high or low) else reversed(span))
    except ValueError as error:
        raise ProtocolError(f"not a UID set: {text[:40]!r}") from error
    return out
