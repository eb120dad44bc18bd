"""A scripted server for what Dovecot never does: throttling, BYE mid-command, hostile sizes
and sets, injected bytes after STARTTLS. Each case maps to its error class, never a crash."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

import pytest

from keepstone.sources.imap import (
    Appended,
    AuthenticationFailed,
    ConnectionLost,
    Endpoint,
    Folder,
    Password,
    ProtocolError,
    Security,
    Throttled,
    Timeouts,
    TlsFailure,
    connect,
)

Script = Callable[[BinaryIO, socket.socket], None]
CAPS = b"* OK [CAPABILITY IMAP4rev1 LITERAL+ CONDSTORE QRESYNC UIDPLUS STARTTLS] ready\r\n"


@contextmanager
def scripted(script: Script) -> Iterator[Endpoint]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as reader, suppress(OSError):
            script(reader, conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Endpoint("127.0.0.1", port, Security.NONE, timeouts=Timeouts(10, 10))
    finally:
        listener.close()
        thread.join(timeout=10)


def tag_of(reader: BinaryIO) -> bytes:
    return reader.readline().split(b" ", 1)[0]


def logged_in(then: Script, multiappend: bool = False) -> Script:
    caps = b"IMAP4rev1 LITERAL+ CONDSTORE QRESYNC" + (
        b" MULTIAPPEND UIDPLUS" if multiappend else b""
    )

    def script(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(CAPS)
        conn.sendall(tag_of(reader) + b" OK [CAPABILITY " + caps + b"] in\r\n")
        then(reader, conn)

    return script


def selected(then: Script) -> Script:
    def script(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(tag_of(reader) + b" OK enabled\r\n")  # ENABLE QRESYNC, before SELECT
        tag = tag_of(reader)
        conn.sendall(b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 4] x\r\n")
        conn.sendall(b"* OK [HIGHESTMODSEQ 9] x\r\n" + tag + b" OK [READ-ONLY] done\r\n")
        then(reader, conn)

    return logged_in(script)


INBOX = Folder("INBOX", ("Inbox",), "/", None, True)


def test_throttled_login_is_throttled_not_a_wrong_password() -> None:
    def script(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(CAPS)
        tag = tag_of(reader)
        conn.sendall(
            tag + b" NO [UNAVAILABLE] Request is throttled. Suggested Backoff Time: "
            b"1500 milliseconds\r\n"
        )

    with scripted(script) as endpoint, pytest.raises(Throttled) as caught:
        connect(endpoint, Password("a", "b"))
    assert caught.value.retry_after == 1.5


def test_plain_no_on_login_is_authentication_failed() -> None:
    def script(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(CAPS)
        conn.sendall(tag_of(reader) + b" NO [AUTHENTICATIONFAILED] nope\r\n")

    with scripted(script) as endpoint, pytest.raises(AuthenticationFailed):
        connect(endpoint, Password("a", "b"))


def test_bye_in_the_middle_of_a_fetch_is_connection_lost() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        tag_of(reader)  # UID FETCH sizes
        conn.sendall(b"* 1 FETCH (UID 1 RFC822.SIZE 5)\r\n* BYE shutting down\r\n")

    with scripted(selected(then)) as endpoint:
        session = connect(endpoint, Password("a", "b"))
        session.select(INBOX)
        with pytest.raises(ConnectionLost, match="shutting down"):
            list(session.fetch_messages([1]))
        assert not session.alive
        session.close()


def test_throttled_fetch_is_raised_not_skipped() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(b"* 1 FETCH (UID 1 RFC822.SIZE 5)\r\n" + tag_of(reader) + b" OK\r\n")
        conn.sendall(tag_of(reader) + b" NO [THROTTLED] slow down\r\n")

    skipped: list[int] = []
    with scripted(selected(then)) as endpoint:
        session = connect(endpoint, Password("a", "b"))
        session.select(INBOX)
        with pytest.raises(Throttled):
            list(session.fetch_messages([1], on_skip=lambda uid, _: skipped.append(uid)))
    assert skipped == []


def test_an_unreadable_message_is_skipped_and_the_rest_kept() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(
            b"* 1 FETCH (UID 1 RFC822.SIZE 5)\r\n* 2 FETCH (UID 2 RFC822.SIZE 5)\r\n"
            + tag_of(reader)
            + b" OK\r\n"
        )
        # the batch fails for message 2; one by one: 1 comes back, 2 fails again
        conn.sendall(
            b'* 1 FETCH (UID 1 RFC822.SIZE 5 INTERNALDATE " 1-Jan-2024 00:00:00 +0000" '
            b"FLAGS (\\Seen) BODY[] {5}\r\nhello)\r\n" + tag_of(reader) + b" NO [SERVERBUG] x\r\n"
        )
        conn.sendall(tag_of(reader) + b" NO [SERVERBUG] broken message\r\n")
        tag_of(reader)  # LOGOUT

    skipped: list[int] = []
    with scripted(selected(then)) as endpoint, connect(endpoint, Password("a", "b")) as session:
        session.select(INBOX)
        got = list(session.fetch_messages([1, 2], on_skip=lambda uid, _: skipped.append(uid)))
    assert [(m.uid, m.body, m.flags) for m in got] == [(1, b"hello", ("\\Seen",))]
    assert skipped == [2]


def test_a_message_with_a_bad_date_is_skipped_alone() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(
            b"* 1 FETCH (UID 1 RFC822.SIZE 2)\r\n* 2 FETCH (UID 2 RFC822.SIZE 2)\r\n"
            + tag_of(reader)
            + b" OK\r\n"
        )
        conn.sendall(
            b'* 1 FETCH (UID 1 RFC822.SIZE 2 INTERNALDATE "31-Feb-2024 00:00:00 +0000" '
            b"FLAGS () BODY[] {2}\r\nhi)\r\n"
            b'* 2 FETCH (UID 2 RFC822.SIZE 2 INTERNALDATE " 1-Mar-2024 00:00:00 +0100" '
            b"FLAGS () BODY[] {2}\r\nho)\r\n" + tag_of(reader) + b" OK\r\n"
        )
        tag_of(reader)  # LOGOUT

    skipped: list[tuple[int, str]] = []
    with scripted(selected(then)) as endpoint, connect(endpoint, Password("a", "b")) as session:
        session.select(INBOX)
        got = list(session.fetch_messages([1, 2], on_skip=lambda u, r: skipped.append((u, r))))
    assert [m.body for m in got] == [b"ho"]
    assert [(uid, "INTERNALDATE" in reason) for uid, reason in skipped] == [(1, True)]


def test_hostile_sizes_and_sets_are_bounded() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        # VANISHED over the whole UID space: only the folder's own UIDs are kept
        conn.sendall(b"* VANISHED (EARLIER) 1:4294967295\r\n" + tag_of(reader) + b" OK\r\n")
        # a literal of 100 GB announced
        tag_of(reader)
        conn.sendall(b"* 1 FETCH (UID 1 FLAGS () BODY[] {100000000000}\r\n")

    with scripted(selected(then)) as endpoint:
        session = connect(endpoint, Password("a", "b"))
        session.select(INBOX)
        changes = session.changes_since(1)
        assert changes.vanished is not None
        assert len(changes.vanished) <= 4 + (1 << 20)
        with pytest.raises(ProtocolError, match="literal"):
            session.message_ids()
        session.close()


def test_unbalanced_response_is_a_protocol_error() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(b"* 1 FETCH (UID 1 FLAGS (\\Seen)\r\n" + tag_of(reader) + b" OK\r\n")

    with scripted(selected(then)) as endpoint:
        session = connect(endpoint, Password("a", "b"))
        session.select(INBOX)
        with pytest.raises(ProtocolError):
            session.uids_and_flags()
        session.close()


def test_bytes_injected_after_starttls_are_refused() -> None:
    def script(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(CAPS)
        tag = tag_of(reader)
        conn.sendall(tag + b" OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
        reader.read(1)  # wait for the client to hang up

    with scripted(script) as endpoint:
        from dataclasses import replace

        with pytest.raises(TlsFailure, match="after accepting STARTTLS"):
            connect(replace(endpoint, security=Security.STARTTLS), Password("a", "b"))


def test_greeting_bye_is_connection_lost() -> None:
    def script(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(b"* BYE too many connections\r\n")

    with scripted(script) as endpoint, pytest.raises(ConnectionLost, match="too many"):
        connect(endpoint, Password("a", "b"))


def test_header_fields_spelled_otherwise_still_give_the_message_id() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        conn.sendall(
            b'* 1 FETCH (UID 5 BODY[HEADER.FIELDS ("Message-ID")] {23}\r\n'
            b"Message-Id: <A@b>  \r\n\r\n)\r\n" + tag_of(reader) + b" OK\r\n"
        )
        tag_of(reader)  # LOGOUT

    with scripted(selected(then)) as endpoint, connect(endpoint, Password("a", "b")) as session:
        session.select(INBOX)
        assert session.message_ids() == {"<A@b>": [5]}


def test_unsolicited_flag_updates_do_not_break_envelopes_or_sizes() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        unsolicited = b"* 3 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (12))\r\n"
        conn.sendall(
            unsolicited + b'* 1 FETCH (UID 1 RFC822.SIZE 4 INTERNALDATE " 1-Jan-2024 10:00:00 '
            b'+0200" FLAGS () BODY[HEADER.FIELDS (MESSAGE-ID)] {2}\r\n\r\n)\r\n'
            + tag_of(reader)
            + b" OK\r\n"
        )
        conn.sendall(
            unsolicited + b"* 1 FETCH (UID 1 RFC822.SIZE 4)\r\n" + tag_of(reader) + b" OK\r\n"
        )
        conn.sendall(
            unsolicited + b'* 1 FETCH (UID 1 RFC822.SIZE 4 INTERNALDATE " 1-Jan-2024 10:00:00 '
            b'+0200" FLAGS () BODY[] {4}\r\nbody)\r\n' + tag_of(reader) + b" OK\r\n"
        )
        tag_of(reader)  # LOGOUT

    with scripted(selected(then)) as endpoint, connect(endpoint, Password("a", "b")) as session:
        session.select(INBOX)
        envelopes = session.fetch_envelopes([1])
        messages = list(session.fetch_messages([1]))
    assert [(e.uid, e.size, e.message_id) for e in envelopes] == [(1, 4, "")]
    assert envelopes[0].internal_date.utcoffset() is not None
    assert [(m.uid, m.body) for m in messages] == [(1, b"body")]


def read_command(reader: BinaryIO) -> tuple[bytes, list[bytes]]:
    """A whole client command (LITERAL+ literals read): its tag and its literals."""
    line = reader.readline()
    tag = line.split(b" ", 1)[0]
    literals = []
    while line.endswith(b"+}\r\n"):
        size = int(line[line.rindex(b"{") + 1 : -4])
        literals.append(reader.read(size))
        line = reader.readline()
    return tag, literals


def test_a_refused_message_is_left_out_and_the_batch_goes_in() -> None:
    def then(reader: BinaryIO, conn: socket.socket) -> None:
        tag, bodies = read_command(reader)
        assert len(bodies) == 3
        conn.sendall(tag + b" NO [CANNOT] message 2 is not acceptable\r\n")
        for uid, _ in enumerate(bodies, start=10):
            tag, (body,) = read_command(reader)
            if body == b"bad":
                conn.sendall(tag + b" NO [CANNOT] not acceptable\r\n")
            else:
                conn.sendall(tag + b" OK [APPENDUID 7 %d] done\r\n" % uid)
        tag_of(reader)  # LOGOUT

    failed: list[tuple[int, str]] = []
    messages = [Appended(b"one"), Appended(b"bad"), Appended(b"three")]
    with (
        scripted(logged_in(then, multiappend=True)) as endpoint,
        connect(endpoint, Password("a", "b")) as session,
    ):
        uids = session.append(INBOX, messages, on_fail=lambda i, r: failed.append((i, r)))
    assert uids == [10, None, 12]
    assert [index for index, _ in failed] == [1]
    assert "not acceptable" in failed[0][1]
