"""The test server's own helpers do what the other tests rely on."""

from __future__ import annotations

import pytest

from keepstone.sources.imap import ConnectionLost, connect
from tests.imap.conftest import ImapUser, tapped
from tests.imap_server import DovecotServer, WireTap, _CommandParser


def test_reset_uidvalidity_gives_a_new_generation(
    imap_user: ImapUser, dovecot: DovecotServer
) -> None:
    dovecot.seed(imap_user.name, "Work", [(b"Subject: r\r\n\r\nr\r\n", ("\\Seen",), None)] * 3)
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        work = next(f for f in session.folders() if f.wire_name == "Work")
        before = session.select(work)
    dovecot.reset_uidvalidity(imap_user.name, "Work")
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        after = session.select(work)
        flags = session.uids_and_flags()
    assert after.uidvalidity != before.uidvalidity
    assert after.messages == 3
    assert sorted(flags) == [1, 2, 3]


def test_cut_after_commands_is_one_shot(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    with WireTap(dovecot.host, dovecot.port) as tap:
        endpoint = tapped(tap, dovecot)
        with connect(endpoint, imap_user.credentials) as session:
            tap.cut_after(commands=1)
            session.folders()  # the one command that still passes
            with pytest.raises(ConnectionLost):
                session.folders()
        with connect(endpoint, imap_user.credentials) as session:
            assert session.folders()
        assert tap.cuts == 1
        assert tap.connections == 2


def test_command_parser_skips_literals() -> None:
    parser = _CommandParser()
    stream = (
        b"A1 LOGIN {3+}\r\nabc {4+}\r\nA2 X\r\n"  # literal contents look like a command
        b"A3 APPEND INBOX (\\Seen) {11}\r\nB1 NOOP\r\n\r\n\r\n"
        b"A4 UID FETCH 1:* (FLAGS)\r\nDONE\r\n"
    )
    verbs = [v for i in range(0, len(stream), 7) for v in parser.feed(stream[i : i + 7])]
    assert verbs == ["LOGIN", "APPEND", "UID FETCH"]
