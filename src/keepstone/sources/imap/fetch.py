"""Reading the selected folder: UIDs and flags, changes since a modseq, envelopes, bodies.

Bodies are fetched with ``BODY.PEEK[]`` (never sets ``\\Seen``) in batches bounded by bytes and
count, after one cheap ``RFC822.SIZE`` pass that makes the byte bound exact; each body is the
literal's exact bytes, never decoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from keepstone.sources.imap.errors import ProtocolError
from keepstone.sources.imap.model import Envelope, FlagChanges, Message
from keepstone.sources.imap.parse import (
    Response,
    Value,
    as_int,
    flags_of,
    internal_date,
    pairs,
    parse_uid_set,
    uid_set,
    values,
)
from keepstone.sources.imap.wire import Wire, failure

MAX_BATCH_COUNT = 500  # messages per body FETCH
ID_BATCH = 2000  # UIDs per envelope/size FETCH (keeps command lines short)
_FETCH = re.compile(rb"\* \d+ FETCH ", re.I)
_VANISHED = re.compile(rb"\* VANISHED (?:\(EARLIER\) )?([0-9:,]+)", re.I)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*((?:.|\r?\n[ \t])*)", re.I | re.M)
_HEADER_FIELDS = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"

Skip = Callable[[int, str], None]


def fetched(untagged: list[Response]) -> Iterator[dict[bytes, Value]]:
    """The data items of each ``* n FETCH (...)`` response that carries a UID."""
    for response in untagged:
        match = _FETCH.match(response.head)
        if match is None:
            continue
        items = values(response, match.end())
        if len(items) != 1 or not isinstance(items[0], list):
            raise ProtocolError("unreadable FETCH response")
        data = pairs(items[0])
        if b"UID" in data:
            yield data


def uids_and_flags(wire: Wire) -> dict[int, tuple[str, ...]]:
    result = wire.run(b"UID", b"FETCH", b"1:*", b"(UID FLAGS)")
    return {as_int(d[b"UID"]): flags_of(d.get(b"FLAGS", [])) for d in fetched(result.untagged)}


def changes_since(wire: Wire, modseq: int, qresync: bool, uid_limit: int) -> FlagChanges:
    modifier = b"(CHANGEDSINCE %d%s)" % (modseq, b" VANISHED" if qresync else b"")
    result = wire.run(b"UID", b"FETCH", b"1:*", b"(UID FLAGS)", modifier)
    flags = {as_int(d[b"UID"]): flags_of(d.get(b"FLAGS", [])) for d in fetched(result.untagged)}
    vanished: set[int] | None = set() if qresync else None
    if vanished is not None:
        for response in result.untagged:
            match = _VANISHED.match(response.head)
            if match:
                vanished.update(parse_uid_set(match.group(1), uid_limit))
    return FlagChanges(flags, None if vanished is None else frozenset(vanished))


def fetch_envelopes(wire: Wire, uids: Sequence[int]) -> list[Envelope]:
    out: list[Envelope] = []
    for batch in _chunks(sorted(set(uids)), ID_BATCH):
        items = b"(UID RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        result = wire.run(b"UID", b"FETCH", uid_set(batch), items)
        for data in fetched(result.untagged):
            out.append(
                Envelope(
                    uid=as_int(data[b"UID"]),
                    size=as_int(data.get(b"RFC822.SIZE")),
                    internal_date=internal_date(data.get(b"INTERNALDATE")),
                    flags=flags_of(data.get(b"FLAGS", [])),
                    message_id=message_id_of(data.get(_HEADER_FIELDS)),
                )
            )
    out.sort(key=lambda envelope: envelope.uid)
    return out


def message_ids(wire: Wire) -> dict[str, list[int]]:
    result = wire.run(b"UID", b"FETCH", b"1:*", b"(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    out: dict[str, list[int]] = {}
    for data in fetched(result.untagged):
        found = message_id_of(data.get(_HEADER_FIELDS))
        if found:
            out.setdefault(found, []).append(as_int(data[b"UID"]))
    for uids in out.values():
        uids.sort()
    return out


def message_id_of(header: Value) -> str:
    """The Message-ID header's value, whitespace (and folding) removed; "" when none."""
    if not isinstance(header, bytes):
        return ""
    match = _MESSAGE_ID.search(header)
    if match is None:
        return ""
    return re.sub(rb"\s+", b"", match.group(1)).decode("utf-8", "replace")


def sizes(wire: Wire, uids: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for batch in _chunks(sorted(set(uids)), ID_BATCH):
        result = wire.run(b"UID", b"FETCH", uid_set(batch), b"(UID RFC822.SIZE)")
        for data in fetched(result.untagged):
            out[as_int(data[b"UID"])] = as_int(data.get(b"RFC822.SIZE"))
    return out


def fetch_messages(
    wire: Wire, uids: Sequence[int], max_batch_bytes: int, on_skip: Skip | None = None
) -> Iterator[Message]:
    """Messages in UID order; a UID no longer there is left out (``on_skip`` is told)."""
    wanted = sorted(set(uids))
    if not wanted:
        return
    known = sizes(wire, wanted)
    for uid in wanted:
        if uid not in known and on_skip:
            on_skip(uid, "the message is no longer in the folder")
    for batch in _by_bytes([u for u in wanted if u in known], known, max_batch_bytes):
        yield from _fetch_batch(wire, batch, on_skip)


def _fetch_batch(wire: Wire, batch: list[int], on_skip: Skip | None) -> Iterator[Message]:
    items = b"(UID RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[])"
    result = wire.exchange(b"UID", b"FETCH", uid_set(batch), items)
    got: dict[int, Message] = {}
    for data in fetched(result.untagged):
        message = _message(data)
        if message is not None:
            got[message.uid] = message
    if result.status != b"OK":
        error = failure(result, b"UID FETCH")
        if error.retryable or result.status != b"NO":
            raise error
        if len(batch) > 1:
            # one unreadable message must not cost the others: the rest one by one
            for uid in batch:
                if uid not in got:
                    got.update((m.uid, m) for m in _fetch_batch(wire, [uid], on_skip))
        elif not got and on_skip:
            on_skip(batch[0], f"the server could not read it: {error.message}")
            return
    for uid in batch:
        if uid in got:
            yield got.pop(uid)
        elif on_skip:
            on_skip(uid, "the server returned no body")


def _message(data: dict[bytes, Value]) -> Message | None:
    body = data.get(b"BODY[]")
    if not isinstance(body, bytes):
        return None
    return Message(
        uid=as_int(data[b"UID"]),
        size=as_int(data[b"RFC822.SIZE"]) if b"RFC822.SIZE" in data else len(body),
        internal_date=internal_date(data.get(b"INTERNALDATE")),
        flags=flags_of(data.get(b"FLAGS", [])),
        body=body,
    )


def _by_bytes(uids: list[int], known: dict[int, int], max_bytes: int) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = known[uid]
        if batch and (total + size > max_bytes or len(batch) >= MAX_BATCH_COUNT):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
