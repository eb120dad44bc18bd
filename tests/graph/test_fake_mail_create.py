"""Creating messages in the fake: the MIME path makes drafts, JSON with PR_MESSAGE_FLAGS does not,
bad base64 and bodies over 4 MB are refused, read-only apps cannot write."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.graph.fake_client import bearer, graph_code
from tests.graph.fake_mail import SECRET, Mail, mime_of
from tests.graph_fake.server import FakeGraph


def _post(mail: Mail, path: str, content: bytes, content_type: str) -> Any:
    headers = mail.headers | {"Content-Type": content_type}
    return mail.http.post(f"{mail.base}{path}", content=content, headers=headers)


def test_mime_create_is_a_draft_in_drafts_with_the_same_bytes(mail: Mail) -> None:
    created = _post(mail, "/messages", base64.b64encode(mime_of(7)), "text/plain")
    assert created.status_code == 201
    body = created.json()
    drafts = mail.mailbox.folder("drafts")
    assert drafts is not None
    assert body["isDraft"] is True and body["parentFolderId"] == drafts.id
    assert mail.get(f"{mail.base}/messages/{body['id']}/$value").content == mime_of(7)
    entries, _, _ = mail.delta_round(f"{mail.base}/mailFolders/drafts/messages/delta")
    assert [e["id"] for e in entries] == [body["id"]]


def test_json_create_with_message_flags_is_not_a_draft(mail: Mail) -> None:
    message = {
        "subject": "restored",
        "body": {"contentType": "text", "content": "hello"},
        "toRecipients": [{"emailAddress": {"address": "b@example.com"}}],
        "singleValueExtendedProperties": [
            {"id": "Integer 0x0E07", "value": "4"},
            {"id": "SystemTime 0x0E06", "value": "2020-01-02T03:04:05Z"},
        ],
    }
    made = _post(
        mail, "/mailFolders/inbox/messages", json.dumps(message).encode(), "application/json"
    )
    assert made.status_code == 201
    assert made.json()["isDraft"] is False
    assert made.json()["receivedDateTime"] == "2020-01-02T03:04:05Z"
    without = {k: v for k, v in message.items() if k != "singleValueExtendedProperties"}
    draft = _post(
        mail, "/mailFolders/inbox/messages", json.dumps(without).encode(), "application/json"
    )
    assert draft.json()["isDraft"] is True  # no PR_MESSAGE_FLAGS: Exchange keeps it a draft


def test_create_refusals(mail: Mail, graph_fake: FakeGraph) -> None:
    bad = _post(mail, "/messages", b"not base64!!", "text/plain")
    assert graph_code(bad) == (400, "ErrorMimeContentInvalidBase64String")
    big = base64.b64encode(b"x" * (3 * 1024 * 1024 + 1))  # > 4 MB once base64-encoded
    assert graph_code(_post(mail, "/messages", big, "text/plain"))[0] == 413
    mime_in_folder = _post(
        mail, "/mailFolders/inbox/messages", base64.b64encode(mime_of(1)), "text/plain"
    )
    assert mime_in_folder.status_code == 415  # MIME works only on /messages
    assert graph_code(_post(mail, "/messages", b"{", "application/json")) == (
        400,
        "RequestBodyRead",
    )
    tenant = next(iter(graph_fake.state.tenants.values()))
    reader = graph_fake.state.add_app(tenant, secret=SECRET, roles=frozenset({"Mail.Read"}))
    headers = bearer(mail.http, graph_fake, reader, SECRET) | {"Content-Type": "text/plain"}
    refused = mail.http.post(
        f"{mail.base}/messages", content=base64.b64encode(mime_of(1)), headers=headers
    )
    assert graph_code(refused) == (403, "Authorization_RequestDenied")
