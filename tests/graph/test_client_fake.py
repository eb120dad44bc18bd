"""The Graph client against the strict fake (tests/graph_fake): tokens from its login host with
a secret and with a certificate, then `/users` paged to the end, nothing fake-specific in the
client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from keepstone.sources.graph.auth import AppCredentials, MsalHttpClient, TokenSource
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.errors import TokenError
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from tests.graph_fake.server import FakeGraph

DOMAIN = "contoso.onmicrosoft.com"


@contextmanager
def _connect(fake: FakeGraph, credentials: AppCredentials) -> Iterator[GraphClient]:
    endpoints = GraphEndpoints(fake.graph_url, fake.login_url)
    tls = graph_tls_context({"SSL_CERT_FILE": str(fake.ca_pem)})
    token = TokenSource(endpoints, credentials, MsalHttpClient(tls))
    client = GraphClient(endpoints, token, tls)
    try:
        yield client
    finally:  # open keep-alive connections would hold the fake's shutdown
        client.close()
        token.close()


# A secret only: the fake (graph-fake READY 7a10d9a) compares `x5t#S256` unpadded, while MSAL
# sends the base64url thumbprint with its `=` padding (msal/oauth2cli/assertion.py), which Entra
# accepts; the certificate assertion is checked against our own server in test_client_auth.py.
def test_the_client_gets_a_token_and_pages_users_to_the_end(graph_fake: FakeGraph) -> None:
    tenant = graph_fake.state.add_tenant(DOMAIN)
    for n in range(250):
        graph_fake.state.add_user(tenant, f"user{n:03}")
    app = graph_fake.state.add_app(tenant, secret="s3cret")
    credentials = AppCredentials(DOMAIN, app.client_id, secret="s3cret")
    with _connect(graph_fake, credentials) as client:
        organization = client.get_json("/v1.0/organization")
        assert organization["value"][0]["id"] == tenant.id
        walk = client.iterate_pages("/v1.0/users?$top=7&$select=id,userPrincipalName")
        users = [user for page in walk for user in page]
    assert len(users) == len({u["id"] for u in users}) == 250
    assert walk.requests == 36  # ceil(250 / 7): one request per page
    assert walk.delta_link is None


def test_a_wrong_secret_is_refused_by_the_fake(graph_fake: FakeGraph) -> None:
    tenant = graph_fake.state.add_tenant(DOMAIN)
    app = graph_fake.state.add_app(tenant, secret="right")
    credentials = AppCredentials(DOMAIN, app.client_id, secret="wrong")
    with (
        _connect(graph_fake, credentials) as client,
        pytest.raises(TokenError, match="AADSTS7000215"),
    ):
        client.get_json("/v1.0/organization")
