"""The fake's JSON read through Microsoft's own `msgraph-sdk` models (Kiota's JSON parse node).

For each representative answer: every property the fake sends must be one the model knows
(Kiota puts unknown ones into `additional_data`; only instance annotations Microsoft documents
may land there), and every non-null value must survive the model's typing (an enum member or a
date the model cannot read comes back as null, which the round trip below catches).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.drives.item.items.item.delta.delta_get_response import (
    DeltaGetResponse as DriveDeltaPage,
)
from msgraph.generated.models.attachment import Attachment
from msgraph.generated.models.drive import Drive
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.mail_folder_collection_response import (
    MailFolderCollectionResponse,
)
from msgraph.generated.models.mailbox_settings import MailboxSettings
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.organization_collection_response import (
    OrganizationCollectionResponse,
)
from msgraph.generated.models.upload_session import UploadSession
from msgraph.generated.models.user import User
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_get_response import (
    DeltaGetResponse as MessageDeltaPage,
)

from tests.graph.fake_client import bearer, client, request_token
from tests.graph.fake_mail import mime_of
from tests.graph_fake.server import FakeGraph

SECRET = "s3cret"
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
# Instance annotations Microsoft documents on these resources, which the models leave to
# `additional_data`: delta tombstones (delta-query-overview: `@removed`), the pre-signed
# download link (driveItem resource), and the nested error code (errors.md: "innererror ...
# may contain ... a more specific code").
DOCUMENTED_EXTRAS = {
    "Message": {"@removed"},
    "DriveItem": {"@microsoft.graph.downloadUrl"},
    "InnerError": {"code"},
}
# The token endpoint's error body (Entra, not Graph: the SDK has no model of it), as documented
# in the identity platform's error reference.
AAD_ERROR_KEYS = {
    "error",
    "error_description",
    "error_codes",
    "timestamp",
    "trace_id",
    "correlation_id",
    "error_uri",
}


def _parse(model: type[Parsable], payload: bytes) -> Parsable:
    node = JsonParseNodeFactory().get_root_parse_node("application/json", payload)
    parsed = node.get_object_value(model)  # type: ignore[type-var]
    assert parsed is not None
    return parsed


def _unknown_properties(obj: Any, where: str) -> Iterator[str]:
    """Every property the model did not know, anywhere in the parsed tree."""
    if isinstance(obj, list):
        for n, element in enumerate(obj):
            yield from _unknown_properties(element, f"{where}[{n}]")
        return
    if not (is_dataclass(obj) and hasattr(obj, "additional_data")):
        return
    allowed = DOCUMENTED_EXTRAS.get(type(obj).__name__, set())
    for name in obj.additional_data or {}:
        if not name.startswith("@odata.") and name not in allowed:
            yield f"{where}.{name} ({type(obj).__name__})"
    for field in fields(obj):
        if field.name != "additional_data":
            yield from _unknown_properties(getattr(obj, field.name), f"{where}.{field.name}")


def _same(sent: Any, kept: Any) -> bool:
    if isinstance(sent, str) and isinstance(kept, str) and sent != kept:
        try:
            return datetime.fromisoformat(sent) == datetime.fromisoformat(kept)
        except ValueError:
            return False
    return bool(sent == kept)


def _lost_values(sent: Any, kept: Any, where: str) -> Iterator[str]:
    """Values the fake sent that did not come back out of the model unchanged."""
    if isinstance(sent, dict):
        if not isinstance(kept, dict):
            yield f"{where}: {kept!r} for an object"
            return
        for name, value in sent.items():
            if value is None:
                continue
            if name not in kept:
                yield f"{where}.{name}: {value!r} did not parse"
            else:
                yield from _lost_values(value, kept[name], f"{where}.{name}")
    elif isinstance(sent, list):
        if not isinstance(kept, list) or len(kept) != len(sent):
            yield f"{where}: list {sent!r} came back as {kept!r}"
            return
        for n, (one, other) in enumerate(zip(sent, kept, strict=True)):
            yield from _lost_values(one, other, f"{where}[{n}]")
    elif not _same(sent, kept):
        yield f"{where}: {sent!r} came back as {kept!r}"


def assert_graph_shape(model: type[Parsable], answer: httpx.Response | bytes) -> Parsable:
    payload = answer if isinstance(answer, bytes) else answer.content
    parsed = _parse(model, payload)
    unknown = list(_unknown_properties(parsed, model.__name__))
    assert not unknown, f"properties {model.__name__} does not know: {unknown}"
    writer = JsonSerializationWriter()
    writer.write_object_value(None, parsed)
    kept = json.loads(writer.get_serialized_content())
    lost = list(_lost_values(json.loads(payload), kept, model.__name__))
    assert not lost, f"values {model.__name__} could not type: {lost}"
    return parsed


class Tenant:
    """A tenant with a user mailbox, a shared mailbox and a OneDrive, and an app's token."""

    def __init__(self, fake: FakeGraph, http: httpx.Client) -> None:
        state = fake.state
        self.tenant = state.add_tenant("contoso.onmicrosoft.com")
        self.app = state.add_app(self.tenant, secret=SECRET)
        self.user = state.add_user(self.tenant, "adele", "Adele Vance")
        self.mailbox = state.add_mailbox(self.user)
        self.shared = state.add_user(self.tenant, "helpdesk")
        state.add_mailbox(self.shared).purpose = "shared"
        self.drive = state.add_drive(self.user)
        self.fake, self.http = fake, http
        self.headers = bearer(http, fake, self.app, SECRET) | IMMUTABLE
        self.base = f"{fake.graph_url}/v1.0"

    def get(self, path: str, **headers: str) -> httpx.Response:
        answer = self.http.get(
            path if path.startswith("https:") else self.base + path,
            headers=self.headers | headers,
        )
        return answer

    def ok(self, path: str, **headers: str) -> httpx.Response:
        answer = self.get(path, **headers)
        assert answer.status_code == 200, answer.text
        return answer


