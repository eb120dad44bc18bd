"""Putting messages back: MULTIAPPEND batches (or one APPEND each), flags without \\Recent,
INTERNALDATE, APPENDUID, odd bytes; expunging exactly the given UIDs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from keepstone.sources.imap import Appended, ImapSession, ProtocolError, connect
from keepstone.sources.imap.append import flag_list
from tests.imap.conftest import ImapUser, tapped
from tests.imap_server import WireTap

WHEN = datetime(2023, 7, 14, 8, 30, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def _messages(n: int) -> list[Appended]:
    return [
        Appended(
            b"Message-ID: <m%d@t>\r\nSubject: caf\xe9 %d\r\n\r\nbody \xff %d\r\n" % (i, i, i),
            ("\\Seen", "\\Recent", "$Work") if i % 2 else ("\\Flagged",),
            WHEN + timedelta(minutes=i),
        )
        for i in range(n)
    ]


def _append_and_count(user: ImapUser, n: int) -> tuple[list[int | None], int, ImapSession]:
    server = user.server
    with WireTap(server.host, server.port) as tap:
        session = connect(tapped(tap, server), user.credentials)
        target = session.ensure_folder(["Restored", "Été"])
        tap.reset_counts()
        uids = session.append(target, _messages(n))
        appends = tap.count("APPEND")
        session.close()
    return uids, appends, session


@pytest.mark.parametrize("which", ["default", "minimal"])
def test_append_round_trip(which: str, imap_user: ImapUser, minimal_user: ImapUser) -> None:
    user = imap_user if which == "default" else minimal_user
    n = 250
    uids, appends, _ = _append_and_count(user, n)
    # MULTIAPPEND: batches of 100; without it one APPEND per message
    assert appends == (3 if which == "default" else n)
    assert uids == list(range(1, n + 1))  # APPENDUID (UIDPLUS) on both
    with connect(user.endpoint(), user.credentials) as session:
        folder = next(f for f in session.folders() if f.path == ("Restored", "Été"))
        session.select(folder)
        got = list(session.fetch_messages(range(1, n + 1)))
    sent = _messages(n)
    assert [m.body for m in got] == [m.body for m in sent]
    assert [m.internal_date for m in got] == [m.internal_date for m in sent]
    for message in got:
        expected = {"\\Seen", "$Work"} if message.uid % 2 == 0 else {"\\Flagged"}
        assert set(message.flags) == expected  # \Recent never sent


def test_flag_list_keeps_only_atoms() -> None:
    assert flag_list(["\\Seen", "\\Recent", "$Ok", "bad flag", "x)y", "\\Seen", "{3}"]) == (
        b"(\\Seen $Ok)"
    )


def test_expunge_exactly_the_given_uids(imap_user: ImapUser) -> None:
    imap_user.server.seed(imap_user.name, "INBOX", [(b"Subject: e\r\n\r\ne\r\n", (), None)] * 5)
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        inbox = next(f for f in session.folders() if f.wire_name == "INBOX")
        session.select(inbox)  # read-only
        with pytest.raises(ProtocolError):
            session.expunge_uids([1])
        with imap_user.server.client(imap_user.name) as other:
            other.select_folder("INBOX")
            other.add_flags([4], ["\\Deleted"])  # someone else's pending delete stays
        session.select(inbox, readonly=False)
        session.expunge_uids([2, 3])
        assert sorted(session.uids_and_flags()) == [1, 4, 5]
