"""Dovecot for the IMAP tests: each variant started once per session (on first use), a fresh
user per test, and the server's log shown when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from keepstone.sources.imap import Endpoint, MasterUser, Password, Security
from tests.imap_server import DovecotServer, WireTap


@dataclass(frozen=True)
class ImapUser:
    """A user of one test server, with the ways in the adapter needs."""

    server: DovecotServer
    name: str
    password: str

    @property
    def credentials(self) -> Password:
        return Password(self.name, self.password)

    @property
    def master(self) -> MasterUser:
        return self.server.master(self.name)

    def endpoint(self, security: Security = Security.TLS, **kwargs: object) -> Endpoint:
        return self.server.endpoint(security, **kwargs)  # type: ignore[arg-type]


def _server(variant: str) -> Iterator[DovecotServer]:
    server = DovecotServer(variant=variant)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """CONDSTORE, QRESYNC, MULTIAPPEND, SPECIAL-USE folders; separator ``/``."""
    yield from _server("default")


@pytest.fixture(scope="session")
def dovecot_minimal() -> Iterator[DovecotServer]:
    """No CONDSTORE, QRESYNC, LIST-STATUS, ESEARCH, MULTIAPPEND (as Microsoft 365)."""
    yield from _server("minimal")


@pytest.fixture(scope="session")
def dovecot_dot() -> Iterator[DovecotServer]:
    """Hierarchy separator ``.``."""
    yield from _server("dot")


def new_user(server: DovecotServer) -> ImapUser:
    name, password = server.add_user()
    return ImapUser(server, name, password)


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> ImapUser:
    """A fresh user (empty mailbox with the special-use folders) on the default server."""
    return new_user(dovecot)


@pytest.fixture
def minimal_user(dovecot_minimal: DovecotServer) -> ImapUser:
    return new_user(dovecot_minimal)


@pytest.fixture
def dot_user(dovecot_dot: DovecotServer) -> ImapUser:
    return new_user(dovecot_dot)


@pytest.fixture
def wiretap(dovecot: DovecotServer) -> Iterator[WireTap]:
    """A relay to the default server's plain port (use ``Security.NONE`` or ``STARTTLS``)."""
    with WireTap(dovecot.host, dovecot.port) as tap:
        yield tap


def tapped(tap: WireTap, server: DovecotServer, security: Security = Security.NONE) -> Endpoint:
    """An endpoint through ``tap`` (plain port: cleartext or STARTTLS)."""
    base = server.endpoint(security)
    return Endpoint(base.host, tap.port, base.security, base.trust, base.timeouts)
