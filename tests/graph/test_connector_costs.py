"""What the connector costs besides Graph's requests, counted (profiling 20 mailboxes through
the executor showed both): TLS handshakes (connections are kept for the connector's parallel
reads, not re-opened past httpx's default 20) and token look-ups (one MSAL call per token, not
one per request under the token source's lock)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from keepstone.sources.connector import PreviousPoint, Skipped
from keepstone.sources.graph.auth import MsalHttpClient, TokenSource
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.connector import Office365Backup
from keepstone.sources.graph.tls import graph_tls_context
from tests.graph.mail_fixtures import Org, org

__all__ = ["org"]


class _Counting(ssl.SSLSocket):
    handshakes = 0

    def do_handshake(self, block: bool = False) -> None:
        type(self).handshakes += 1
        super().do_handshake(block)


@contextmanager
def _production_client(org: Org, tls: ssl.SSLContext) -> Iterator[GraphClient]:
    """A client as GraphAccess.client makes it (its own connection pool, no test transport)."""
    tokens = TokenSource(org.access.endpoints, org.access.credentials, MsalHttpClient(tls))
    client = GraphClient(org.access.endpoints, tokens, tls=tls)
    try:
        yield client
    finally:
        client.close()
        tokens.close()


def test_parallel_mailboxes_reuse_their_connections(org: Org) -> None:
    tls = graph_tls_context({"SSL_CERT_FILE": str(org.fake.ca_pem)})
    tls.sslsocket_class = _Counting
    people = [org.add_user(f"p{n}") for n in range(8)]
    for _, mailbox in people:
        org.add_messages(mailbox, "inbox", 40)
    skipped: list[Skipped] = []
    connector = Office365Backup(
        org.access,
        [u for u, _ in people],
        skipped.append,
        connect=lambda: _production_client(org, tls),
        workers=8,
    )
    plan: list[tuple[str, list[Any]]] = [(u.name, ["mailbox"]) for u, _ in people]
    try:
        connector.start(plan, PreviousPoint())
        mail = [
            i for u, _ in people for i in connector.items(u.name, "mailbox") if i.kind == "mail"
        ]
    finally:
        connector.close()
    assert len(mail) == 8 * 40 and skipped == []
    # 8 mailboxes x (40 $value + 8 listing) requests, at most 8 x 4 in flight: about one
    # connection per request in flight (with httpx's 20 kept alive: a handshake every few)
    assert _Counting.handshakes <= 8 * 4 + 2, _Counting.handshakes


def test_a_token_is_looked_up_once_while_it_is_fresh(org: Org) -> None:
    tls = graph_tls_context({"SSL_CERT_FILE": str(org.fake.ca_pem)})
    tokens = TokenSource(org.access.endpoints, org.access.credentials, MsalHttpClient(tls))
    calls = 0
    acquire = tokens._app.acquire_token_for_client

    def counted(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return acquire(**kwargs)

    tokens._app.acquire_token_for_client = counted
    try:
        assert len({tokens() for _ in range(200)}) == 1
        assert calls == 1 and org.fake.state.tokens_issued == 1
    finally:
        tokens.close()
