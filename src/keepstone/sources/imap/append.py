"""Putting messages into a folder: MULTIAPPEND batches when the server has it, else one APPEND
per message; each with its flags (never ``\\Recent``) and INTERNALDATE; the new UIDs from
``APPENDUID`` when the server has UIDPLUS."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from keepstone.sources.imap.errors import ProtocolError
from keepstone.sources.imap.model import Appended, Folder
from keepstone.sources.imap.parse import format_internal_date, parse_uid_set
from keepstone.sources.imap.wire import Arg, Literal, Result, Wire, failure, quoted

BATCH_COUNT = 100
BATCH_BYTES = 16 << 20
# a flag or keyword as an IMAP atom (RFC 3501 flag-keyword / "\" atom): nothing that could
# end the list or start another argument
_FLAG = re.compile(r"\\?[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")
_APPENDUID = re.compile(rb"APPENDUID (\d+) ([0-9:,]+)", re.I)


def flag_list(flags: Sequence[str]) -> bytes:
    kept = [f for f in flags if _FLAG.fullmatch(f) and f.lower() != "\\recent"]
    return ("(" + " ".join(dict.fromkeys(kept)) + ")").encode("ascii")


def append(
    wire: Wire, folder: Folder, messages: Sequence[Appended], capabilities: frozenset[str]
) -> list[int | None]:
    if "MULTIAPPEND" not in capabilities:
        return [uid for message in messages for uid in _send(wire, folder, [message])]
    out: list[int | None] = []
    for batch in _batches(messages):
        out.extend(_send(wire, folder, batch))
    return out


def _send(wire: Wire, folder: Folder, batch: Sequence[Appended]) -> list[int | None]:
    args: list[Arg] = [b"APPEND", quoted(folder.wire_name)]
    for message in batch:
        args.append(flag_list(message.flags))
        if message.internal_date is not None:
            args.append(format_internal_date(message.internal_date))
        args.append(Literal(message.body))
    result = wire.exchange(*args)
    if result.status != b"OK":
        raise failure(result, b"APPEND")
    return _new_uids(result, len(batch))


def _new_uids(result: Result, count: int) -> list[int | None]:
    match = _APPENDUID.search(result.code)
    if match is None:
        return [None] * count
    try:
        uids = parse_uid_set(match.group(2), 1 << 32, most=count)
    except ProtocolError:
        return [None] * count
    return list(uids) if len(uids) == count else [None] * count


def _batches(messages: Sequence[Appended]) -> Iterator[Sequence[Appended]]:
    start, total = 0, 0
    for index, message in enumerate(messages):
        size = len(message.body)
        if index > start and (index - start >= BATCH_COUNT or total + size > BATCH_BYTES):
            yield messages[start:index]
            start, total = index, 0
        total += size
    if start < len(messages):
        yield messages[start:]
