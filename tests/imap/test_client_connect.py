"""Connecting: TLS against the test CA, pinning, STARTTLS, cleartext, and each failure mapped
to its error class, against the real Dovecot."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import trustme

from keepstone.sources.imap import (
    AuthenticationFailed,
    ConnectionLost,
    PinnedCertificate,
    Security,
    Throttled,
    Timeouts,
    TlsFailure,
    TrustedCa,
    Unreachable,
    connect,
)
from keepstone.sources.imap.wire import Result, failure
from tests.imap.conftest import ImapUser, tapped
from tests.imap_server import DovecotServer, WireTap, free_port


@pytest.mark.parametrize("security", [Security.TLS, Security.STARTTLS, Security.NONE])
def test_each_security_logs_in_and_lists(imap_user: ImapUser, security: Security) -> None:
    with connect(imap_user.endpoint(security), imap_user.credentials) as session:
        assert "IMAP4REV1" in session.capabilities
        assert "CONDSTORE" in session.capabilities
        assert "INBOX" in {folder.wire_name for folder in session.folders()}


def test_starttls_really_encrypts(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    """Through a tap, the password never crosses in clear with STARTTLS (it does with None)."""
    for security, clear in ((Security.STARTTLS, False), (Security.NONE, True)):
        with WireTap(dovecot.host, dovecot.port) as tap:
            recorder = _Recorder(tap)
            with connect(tapped(tap, dovecot, security), imap_user.credentials):
                pass
            assert (imap_user.password.encode() in recorder.seen()) is clear


class _Recorder:
    """Keeps the client's bytes through the tap (by wrapping its parser)."""

    def __init__(self, tap: WireTap) -> None:
        self.data = bytearray()
        original = tap._pump_up

        def pump(source: socket.socket, sink: socket.socket, parser: object) -> None:
            feed = parser.feed  # type: ignore[attr-defined]

            def recording(data: bytes) -> list[str]:
                self.data += data
                return feed(data)  # type: ignore[no-any-return]

            parser.feed = recording  # type: ignore[attr-defined]
            original(source, sink, parser)  # type: ignore[arg-type]

        tap._pump_up = pump  # type: ignore[method-assign]

    def seen(self) -> bytes:
        return bytes(self.data)


