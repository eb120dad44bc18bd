"""Auto-expanding archives: an expanded folder of the In-Place Archive keeps its place in the
main archive's hierarchy while its messages live in an auxiliary archive, and Graph answers
reads of it through the main archive with ``308 Permanent Redirect`` toward the auxiliary one
("Handle archive mailbox redirects"). The backup follows them (only to Graph, a few at most),
keeps the auxiliary delta link, and loses or doubles nothing."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.client import MAX_REDIRECTS, GraphClient
from keepstone.sources.graph.errors import GraphError
from keepstone.sources.graph.mail_backup import message_key
from keepstone.sources.graph.settings import GraphEndpoints
from tests.graph.mail_fixtures import Org, as_previous, org, read_mailbox
from tests.graph_fake.mailbox import Mailbox, MailFolder

__all__ = ["org"]


@dataclass
class Expanded:
    user: GraphUser
    archive: Mailbox
    folder: MailFolder
    auxiliary: Mailbox
    moved: list[str]  # the expanded folder's messages, now in the auxiliary archive


def _expanded(org: Org, n: int) -> Expanded:
    """A user whose archive has a folder "2019" of ``n`` messages, expanded to an auxiliary."""
    user, mailbox = org.add_user("archived", archive=True)
    archive = mailbox.archive
    assert archive is not None
    with org.fake.state.lock:
        folder = archive.add_folder("2019")
    moved = org.add_messages(archive, folder, n)
    with org.fake.state.lock:
        auxiliary = archive.expand_folder(folder, org.tenant.id)
    return Expanded(user, archive, folder, auxiliary, moved)


def test_an_expanded_folder_is_read_from_its_auxiliary_archive(org: Org) -> None:
    expanded = _expanded(org, 5)
    user, archive, old = expanded.user, expanded.archive, expanded.folder
    auxiliary, moved = expanded.auxiliary, expanded.moved
    recent = org.add_messages(archive, "inbox", 3)
    assert not any(m.folder_id == old.id for m in archive.messages.values())
    run = read_mailbox(org, user, [], mailbox="archive")
    key = {i: message_key(user.name, "archive", i) for i in recent + moved}
    assert set(run.mail()) == set(key.values()) and run.skipped == []
    assert run.contents == {key[i]: auxiliary.messages[i].mime for i in moved} | {
        key[i]: archive.messages[i].mime for i in recent
    }
    assert {run.mail()[key[i]].path for i in moved} == {"2019"}
    # the delta's one 308; its messages are then asked of the auxiliary archive directly
    assert org.requests.statuses[308] == 1
    assert org.requests.kinds["$value"] == len(recent) + len(moved)
    folder_state = next(i for i in run.folders().values() if i.meta["folder_id"] == old.id)
    assert f"/users/{archive.expanded[old.id]}/" in folder_state.meta["delta_link"]
    added = org.add_messages(auxiliary, old, 2)
    again = read_mailbox(org, user, as_previous(run), mailbox="archive")
    assert set(again.mail()) == set(run.mail()) | {
        message_key(user.name, "archive", i) for i in added
    }
    # the kept delta link already names the auxiliary archive: no redirect at all
    assert org.requests.statuses[308] == 0 and org.requests.kinds["$value"] == 2
    assert again.skipped == [] and set(again.contents) == {
        message_key(user.name, "archive", i) for i in added
    }


def test_a_message_gone_from_the_auxiliary_archive_is_asked_of_the_main_one(org: Org) -> None:
    """The message moved on (here: back into the main archive) between the delta and its
    download: not found where the delta was, the main archive is asked and answers."""
    expanded = _expanded(org, 2)
    user, archive, auxiliary, ids = (
        expanded.user,
        expanded.archive,
        expanded.auxiliary,
        expanded.moved,
    )
    with org.fake.state.lock:
        auxiliary.vanished.add(ids[0])  # listed by the auxiliary delta, then not found there
        archive.messages[ids[0]] = auxiliary.messages[ids[0]]
    run = read_mailbox(org, user, [], mailbox="archive")
    assert run.skipped == [] and set(run.contents) == {
        message_key(user.name, "archive", i) for i in ids
    }
    assert org.requests.statuses[404] == 1


def _client(handler: httpx.MockTransport) -> GraphClient:
    return GraphClient(
        GraphEndpoints("https://graph.example", "https://login.example"),
        lambda: "token",
        transport=handler,
        sleep=lambda _: None,
    )


def test_redirects_are_bounded_and_never_leave_graph() -> None:
    seen: list[httpx.Request] = []

    def loop(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.startswith("/away"):
            return httpx.Response(308, headers={"Location": "https://elsewhere.example/x"})
        return httpx.Response(308, headers={"Location": str(request.url)})

    client = _client(httpx.MockTransport(loop))
    try:
        with pytest.raises(GraphError) as looping:
            client.get_json("/beta/users/a/messages/m/$value")
        assert looping.value.code == "tooManyRedirects" and len(seen) == MAX_REDIRECTS + 1
        seen.clear()
        with pytest.raises(GraphError) as away:
            client.get_json("/away")
        assert away.value.code == "redirectRefused" and len(seen) == 1  # nothing sent there
    finally:
        client.close()


def test_a_relative_redirect_is_followed_with_the_token() -> None:
    def relative(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/beta/users/main/mailFolders/f":
            return httpx.Response(308, headers={"Location": "/beta/users/aux/mailFolders/f"})
        assert request.headers["Authorization"] == "Bearer token"
        return httpx.Response(200, json={"id": "f"})

    client = _client(httpx.MockTransport(relative))
    try:
        assert client.get_json("/beta/users/main/mailFolders/f") == {"id": "f"}
    finally:
        client.close()
