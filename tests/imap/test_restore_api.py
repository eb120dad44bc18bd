"""Restores into an Imap organization through the API, from restore points written in the agreed
item format into a real repository: in place, restoreTo, copyTo, refused folder names, and saving
messages as .eml and zip."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from keepstone.engine import Item
from keepstone.proxy.backup import facts_of
from keepstone.services import restore_points, vault
from keepstone.services.context import Context
from keepstone.sources.names import key_part
from tests.conftest import Api
from tests.imap.conftest import ImapUser, new_user
from tests.imap.test_restore_target import (
    delete_everything,
    folder_names,
    read_mailbox,
    seed_by_name,
    seeded,
    snapshot,
)
from tests.imap_server import DovecotServer

Org = dict[str, Any]


def organization(api: Api, server: DovecotServer, *users: ImapUser) -> Org:
    body = {
        "type": "Imap",
        "name": "acme-mail",
        "imapSettings": {
            "host": server.host,
            "port": server.port,
            "security": "None",  # loopback
            "authentication": "Password",
            "users": [{"name": u.name, "login": u.name, "password": u.password} for u in users],
        },
    }
    response = api.post("/v2/Organizations", body)
    assert response.status_code == 200, response.text
    org: Org = response.json()
    return org


def back_up(ctx: Context, repo: dict[str, Any], org: Org, *users: ImapUser) -> None:
    """One restore point of the users' mailboxes, written as the IMAP backup writes it."""
    repository = vault.open_repository(ctx, repo["id"], repo["path"])
    writer = repository.writer({restore_points.TAG_ORGANIZATION: org["id"]})
    for user in users:
        seen: set[str] = set()
        for item, body in read_mailbox(user):
            chunks, size, _ = writer.add_file(body)
            assert size == item.size
            writer.add_item(replace(item, chunks=chunks))
            wire = item.meta["folder_wire"]
            if wire not in seen:
                seen.add(wire)
                writer.add_item(folder_item(user.name, item))
    snapshot_id = writer.commit(ctx.clock.now())
    info = next(s for s in repository.snapshots() if s.id == snapshot_id)
    restore_points.record(ctx, repo["id"], facts_of(repository, info))


def folder_item(user: str, message: Item) -> Item:
    wire = message.meta["folder_wire"]
    return Item(
        key=f"{user}/imap-folder/{key_part(wire)}",
        user=user,
        kind="folder",
        path=message.path,
        size=0,
        mtime=0,
        mode=0o700,
        meta={
            "source": "imap",
            "folder_wire": wire,
            "uidvalidity": message.meta["uidvalidity"],
            "uidnext": 0,
            "highestmodseq": None,
            "role": None,
            "separator": "/",
        },
    )


def explore(api: Api, org: Org) -> str:
    return explore_at(api, org, None)


def explore_at(api: Api, org: Org, when: datetime | None) -> str:
    """A restore session on the organization's restore point at ``when`` (None: the latest)."""
    body = {"dateTime": when.isoformat()} if when else {}
    response = api.post(f"/v2/Organizations/{org['id']}/explore", body)
    assert response.status_code in (200, 201), response.text
    session: str = response.json()["id"]
    return session


def mailbox(api: Api, session: str, user: ImapUser) -> str:
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    return next(m["id"] for m in api.rows(base) if m["name"] == user.name)


@pytest.fixture
def alice(dovecot: DovecotServer) -> ImapUser:
    user = new_user(dovecot)
    dovecot.seed(user.name, "INBOX", seeded(10))
    dovecot.seed(user.name, "Sent", seeded(3, start=100))
    seed_by_name(user, ("Projekte", "Données été"), seeded(4, start=200))
    return user


@pytest.fixture
def bob(dovecot: DovecotServer) -> ImapUser:
    return new_user(dovecot)


@pytest.fixture
def backed_up(
    api: Api,
    ctx: Context,
    repo: dict[str, Any],
    dovecot: DovecotServer,
    alice: ImapUser,
    bob: ImapUser,
) -> tuple[Org, str]:
    org = organization(api, dovecot, alice, bob)
    back_up(ctx, repo, org, alice, bob)
    return org, explore(api, org)


def test_restore_in_place_after_the_messages_were_deleted(
    api: Api, backed_up: tuple[Org, str], alice: ImapUser
) -> None:
    _, session = backed_up
    before = snapshot(alice)
    delete_everything(alice)
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes/{mailbox(api, session, alice)}"
    restored = api.post(f"{base}/restore", {"collisionPolicy": "skip"})
    assert restored.status_code == 200, restored.text
    assert restored.json()["restoredItemsCount"] == 17
    assert snapshot(alice) == before
    again = api.post(f"{base}/restore", {"collisionPolicy": "skip"}).json()
    no_id = 2  # messages without Message-ID never collide: appended again
    assert (again["restoredItemsCount"], again["skippedItemsCount"]) == (no_id, 17 - no_id)
    stats = api.get(f"/v2/RestoreSessions/{session}").json()["statistics"]
    assert stats["restored"] == 17 + no_id and stats["skipped"] == 17 - no_id
    events = api.get(f"/v6/RestoreSessions/{session}/Events").json()["results"]
    assert [e["status"] for e in events if e["type"] == "Restore"] == ["Success", "Success"]


