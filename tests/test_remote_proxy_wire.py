"""A work package crosses the wire whole: repositories (directory, S3 with its credentials),
IMAP access (endpoint, trust, every login kind that can travel) and Graph access (endpoints,
application credentials, the cached users, vendor ids); an OAuth2 IMAP login travels as its
client (the proxy asks the authority itself), a bare token callable cannot and says so. Secrets
stay out of every repr."""

from __future__ import annotations

import json

from keepstone.engine.s3location import S3Location
from keepstone.proxy.channel import GraphWork, RepositoryPlace, WorkPackage
from keepstone.services import proxy_wire
from keepstone.services.oauth_tokens import TokenSource, token_source
from keepstone.sources.graph.access import GraphAccess, GraphUser
from keepstone.sources.graph.auth import AppCredentials
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.imap.model import (
    Endpoint,
    ImapAccess,
    MasterUser,
    OAuth2,
    Password,
    PinnedCertificate,
    Security,
    Timeouts,
    TrustedCa,
)

SECRETS = ("repo-password", "s3-secret", "imap-password", "master-secret", "app-secret")


def places() -> dict[str, RepositoryPlace]:
    s3 = S3Location("http://127.0.0.1:9000", "us-east-1", "bucket", "folder", "key", "s3-secret")
    return {
        "a": RepositoryPlace("a", "/srv/a", None, "repo-password"),
        "b": RepositoryPlace("b", "/srv/cache", s3, None),
    }


def through_the_wire(package: WorkPackage) -> WorkPackage:
    return proxy_wire.decode_work(json.loads(json.dumps(proxy_wire.encode_work(package))))


def test_repositories_and_imap_access_arrive_whole() -> None:
    imap = ImapAccess(
        Endpoint(
            "imap.example.test", 993, Security.TLS, TrustedCa("-----PEM-----"), Timeouts(3, 9)
        ),
        {
            "alice": Password("alice@example.test", "imap-password"),
            "bob": MasterUser("bob", "admin", "master-secret", "*"),
        },
        max_connections=7,
    )
    package = WorkPackage(places(), imap=imap)
    assert through_the_wire(package) == package
    pinned = ImapAccess(Endpoint("h", 143, Security.STARTTLS, PinnedCertificate("ab" * 32)), {}, 1)
    assert through_the_wire(WorkPackage({}, imap=pinned)).imap == pinned
    assert not any(secret in repr(package) for secret in SECRETS)


def test_graph_access_arrives_whole() -> None:
    graph = GraphWork(
        GraphAccess(
            GraphEndpoints("https://graph.example.test", "https://login.example.test"),
            AppCredentials("contoso.onmicrosoft.com", "app-id", secret="app-secret"),
        ),
        [GraphUser("alice@contoso.test", "g-1", "Alice", "User", True, True, False)],
        {"alice@contoso.test": "vendor-1"},
    )
    package = WorkPackage(places(), graph=graph)
    assert through_the_wire(package) == package
    assert not any(secret in repr(package) for secret in SECRETS)


def test_an_oauth2_imap_login_travels_as_its_client() -> None:
    source = token_source("https://idp.example.test/token", "backup-app", "client-secret", "imap")
    imap = ImapAccess(Endpoint("h", 993, Security.TLS), {"alice": OAuth2("alice", source)}, 2)
    arrived = through_the_wire(WorkPackage(places(), imap=imap)).imap
    assert arrived is not None
    login = arrived.logins["alice"]
    assert isinstance(login, OAuth2) and login.login == "alice"
    assert isinstance(login.token, TokenSource) and login.token.client == source.client
    assert "client-secret" not in repr(source.client) + repr(arrived)


def test_a_token_callable_that_is_not_a_client_cannot_travel_and_says_so() -> None:
    imap = ImapAccess(
        Endpoint("h", 993, Security.TLS), {"alice": OAuth2("alice", lambda: "token")}, 1
    )
    arrived = through_the_wire(WorkPackage(places(), imap=imap))
    assert arrived.imap is None and "OAuth2" in arrived.unavailable
    assert arrived.repositories == places()
