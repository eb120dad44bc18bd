"""Folders: LIST (with SPECIAL-USE roles and, when offered, LIST-STATUS), STATUS, EXAMINE/SELECT,
and creating a folder path by its display names.

Names are data. A folder's ``wire_name`` is exactly what the server sent and is sent back as it
is (quoted or as a literal, never rebuilt); its display ``path`` is each part decoded from
modified UTF-7, or the raw part when it is not valid modified UTF-7.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from keepstone.domain.errors import InvalidInput
from keepstone.sources.imap import mutf7
from keepstone.sources.imap.errors import FolderMissing, ImapError, ProtocolError
from keepstone.sources.imap.model import Folder, FolderStatus
from keepstone.sources.imap.parse import Response, Value, as_int, as_list, as_text, pairs, values
from keepstone.sources.imap.wire import Arg, Result, Wire, failure, quoted
from keepstone.sources.names import display

INBOX = "Inbox"
ROLES = {
    role.upper(): role
    for role in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}
_NOT_SELECTABLE = {"\\NOSELECT", "\\NONEXISTENT"}


def status_items(capabilities: frozenset[str]) -> bytes:
    modseq = b" HIGHESTMODSEQ" if "CONDSTORE" in capabilities else b""
    return b"(MESSAGES UIDNEXT UIDVALIDITY" + modseq + b")"


def list_folders(wire: Wire, capabilities: frozenset[str]) -> list[Folder]:
    args: list[Arg] = [b"LIST", b'""', b'"*"']
    returns = []
    if "SPECIAL-USE" in capabilities and "LIST-EXTENDED" in capabilities:
        returns.append(b"SPECIAL-USE")
    if "LIST-STATUS" in capabilities:
        returns.append(b"STATUS " + status_items(capabilities))
    if returns:
        args += [b"RETURN", b"(" + b" ".join(returns) + b")"]
    result = wire.run(*args)
    statuses = _statuses(result.untagged)
    folders = []
    for response in result.untagged:
        if response.head.upper().startswith(b"* LIST "):
            folder = _folder(values(response, len(b"* LIST ")))
            wire_key = folder.wire_name
            if wire_key in statuses:
                folder = _with_status(folder, statuses[wire_key])
            folders.append(folder)
    return folders


def separator_of(wire: Wire) -> str | None:
    """The hierarchy separator of the personal namespace (``LIST "" ""``)."""
    result = wire.run(b"LIST", b'""', b'""')
    for response in result.untagged:
        if response.head.upper().startswith(b"* LIST "):
            items = values(response, len(b"* LIST "))
            return as_text(items[1]) if len(items) > 1 and items[1] is not None else None
    return None


def status(wire: Wire, folder: Folder, capabilities: frozenset[str]) -> FolderStatus:
    result = wire.exchange(b"STATUS", quoted(folder.wire_name), status_items(capabilities))
    if result.status != b"OK":
        raise _not_opened(result, b"STATUS", folder)
    for response in result.untagged:
        if response.head.upper().startswith(b"* STATUS "):
            items = values(response, len(b"* STATUS "))
            return _status(pairs(as_list(items[-1])))
    raise ProtocolError("the server answered STATUS without a status")


def select(
    wire: Wire, folder: Folder, readonly: bool, capabilities: frozenset[str]
) -> FolderStatus:
    args: list[Arg] = [b"EXAMINE" if readonly else b"SELECT", quoted(folder.wire_name)]
    if "CONDSTORE" in capabilities:
        args.append(b"(CONDSTORE)")
    result = wire.exchange(*args)
    if result.status != b"OK":
        raise _not_opened(result, b"SELECT", folder)
    return _selected(result)


def _not_opened(result: Result, verb: bytes, folder: Folder) -> ImapError:
    error = failure(result, verb)
    if result.status == b"NO" and not error.retryable:
        # servers without the NONEXISTENT code (RFC 5530) just say NO
        return FolderMissing(f"{display(folder.wire_name)!r} cannot be opened: {error.message}")
    return error


def _selected(result: Result) -> FolderStatus:
    found: dict[bytes, int] = {}
    for code in result.codes():
        key, _, rest = code.partition(b" ")
        if key.upper() in (b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ") and rest.strip().isdigit():
            found[key.upper()] = int(rest)
    for response in result.untagged:
        match = re.match(rb"\* (\d+) EXISTS", response.head, re.I)
        if match:
            found[b"MESSAGES"] = int(match.group(1))
    if b"UIDVALIDITY" not in found:
        raise ProtocolError("the server selected a folder without a UIDVALIDITY")
    return FolderStatus(
        uidvalidity=found[b"UIDVALIDITY"],
        uidnext=found.get(b"UIDNEXT", 0),
        messages=found.get(b"MESSAGES", 0),
        highestmodseq=found.get(b"HIGHESTMODSEQ"),
    )


def ensure_folder(
    wire: Wire, path: Sequence[str], existing: list[Folder], separator: str | None
) -> Folder:
    """Create the folder at display ``path`` (and its missing parents); the existing one if
    it is there. A part holding the separator is refused, never split."""
    if not path:
        raise InvalidInput("a folder path needs at least one name", "folder")
    parts = list(path)
    for part in parts:
        if not part or "\0" in part or "\r" in part or "\n" in part:
            raise InvalidInput(f"not a folder name: {part!r}", "folder")
        if separator and separator in part:
            raise InvalidInput(
                f"the folder name {part!r} holds the server's separator {separator!r}", "folder"
            )
    if len(parts) > 1 and not separator:
        raise InvalidInput("the server has no folder hierarchy", "folder")
    encoded = [
        "INBOX" if i == 0 and p.upper() == "INBOX" else mutf7.encode(p) for i, p in enumerate(parts)
    ]
    known = {folder.wire_name: folder for folder in existing}
    for depth in range(1, len(encoded) + 1):
        name = (separator or "").join(encoded[:depth])
        if name in known or name.upper() == "INBOX":
            continue
        result = wire.exchange(b"CREATE", quoted(name))
        if result.status != b"OK" and b"ALREADYEXISTS" not in result.code.upper():
            raise failure(result, b"CREATE")
    wire_name = (separator or "").join(encoded)
    return known.get(wire_name) or Folder(
        wire_name=wire_name,
        path=display_path(wire_name, separator),
        separator=separator,
        role=None,
        selectable=True,
    )


def display_path(wire_name: str, separator: str | None) -> tuple[str, ...]:
    parts = wire_name.split(separator) if separator else [wire_name]
    shown = [_shown(part) for part in parts]
    if parts[0].upper() == "INBOX":
        shown[0] = INBOX
    return tuple(shown)


def _shown(part: str) -> str:
    try:
        return mutf7.decode(part)
    except ValueError:
        # not modified UTF-7 (a server sending raw UTF-8, or a broken name): shown as it is
        return part.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _folder(items: list[Value]) -> Folder:
    if len(items) < 3:
        raise ProtocolError("a LIST response has too few items")
    attributes = {as_text(flag).upper() for flag in as_list(items[0]) if isinstance(flag, bytes)}
    separator = as_text(items[1]) if items[1] is not None else None
    raw = items[2]
    if not isinstance(raw, bytes):
        raise ProtocolError("a LIST response has no folder name")
    wire_name = as_text(raw)
    role = next((ROLES[a] for a in sorted(attributes) if a in ROLES), None)
    return Folder(
        wire_name=wire_name,
        path=display_path(wire_name, separator),
        separator=separator,
        role=role,
        selectable=not attributes & _NOT_SELECTABLE,
    )


def _statuses(untagged: list[Response]) -> dict[str, FolderStatus]:
    out: dict[str, FolderStatus] = {}
    for response in untagged:
        if response.head.upper().startswith(b"* STATUS "):
            items = values(response, len(b"* STATUS "))
            if len(items) >= 2 and isinstance(items[0], bytes):
                try:
                    out[as_text(items[0])] = _status(pairs(as_list(items[-1])))
                except ProtocolError:
                    continue  # a folder without a usable status is opened later instead
    return out


def _status(items: dict[bytes, Value]) -> FolderStatus:
    modseq = items.get(b"HIGHESTMODSEQ")
    return FolderStatus(
        uidvalidity=as_int(items.get(b"UIDVALIDITY")),
        uidnext=as_int(items.get(b"UIDNEXT")),
        messages=as_int(items.get(b"MESSAGES")),
        highestmodseq=as_int(modseq) if isinstance(modseq, bytes) and modseq != b"0" else None,
    )


def _with_status(folder: Folder, found: FolderStatus) -> Folder:
    return Folder(
        folder.wire_name, folder.path, folder.separator, folder.role, folder.selectable, found
    )