@pytest.fixture
def org(graph_fake: FakeGraph) -> Iterator[Tenant]:
    with client(graph_fake) as http:
        yield Tenant(graph_fake, http)


def test_directory_answers(org: Tenant) -> None:
    page = assert_graph_shape(OrganizationCollectionResponse, org.ok("/organization"))
    assert isinstance(page, OrganizationCollectionResponse) and page.value
    assert page.value[0].verified_domains and page.value[0].verified_domains[0].is_default
    users = assert_graph_shape(UserCollectionResponse, org.ok("/users?$top=1"))
    assert isinstance(users, UserCollectionResponse) and users.odata_next_link
    assert_graph_shape(UserCollectionResponse, org.ok(users.odata_next_link))
    user = assert_graph_shape(User, org.ok(f"/users/{org.user.id}"))
    assert isinstance(user, User) and user.account_enabled is True
    selected = org.ok(f"/users/{org.user.id}?$select=id,displayName,mail")
    assert_graph_shape(User, selected)


@pytest.mark.parametrize("who", ["user", "shared"])
def test_mailbox_settings(org: Tenant, who: str) -> None:
    owner = org.user if who == "user" else org.shared
    settings = assert_graph_shape(MailboxSettings, org.ok(f"/users/{owner.id}/mailboxSettings"))
    assert isinstance(settings, MailboxSettings) and settings.user_purpose is not None
    assert settings.user_purpose.value == who