def test_restore_to_another_user_and_copy_to_a_new_nested_folder(
    api: Api, backed_up: tuple[Org, str], alice: ImapUser, bob: ImapUser
) -> None:
    _, session = backed_up
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes/{mailbox(api, session, alice)}"
    folders = {f["path"]: f["id"] for f in api.rows(f"{base}/Folders")}
    inbox = api.get(f"{base}/Items?folderId={folders['Inbox']}&limit=100").json()["results"]
    to_bob = api.post(
        f"{base}/Items/restoreTo",
        {"ids": [i["id"] for i in inbox], "userName": bob.name, "folder": "Von Alice/Été 2024"},
    )
    assert to_bob.status_code == 200, to_bob.text
    assert to_bob.json()["restoredItemsCount"] == 10
    assert snapshot(bob) == {("Von Alice", "Été 2024"): snapshot(alice)[("Inbox",)]}
    copied = api.post(f"{base}/copyTo", {"folder": "Kopie"})
    assert copied.status_code == 200, copied.text
    assert copied.json()["restoredItemsCount"] == 17
    mine = snapshot(alice)
    assert sorted(mine[("Kopie",)]) == sorted(
        m for p, ms in mine.items() if p != ("Kopie",) for m in ms
    )
    one = api.post(f"{base}/Items/{inbox[0]['id']}/restore", {"collisionPolicy": "skip"})
    assert one.json()["skippedItemsCount"] == 1


def test_restore_unread_as_a_v4_portal_asks_it(
    api: Api, backed_up: tuple[Org, str], alice: ImapUser, bob: ImapUser
) -> None:
    """``markRestoredAsUnread``: every message goes back without ``\\Seen`` and with its other
    flags; the vendor's ``casServer`` names where its server would sign in, which Keepstone
    never does for an Imap organization (it writes through the organization's own server):
    taken, not used. The portal sends its options as strings."""
    _, session = backed_up
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes/{mailbox(api, session, alice)}"
    body = {
        "userName": bob.name,
        "folder": "Unread",
        "casServer": "outlook.office365.com",
        "markRestoredAsUnread": "true",
        "excludeInPlaceHoldItems": "true",
    }
    done = api.post(f"{base}/restoreTo", body)
    assert done.status_code == 200, done.text
    theirs = snapshot(alice)
    backed = sorted(m for messages in theirs.values() for m in messages)
    assert any("\\Seen" in flags for _, flags, _ in backed)  # some were read
    unread = sorted((b, tuple(f for f in flags if f != "\\Seen"), at) for b, flags, at in backed)
    assert snapshot(bob) == {("Unread",): unread}
    refused = api.post(f"{base}/restoreTo", {"userName": bob.name, "excludeDrafts": True})
    assert refused.status_code == 400 and "excludeDrafts" in refused.text
    assert snapshot(bob) == {("Unread",): unread}


HOSTILE = ["x\r\nA1 DELETE INBOX", "a/\x01/b", "../up", "a//b"]


def test_hostile_folder_names_and_unknown_users_are_400s_and_nothing_is_written(
    api: Api, backed_up: tuple[Org, str], alice: ImapUser
) -> None:
    _, session = backed_up
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes/{mailbox(api, session, alice)}"
    before, names = snapshot(alice), folder_names(alice)
    for folder in HOSTILE:
        refused = api.post(f"{base}/copyTo", {"folder": folder})
        assert refused.status_code == 400, (folder, refused.text)
        assert "folder" in refused.text
    unknown = api.post(f"{base}/restoreTo", {"userName": "mallory", "folder": "x"})
    assert unknown.status_code == 400 and "userName" in unknown.text
    assert snapshot(alice) == before and folder_names(alice) == names


def test_save_one_message_as_eml_and_several_as_zip(
    api: Api, backed_up: tuple[Org, str], alice: ImapUser
) -> None:
    _, session = backed_up
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes/{mailbox(api, session, alice)}"
    items = api.get(f"{base}/Items?limit=100").json()["results"]
    bodies = {body for _, body in read_mailbox(alice)}
    single = api.post(f"{base}/Items/{items[0]['id']}/save")
    assert single.status_code == 200 and single.headers["content-type"] == "message/rfc822"
    assert single.content in bodies
    archive = api.post(f"{base}/Items/save", {"ids": [i["id"] for i in items]})
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        names = opened.namelist()
        assert all(n.endswith(".eml") for n in names) and len(names) == 17
        assert {opened.read(n) for n in names} == bodies
    assert "Projekte/Données été/message 200.eml" in names
