"""Lookups of a mail restore. Restore tags: each created message carries a named extended
property (``TAG_PROPERTY``) whose value names the put-back and the item, so that after a lost
answer to a create the message can be found (``$filter`` on ``singleValueExtendedProperties``,
as Graph documents for extended properties) instead of being made twice.

Collision lookups: ``$filter=internetMessageId eq '…'`` in one folder, for
one message or for up to 20 in one ``$batch`` (graph.md §1.3), so checking every message of a
restore costs one request per 20 of them instead of one each.

An inner answer other than 200 is left out: the caller asks again for that message on its own,
through the client's discipline. An inner ``Retry-After`` closes the mailbox's gate first, so
that second ask never comes before it (Graph counts premature retries and extends the penalty).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from keepstone.sources.graph.client import GraphClient, inner_retry_after

BATCH = 20  # Graph's most requests in one $batch
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
# a named string property in Keepstone's own property set (a fixed GUID: never change it)
TAG_PROPERTY = "String {7c2f3b1e-5d4a-4e8b-9f61-0b5e8d2a4c17} Name KeepstoneRestoreTag"


def lookup_path(user_path: str, folder: str, message_id: str) -> str:
    """The lookup's path below ``/v1.0`` (``user_path`` is ``/users/{id}``); quotes inside
    the id are doubled, as OData wants."""
    value = message_id.replace("'", "''")
    query = quote(f"internetMessageId eq '{value}'", safe="")
    return f"{user_path}/mailFolders/{quote(folder, safe='')}/messages?$filter={query}&$select=id"


def tag_path(user_path: str, folder: str, tag: str) -> str:
    """The lookup (below ``/v1.0``) of the message a create tagged ``tag`` in ``folder``."""
    value = tag.replace("'", "''")
    condition = (
        "singleValueExtendedProperties/Any(ep: "
        f"ep/id eq '{TAG_PROPERTY}' and ep/value eq '{value}')"
    )
    query = quote(condition, safe="")
    return f"{user_path}/mailFolders/{quote(folder, safe='')}/messages?$filter={query}&$select=id"


def found_ids(document: Any) -> list[str]:
    values = document.get("value") if isinstance(document, dict) else None
    return [str(v["id"]) for v in values or () if isinstance(v, dict) and v.get("id")]


def look_up_one(client: GraphClient, scope: str, path: str) -> list[str]:
    return found_ids(client.get_json(f"/v1.0{path}", scope=scope, headers=IMMUTABLE))


def look_up_many(client: GraphClient, scope: str, paths: Mapping[str, str]) -> dict[str, list[str]]:
    """``key -> ids found`` for the lookups (at most BATCH) that Graph answered in the batch."""
    requests = [
        {"id": key, "method": "GET", "url": path, "headers": IMMUTABLE}
        for key, path in paths.items()
    ]
    response = client.request(
        "POST",
        "/v1.0/$batch",
        scope=scope,
        headers={"Content-Type": "application/json"},
        content=json.dumps({"requests": requests}).encode(),
    )
    try:
        document = response.json()
    except ValueError:
        return {}
    answers = document.get("responses") if isinstance(document, dict) else None
    found: dict[str, list[str]] = {}
    waits: list[float] = []
    for inner in answers if isinstance(answers, list) else ():
        if not isinstance(inner, dict) or inner.get("id") not in paths:
            continue
        if inner.get("status") == 200:
            found[str(inner["id"])] = found_ids(inner.get("body"))
            continue
        wait = inner_retry_after(inner)
        if wait is not None:
            waits.append(wait)
    if waits:
        client.hold(scope, max(waits))
    return found
