"""Every Graph client of one application in a tenant shares one throttling discipline (issue 13
finding (a), the general case): a ``Retry-After`` a drive backup was given holds an organization
sync's drive lookups on another client, as Graph counts both against the same (app, tenant)
resource units; before, the sync sent inside the backup's penalty."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta

import pytest

from keepstone.clock import SystemClock
from keepstone.sources.graph import directory
from keepstone.sources.graph.access import GraphAccess
from keepstone.sources.graph.auth import AppCredentials
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.drive_backup import DRIVE_SCOPE
from keepstone.sources.graph.errors import GraphNotFound
from keepstone.sources.graph.settings import GraphEndpoints
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.sharepoint import ResourceUnitLimits

DOMAIN = "contoso.onmicrosoft.com"
SECRET = "s3cret"
DEADLINE = 30.0


def _drive_lookups(graph: GraphClient, user_id: str, count: int) -> None:
    """A drive backup's first requests (the user has no OneDrive: 404 each)."""
    for _ in range(count):
        with contextlib.suppress(GraphNotFound):
            graph.get_json(f"/v1.0/users/{user_id}/drive", scope=DRIVE_SCOPE)


def test_a_backups_retry_after_holds_the_syncs_lookups(
    graph_fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(graph_fake.ca_pem))
    state = graph_fake.state
    state.clock = SystemClock()  # real time on both sides
    tenant = state.add_tenant(DOMAIN)
    for n in range(2):
        state.add_mailbox(state.add_user(tenant, f"user{n:03}"))
    app = state.add_app(tenant, secret=SECRET)
    access = GraphAccess(
        GraphEndpoints(graph_fake.graph_url, graph_fake.login_url),
        AppCredentials(DOMAIN, app.client_id, secret=SECRET),
    )
    book = state.resource_units
    book.limits = ResourceUnitLimits(per_minute=2, minute=timedelta(seconds=2))
    with access.client() as backup, access.client() as sync:
        assert backup.throttling is sync.throttling
        first = next(iter(tenant.users.values())).id
        worker = threading.Thread(target=_drive_lookups, args=(backup, first, 3))
        worker.start()
        deadline = time.monotonic() + DEADLINE
        while book.refused == 0 and time.monotonic() < deadline:  # the third is refused
            time.sleep(0.01)
        assert book.refused == 1
        time.sleep(0.6)  # well inside the 2 s penalty, past any request in flight
        counter = directory.Counter()
        users = [u for page in directory.list_users(sync, counter) for u in page]
        found = directory.with_mailboxes_and_drives(sync, users, counter)
        worker.join(DEADLINE)
    assert book.premature == 0, book.premature
    assert len(found) == 2 and not any(u.has_onedrive for u in found)
