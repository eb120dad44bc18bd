"""Message delta per (mailbox, folder): rounds, page links, delta links and token generations.

A round starts from no token (every message now in the folder) or from a delta link (the ids
changed since its sequence number, each once, in change order). Links are sealed, carry the
frozen `$select` and the folder's generation; only the last 3 generations are honoured, older
links get `410 SyncStateNotFound` in Exchange's wording (graph.md §0 #4, §2.5).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.graph_fake import paging
from tests.graph_fake.mailbox import Mailbox, MailFolder
from tests.graph_fake.query import project
from tests.graph_fake.state import FakeState

KEPT_GENERATIONS = 3
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000


class SyncStateNotFound(Exception):
    def __init__(self, generation: int, highest: int) -> None:
        super().__init__(
            f"The sync state generation is not found; generation={generation};"
            f"[highest={highest}][{highest}][{highest - 2}][{highest - 1}]"
        )


class SyncStateInvalid(Exception):
    """A link for another folder or mailbox, or one the fake did not make."""


@dataclass(frozen=True)
class Position:
    round_id: str
    offset: int
    select: list[str] | None
    upto: int
    generation: int


def _new_generation(mailbox: Mailbox, folder: MailFolder) -> int:
    generation = mailbox.generations.get(folder.id, 0) + 1
    mailbox.generations[folder.id] = generation
    return generation


def _check_generation(mailbox: Mailbox, folder: MailFolder, generation: int) -> None:
    highest = mailbox.generations.get(folder.id, 0)
    if generation <= highest - KEPT_GENERATIONS or generation > highest:
        raise SyncStateNotFound(generation, highest)


def _changed_since(mailbox: Mailbox, folder: MailFolder, since: int) -> list[str]:
    """Ids changed after `since`, each once, ordered by its latest change."""
    latest: dict[str, int] = {}
    for sequence, message_id in mailbox.changes.get(folder.id, []):
        if sequence > since:
            latest[message_id] = sequence
    return sorted(latest, key=latest.__getitem__)


def start_round(
    state: FakeState,
    mailbox: Mailbox,
    folder: MailFolder,
    select: list[str] | None,
    since: int | None,
) -> Position:
    """A new round: from nothing (`since` None) or from a delta link's sequence number."""
    if since is None:
        ids = [m.id for m in mailbox.messages.values() if m.folder_id == folder.id]
    else:
        ids = _changed_since(mailbox, folder, since)
    generation = _new_generation(mailbox, folder)
    _forget_old_rounds(state, folder, generation)
    round_id = str(uuid.uuid4())
    state.delta_rounds[round_id] = (folder.id, generation, ids)
    return Position(round_id, 0, select, mailbox.sequence, generation)


def _forget_old_rounds(state: FakeState, folder: MailFolder, highest: int) -> None:
    """Rounds stay readable (a client may re-ask a page) while their generation is kept."""
    stale = [
        round_id
        for round_id, (folder_id, generation, _) in state.delta_rounds.items()
        if folder_id == folder.id and generation <= highest - KEPT_GENERATIONS
    ]
    for round_id in stale:
        del state.delta_rounds[round_id]


def _unseal(state: FakeState, mailbox: Mailbox, folder: MailFolder, token: str, kind: str) -> Any:
    try:
        sealed = paging.unseal(state.token_key, token)
    except paging.BadSkipToken as exc:
        raise SyncStateInvalid() from exc
    if sealed.get("kind") != kind or sealed.get("folder") != folder.id:
        raise SyncStateInvalid()
    _check_generation(mailbox, folder, int(sealed["generation"]))
    return sealed


def resume_delta(
    state: FakeState, mailbox: Mailbox, folder: MailFolder, token: str
) -> tuple[int, list[str] | None]:
    """A `$deltatoken`: the sequence number it covers up to, and its frozen `$select`."""
    sealed = _unseal(state, mailbox, folder, token, "delta")
    return int(sealed["upto"]), sealed["select"]


def resume_page(state: FakeState, mailbox: Mailbox, folder: MailFolder, token: str) -> Position:
    """A `$skiptoken`: the position of the next page in its round."""
    sealed = _unseal(state, mailbox, folder, token, "page")
    if sealed["round"] not in state.delta_rounds:
        raise SyncStateNotFound(int(sealed["generation"]), mailbox.generations[folder.id])
    return Position(
        sealed["round"], sealed["offset"], sealed["select"], sealed["upto"], sealed["generation"]
    )


def _entry(
    mailbox: Mailbox,
    folder: MailFolder,
    message_id: str,
    select: list[str] | None,
    immutable: bool,
) -> Any:
    """A message as delta shows it, its id in the form the request preferred."""
    message = mailbox.messages.get(message_id)
    if message is None or message.folder_id != folder.id:
        former = mailbox.former_rest_ids.get((folder.id, message_id), message_id)
        return {
            "@odata.type": "#microsoft.graph.message",
            "id": message_id if immutable else former,
            "@removed": {"reason": "deleted"},
        }
    full = message.to_json() | {"id": message.id_for(immutable)}
    if select is None:
        return full
    # Outlook always returns the id and the etag beside the selected properties.
    return {"@odata.type": full["@odata.type"], "@odata.etag": full["@odata.etag"]} | project(
        full, ["id", *[s for s in select if s != "id"]]
    )


def page(
    state: FakeState,
    mailbox: Mailbox,
    folder: MailFolder,
    position: Position,
    size: int,
    link: str,
    immutable: bool = False,
) -> dict[str, Any]:
    """One page of the round, ending in a next link or (last page) a delta link."""
    ids = state.delta_rounds[position.round_id][2]
    start = position.offset
    if state.delta_replays and start > 0:
        start -= 1
    chosen = ids[start : position.offset + size]
    body: dict[str, Any] = {
        "value": [_entry(mailbox, folder, i, position.select, immutable) for i in chosen]
    }
    common = {"folder": folder.id, "select": position.select, "generation": position.generation}
    if position.offset + size < len(ids):
        sealed = common | {
            "kind": "page",
            "round": position.round_id,
            "offset": position.offset + size,
            "upto": position.upto,
        }
        body["@odata.nextLink"] = f"{link}?$skiptoken={paging.seal(state.token_key, sealed)}"
    else:
        sealed = common | {"kind": "delta", "upto": position.upto}
        body["@odata.deltaLink"] = f"{link}?$deltatoken={paging.seal(state.token_key, sealed)}"
    return body
