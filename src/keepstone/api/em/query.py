"""The Enterprise Manager query service's filter grammar, as pure functions.

    filter := or ; or := and ("," and)* ; and := term (";" term)* ;
    term   := "(" or ")" | NAME OP VALUE ; OP := "==" | "!=" | ">=" | "<=" | ">" | "<"
    VALUE  := a bare word, or "a quoted string" with "" for a quote inside

Names and text values compare case-insensitively; numbers and ISO dates compare as such; a
field with an order (``Result``: Success < Warning < Failed) compares by that order.

Parentheses nest at most ``MAX_NESTING`` levels deep: the parser is recursive, and a deeper
filter is refused like any other malformed one (a 400 naming ``filter``), never a crash. Sorting
is a total order over whatever a field holds (numbers, then dates, then text), so it never fails.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from keepstone.domain.errors import InvalidInput

Row = Mapping[str, Any]  # lower-case field name -> value
Predicate = Callable[[Row], bool]
MAX_NESTING = 32
ORDERS: dict[str, list[str]] = {"result": ["none", "success", "warning", "failed"]}
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_TOKEN = re.compile(
    r'\s*(?:(?P<quoted>"(?:[^"]|"")*")|(?P<op>==|!=|>=|<=|>|<)|(?P<punct>[;,()])'
    r'|(?P<word>[^\s;,()=!<>"]+))'
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


def tokens(text: str) -> list[Token]:
    found, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise InvalidInput(
                f"filter: unexpected '{text[position : position + 10]}' at position {position}",
                "filter",
            )
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "quoted":
            value = value[1:-1].replace('""', '"')
        found.append(Token(kind, value))
        position = match.end()
    return found


@dataclass(frozen=True, slots=True)
class Term:
    """One comparison of a filter: a field (lower-case), an operator and the wanted value."""

    name: str
    op: str
    value: str


# A filter's structure, for a catalog that evaluates it itself: a term, or ("or" | "and", parts).
Clause = Term | tuple[str, list["Clause"]]


def parse_filter(text: str) -> Predicate:
    """The predicate a filter expression stands for; a 400 naming ``filter`` if it is not one."""
    return parse_filter_clause(text)[0]


def parse_filter_clause(text: str) -> tuple[Predicate, Clause]:
    """The predicate and the structure of a filter expression (400 naming ``filter`` if it is
    not one)."""
    parser = _Parser(tokens(text))
    predicate, clause = parser.disjunction()
    if parser.position != len(parser.items):
        raise InvalidInput(f"filter: unexpected '{parser.items[parser.position].text}'", "filter")
    return predicate, clause


def is_plain_text(name: str, value: str) -> bool:
    """Whether ``value`` is ASCII and compares as text (not a number, date or ordered word):
    then every operator compares ``str(field).lower()`` with ``value.lower()`` whatever the
    field holds (``_compare`` falls back to text when the kinds differ)."""
    return value.isascii() and isinstance(comparable(name, value), str)


def predicate_of(term: Term) -> Predicate:
    """What one comparison keeps."""
    name, wanted, compare = term.name, term.value, OPERATORS[term.op]
    return lambda row: name in row and _compare(name, row[name], wanted, compare)


class _Parser:
    def __init__(self, items: list[Token]) -> None:
        self.items, self.position, self.depth = items, 0, 0

    def peek(self) -> Token | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def take(self, kind: str, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or token.kind != kind or (text is not None and token.text != text):
            wanted = text or kind
            got = "the end" if token is None else f"'{token.text}'"
            raise InvalidInput(f"filter: expected {wanted}, found {got}", "filter")
        self.position += 1
        return token

    def disjunction(self) -> tuple[Predicate, Clause]:
        return self._joined(",", "or", self.conjunction, any)

    def conjunction(self) -> tuple[Predicate, Clause]:
        return self._joined(";", "and", self.term, all)

    def _joined(
        self,
        separator: str,
        kind: str,
        part: Callable[[], tuple[Predicate, Clause]],
        combine: Callable[[Any], bool],
    ) -> tuple[Predicate, Clause]:
        parts = [part()]
        while (token := self.peek()) is not None and token.text == separator:
            self.position += 1
            parts.append(part())
        if len(parts) == 1:
            return parts[0]
        tests = [p for p, _ in parts]
        return (lambda row: combine(p(row) for p in tests)), (kind, [c for _, c in parts])

    def term(self) -> tuple[Predicate, Clause]:
        token = self.peek()
        if token is not None and token.text == "(":
            return self.parenthesized()
        name = self.take("word").text.lower()
        op = self.take("op").text
        value_token = self.peek()
        if value_token is None or value_token.kind not in ("word", "quoted"):
            raise InvalidInput(f"filter: {name} needs a value", "filter")
        self.position += 1
        term = Term(name, op, value_token.text)
        return predicate_of(term), term

    def parenthesized(self) -> tuple[Predicate, Clause]:
        if self.depth == MAX_NESTING:
            raise InvalidInput(
                f"filter: parentheses nest more than {MAX_NESTING} levels deep "
                f"(at position {self.position})",
                "filter",
            )
        self.position += 1
        self.depth += 1
        inner = self.disjunction()
        self.take("punct", ")")
        self.depth -= 1
        return inner


def _compare(name: str, actual: Any, wanted: str, compare: Callable[[Any, Any], bool]) -> bool:
    left, right = comparable(name, actual), comparable(name, wanted)
    if type(left) is not type(right):
        left, right = str(actual).lower(), wanted.lower()
    try:
        return bool(compare(left, right))
    except TypeError:
        return False


def comparable(name: str, value: Any) -> Any:
    """Orders, numbers and dates compare as such; everything else as lower-case text. Dates
    become their distance from 0001-01-01 UTC (a date without an offset counts as UTC), so dates
    with and without offsets compare, and no offset pushes one out of range."""
    if value is None:
        return ""
    text = str(value).lower()
    if name in ORDERS and text in ORDERS[name]:
        return ORDERS[name].index(text)
    if isinstance(value, bool) or text in ("true", "false"):
        return text
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else text
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.replace(tzinfo=None) - datetime.min - (moment.utcoffset() or timedelta())


# Sort rank of each kind of comparable value: all numbers, then all dates, then all text.
_RANKS = {int: 0, float: 0, timedelta: 1, str: 2}


def sort_key(field: str) -> Callable[[Row], tuple[int, Any]]:
    """A key that orders rows by ``field`` whatever mix of values it holds: never raises."""
    name = field.lower()

    def key(row: Row) -> tuple[int, Any]:
        value = comparable(name, row.get(name))
        return _RANKS[type(value)], value

    return key
