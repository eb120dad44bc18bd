"""GraphTarget: an Office365 organization as a put-back target, over GraphAccess (its own
client per put-back, closed after), users by name, mail into mailboxes, refusals first."""

from __future__ import annotations

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.engine import Item
from keepstone.sources.graph import access as access_module
from keepstone.sources.graph.access import GraphAccess
from keepstone.sources.graph.restore import GraphTarget
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.targets import Collision, Placement
from tests.graph.drive_fixtures import drive_files
from tests.graph.restore_fixtures import (
    Contents,
    Org,
    graph_item,
    mime,
    new_org,
    semantic,
    tree,
)
from tests.graph.test_drive_restore import graph_item as file_item
from tests.graph_fake.server import FakeGraph


@pytest.fixture
def trusting(graph_fake: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    monkeypatch.setenv("SSL_CERT_FILE", str(graph_fake.ca_pem))
    return graph_fake


def _target(fake: FakeGraph) -> tuple[GraphTarget, Org, Contents, list[Item]]:
    org = new_org(fake, "adele", "bob")
    access = GraphAccess(GraphEndpoints(fake.graph_url, fake.login_url), org.credentials)
    target = GraphTarget(access, list(org.users.values()))
    contents = Contents()
    items = [contents.add(graph_item("adele", n, mime(n)), mime(n)) for n in range(3)]
    return target, org, contents, items


def test_users_by_name_and_mail_put_back_in_place_and_elsewhere(trusting: FakeGraph) -> None:
    target, org, contents, items = _target(trusting)
    assert sorted(target.users()) == [
        "adele@contoso.onmicrosoft.com",
        "bob@contoso.onmicrosoft.com",
    ]
    adele, bob = (org.users[n].name for n in ("adele", "bob"))
    outcomes = list(target.put_back(items, contents, Placement(adele, None, Collision.SKIP)))
    assert [o.restored for o in outcomes] == [True] * 3
    again = list(target.put_back(items, contents, Placement(adele, None, Collision.SKIP)))
    assert [(o.restored, o.error) for o in again] == [(False, None)] * 3  # skipped: there
    elsewhere = list(target.put_back(items, contents, Placement(bob, "From/Adele", Collision.SKIP)))
    assert all(o.restored for o in elsewhere)
    landed = tree(org.mailboxes["bob"])["From/Adele"]
    assert sorted(semantic(m.mime)["Subject"] for m in landed) == sorted(
        semantic(mime(n))["Subject"] for n in range(3)
    )


def test_one_client_per_put_back_closed_after(
    trusting: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, org, contents, items = _target(trusting)
    adele = org.users["adele"].name
    closed: list[int] = []
    real_close = access_module.GraphClient.close

    def close(self: access_module.GraphClient) -> None:
        closed.append(id(self))
        real_close(self)

    monkeypatch.setattr(access_module.GraphClient, "close", close)
    outcomes = target.put_back(items, contents, Placement(adele, None, Collision.KEEP_BOTH))
    assert closed == []  # open while its outcomes are being given
    assert len(list(outcomes)) == 3
    assert len(closed) == 1
    with pytest.raises(InvalidInput, match="folder"):
        target.put_back(items, contents, Placement(adele, "../x", Collision.SKIP))
    assert len(closed) == 2  # a refusal closes the client it opened


def test_refusals(trusting: FakeGraph) -> None:
    target, org, contents, items = _target(trusting)
    adele = org.users["adele"].name
    with pytest.raises(InvalidInput, match="userName"):
        target.put_back(items, contents, Placement("nobody@x", None, Collision.SKIP))
    file_item = Item("adele/graph-drive/x", adele, "file", "a.txt", 1, 0.0, 0o600)
    with pytest.raises(InvalidInput, match="ids"):
        target.put_back([*items, file_item], contents, Placement(adele, None, Collision.SKIP))


def test_files_go_into_the_users_onedrive_through_the_same_target(trusting: FakeGraph) -> None:
    target, org, contents, _ = _target(trusting)
    drives = {
        n: trusting.state.add_drive(trusting.state.tenants[org.tenant.id].users[u.graph_id])
        for n, u in org.users.items()
    }
    adele, bob = org.users["adele"].name, org.users["bob"].name
    files = [
        contents.add(file_item(adele, "Docs/a.txt", b"alpha"), b"alpha"),
        contents.add(file_item(adele, "b.bin", bytes(range(256)) * 40), bytes(range(256)) * 40),
    ]
    outcomes = list(target.put_back(files, contents, Placement(adele, None, Collision.SKIP)))
    assert [(o.restored, o.error) for o in outcomes] == [(True, None)] * 2
    assert sorted(drive_files(drives["adele"]).values()) == [
        ("Docs/a.txt", b"alpha"),
        ("b.bin", bytes(range(256)) * 40),
    ]
    elsewhere = list(target.put_back(files, contents, Placement(bob, "From Adele", Collision.SKIP)))
    assert all(o.restored for o in elsewhere)
    assert sorted(p for p, _ in drive_files(drives["bob"]).values()) == [
        "From Adele/Docs/a.txt",
        "From Adele/b.bin",
    ]


def test_an_organization_that_cannot_be_reached_fails_every_item(trusting: FakeGraph) -> None:
    target, org, contents, items = _target(trusting)
    org.app.secrets[:] = ["changed since"]
    adele = org.users["adele"].name
    trusting.state.add_drive(
        trusting.state.tenants[org.tenant.id].users[org.users["adele"].graph_id]
    )
    for put in (items, [contents.add(file_item(adele, "a.txt", b"a"), b"a")]):
        outcomes = list(target.put_back(put, contents, Placement(adele, None, Collision.SKIP)))
        assert [o.restored for o in outcomes] == [False] * len(put)
        assert all("AADSTS7000215" in o.why for o in outcomes)
