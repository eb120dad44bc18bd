"""The Office365 connector run by the real executor (``proxy.backup.Backup`` through the proxy
worker, a real repository): several mailboxes read in parallel from the fake over HTTPS, the
stored MIME compared byte for byte with the fake's, incrementals after adds, deletes, flag
changes and moves, a mailbox that cannot be read (a per-user warning, never a failed run), and
the requests a no-change run costs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from keepstone.clock import ManualClock
from keepstone.engine import Item
from keepstone.proxy.backup import Backup
from keepstone.proxy.executor import Outcome, RunContext
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import restore_points, vault
from keepstone.services.context import Context
from keepstone.sources.connector import PartFailed, PreviousPoint, Skipped
from keepstone.sources.graph.access import GraphAccess, GraphUser
from keepstone.sources.graph.auth import AppCredentials
from keepstone.sources.graph.connector import Office365Backup
from keepstone.sources.graph.errors import TokenError
from keepstone.sources.graph.mail_backup import message_key
from tests.conftest import Api
from tests.graph.mail_fixtures import Org, make_org
from tests.graph_fake.mailbox import Mailbox
from tests.graph_fake.server import FakeGraph


@dataclass
class Env:
    api: Api
    ctx: Context
    repo: dict[str, Any]
    clock: ManualClock
    proxy_id: str
    job_id: str


@pytest.fixture
def env(
    api: Api,
    ctx: Context,
    repo: dict[str, Any],
    clock: ManualClock,
    worker: ProxyWorker,
    job: dict[str, Any],
) -> Env:
    """The server's catalog, API, local proxy and an entire-organization job
    (tests/conftest.py); the job's organization is a stand-in its runs do not read."""
    return Env(api, ctx, repo, clock, worker.proxy_id, job["id"])


@pytest.fixture
def m365(graph_fake: FakeGraph) -> Org:
    return make_org(graph_fake)


@dataclass
class Job:
    """A job whose runs read the fake's tenant through Office365Backup (until the Office365
    organization type lands, the catalog's organization is a stand-in the executor ignores)."""

    env: Env
    id: str
    org: Org
    users: list[GraphUser]

    def run(self) -> dict[str, Any]:
        def execute(run: RunContext) -> Outcome:
            return Backup(
                run,
                lambda on_skip: Office365Backup(
                    self.org.access, self.users, on_skip, run.check, connect=self.org.client
                ),
            ).execute()

        api = self.env.api
        self.env.clock.advance(timedelta(minutes=1))
        started = api.post(f"/v2/Jobs/{self.id}/Action", {"start": None})
        assert started.status_code == 200, started.text
        assert ProxyWorker(self.env.ctx, self.env.proxy_id, execute, renew_every=0).run_one()
        session: dict[str, Any] = api.get(f"/v2/Jobs/{self.id}/JobSessions").json()[0]
        return session

    def log(self, session: dict[str, Any]) -> list[str]:
        items = self.env.api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()
        return [item["title"] for item in items]

    def stored(self) -> dict[str, tuple[Item, bytes]]:
        repo = vault.open_repository(self.env.ctx, self.env.repo["id"], self.env.repo["path"])
        points = [s.id for s in repo.snapshots() if s.tags.get(restore_points.TAG_JOB) == self.id]
        return {i.key: (i, b"".join(repo.read(i))) for i in repo.items(points[-1])}


def _messages(stored: dict[str, tuple[Item, bytes]]) -> dict[str, tuple[Item, bytes]]:
    return {k: v for k, v in stored.items() if v[0].kind == "mail"}


def _expected(user: GraphUser, mailbox: Mailbox) -> dict[str, bytes]:
    return {message_key(user.name, "primary", i): m.mime for i, m in mailbox.messages.items()}


