"""Reading messages: exact bytes (8-bit, malformed, binary), flags and INTERNALDATE, no \\Seen,
change tracking with and without CONDSTORE/QRESYNC, and the work it costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from keepstone.sources.imap import (
    ConnectionLost,
    Folder,
    ImapSession,
    Security,
    Unsupported,
    connect,
)
from tests.imap.conftest import ImapUser, tapped
from tests.imap_server import DovecotServer, WireTap

WHEN = datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone(timedelta(hours=-7)))
ODD_MESSAGES = [
    b"From: a@example.org\r\nSubject: caf\xe9 latin-1\r\nMessage-ID: <l1@x>\r\n\r\nna\xefve\r\n",
    b"Subject: \xff\xfe broken utf-8 \xc3\r\n\r\n\x01\x7f binary \x80\xff in body\r\n",
    b"no headers at all, bare\nLF\nlines\n",
    b"Subject: looks like IMAP\r\n\r\n* 1 FETCH (FLAGS (\\Deleted))\r\nK9 OK done\r\n{5}\r\nabc",
    b"Message-ID:\r\n  <folded@id>\r\nSubject: folded id\r\n\r\n" + b"x" * 70000,
]
FLAGS = [("\\Seen",), ("\\Flagged", "$Label1"), (), ("\\Answered", "\\Draft"), ("Junk",)]


def inbox(session: ImapSession) -> Folder:
    return next(f for f in session.folders() if f.wire_name == "INBOX")


def seed_odd(user: ImapUser) -> None:
    user.server.seed(
        user.name,
        "INBOX",
        [(body, flags, WHEN) for body, flags in zip(ODD_MESSAGES, FLAGS, strict=True)],
    )


def test_fetch_is_byte_exact_with_flags_and_dates(imap_user: ImapUser) -> None:
    seed_odd(imap_user)
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        status = session.select(inbox(session))
        assert status.messages == 5
        messages = list(session.fetch_messages([5, 4, 3, 2, 1, 99]))
        envelopes = session.fetch_envelopes([1, 2, 3, 4, 5])
        ids = session.message_ids()
        flags_after = session.uids_and_flags()
    assert [m.uid for m in messages] == [1, 2, 3, 4, 5]
    for message, body, flags in zip(messages, ODD_MESSAGES, FLAGS, strict=True):
        # exact bytes; the one rewrite is the server's own: bare LF sent as CRLF (IMAP lines)
        assert message.body == body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert message.size == len(message.body)
        assert set(message.flags) == set(flags)
        assert message.internal_date == WHEN  # same instant (Maildir keeps no offset)
        assert message.internal_date.tzinfo is not None
    assert messages[1].body == ODD_MESSAGES[1]  # 8-bit and control bytes untouched
    assert [e.message_id for e in envelopes] == ["<l1@x>", "", "", "", "<folded@id>"]
    assert [e.size for e in envelopes] == [m.size for m in messages]
    assert ids == {"<l1@x>": [1], "<folded@id>": [5]}
    # BODY.PEEK: nothing became \Seen
    assert {uid: set(flags) for uid, flags in flags_after.items()} == {
        uid: set(flags) for uid, flags in zip(range(1, 6), FLAGS, strict=True)
    }


def test_fetch_batches_by_bytes_and_count(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    body = b"Subject: sized\r\n\r\n" + b"y" * 10_000 + b"\r\n"
    dovecot.seed(imap_user.name, "INBOX", [(body, (), None)] * 40)
    with (
        WireTap(dovecot.host, dovecot.port) as tap,
        connect(tapped(tap, dovecot), imap_user.credentials) as session,
    ):
        session.select(inbox(session))
        tap.reset_counts()
        got = list(session.fetch_messages(range(1, 41), max_batch_bytes=100_000))
        fetches = tap.count("UID FETCH")
    assert len(got) == 40
    assert all(m.body == body for m in got)
    # one size pass, then batches of at most 100 kB (9 messages of ~10 kB)
    assert fetches == 1 + 5


def test_work_grows_linearly(dovecot: DovecotServer) -> None:
    """Commands for N and 4N messages: fetch and append grow by batches, not per message."""
    counts = {}
    for n in (150, 600):
        user = dovecot.add_user()[0]
        body = b"Subject: n\r\n\r\nbody\r\n"
        dovecot.seed(user, "INBOX", [(body, ("\\Seen",), None)] * n)
        with (
            WireTap(dovecot.host, dovecot.port) as tap,
            connect(tapped(tap, dovecot), dovecot.credentials(user)) as session,
        ):
            folder = inbox(session)
            session.select(folder)
            tap.reset_counts()
            assert len(list(session.fetch_messages(range(1, n + 1)))) == n
            assert len(session.uids_and_flags()) == n
            assert len(session.fetch_envelopes(range(1, n + 1))) == n
            session.append(folder, [_appended(body)] * n)
            counts[n] = len(tap.commands)
    # fetch: 1 size pass + ceil(n/500) batches; flags 1; envelopes 1; append ceil(n/100)
    assert counts[150] == 1 + 1 + 1 + 1 + 2
    assert counts[600] == 1 + 2 + 1 + 1 + 6
    assert counts[600] <= 4 * counts[150]


def _appended(body: bytes) -> object:
    from keepstone.sources.imap import Appended

    return Appended(body, ("\\Seen",), datetime(2024, 1, 1, tzinfo=UTC))


def test_changes_since_with_qresync(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    dovecot.seed(imap_user.name, "INBOX", [(b"Subject: c\r\n\r\nc\r\n", (), None)] * 6)
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        assert session.can_track_changes
        before = session.select(inbox(session))
        assert before.highestmodseq is not None
        with dovecot.client(imap_user.name) as other:
            other.select_folder("INBOX")
            other.add_flags([2], ["\\Flagged"])
            other.delete_messages([5, 6])
            other.expunge()
        after = session.select(inbox(session))
        changes = session.changes_since(before.highestmodseq)
        unchanged = session.changes_since(after.highestmodseq or 0)
    assert after.highestmodseq is not None and after.highestmodseq > before.highestmodseq
    assert changes.flags == {2: ("\\Flagged",)}
    assert changes.vanished == frozenset({5, 6})
    assert unchanged.flags == {}
    assert unchanged.vanished == frozenset()


def test_minimal_server_cannot_track_changes(minimal_user: ImapUser) -> None:
    minimal_user.server.seed(
        minimal_user.name, "INBOX", [(b"Subject: m\r\n\r\nm\r\n", (), None)] * 3
    )
    with connect(minimal_user.endpoint(), minimal_user.credentials) as session:
        assert not {"CONDSTORE", "QRESYNC", "MULTIAPPEND", "LIST-STATUS"} & session.capabilities
        assert not session.can_track_changes
        folder = inbox(session)
        assert folder.status is None  # no LIST-STATUS
        status = session.select(folder)
        assert status.highestmodseq is None
        assert session.status(folder).highestmodseq is None
        with pytest.raises(Unsupported):
            session.changes_since(1)
        assert session.uids_and_flags() == {1: (), 2: (), 3: ()}


def test_kick_mid_fetch_is_connection_lost(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    body = b"Subject: big\r\n\r\n" + b"z" * 50_000 + b"\r\n"
    dovecot.seed(imap_user.name, "INBOX", [(body, (), None)] * 30)
    with WireTap(dovecot.host, dovecot.port) as tap:
        with connect(tapped(tap, dovecot, Security.STARTTLS), imap_user.credentials) as session:
            session.select(inbox(session))
            tap.cut_after(bytes_down=300_000)  # inside the body batch
            got = []
            with pytest.raises(ConnectionLost):
                got.extend(session.fetch_messages(range(1, 31), max_batch_bytes=1 << 20))
            assert not session.alive
            assert tap.cuts == 1
        # the next connection works (the cut was one-shot)
        with connect(tapped(tap, dovecot), imap_user.credentials) as session:
            session.select(inbox(session))
            assert len(list(session.fetch_messages(range(1, 31)))) == 30


def test_fetch_of_nothing_and_gone_uids(imap_user: ImapUser) -> None:
    skipped: list[int] = []
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        session.select(inbox(session))
        assert list(session.fetch_messages([])) == []
        assert list(session.fetch_messages([7], on_skip=lambda uid, _: skipped.append(uid))) == []
        assert session.uids_and_flags() == {}
        assert session.message_ids() == {}
    assert skipped == [7]
