"""The fake's restore routes refuse what Graph refuses: folder creation (`ErrorFolderExists`,
unknown properties), JSON creates (unknown properties, custom headers), the
`internetMessageId` filter (and only it), attachments (4 MB cap, sessions from 3 MB, the upload
host without Authorization, fragments in order and under 4 MB), deleting a message."""

from __future__ import annotations

import base64
import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx

from tests.graph.fake_client import graph_code
from tests.graph.fake_mail import Mail, mime_of

MB = 1024 * 1024


def _post(mail: Mail, path: str, body: Any) -> httpx.Response:
    headers = mail.headers | {"Content-Type": "application/json"}
    return mail.http.post(f"{mail.base}{path}", content=json.dumps(body).encode(), headers=headers)


def _message(mail: Mail, **extra: Any) -> str:
    body = {
        "subject": "s",
        "body": {"contentType": "text", "content": "b"},
        "internetMessageId": "<it's@example.com>",
        "singleValueExtendedProperties": [{"id": "Integer 0x0E07", "value": "1"}],
    } | extra
    made = _post(mail, "/mailFolders/inbox/messages", body)
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer["isDraft"] is False and answer["isRead"] is True  # the read bit
    return str(answer["id"])


def test_folders_are_created_once_per_name_under_a_parent(mail: Mail) -> None:
    made = _post(mail, "/mailFolders", {"displayName": "Projects"})
    assert made.status_code == 201 and made.json()["displayName"] == "Projects"
    assert graph_code(_post(mail, "/mailFolders", {"displayName": "projects"})) == (
        409,
        "ErrorFolderExists",
    )
    child = _post(mail, f"/mailFolders/{made.json()['id']}/childFolders", {"displayName": "A"})
    assert child.status_code == 201 and child.json()["parentFolderId"] == made.json()["id"]
    assert graph_code(_post(mail, "/mailFolders", {"displayName": "x", "color": 1}))[0] == 400
    assert graph_code(_post(mail, "/mailFolders", {"displayName": " "}))[0] == 400
    assert graph_code(_post(mail, "/mailFolders/nope/childFolders", {"displayName": "x"})) == (
        404,
        "ErrorItemNotFound",
    )


def test_json_create_refusals(mail: Mail) -> None:
    base = {"subject": "s", "body": {"contentType": "text", "content": "b"}}
    assert graph_code(_post(mail, "/mailFolders/inbox/messages", base | {"bogus": 1})) == (
        400,
        "RequestBodyRead",
    )
    headers = [{"name": "Received", "value": "x"}]
    refused = _post(mail, "/mailFolders/inbox/messages", base | {"internetMessageHeaders": headers})
    assert graph_code(refused) == (400, "InvalidInternetMessageHeader")
    many = [{"name": f"X-H{n}", "value": "v"} for n in range(6)]
    refused = _post(mail, "/mailFolders/inbox/messages", base | {"internetMessageHeaders": many})
    assert graph_code(refused) == (400, "InvalidInternetMessageHeaderCollection")
    assert mail.mailbox.messages == {}  # a refused request changes nothing


def test_only_the_internet_message_id_filter_is_served(mail: Mail) -> None:
    made = _message(mail)
    url = f"{mail.base}/mailFolders/inbox/messages"
    found = mail.get(url + "?$filter=internetMessageId eq '<it''s@example.com>'&$select=id")
    assert [m["id"] for m in found.json()["value"]] == [made]
    other = mail.get(url + "?$filter=internetMessageId eq '<nope@example.com>'")
    assert other.json()["value"] == []
    assert (
        mail.get(
            f"{mail.base}/mailFolders/drafts/messages?$filter=internetMessageId eq "
            "'<it''s@example.com>'"
        ).json()["value"]
        == []
    )
    assert graph_code(mail.get(url + "?$filter=subject eq 's'"))[0] == 400
    assert graph_code(mail.get(url + "?$orderby=subject"))[0] == 400


def test_attachments_small_and_by_upload_session(mail: Mail) -> None:
    message = _message(mail)
    small = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "a.txt",
        "contentBytes": base64.b64encode(b"hello").decode(),
    }
    assert _post(mail, f"/messages/{message}/attachments", small).status_code == 201
    huge = small | {"contentBytes": base64.b64encode(b"x" * (3 * MB + 1)).decode()}
    assert graph_code(_post(mail, f"/messages/{message}/attachments", huge))[0] == 413
    item = {"attachmentType": "file", "name": "big.bin", "size": 2 * MB}
    refused = _post(
        mail, f"/messages/{message}/attachments/createUploadSession", {"AttachmentItem": item}
    )
    assert graph_code(refused) == (400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize")
    size = 5 * MB
    session = _post(
        mail,
        f"/messages/{message}/attachments/createUploadSession",
        {"AttachmentItem": item | {"size": size}},
    )
    assert session.status_code == 201
    url = session.json()["uploadUrl"]
    assert not url.startswith(mail.fake.graph_url)  # another host: Outlook's upload host
    data = bytes(range(256)) * (size // 256)

    def put(start: int, end: int, **headers: str) -> httpx.Response:
        return mail.http.put(
            url,
            content=data[start : end + 1],
            headers={"Content-Range": f"bytes {start}-{end}/{size}"} | headers,
        )

    assert graph_code(put(0, MB - 1, Authorization=mail.headers["Authorization"]))[0] == 401
    assert graph_code(put(MB, 2 * MB - 1))[0] == 416  # out of order
    assert graph_code(put(0, 4 * MB))[0] == 413  # a fragment of 4 MB or more
    first = put(0, 3 * MB - 1)
    assert first.status_code == 200 and first.json()["nextExpectedRanges"] == [
        f"{3 * MB}-{size - 1}"
    ]
    last = put(3 * MB, size - 1)
    assert last.status_code == 201 and "attachments(" in last.headers["Location"]
    stored = mail.mailbox.messages[message]
    parsed = message_from_bytes(stored.mime, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    payloads = {p.get_filename(): p.get_payload(decode=True) for p in parsed.iter_attachments()}
    assert payloads == {"a.txt": b"hello", "big.bin": data}
    assert stored.to_json()["hasAttachments"] is True
    assert graph_code(put(0, 10))[0] == 404  # the session is over


def test_delete_and_the_mime_path_cannot_take_attachments(mail: Mail) -> None:
    made = _message(mail)
    gone = mail.http.delete(f"{mail.base}/messages/{made}", headers=mail.headers)
    assert gone.status_code == 204 and made not in mail.mailbox.messages
    again = mail.http.delete(f"{mail.base}/messages/{made}", headers=mail.headers)
    assert graph_code(again) == (404, "ErrorItemNotFound")
    draft = mail.http.post(
        f"{mail.base}/messages",
        content=base64.b64encode(mime_of(1)),
        headers=mail.headers | {"Content-Type": "text/plain"},
    )
    small = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "contentBytes": ""}
    assert graph_code(_post(mail, f"/messages/{draft.json()['id']}/attachments", small))[0] == 400