def test_mail_folders_and_messages(org: Tenant) -> None:
    folders = org.ok(f"/users/{org.user.id}/mailFolders?includeHiddenFolders=true&$top=2")
    page = assert_graph_shape(MailFolderCollectionResponse, folders)
    assert isinstance(page, MailFolderCollectionResponse) and page.odata_next_link
    inbox = org.mailbox.folder("inbox")
    assert inbox is not None
    with org.fake.state.lock:
        made = [
            org.mailbox.add_message(inbox, mime_of(n), org.fake.state.clock.now())
            for n in (1, 2, 3)
        ]
    delta_url = f"/users/{org.user.id}/mailFolders/inbox/messages/delta"
    first = assert_graph_shape(MessageDeltaPage, org.ok(delta_url))
    assert isinstance(first, MessageDeltaPage) and first.odata_delta_link
    with org.fake.state.lock:
        now = org.fake.state.clock.now()
        org.mailbox.update_message(made[0].id, now, is_read=True, flag_status="flagged")
        org.mailbox.delete_message(made[1].id)
    changes = assert_graph_shape(MessageDeltaPage, org.ok(first.odata_delta_link))
    assert isinstance(changes, MessageDeltaPage) and changes.value
    removed = [m for m in changes.value if "@removed" in m.additional_data]
    assert [m.id for m in removed] == [made[1].id]
    flagged = next(m for m in changes.value if m.id == made[0].id)
    assert flagged.flag and flagged.flag.flag_status and flagged.flag.flag_status.value == "flagged"
    message = assert_graph_shape(Message, org.ok(f"/users/{org.user.id}/messages/{made[2].id}"))
    assert isinstance(message, Message) and message.received_date_time is not None


def test_drive_and_drive_delta(org: Tenant) -> None:
    drive = assert_graph_shape(Drive, org.ok(f"/users/{org.user.id}/drive"))
    assert isinstance(drive, Drive) and drive.quota and drive.quota.total
    with org.fake.state.lock:
        now = org.fake.state.clock.now()
        folder = org.drive.add("Docs", now)
        kept = org.drive.add("a.txt", now, b"alpha", folder)
        gone = org.drive.add("b.txt", now, b"beta", folder)
    first = assert_graph_shape(DriveDeltaPage, org.ok(f"/drives/{org.drive.id}/root/delta"))
    assert isinstance(first, DriveDeltaPage) and first.odata_delta_link and first.value
    file = next(i for i in first.value if i.id == kept.id)
    assert file.file and file.file.hashes and file.file.hashes.quick_xor_hash
    with org.fake.state.lock:
        org.drive.change(kept.id, org.fake.state.clock.now(), name="renamed.txt")
        org.drive.delete(gone.id)
    changes = assert_graph_shape(DriveDeltaPage, org.ok(first.odata_delta_link))
    assert isinstance(changes, DriveDeltaPage) and changes.value
    deleted = [i for i in changes.value if i.deleted is not None]
    assert [i.id for i in deleted] == [gone.id]


def test_error_bodies(org: Tenant) -> None:
    missing = org.get(f"/users/{org.user.id}/messages/AAMkAGnothere")
    assert missing.status_code == 404
    error = assert_graph_shape(ODataError, missing)
    assert isinstance(error, ODataError) and error.error and error.error.code
    assert error.error.inner_error and error.error.inner_error.request_id
    delta = org.ok(f"/drives/{org.drive.id}/root/delta").json()["@odata.deltaLink"]
    with org.fake.state.lock:
        org.drive.invalidate_delta()
    resync = org.get(delta)
    assert resync.status_code == 410
    assert_graph_shape(ODataError, resync)
    unauthenticated = org.http.get(f"{org.base}/organization")
    assert unauthenticated.status_code == 401
    assert_graph_shape(ODataError, unauthenticated)


def test_token_error_body(org: Tenant) -> None:
    refused = request_token(org.http, org.fake, org.tenant.id, org.app, client_secret="wrong")
    assert refused.status_code == 401
    body = refused.json()
    assert set(body) == AAD_ERROR_KEYS
    assert isinstance(body["error_codes"], list) and all(
        isinstance(c, int) for c in body["error_codes"]
    )