def test_pinned_certificate_right_and_wrong(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    pinned = PinnedCertificate(dovecot.cert_sha256.upper())  # case and format do not matter
    with connect(imap_user.endpoint(trust=pinned), imap_user.credentials) as session:
        assert session.alive
    wrong = PinnedCertificate("ab" * 32)
    with pytest.raises(TlsFailure, match="pinned"):
        connect(imap_user.endpoint(trust=wrong), imap_user.credentials)
    with pytest.raises(TlsFailure, match="pinned"):
        connect(imap_user.endpoint(Security.STARTTLS, trust=wrong), imap_user.credentials)


def test_pin_decides_not_the_host_name(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    """Under a name the certificate lacks (127.0.0.2) the pin is accepted; CA trust is not."""
    with WireTap(dovecot.host, dovecot.tls_port, listen="127.0.0.2") as tap:
        pinned = replace(
            imap_user.endpoint(trust=PinnedCertificate(dovecot.cert_sha256)),
            host=tap.host,
            port=tap.port,
        )
        with connect(pinned, imap_user.credentials) as session:
            assert session.alive
        by_ca = replace(imap_user.endpoint(), host=tap.host, port=tap.port)
        with pytest.raises(TlsFailure, match="not trusted"):
            connect(by_ca, imap_user.credentials)


def test_untrusted_ca_is_a_tls_failure(imap_user: ImapUser) -> None:
    other = TrustedCa(trustme.CA().cert_pem.bytes().decode())
    for security in (Security.TLS, Security.STARTTLS):
        with pytest.raises(TlsFailure, match="not trusted"):
            connect(imap_user.endpoint(security, trust=other), imap_user.credentials)


def test_system_store_does_not_trust_the_test_ca(
    imap_user: ImapUser, dovecot: DovecotServer
) -> None:
    from keepstone.sources.imap import SystemTrust

    with pytest.raises(TlsFailure):
        connect(dovecot.endpoint(Security.TLS, SystemTrust()), imap_user.credentials)


def test_wrong_password(imap_user: ImapUser) -> None:
    from keepstone.sources.imap import Password

    with pytest.raises(AuthenticationFailed) as caught:
        connect(imap_user.endpoint(), Password(imap_user.name, "wrong"))
    assert not caught.value.retryable
    assert "wrong" not in caught.value.message


@pytest.mark.parametrize("which", ["default", "minimal"])
def test_non_ascii_password_is_sent_as_a_literal(
    which: str, dovecot: DovecotServer, dovecot_minimal: DovecotServer
) -> None:
    """8-bit passwords go as literals: LITERAL+ on the default server, a synchronizing literal
    (waiting for the server's go-ahead) on the minimal one."""
    from keepstone.sources.imap import Password

    server = dovecot if which == "default" else dovecot_minimal
    name, password = server.add_user(password='pässwörd ✓ "quoted" \\ back')
    with connect(server.endpoint(), Password(name, password)) as session:
        assert session.alive
    with pytest.raises(AuthenticationFailed):
        connect(server.endpoint(), Password(name, "pässwörd"))


def test_unreachable_port_and_host() -> None:
    from keepstone.sources.imap import Endpoint, Password

    closed = Endpoint("127.0.0.1", free_port(), Security.TLS, timeouts=Timeouts(connect=5))
    with pytest.raises(Unreachable) as caught:
        connect(closed, Password("a", "b"))
    assert caught.value.retryable
    nowhere = Endpoint("no-such-host.invalid", 993, Security.TLS, timeouts=Timeouts(connect=5))
    with pytest.raises(Unreachable):
        connect(nowhere, Password("a", "b"))


def test_master_user_logs_in_as_the_user(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    dovecot.seed(imap_user.name, "INBOX", [(b"Subject: mine\r\n\r\nx\r\n", (), None)])
    with connect(imap_user.endpoint(), imap_user.master) as session:
        inbox = next(f for f in session.folders() if f.wire_name == "INBOX")
        assert session.select(inbox).messages == 1
    with pytest.raises(AuthenticationFailed):
        connect(imap_user.endpoint(), replace(imap_user.master, master_password="nope"))


def test_kicked_session_is_connection_lost(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        dovecot.kick_connected(imap_user.name)
        with pytest.raises(ConnectionLost) as caught:
            session.folders()
        assert caught.value.retryable
        assert not session.alive
        with pytest.raises(ConnectionLost):
            session.folders()


def test_stalled_server_times_out(imap_user: ImapUser, dovecot: DovecotServer) -> None:
    with WireTap(dovecot.host, dovecot.port) as tap:
        endpoint = tapped(tap, dovecot)
        endpoint = replace(endpoint, timeouts=Timeouts(connect=10, command=0.5))
        with connect(endpoint, imap_user.credentials) as session:
            tap.stall()
            with pytest.raises(ConnectionLost, match="in time"):
                session.folders()
            tap.resume()


def test_greeting_never_comes_is_connection_lost() -> None:
    from keepstone.sources.imap import Endpoint, Password

    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        endpoint = Endpoint("127.0.0.1", port, Security.NONE, timeouts=Timeouts(0.5, 0.5))
        with pytest.raises(ConnectionLost):
            connect(endpoint, Password("a", "b"))


@pytest.mark.parametrize(
    ("code", "text", "after"),
    [
        (
            b"THROTTLED",
            b"Request is throttled. Suggested Backoff Time: 299961 milliseconds",
            299.961,
        ),
        (b"UNAVAILABLE", b"Try again later", None),
        (b"LIMIT", b"Too many connections, retry after 30 seconds", 30.0),
    ],
)
def test_throttling_codes_map_to_throttled(code: bytes, text: bytes, after: float | None) -> None:
    error = failure(Result([], b"NO", code, text), b"UID FETCH")
    assert isinstance(error, Throttled)
    assert error.retryable
    assert error.retry_after == after


def test_an_unchanged_mailbox_costs_three_commands(
    imap_user: ImapUser, dovecot: DovecotServer
) -> None:
    """Log in, LIST with every folder's status (LIST-STATUS), log out: what a no-change
    incremental needs; QRESYNC is enabled only once a folder is opened."""
    with WireTap(dovecot.host, dovecot.port) as tap:
        with connect(tapped(tap, dovecot), imap_user.credentials) as session:
            assert all(folder.status is not None for folder in session.folders())
        assert tap.commands == ["LOGIN", "LIST", "LOGOUT"]
        tap.reset_counts()
        with connect(tapped(tap, dovecot), imap_user.credentials) as session:
            inbox = next(f for f in session.folders() if f.wire_name == "INBOX")
            session.select(inbox)
            session.select(inbox)
        assert tap.commands == ["LOGIN", "LIST", "ENABLE", "EXAMINE", "EXAMINE", "LOGOUT"]
