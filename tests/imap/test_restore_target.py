"""Putting messages back into a real Dovecot through the IMAP restore target: in place, to
another user and folder, the collision policies, MULTIAPPEND batches, the work it costs, refused
folder names, and a connection cut in the middle."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.engine import Item
from keepstone.sources.imap import (
    Appended,
    Endpoint,
    Folder,
    ImapAccess,
    ImapSession,
    Message,
    Security,
    Throttled,
    connect,
)
from keepstone.sources.imap import restore as imap_restore
from keepstone.sources.imap.restore import ImapTarget
from keepstone.sources.names import key_part
from keepstone.sources.targets import Collision, LocalTarget, Outcome, Placement
from tests.imap.conftest import ImapUser, new_user
from tests.imap_server import DovecotServer, WireTap

Snapshot = dict[tuple[str, ...], list[tuple[bytes, tuple[str, ...], datetime]]]
MAILDIR_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S"}


def message(n: int, *, subject: str = "", with_id: bool = True, extra: str = "") -> bytes:
    """A message; some 8-bit, some without Message-ID (Drafts often have none)."""
    mid = f"Message-ID: <restore-{n}@example.test>\r\n" if with_id else ""
    return (
        f"From: Sender {n} <s{n}@example.test>\r\nTo: r@example.test\r\n"
        f"Subject: {subject or f'message {n}'}\r\n{mid}"
        f"Date: Wed, 10 Jun 2026 09:{n % 60:02d}:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Grüße {n} — {extra or 'body'}\r\n"
    ).encode()


def seeded(n: int, start: int = 0, no_id_every: int = 5) -> list[tuple[bytes, list[str], datetime]]:
    zones = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))]
    flag_sets = [["\\Seen"], ["\\Seen", "\\Flagged", "$Label1"], [], ["\\Answered", "\\Seen"]]
    return [
        (
            message(i, with_id=i % no_id_every != no_id_every - 1),
            flag_sets[i % len(flag_sets)],
            datetime(2024, 1 + i % 12, 1 + i % 28, 8, i % 60, 7, tzinfo=zones[i % 3]),
        )
        for i in range(start, start + n)
    ]


def seed_by_name(
    user: ImapUser, path: tuple[str, ...], messages: list[tuple[bytes, list[str], datetime]]
) -> None:
    """Seed a folder with a name that is not ASCII (the fixture's seed takes wire names)."""
    with connect(user.endpoint(Security.NONE), user.credentials) as session:
        folder = session.ensure_folder(path)
        session.append(folder, [Appended(body, tuple(f), date) for body, f, date in messages])


def access(user: ImapUser, *others: ImapUser, endpoint: Endpoint | None = None) -> ImapAccess:
    logins = {u.name: u.credentials for u in (user, *others)}
    return ImapAccess(endpoint or user.endpoint(Security.NONE), logins)


def snapshot(user: ImapUser) -> Snapshot:
    """Every message of every folder: bytes, flags (sorted, without \\Recent), INTERNALDATE."""
    found: Snapshot = {}
    with connect(user.endpoint(Security.NONE), user.credentials) as session:
        for folder in session.folders():
            if not folder.selectable:
                continue
            session.select(folder)
            uids = sorted(session.uids_and_flags())
            found[folder.path] = sorted(
                (m.body, tuple(sorted(f for f in m.flags if f != "\\Recent")), m.internal_date)
                for m in session.fetch_messages(uids)
            )
    return {path: messages for path, messages in found.items() if messages}


def imap_item(user: str, folder: Folder, validity: int, m: Message, mid: str) -> Item:
    """The item of one message, in the format agreed with the backup connector."""
    flags = [f for f in m.flags if f != "\\Recent"]
    return Item(
        key=f"{user}/imap/{key_part(folder.wire_name)}/{validity}/{m.uid}",
        user=user,
        kind="mail",
        path="/".join(folder.path),
        size=m.size,
        mtime=m.internal_date.timestamp(),
        mode=0o600,
        meta={
            "source": "imap",
            "folder_wire": folder.wire_name,
            "uidvalidity": validity,
            "uid": m.uid,
            "imap_flags": flags,
            "flags": "".join(sorted(MAILDIR_LETTERS[f] for f in flags if f in MAILDIR_LETTERS)),
            "internal_date": m.internal_date.isoformat(),
            "message_id": mid,
            "subject": m.body.split(b"Subject: ")[-1].split(b"\r\n")[0].decode(),
            "from": "",
            "to": "",
            "date": "",
            "role": folder.role,
        },
    )


def read_mailbox(user: ImapUser) -> Iterator[tuple[Item, bytes]]:
    """Every message of the user's mailbox as (item, content), as a backup would keep it."""
    with connect(user.endpoint(Security.NONE), user.credentials) as session:
        for folder in session.folders():
            if not folder.selectable:
                continue
            status = session.select(folder)
            uids = sorted(session.uids_and_flags())
            envelopes = {e.uid: e for e in session.fetch_envelopes(uids)}
            for m in session.fetch_messages(uids):
                mid = envelopes[m.uid].message_id
                yield imap_item(user.name, folder, status.uidvalidity, m, mid), m.body


class Backup:
    """A mailbox's messages as items in the agreed format, with their content kept aside."""

    def __init__(self, user: ImapUser) -> None:
        self.contents: dict[str, bytes] = {}
        self.items: list[Item] = []
        self.reads = 0
        for item, body in read_mailbox(user):
            self.items.append(item)
            self.contents[item.key] = body

    def read(self, item: Item) -> BinaryIO:
        self.reads += 1
        return BytesIO(self.contents[item.key])


def put_back(
    target: ImapTarget,
    backup: Backup,
    user: str,
    folder: str | None = None,
    collision: Collision = Collision.KEEP_BOTH,
    items: Sequence[Item] | None = None,
) -> list[Outcome]:
    chosen = backup.items if items is None else items
    outcomes = list(target.put_back(chosen, backup.read, Placement(user, folder, collision)))
    assert sorted(o.item.key for o in outcomes) == sorted(i.key for i in chosen)  # once each
    return outcomes


def counts(outcomes: list[Outcome]) -> tuple[int, int, int]:
    restored = sum(1 for o in outcomes if o.restored and o.error is None)
    failed = sum(1 for o in outcomes if o.error is not None)
    return restored, len(outcomes) - restored - failed, failed


def delete_everything(user: ImapUser) -> None:
    with user.server.client(user.name) as client:
        for flags, _, name in client.list_folders():
            if b"\\Noselect" in flags:
                continue
            client.select_folder(name)
            client.delete_messages(client.search("ALL"))
            client.expunge()
            if name not in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"):
                client.unselect_folder()
                client.delete_folder(name)


def folder_names(user: ImapUser) -> set[str]:
    """The server's own (wire) names of the user's folders."""
    with connect(user.endpoint(Security.NONE), user.credentials) as session:
        return {folder.wire_name for folder in session.folders()}


@pytest.fixture
def mailbox(imap_user: ImapUser) -> ImapUser:
    imap_user.server.seed(imap_user.name, "INBOX", seeded(12))
    imap_user.server.seed(imap_user.name, "Sent", seeded(3, start=100))
    seed_by_name(imap_user, ("Projekte", "Données été"), seeded(4, start=200))
    return imap_user


def test_in_place_after_deletion_gives_back_every_byte_flag_and_date(mailbox: ImapUser) -> None:
    before = snapshot(mailbox)
    backup = Backup(mailbox)
    delete_everything(mailbox)
    assert snapshot(mailbox) == {}
    target = ImapTarget(access(mailbox))
    outcomes = put_back(target, backup, mailbox.name, collision=Collision.SKIP)
    assert counts(outcomes) == (19, 0, 0)
    assert snapshot(mailbox) == before
    assert ("Projekte", "Données été") in before


def test_skip_keeps_what_is_there_and_appends_messages_without_message_id(
    mailbox: ImapUser,
) -> None:
    backup = Backup(mailbox)
    before = snapshot(mailbox)
    outcomes = put_back(ImapTarget(access(mailbox)), backup, mailbox.name, collision=Collision.SKIP)
    without_id = [i for i in backup.items if not i.meta["message_id"]]
    assert len(without_id) == 2  # never a collision: appended again
    assert counts(outcomes) == (2, 17, 0)
    after = snapshot(mailbox)
    assert sum(map(len, after.values())) == 19 + 2
    assert {p: set(m) for p, m in after.items()} == {p: set(m) for p, m in before.items()}
    assert backup.reads == 2  # skipped messages are not even read


def test_keep_both_appends_a_second_copy(mailbox: ImapUser) -> None:
    backup = Backup(mailbox)
    before = snapshot(mailbox)
    outcomes = put_back(ImapTarget(access(mailbox)), backup, mailbox.name)
    assert counts(outcomes) == (19, 0, 0)
    after = snapshot(mailbox)
    assert after == {path: sorted(m + m) for path, m in before.items()}


def test_overwrite_replaces_the_copy_with_the_backed_up_one(mailbox: ImapUser) -> None:
    backup = Backup(mailbox)
    before = snapshot(mailbox)
    with mailbox.server.client(mailbox.name) as client:  # flags changed since the backup
        client.select_folder("INBOX")
        client.set_flags(client.search("ALL"), [b"\\Deleted", b"Changed"])
        client.remove_flags(client.search("ALL"), [b"\\Deleted"])
        old_uids = set(client.search("ALL"))
    outcomes = put_back(
        ImapTarget(access(mailbox)), backup, mailbox.name, collision=Collision.OVERWRITE
    )
    assert counts(outcomes) == (19, 0, 0)
    after = snapshot(mailbox)
    # a message with a Message-ID: exactly one copy, the backed-up one (its flags back); one
    # without: the backed-up copy is added, the changed one stays
    no_id = [
        (body, ("Changed",), date)
        for body, _, date in before[("Inbox",)]
        if b"Message-ID" not in body
    ]
    assert len(no_id) == 2
    assert after == before | {("Inbox",): sorted(before[("Inbox",)] + no_id)}
    with mailbox.server.client(mailbox.name) as client:
        client.select_folder("INBOX")
        kept = set(client.search("ALL")) & old_uids
    assert len(kept) == len(no_id)  # only the old copies of messages without Message-ID stay


def test_restore_to_another_user_into_a_new_nested_non_ascii_folder(
    mailbox: ImapUser, dovecot: DovecotServer
) -> None:
    other = new_user(dovecot)
    backup = Backup(mailbox)
    inbox = [i for i in backup.items if i.path == "Inbox"]
    target = ImapTarget(access(mailbox, other))
    outcomes = put_back(
        target, backup, other.name, "Wiederhergestellt/Été 2024/Ünïcödé", items=inbox
    )
    assert counts(outcomes) == (12, 0, 0)
    after = snapshot(other)
    assert after == {("Wiederhergestellt", "Été 2024", "Ünïcödé"): snapshot(mailbox)[("Inbox",)]}
    assert "Wiederhergestellt/&AMk-t&AOk- 2024/&ANw-n&AO8-c&APY-d&AOk-" in folder_names(other)
    # copyTo is the same put-back: into another folder of the same user
    again = put_back(target, backup, mailbox.name, "Copies", items=inbox)
    assert counts(again) == (12, 0, 0)
    assert snapshot(mailbox)[("Copies",)] == snapshot(mailbox)[("Inbox",)]


@pytest.mark.parametrize(
    "folder", ["a/\x00b", "bad\r\nA1 DELETE INBOX", "a//b", "../x", "tab\there", "\x7f"]
)
def test_a_hostile_folder_name_is_refused_before_anything_is_written(
    mailbox: ImapUser, folder: str
) -> None:
    backup = Backup(mailbox)
    before, names = snapshot(mailbox), folder_names(mailbox)
    with pytest.raises(InvalidInput, match="folder"):
        put_back(ImapTarget(access(mailbox)), backup, mailbox.name, folder)
    assert snapshot(mailbox) == before
    assert folder_names(mailbox) == names


def test_a_name_holding_the_servers_separator_is_refused(dot_user: ImapUser) -> None:
    dot_user.server.seed(dot_user.name, "INBOX", seeded(2))
    backup = Backup(dot_user)
    names = folder_names(dot_user)
    with pytest.raises(InvalidInput, match="separator"):
        put_back(ImapTarget(access(dot_user)), backup, dot_user.name, "ok/not.ok")
    assert folder_names(dot_user) == names
    # the same path with "/" between names is created with the server's "."
    put_back(ImapTarget(access(dot_user)), backup, dot_user.name, "ok/fine")
    assert "ok.fine" in folder_names(dot_user)


@pytest.fixture
def tap(dovecot: DovecotServer) -> Iterator[WireTap]:
    with WireTap(dovecot.host, dovecot.port) as relay:
        yield relay


def tapped_access(user: ImapUser, relay: WireTap) -> ImapAccess:
    base = user.endpoint(Security.NONE)
    return access(user, endpoint=Endpoint(base.host, relay.port, base.security, base.trust))


def test_multiappend_sends_one_append_per_hundred_messages(
    imap_user: ImapUser, tap: WireTap
) -> None:
    imap_user.server.seed(imap_user.name, "INBOX", seeded(250))
    backup = Backup(imap_user)
    tap.reset_counts()
    outcomes = put_back(ImapTarget(tapped_access(imap_user, tap)), backup, imap_user.name, "Copy")
    assert counts(outcomes) == (250, 0, 0)
    assert tap.count("APPEND") == 3
    assert len(snapshot(imap_user)[("Copy",)]) == 250


def test_plain_append_without_multiappend(dovecot_minimal: DovecotServer) -> None:
    user = new_user(dovecot_minimal)
    dovecot_minimal.seed(user.name, "INBOX", seeded(30))
    backup = Backup(user)
    with WireTap(dovecot_minimal.host, dovecot_minimal.port) as relay:
        outcomes = put_back(ImapTarget(tapped_access(user, relay)), backup, user.name, "Copy")
        assert relay.count("APPEND") == 30
    assert counts(outcomes) == (30, 0, 0)
    assert snapshot(user)[("Copy",)] == snapshot(user)[("Inbox",)]


def commands_for(user: ImapUser, relay: WireTap, n: int) -> tuple[int, int, int]:
    """(all commands, APPENDs, Message-ID fetches) to put ``n`` messages in place, over two
    folders, after they were deleted."""
    user.server.seed(user.name, "INBOX", seeded(n // 2, no_id_every=1000))
    user.server.seed(user.name, "Archive", seeded(n - n // 2, start=n, no_id_every=1000))
    backup = Backup(user)
    delete_everything(user)
    relay.reset_counts()
    outcomes = put_back(
        ImapTarget(tapped_access(user, relay)), backup, user.name, collision=Collision.SKIP
    )
    assert counts(outcomes) == (n, 0, 0)
    with relay._lock:
        commands = list(relay.commands)
    return len(commands), relay.count("APPEND"), relay.count("UID FETCH")


def test_work_grows_linearly_by_batches(
    dovecot: DovecotServer, tap: WireTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap_restore, "BATCH_COUNT", 10)
    small = commands_for(new_user(dovecot), tap, 40)
    large = commands_for(new_user(dovecot), tap, 160)
    assert small[1] == 2 * math.ceil(20 / 10) and large[1] == 2 * math.ceil(80 / 10)
    assert small[2] == large[2] == 2  # the collision check: one Message-ID fetch per folder
    fixed = small[0] - small[1]
    assert large[0] - large[1] == fixed  # everything but the APPENDs is per folder, not per item


@pytest.mark.parametrize("cut", ["before the server saw it", "after the server did it"])
@pytest.mark.parametrize("variant", ["default", "minimal"])
def test_a_connection_cut_mid_restore_loses_and_duplicates_nothing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, cut: str, variant: str
) -> None:
    """With MULTIAPPEND the cut falls in a batch of ten (Message-IDs tell what landed); without,
    on a lone APPEND of a message without Message-ID (UIDNEXT tells)."""
    server: DovecotServer = request.getfixturevalue(
        "dovecot" if variant == "default" else "dovecot_minimal"
    )
    monkeypatch.setattr(imap_restore, "BATCH_COUNT", 10)
    user = new_user(server)
    server.seed(user.name, "INBOX", seeded(35, no_id_every=3))  # a third: no Message-ID
    backup = Backup(user)
    before = snapshot(user)
    delete_everything(user)
    read = backup.read
    with WireTap(server.host, server.port) as relay:

        def cutting(item: Item) -> BinaryIO:
            if item is backup.items[20]:  # read just before the APPEND that carries it
                if cut == "before the server saw it":
                    relay.cut_after(commands=0)
                else:
                    relay.cut_after(bytes_down=0)
            return read(item)

        backup.read = cutting  # type: ignore[method-assign]
        pauses: list[float] = []
        target = ImapTarget(tapped_access(user, relay), sleep=pauses.append)
        outcomes = put_back(target, backup, user.name, collision=Collision.SKIP)
        assert relay.cuts == 1 and len(pauses) == 1 and relay.connections == 2
    assert not backup.items[20].meta["message_id"]
    assert counts(outcomes) == (35, 0, 0)
    assert snapshot(user) == before  # every message once


def test_one_refused_or_unreadable_message_fails_alone(imap_user: ImapUser) -> None:
    imap_user.server.seed(imap_user.name, "INBOX", seeded(8))
    backup = Backup(imap_user)
    refused, unreadable = backup.items[2], backup.items[5]
    backup.contents[refused.key] = b""  # the server refuses an empty message
    read = backup.read

    def reading(item: Item) -> BinaryIO:
        if item is unreadable:
            raise OSError(5, "Input/output error")
        return read(item)

    backup.read = reading  # type: ignore[method-assign]
    outcomes = put_back(ImapTarget(access(imap_user)), backup, imap_user.name, "Copy")
    assert counts(outcomes) == (6, 0, 2)
    failed = {o.item.key: o.why for o in outcomes if o.error is not None}
    assert set(failed) == {refused.key, unreadable.key}
    assert "Input/output error" in failed[unreadable.key]
    kept = {body for body, _, _ in snapshot(imap_user)[("Copy",)]}
    assert kept == {backup.contents[i.key] for i in backup.items if i.key not in failed}


def test_an_unreachable_server_fails_every_item_after_backing_off(imap_user: ImapUser) -> None:
    imap_user.server.seed(imap_user.name, "INBOX", seeded(3))
    backup = Backup(imap_user)
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        base = imap_user.endpoint(Security.NONE)
        gone = Endpoint(base.host, closed.getsockname()[1], base.security, base.trust)
        pauses: list[float] = []
        target = ImapTarget(access(imap_user, endpoint=gone), sleep=pauses.append)
        outcomes = put_back(target, backup, imap_user.name, "Copy")
    assert counts(outcomes) == (0, 0, 3)
    assert pauses == [0.5, 1.0, 2.0, 4.0]  # five tries, doubling waits
    assert all(o.error is not None and o.error.retryable for o in outcomes)  # type: ignore[union-attr]


def test_only_messages_backed_up_from_imap_go_into_an_imap_organization(
    imap_user: ImapUser,
) -> None:
    imap_user.server.seed(imap_user.name, "INBOX", seeded(1))
    backup = Backup(imap_user)
    local = replace(backup.items[0], meta={"flags": "S", "file_name": "1.host:2,S"})
    with pytest.raises(InvalidInput, match="Local organization"):
        put_back(ImapTarget(access(imap_user)), backup, imap_user.name, items=[local])
    drive = replace(backup.items[0], kind="file")
    with pytest.raises(InvalidInput, match="mailboxes only"):
        put_back(ImapTarget(access(imap_user)), backup, imap_user.name, items=[drive])


class ThrottledOnce(ImapTarget):
    """The real server, but its first APPEND is answered as Microsoft 365 answers when busy."""

    def __init__(self, access: ImapAccess, sleep: Callable[[float], None]) -> None:
        super().__init__(access, sleep)
        self.throttled = 0

    def connect(self, user: str) -> ImapSession:
        session = super().connect(user)
        real = session.append

        def append(folder: Folder, messages: Sequence[Appended]) -> list[int | None]:
            if not self.throttled:
                self.throttled += 1
                raise Throttled("Request is throttled. Suggested Backoff Time: 3000 ms", 3.0)
            return real(folder, messages)

        session.append = append  # type: ignore[method-assign]
        return session


def test_throttling_waits_as_the_server_says_and_duplicates_nothing(imap_user: ImapUser) -> None:
    imap_user.server.seed(imap_user.name, "INBOX", seeded(30))
    backup = Backup(imap_user)
    before = snapshot(imap_user)
    delete_everything(imap_user)
    pauses: list[float] = []
    target = ThrottledOnce(access(imap_user), pauses.append)
    outcomes = put_back(target, backup, imap_user.name)
    assert counts(outcomes) == (30, 0, 0)
    assert target.throttled == 1 and pauses == [3.0]
    assert snapshot(imap_user) == before


def test_in_place_finds_a_special_use_folder_by_its_role(imap_user: ImapUser) -> None:
    """Mail backed up from a server whose Sent folder had another name goes to this one's."""
    imap_user.server.seed(imap_user.name, "Sent", seeded(3))
    backup = Backup(imap_user)
    assert {i.meta["role"] for i in backup.items} == {"\\Sent"}
    elsewhere = [
        replace(i, path="Gesendete Objekte", meta=i.meta | {"folder_wire": "Gesendete Objekte"})
        for i in backup.items
    ]
    before = snapshot(imap_user)
    delete_everything(imap_user)
    outcomes = put_back(ImapTarget(access(imap_user)), backup, imap_user.name, items=elsewhere)
    assert counts(outcomes) == (3, 0, 0)
    assert snapshot(imap_user) == before  # into Sent, no "Gesendete Objekte" made


def test_a_local_organization_refuses_messages_backed_up_from_imap(
    imap_user: ImapUser, tmp_path: Path
) -> None:
    imap_user.server.seed(imap_user.name, "INBOX", seeded(1))
    backup = Backup(imap_user)
    (tmp_path / imap_user.name).mkdir()
    target = LocalTarget(tmp_path)
    with pytest.raises(InvalidInput, match="Imap organization"):
        target.put_back(backup.items, backup.read, Placement(imap_user.name, None, Collision.SKIP))
    assert list((tmp_path / imap_user.name).iterdir()) == []


class WithoutUidplus(ImapTarget):
    """The real server, as one without UIDPLUS (no UID EXPUNGE) would show itself."""

    def connect(self, user: str) -> ImapSession:
        session = super().connect(user)
        session.capabilities = session.capabilities - {"UIDPLUS"}
        return session


def test_overwrite_without_uidplus_is_refused_before_anything_is_written(
    mailbox: ImapUser,
) -> None:
    backup = Backup(mailbox)
    before = snapshot(mailbox)
    target = WithoutUidplus(access(mailbox))
    with pytest.raises(InvalidInput, match="UIDPLUS"):
        put_back(target, backup, mailbox.name, collision=Collision.OVERWRITE)
    assert snapshot(mailbox) == before
    assert counts(put_back(target, backup, mailbox.name, collision=Collision.SKIP)) == (2, 17, 0)


def test_folders_are_made_below_the_personal_namespace_prefix(prefixed_user: ImapUser) -> None:
    """On a server keeping every folder below ``INBOX.`` (Courier, Cyrus), in place and into a
    requested folder both work."""
    server = prefixed_user.server
    server.seed(prefixed_user.name, "INBOX", seeded(3))
    seed_by_name(prefixed_user, ("Projekte", "Été"), seeded(2, start=50))
    backup = Backup(prefixed_user)
    before = snapshot(prefixed_user)
    delete_everything(prefixed_user)
    target = ImapTarget(access(prefixed_user))
    assert counts(put_back(target, backup, prefixed_user.name)) == (5, 0, 0)
    assert snapshot(prefixed_user) == before
    assert counts(put_back(target, backup, prefixed_user.name, "Kopie/Neu")) == (5, 0, 0)
    assert "INBOX.Kopie.Neu" in folder_names(prefixed_user)
