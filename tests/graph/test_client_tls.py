"""TLS of the Graph connector: extra CAs only from SSL_CERT_FILE, checking never off."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keepstone.sources.graph.settings import EndpointError, GraphEndpoints
from keepstone.sources.graph.tls import TlsSettingsError, graph_tls_context
from tests.graph.client_helpers import Answer, Scripted, scripted_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    with scripted_server(tmp_path_factory.mktemp("tls")) as running:
        yield running


def test_a_private_ca_is_refused_without_ssl_cert_file(server: Scripted) -> None:
    server.serve(lambda seen: Answer(200, body=b"ok"))
    with (
        httpx.Client(verify=graph_tls_context({})) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(server.url + "/")
    assert server.seen == []


def test_a_private_ca_is_trusted_with_ssl_cert_file(server: Scripted) -> None:
    server.serve(lambda seen: Answer(200, body=b"ok"))
    context = graph_tls_context({"SSL_CERT_FILE": str(server.ca_pem)})
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    with httpx.Client(verify=context) as client:
        assert client.get(server.url + "/").content == b"ok"


def test_an_unreadable_ssl_cert_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TlsSettingsError, match="SSL_CERT_FILE"):
        graph_tls_context({"SSL_CERT_FILE": str(bad)})


def test_endpoints_come_from_options_then_environment_then_defaults() -> None:
    assert GraphEndpoints.resolve(environ={}) == GraphEndpoints(
        "https://graph.microsoft.com", "https://login.microsoftonline.com"
    )
    env = {"KEEPSTONE_GRAPH_URL": "https://g.test/", "KEEPSTONE_LOGIN_URL": "https://l.test"}
    assert GraphEndpoints.resolve(environ=env) == GraphEndpoints("https://g.test", "https://l.test")
    chosen = GraphEndpoints.resolve("https://o.test", None, environ=env)
    assert chosen.graph_url == "https://o.test" and chosen.login_url == "https://l.test"
    assert chosen.authority("contoso.onmicrosoft.com") == "https://l.test/contoso.onmicrosoft.com"
    assert chosen.scope == "https://o.test/.default"


@pytest.mark.parametrize(
    "url", ["http://graph.test", "graph.test", "https://", "https://g.test/?x=1"]
)
def test_endpoints_must_be_https(url: str) -> None:
    with pytest.raises(EndpointError, match="--graph-url"):
        GraphEndpoints(graph_url=url)


def test_a_tenant_cannot_reshape_the_authority() -> None:
    with pytest.raises(EndpointError):
        GraphEndpoints().authority("../evil")