def test_batch_answer(org: Tenant) -> None:
    inbox = org.mailbox.folder("inbox")
    assert inbox is not None
    with org.fake.state.lock:
        message = org.mailbox.add_message(inbox, mime_of(7), org.fake.state.clock.now())
    requests = [
        {"id": "1", "method": "GET", "url": f"/users/{org.user.id}"},
        {"id": "2", "method": "GET", "url": f"/users/{org.user.id}/messages/{message.id}"},
        {"id": "3", "method": "GET", "url": f"/users/{org.user.id}/messages/nothere"},
    ]
    answer = org.http.post(f"{org.base}/$batch", headers=org.headers, json={"requests": requests})
    assert answer.status_code == 200, answer.text
    models: dict[str, Callable[[bytes], Parsable]] = {
        "1": lambda raw: assert_graph_shape(User, raw),
        "2": lambda raw: assert_graph_shape(Message, raw),
        "3": lambda raw: assert_graph_shape(ODataError, raw),
    }
    responses = answer.json()["responses"]
    assert set(answer.json()) == {"responses"}
    assert sorted(r["id"] for r in responses) == ["1", "2", "3"]
    for response in responses:
        assert set(response) <= {"id", "status", "headers", "body"}
        assert isinstance(response["status"], int) and isinstance(response["headers"], dict)
        models[response["id"]](json.dumps(response["body"]).encode())


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"id": "x", "sizeInBytes": 4}, "does not know"),  # a beta-only property
        ({"id": "x", "flag": {"flagStatus": "yes"}}, "could not type"),  # no such enum member
        ({"id": "x", "receivedDateTime": "yesterday"}, "could not type"),
        ({"id": "x", "@removed": {"reason": "deleted"}, "@odata.etag": 'W/"1"'}, None),
    ],
)
def test_the_check_refuses_what_the_model_does_not_know(
    body: dict[str, Any], complaint: str | None
) -> None:
    payload = json.dumps(body).encode()
    if complaint is None:
        assert_graph_shape(Message, payload)
        return
    with pytest.raises(AssertionError, match=complaint):
        assert_graph_shape(Message, payload)


def test_restore_side_answers(org: Tenant) -> None:
    """Folders read and made, a JSON message made, an attachment added, an upload session."""
    user = f"{org.base}/users/{org.user.id}"
    assert_graph_shape(MailFolder, org.ok(f"/users/{org.user.id}/mailFolders/inbox"))
    made = org.http.post(f"{user}/mailFolders", headers=org.headers, json={"displayName": "Kept"})
    assert made.status_code == 201, made.text
    folder = assert_graph_shape(MailFolder, made)
    assert isinstance(folder, MailFolder) and folder.display_name == "Kept"
    body = {
        "subject": "restored",
        "body": {"contentType": "text", "content": "hello"},
        "toRecipients": [{"emailAddress": {"address": "adele@contoso.onmicrosoft.com"}}],
        "singleValueExtendedProperties": [{"id": "Integer 0x0E07", "value": "1"}],
    }
    created = org.http.post(
        f"{user}/mailFolders/{folder.id}/messages", headers=org.headers, json=body
    )
    assert created.status_code == 201, created.text
    message = assert_graph_shape(Message, created)
    assert isinstance(message, Message) and message.is_draft is False
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "a.txt",
        "contentBytes": "aGVsbG8=",
    }
    added = org.http.post(
        f"{user}/messages/{message.id}/attachments", headers=org.headers, json=attachment
    )
    assert added.status_code == 201, added.text
    assert isinstance(assert_graph_shape(Attachment, added), FileAttachment)
    session = org.http.post(
        f"{user}/messages/{message.id}/attachments/createUploadSession",
        headers=org.headers,
        json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": 3 << 20}},
    )
    assert session.status_code == 201, session.text
    upload = assert_graph_shape(UploadSession, session)
    assert isinstance(upload, UploadSession) and upload.next_expected_ranges == ["0-"]
