"""The `graph_fake` fixture: the strict fake Graph served over HTTPS once per test module.

Each test gets a fresh `FakeState` (tenants, apps, users, clock) swapped into the running servers,
so tests do not see each other's data while the servers start only once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.graph.fake_client import client
from tests.graph.fake_mail import Mail
from tests.graph_fake.server import FakeGraph, start_fake
from tests.graph_fake.state import FakeState


@pytest.fixture(scope="module")
def _fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGraph]:
    fake = start_fake(FakeState(), tmp_path_factory.mktemp("graph-fake-tls"))
    yield fake
    fake.stop()


@pytest.fixture
def graph_fake(_fake_server: FakeGraph) -> FakeGraph:
    """The running fake with a fresh state: `.graph_url`, `.login_url`, `.ca_pem`, `.state`."""
    _fake_server.reset()
    return _fake_server


@pytest.fixture
def ca_pem(graph_fake: FakeGraph) -> Path:
    return graph_fake.ca_pem


@pytest.fixture
def mail(graph_fake: FakeGraph) -> Iterator[Mail]:
    """A tenant with one mailbox, an app token and a client trusting the fake's CA."""
    with client(graph_fake) as http:
        yield Mail(graph_fake, http)