def test_backup_then_incrementals_through_the_executor(env: Env, m365: Org) -> None:
    org = m365
    people = [org.add_user(f"user{n}") for n in range(3)]
    for n, (_, mailbox) in enumerate(people):
        with org.fake.state.lock:
            inbox = mailbox.folder("inbox")
            assert inbox is not None
            nested = mailbox.add_folder("Clients", parent=inbox)
        org.add_messages(mailbox, inbox, 10 + n)
        org.add_messages(mailbox, nested, 3)
    nomail = org.fake.state.add_user(org.tenant, "nomail")
    users = [u for u, _ in people] + [GraphUser(nomail.user_principal_name, nomail.id)]
    job = Job(env, env.job_id, org, users)

    first = job.run()
    assert first["status"] == "Warning"  # the user without a mailbox, not a failed run
    assert any("nomail" in t and "cannot be read" in t for t in job.log(first))
    stored = _messages(job.stored())
    expected: dict[str, bytes] = {}
    for user, mailbox in people:
        expected |= _expected(user, mailbox)
    assert {k: data for k, (_, data) in stored.items()} == expected  # byte for byte
    assert org.requests.kinds["$value"] == len(expected)

    user, mailbox = people[0]
    ids = list(mailbox.messages)
    state = org.fake.state
    with state.lock:
        archive = mailbox.folder("archive")
        assert archive is not None
        mailbox.delete_message(ids[0])
        mailbox.update_message(ids[1], state.clock.now(), is_read=True, flag_status="flagged")
        mailbox.move_message(ids[2], archive, state.clock.now())
    added = org.add_messages(mailbox, "inbox", 2)
    second = job.run()
    assert second["status"] == "Warning"
    stored = _messages(job.stored())
    expected = {}
    for other, box in people:
        expected |= _expected(other, box)
    assert {k: data for k, (_, data) in stored.items()} == expected
    assert org.requests.kinds["$value"] == len(added)  # only the new messages were read
    flagged = stored[message_key(user.name, "primary", ids[1])][0]
    assert flagged.meta["flags"] == "FS" and flagged.meta["flag_status"] == "flagged"
    moved = stored[message_key(user.name, "primary", ids[2])][0]
    assert moved.path == "Archive" and moved.meta["role"] == "archive"

    third = job.run()  # nothing changed
    folders = 6  # 5 well-known folders and Clients
    for other, _ in people:
        assert org.requests.per_user[other.graph_id] <= folders + 2
    assert org.requests.kinds["$value"] == 0
    assert len(_messages(job.stored())) == len(expected)
    assert third["status"] == "Warning"


def test_connector_reads_mailboxes_in_parallel_and_the_archive(m365: Org) -> None:
    org = m365
    people = [org.add_user(f"p{n}", archive=n == 0) for n in range(6)]
    for _, mailbox in people:
        org.add_messages(mailbox, "inbox", 8)
    people[1][1].purpose = "shared"  # a shared mailbox is a user's, read the same way
    archived_user, archived = people[0]
    assert archived.archive is not None
    archive_ids = org.add_messages(archived.archive, "inbox", 4)
    skipped: list[Skipped] = []
    connector = Office365Backup(
        org.access, [u for u, _ in people], skipped.append, connect=org.client, workers=3
    )
    plan: list[tuple[str, list[Any]]] = [(u.name, ["mailbox"]) for u, _ in people]
    plan[0] = (archived_user.name, ["mailbox", "archive"])
    try:
        connector.start(plan, PreviousPoint())
        found = {u.name: [i for i in connector.items(u.name, "mailbox")] for u, _ in people}
        archive_items = list(connector.items(archived_user.name, "archive"))
        # a part the user lacks (no OneDrive provisioned) fails alone, as a per-user warning
        with pytest.raises(PartFailed, match="has no OneDrive"):
            list(connector.items(archived_user.name, "onedrive"))
    finally:
        connector.close()
    assert all(len([i for i in items if i.kind == "mail"]) == 8 for items in found.values())
    assert {i.key for i in archive_items if i.kind == "mail"} == {
        message_key(archived_user.name, "archive", i) for i in archive_ids
    }
    assert skipped == []
    assert max(org.requests.most_in_flight.values()) <= 4


def test_refused_application_credentials_fail_the_read(
    m365: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong secret is the organization's problem, not a user's: the read raises the token
    error (the executor fails the run), and the secret is in no message."""
    monkeypatch.setenv("SSL_CERT_FILE", str(m365.fake.ca_pem))
    user, _ = m365.add_user("adele")
    wrong = GraphAccess(
        m365.access.endpoints,
        AppCredentials(m365.access.credentials.tenant, m365.app.client_id, secret="wrong-Zq8"),
    )
    connector = Office365Backup(wrong, [user], print)  # GraphAccess.client(), as in production
    try:
        connector.start([(user.name, ["mailbox"])], PreviousPoint())
        with pytest.raises(TokenError, match="AADSTS7000215") as refused:
            list(connector.items(user.name, "mailbox"))
    finally:
        connector.close()
    assert "wrong-Zq8" not in str(refused.value)
