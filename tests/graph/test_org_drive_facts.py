"""Issue 13 finding (b): only Graph's documented "no OneDrive" answer (404, "mysite not found")
clears a user's OneDrive in the organization cache. A lookup throttled, failing with a 5xx or
refused otherwise keeps what the previous sync found (a first sync: "has one", the backup finds
out), after retries that wait out every Retry-After; the same holds for the mailbox facts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keepstone.domain.throttle import Discipline
from keepstone.services import catalog, m365_directory, m365_settings
from keepstone.sources.graph import directory
from tests.graph.org_fixtures import (
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    org_body,
    org_env,
    tenant_with_users,
)
from tests.graph.test_throttle_fake_batch import fake_time_client
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import Tenant

__all__ = ["_org_fake", "_org_server", "org_env"]

DRIVE = r"^/v1\.0/users/[^/]+/drive$"


def _facts(
    fake: FakeGraph, tenant: Tenant, previous: dict[str, directory.DirectoryUser]
) -> list[directory.DirectoryUser]:
    with fake_time_client(fake, tenant, Discipline()) as graph:
        counter = directory.Counter()
        users = [u for page in directory.list_users(graph, counter) for u in page]
        return sorted(
            directory.with_mailboxes_and_drives(graph, users, counter, previous),
            key=lambda u: u.name,
        )


def _tenant(fake: FakeGraph) -> Tenant:
    """user000 and user001 with a OneDrive, user002 without."""
    tenant = tenant_with_users(fake, 3)
    with fake.state.lock:
        del fake.state.drives[
            next(u.id for u in tenant.users.values() if u.display_name.endswith("002"))
        ]
    return tenant


def test_a_throttled_lookup_is_retried_after_its_retry_after(graph_fake: FakeGraph) -> None:
    tenant = _tenant(graph_fake)
    faults = graph_fake.state.faults
    rule = faults.add(FaultRule(DRIVE, 503, every=2, retry_after=3))
    found = _facts(graph_fake, tenant, {})
    assert rule.fired > 0 and faults.premature == []
    assert [u.has_onedrive for u in found] == [True, True, False]
    assert all(u.drive_id for u in found[:2]) and found[2].drive_id is None


@pytest.mark.parametrize("status", [503, 507])
def test_an_unanswered_lookup_keeps_the_previous_facts(graph_fake: FakeGraph, status: int) -> None:
    tenant = _tenant(graph_fake)
    first = _facts(graph_fake, tenant, {})
    # the previous sync saw user001 without a OneDrive: an unanswered lookup keeps that too
    previous = {u.graph_id: u for u in first} | {
        first[1].graph_id: replace(first[1], has_onedrive=False, drive_id=None, drive_url=None)
    }
    graph_fake.state.faults.add(FaultRule(DRIVE, status, retry_after=1 if status == 503 else None))
    again = _facts(graph_fake, tenant, previous)
    assert [(u.has_onedrive, u.drive_id) for u in again] == [
        (True, first[0].drive_id),
        (False, None),
        (False, None),
    ]
    assert again[0].drive_url == first[0].drive_url
    new = _facts(graph_fake, tenant, {})  # never synced: "has one", for the backup to find out
    assert [u.has_onedrive for u in new] == [True, True, True]


def test_the_sync_keeps_the_cached_onedrive_and_a_404_clears_it(org_env: OrgEnv) -> None:
    fake = org_env.fake
    tenant = tenant_with_users(fake, 2)
    app = fake.state.add_app(tenant, secret=SECRET)
    org_id = org_env.api.post("/v8/Organizations", org_body(app)).json()["id"]
    row = catalog.get_organization(org_env.ctx, org_id)

    def sync() -> dict[str, tuple[bool, str | None]]:
        result = m365_directory.sync(org_env.ctx, org_id, m365_settings.access_of(org_env.ctx, row))
        assert result.errors == []
        users = m365_directory.cached_users(org_env.ctx, org_id)
        return {u.name.split("@")[0]: (u.has_onedrive, u.drive_id) for u in users}

    before = sync()
    assert all(has for has, _ in before.values())
    rule = fake.state.faults.add(FaultRule(DRIVE, 507))  # not an answer about the drive
    assert sync() == before and rule.fired == 2
    fake.state.faults.rules.clear()
    with fake.state.lock:
        del fake.state.drives[
            next(u.id for u in tenant.users.values() if u.display_name.endswith("000"))
        ]
    after = sync()
    assert after["user000"] == (False, None) and after["user001"] == before["user001"]
