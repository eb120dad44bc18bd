"""IMAP backups against a real Dovecot (tests/imap_server.py), through the real API and proxy:
an Imap organization, a job, runs, and the restore points read back from the repository.

Every backup here goes through a ``WireTap`` (cleartext on loopback), so the tests count the
commands the connector sends and the bytes the server sends back.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from imapclient import IMAPClient, imap_utf7
from imapclient.exceptions import LoginError

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.engine import Item, Repository
from keepstone.proxy.backup import run_backup
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import bootstrap, open_context
from keepstone.services import catalog, restore_points, vault
from keepstone.services.context import Context
from keepstone.sources.connector import PartFailed, PreviousPoint, SourceItem
from keepstone.sources.imap import (
    ConnectionLost,
    Credentials,
    Endpoint,
    ImapAccess,
    ImapSession,
    Password,
    Security,
    Throttled,
    connect,
)
from keepstone.sources.imap import backup as imap_backup
from tests.conftest import ADMIN_PASSWORD, BASE_URL, START, Api, login
from tests.imap_server import DovecotServer, Seeded, WireTap

_serial = itertools.count(1)
WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def message(subject: str, body: str = "", *, size: int = 0, message_id: str | None = None) -> bytes:
    n = next(_serial)
    mid = message_id or f"<m{n}@example.test>"
    text = body or f"Body of message {n}.\r\n" + "x" * size
    return (
        f"From: Sender {n} <sender{n}@example.test>\r\nTo: someone@example.test\r\n"
        f"Subject: {subject}\r\nDate: Tue, 04 Mar 2025 05:06:07 +0000\r\nMessage-ID: {mid}\r\n"
        f"\r\n{text}\r\n"
    ).encode()


def seeded(
    count: int, prefix: str = "msg", flags: tuple[str, ...] = (), size: int = 0
) -> list[Seeded]:
    return [
        (message(f"{prefix} {i}", size=size), flags, WHEN + timedelta(minutes=i))
        for i in range(count)
    ]


# ----- the module's server data directory, app and proxy -----


@dataclass
class Env:
    api: Api
    ctx: Context
    proxy: ProxyWorker
    repo: dict[str, Any]
    clock: ManualClock


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir = tmp_path_factory.mktemp("imap-backup") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        patch.delenv("KEEPSTONE_ADMIN_USER", raising=False)
        clock = ManualClock(START)
        ctx = open_context(data_dir, clock)
        bootstrap(ctx, data_dir)
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    catalog.heartbeat(ctx, local.id)
    proxy = ProxyWorker(ctx, local.id, run_backup, renew_every=0)
    with TestClient(create_app(ctx), base_url=BASE_URL) as client:
        api = Api(client, login(client, "admin", ADMIN_PASSWORD))
        repo = api.get("/v2/BackupRepositories").json()[0]
        yield Env(api, ctx, proxy, repo, clock)
    ctx.db.dispose()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap_backup, "RETRY", imap_backup.Retry(attempts=4, base=0.05, cap=0.2))


@pytest.fixture
def tap(dovecot: DovecotServer) -> Iterator[WireTap]:
    with WireTap(dovecot.host, dovecot.port) as relay:
        yield relay


@pytest.fixture
def minimal_tap(dovecot_minimal: DovecotServer) -> Iterator[WireTap]:
    with WireTap(dovecot_minimal.host, dovecot_minimal.port) as relay:
        yield relay


# ----- organizations, jobs, runs -----


@dataclass
class Job:
    env: Env
    id: str
    organization: dict[str, Any]

    def run(self) -> dict[str, Any]:
        """Start the job, let the proxy run it, return its session."""
        api = self.env.api
        self.env.clock.advance(timedelta(minutes=1))  # restore points in order
        started = api.post(f"/v2/Jobs/{self.id}/Action", {"start": None})
        assert started.status_code == 200, started.text
        assert self.env.proxy.run_one()
        session: dict[str, Any] = api.get(f"/v2/Jobs/{self.id}/JobSessions").json()[0]
        return session

    def repository(self) -> Repository:
        repo = self.env.repo
        return vault.open_repository(self.env.ctx, repo["id"], repo["path"])

    def points(self) -> list[str]:
        snapshots = self.repository().snapshots()
        return [s.id for s in snapshots if s.tags.get(restore_points.TAG_JOB) == self.id]

    def log(self, session: dict[str, Any]) -> list[str]:
        items = self.env.api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()
        return [item["title"] for item in items]

    def items(self, point: str | None = None) -> dict[str, tuple[Item, bytes]]:
        repo = self.repository()
        snapshot = point or self.points()[-1]
        return {item.key: (item, b"".join(repo.read(item))) for item in repo.items(snapshot)}


def make_job(env: Env, tap: WireTap, users: list[tuple[str, str, str]], name: str) -> Job:
    settings = {
        "host": tap.host,
        "port": tap.port,
        "security": "None",
        "authentication": "Password",
        "users": [{"name": n, "login": login_, "password": pw} for n, login_, pw in users],
    }
    org = env.api.post(
        "/v2/Organizations", {"type": "Imap", "name": name, "imapSettings": settings}
    )
    assert org.status_code == 200, org.text
    job = env.api.post(
        f"/v2/Organizations/{org.json()['id']}/Jobs",
        {
            "name": f"{name} backup",
            "repositoryId": env.repo["id"],
            "schedulePolicy": {"type": "ManualOnly", "retryEnabled": False},
        },
    )
    assert job.status_code == 200, job.text
    return Job(env, job.json()["id"], org.json())


def user_of(server: DovecotServer) -> tuple[str, str]:
    return server.add_user()


def change_password(server: DovecotServer, user: str, password: str) -> None:
    """Change ``user``'s password on the server (a new passwd file: Dovecot re-reads it)."""
    path = server.root / "users" / user
    owner = path.stat()
    temp = path.with_name(f".{user}.new")
    temp.write_text(f"{user}:{{PLAIN}}{password}\n")
    os.chown(temp, owner.st_uid, owner.st_gid)
    old, server.passwords[user] = server.passwords[user], password
    temp.replace(path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # Dovecot looks at the file again within a second
        with IMAPClient(server.host, server.port, ssl=False) as client:
            try:
                client.login(user, old)
            except LoginError:
                return
        time.sleep(0.2)
    raise AssertionError("the server kept the old password")


# ----- the server's own view, to compare with -----

View = dict[tuple[str, int, int], tuple[bytes, frozenset[str], datetime]]


def server_view(server: DovecotServer, user: str) -> View:
    """Every message of ``user``: (wire name, UIDVALIDITY, UID) -> (body, flags, INTERNALDATE)."""
    view: View = {}
    with server.client(user) as client:
        client.folder_encode = False
        client.normalise_times = False
        for flags, _, wire in client.list_folders():
            if b"\\Noselect" in flags or b"\\NoSelect" in flags:
                continue
            name = wire.decode() if isinstance(wire, bytes) else wire
            view.update(_folder_view(client, name))
    return view


def _folder_view(client: IMAPClient, name: str) -> View:
    selected = client.select_folder(name, readonly=True)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    uids = client.search("ALL")
    found: View = {}
    if not uids:
        return found
    for uid, data in client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]).items():
        flags = frozenset(f.decode() for f in data[b"FLAGS"]) - {"\\Recent"}
        found[(name, uidvalidity, int(uid))] = (data[b"BODY[]"], flags, data[b"INTERNALDATE"])
    return found


def backed_up(job: Job, user: str, point: str | None = None) -> View:
    view: View = {}
    for item, content in job.items(point).values():
        if item.user != user or item.kind != "mail":
            continue
        meta = item.meta
        assert item.key == f"{user}/imap/{meta['folder_wire']}/{meta['uidvalidity']}/{meta['uid']}"
        date = datetime.fromisoformat(meta["internal_date"])
        assert item.mtime == date.timestamp() and item.size == len(content)
        where = (meta["folder_wire"], meta["uidvalidity"], meta["uid"])
        assert where not in view
        view[where] = (content, frozenset(meta["imap_flags"]), date)
    return view


def folders_of(job: Job, user: str) -> dict[str, dict[str, Any]]:
    return {
        item.meta["folder_wire"]: {"path": item.path, **item.meta}
        for item, _ in job.items().values()
        if item.user == user and item.kind == "folder"
    }


def fill_mailbox(server: DovecotServer, user: str) -> None:
    """Special-use folders, nested and non-ASCII names, unseen and flagged messages."""
    server.seed(user, "INBOX", [*seeded(3, "inbox"), *seeded(2, "seen", ("\\Seen", "$Label1"))])
    server.seed(user, "Sent", seeded(2, "sent", ("\\Seen", "\\Answered")))
    with server.client(user) as client:
        for name in ("Données", "Données/Été 2024", "Archive/2024"):
            client.create_folder(name)
    # the fixture's seeding sends the folder's wire name (modified UTF-7) as it is
    server.seed(
        user, imap_utf7.encode("Données/Été 2024").decode(), seeded(2, "été", ("\\Flagged",))
    )
    server.seed(user, "Archive/2024", seeded(1, "old"))


# ----- tests -----


def test_first_backup_is_the_servers_mailbox_byte_for_byte(
    env: Env, dovecot: DovecotServer, tap: WireTap
) -> None:
    user, password = user_of(dovecot)
    fill_mailbox(dovecot, user)
    before = server_view(dovecot, user)
    job = make_job(env, tap, [(user, user, password)], "first")
    session = job.run()
    assert session["status"] == "Success", session
    assert backed_up(job, user) == before
    assert server_view(dovecot, user) == before  # nothing marked \Seen (BODY.PEEK)
    folders = folders_of(job, user)
    assert {f["path"] for f in folders.values()} >= {
        "Inbox",
        "Sent",
        "Données",
        "Données/Été 2024",
        "Archive/2024",
    }
    sent = next(f for f in folders.values() if f["path"] == "Sent")
    assert sent["role"] == "\\Sent" and sent["highestmodseq"] and sent["uidnext"] == 3
    wire = next(w for w, f in folders.items() if f["path"] == "Données/Été 2024")
    assert wire != "Données/Été 2024"  # modified UTF-7 on the wire, names as data
    item = next(i for i, _ in job.items().values() if i.meta.get("folder_wire") == wire)
    assert item.path == "Données/Été 2024" and item.meta["flags"] == "F"
    assert item.meta["subject"].startswith("été") and item.meta["message_id"].startswith("<m")


def test_changes_then_a_second_backup_is_a_full_view_and_the_first_is_kept(
    env: Env, dovecot: DovecotServer, tap: WireTap
) -> None:
    user, password = user_of(dovecot)
    fill_mailbox(dovecot, user)
    big = [(message("big", size=60_000), ("\\Seen",), WHEN) for _ in range(3)]
    dovecot.seed(user, "Projects", big)
    job = make_job(env, tap, [(user, user, password)], "changes")
    assert job.run()["status"] == "Success"
    first_point, first = job.points()[-1], server_view(dovecot, user)

    with dovecot.client(user) as client:
        client.select_folder("INBOX")
        uids = sorted(client.search("ALL"))
        client.add_flags(uids[0], ["\\Flagged"])  # re-flagged
        client.remove_flags(uids[3], ["\\Seen"])
        client.move(uids[1], "Archive/2024")  # moved
        client.delete_messages(uids[2])  # expunged
        client.expunge()
        client.create_folder("New folder")  # new folder
        client.rename_folder("Projects", "Projects 2026")  # renamed, with big messages
    dovecot.seed(user, "New folder", seeded(1, "brand new"))
    dovecot.seed(user, "INBOX", seeded(1, "new in inbox"))
    tap.reset_counts()
    assert job.run()["status"] == "Success"
    second = server_view(dovecot, user)
    assert backed_up(job, user) == second
    assert backed_up(job, user, first_point) == first
    # The renamed folder's and the moved message's bodies were found again, not downloaded.
    assert tap.bytes_down < 60_000


@pytest.mark.parametrize("variant", ["default", "minimal"])
def test_work_counts_unchanged_and_new_messages(
    env: Env, variant: str, request: pytest.FixtureRequest
) -> None:
    """N vs 4N messages: an unchanged mailbox costs the same commands and no body; new
    messages cost the same commands too (one batch either way)."""
    server: DovecotServer = request.getfixturevalue(
        "dovecot" if variant == "default" else "dovecot_minimal"
    )
    tap: WireTap = request.getfixturevalue("tap" if variant == "default" else "minimal_tap")
    unchanged: list[list[str]] = []
    added: list[list[str]] = []
    for n in (25, 100):
        user, password = user_of(server)
        server.seed(user, "INBOX", seeded(n, "inbox"))
        server.seed(user, "Archive", seeded(n, "archive", ("\\Seen",)))
        job = make_job(env, tap, [(user, user, password)], f"count-{variant}-{n}")
        assert job.run()["status"] == "Success"
        server.seed(user, "Archive", seeded(n, "more"))
        tap.reset_counts()
        assert job.run()["status"] == "Success"
        added.append(list(tap.commands))
        assert backed_up(job, user) == server_view(server, user)
        tap.reset_counts()
        assert job.run()["status"] == "Success"
        unchanged.append(list(tap.commands))
        assert tap.bytes_down < 20_000  # no body
        assert "UID FETCH" not in unchanged[-1] or variant == "minimal"
    assert unchanged[0] == unchanged[1], unchanged
    assert sorted(added[0]) == sorted(added[1]), added
    if variant == "default":  # one LIST with statuses: nothing selected
        assert not {"SELECT", "EXAMINE", "STATUS"} & set(unchanged[0]), unchanged[0]


def test_uidvalidity_reset_remaps_without_downloading(
    env: Env, dovecot: DovecotServer, tap: WireTap
) -> None:
    user, password = user_of(dovecot)
    dovecot.seed(user, "INBOX", seeded(5, "inbox", size=30_000))
    job = make_job(env, tap, [(user, user, password)], "uidvalidity")
    assert job.run()["status"] == "Success"
    dovecot.reset_uidvalidity(user, "INBOX")
    dovecot.seed(user, "INBOX", seeded(1, "after the reset"))
    tap.reset_counts()
    assert job.run()["status"] == "Success"
    assert backed_up(job, user) == server_view(dovecot, user)
    assert tap.bytes_down < 30_000  # only the new small message's body


def test_a_connection_cut_mid_backup_loses_and_duplicates_nothing(
    env: Env, dovecot: DovecotServer, tap: WireTap
) -> None:
    user, password = user_of(dovecot)
    for folder in ("INBOX", "Archive", "Sent"):
        dovecot.seed(user, folder, seeded(20, folder, size=5_000))
    job = make_job(env, tap, [(user, user, password)], "cut")
    tap.cut_after(bytes_down=150_000)
    session = job.run()
    assert session["status"] == "Success", session
    assert tap.cuts == 1
    assert backed_up(job, user) == server_view(dovecot, user)
    assert len(backed_up(job, user)) == 60


def test_a_wrong_password_is_a_warning_for_that_user_only(
    env: Env, dovecot: DovecotServer, tap: WireTap
) -> None:
    alice, alice_pw = user_of(dovecot)
    bob, bob_pw = user_of(dovecot)
    dovecot.seed(alice, "INBOX", seeded(2, "alice"))
    dovecot.seed(bob, "INBOX", seeded(2, "bob"))
    job = make_job(env, tap, [(alice, alice, alice_pw), (bob, bob, bob_pw)], "password")
    change_password(dovecot, bob, "changed-on-the-server")
    session = job.run()
    assert session["status"] == "Warning", session
    assert backed_up(job, alice) == server_view(dovecot, alice)
    assert not backed_up(job, bob)
    warned = [line for line in job.log(session) if bob in line]
    assert warned and "cannot be read" in warned[0], job.log(session)


def test_an_unreachable_server_fails_the_run_with_a_clear_message(
    env: Env, dovecot: DovecotServer
) -> None:
    user, password = user_of(dovecot)
    with WireTap(dovecot.host, dovecot.port) as relay:
        job = make_job(env, relay, [(user, user, password)], "unreachable")
    session = job.run()
    assert session["status"] == "Failed", session
    assert any(f"{relay.host}:{relay.port} cannot be used" in line for line in job.log(session))


def test_8bit_and_malformed_messages_are_kept_byte_for_byte(
    env: Env, dovecot: DovecotServer, tap: WireTap
) -> None:
    user, password = user_of(dovecot)
    odd = [
        b"Subject: caf\xe9 \xff\r\nFrom: \xc3\xa9t\xc3\xa9 <a@b>\r\n\r\n"
        b"8-bit body \x80\x81\xfe\r\n",
        b"no headers at all, just text\r\n",
        b"Subject: =?utf-8?q?bad=ZZ?=\r\nMessage-ID: <\r\n\r\nbody\r\n",
        b"Subject: folded\r\n continues\r\nX: " + b"y" * 5000 + b"\r\n\r\nbody\r\n",
    ]
    dovecot.seed(user, "INBOX", [(body, (), WHEN) for body in odd])
    job = make_job(env, tap, [(user, user, password)], "odd")
    assert job.run()["status"] == "Success"
    view = backed_up(job, user)
    assert view == server_view(dovecot, user)
    assert sorted(body for body, _, _ in view.values()) == sorted(odd)


def test_browse_and_save_an_imap_restore_point_through_the_v8_api(
    env: Env, dovecot: DovecotServer, tap: WireTap
) -> None:
    """End to end: the organization, a job, a run, then the restore point explored and every
    message saved through /v8/RestoreSessions: the server's bytes."""
    user, password = user_of(dovecot)
    fill_mailbox(dovecot, user)
    job = make_job(env, tap, [(user, user, password)], "browse")
    assert job.run()["status"] == "Success"
    api = env.api
    explored = api.post(f"/v8/Jobs/{job.id}/explore", {"type": "Vex"})
    assert explored.status_code == 201, explored.text
    base = f"/v8/RestoreSessions/{explored.json()['id']}/Organization/Mailboxes"
    mailbox = next(m for m in api.rows(base) if m["name"] == user)
    folders = {f["path"] for f in api.rows(f"{base}/{mailbox['id']}/Folders?limit=1000")}
    assert {"Inbox", "Sent", "Données/Été 2024", "Archive/2024"} <= folders
    bodies = sorted(body for body, _, _ in server_view(dovecot, user).values())
    saved = []
    for entry in api.rows(f"{base}/{mailbox['id']}/Items?limit=1000"):
        response = api.post(f"{base}/{mailbox['id']}/Items/{entry['id']}/save")
        assert response.status_code == 200, response.text
        saved.append(response.content)
    assert sorted(saved) == bodies


def test_a_throttled_server_is_waited_for_as_it_asks() -> None:
    retry = imap_backup.Retry(attempts=3, base=0.5, cap=4.0, max_wait=60.0)
    assert retry.delay(1, Throttled("slow down", retry_after=7)) == 7
    assert retry.delay(1, Throttled("slow down", retry_after=900)) == 60.0
    delays = [retry.delay(n, ConnectionLost("bye")) for n in range(1, 6)]
    assert all(0.5 <= d <= 4.0 for d in delays) and delays[-1] >= 2.0  # capped, jittered


def test_mailboxes_are_read_in_parallel_within_the_connection_limit(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five mailboxes, at most two connections: the first two readers must be connected at the
    same time (a barrier that only two simultaneous logins pass), never more than two."""
    users = [user_of(dovecot) for _ in range(5)]
    for name, _ in users:
        dovecot.seed(name, "INBOX", seeded(3, name))
    monkeypatch.setattr(imap_backup, "BUFFER_BYTES", 1)  # readers wait for the run to consume
    both = threading.Barrier(2, timeout=30)
    lock = threading.Lock()
    open_now, most, logins = [0], [0], [0]

    def counted(endpoint: Endpoint, credentials: Credentials) -> ImapSession:
        session = connect(endpoint, credentials)
        with lock:
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])
            logins[0] += 1
            first_two = logins[0] <= 2
        if first_two:
            both.wait()
        closing = session.close

        def close() -> None:
            with lock:
                open_now[0] -= 1
            closing()

        session.close = close  # type: ignore[method-assign]
        return session

    access = ImapAccess(
        dovecot.endpoint(Security.NONE),
        {name: Password(name, password) for name, password in users},
        max_connections=2,
    )
    connector = imap_backup.ImapBackup(access, on_skip=print, connector=counted)
    try:
        connector.start([(name, ["mailbox"]) for name, _ in users], PreviousPoint())
        got = {name: list(connector.items(name, "mailbox")) for name, _ in users}
    finally:
        connector.close()
    assert most[0] == 2 and logins[0] == 5 and open_now[0] == 0
    assert all(sum(i.kind == "mail" for i in items) == 3 for items in got.values())


class ThrottledOnce:
    """A session whose first body fetch gives one message, then ``NO [THROTTLED]``."""

    throttled = 0

    def __init__(self, session: ImapSession) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def fetch_messages(self, uids: Any, **kwargs: Any) -> Iterator[Any]:
        messages = self._session.fetch_messages(uids, **kwargs)
        if ThrottledOnce.throttled:
            yield from messages
            return
        yield next(messages)
        ThrottledOnce.throttled += 1
        raise Throttled("NO [THROTTLED] slow down", retry_after=0.05)


def test_throttling_mid_folder_resumes_where_it_was(dovecot: DovecotServer) -> None:
    user, password = user_of(dovecot)
    dovecot.seed(user, "INBOX", seeded(8, "inbox"))
    dovecot.seed(user, "Archive", seeded(4, "archive"))
    sessions: list[ImapSession] = []

    def flaky(endpoint: Endpoint, credentials: Credentials) -> ImapSession:
        sessions.append(connect(endpoint, credentials))
        return ThrottledOnce(sessions[-1])  # type: ignore[return-value]

    access = ImapAccess(dovecot.endpoint(Security.NONE), {user: Password(user, password)})
    connector = imap_backup.ImapBackup(access, on_skip=print, connector=flaky)
    try:
        connector.start([(user, ["mailbox"])], PreviousPoint())
        items = [i for i in connector.items(user, "mailbox") if i.kind == "mail"]
    finally:
        connector.close()
    assert ThrottledOnce.throttled == 1 and len(sessions) == 1  # the same session, waited
    bodies = {(i.meta["folder_wire"], i.meta["uid"]): i.open().read() for i in items}
    assert len(bodies) == len(items) == 12  # each message once
    expected = {
        (wire, uid): body for (wire, _, uid), (body, _, _) in server_view(dovecot, user).items()
    }
    assert bodies == expected


def test_a_mailbox_that_keeps_failing_is_a_part_failure_that_keeps_its_last_state(
    dovecot: DovecotServer,
) -> None:
    user, password = user_of(dovecot)
    dovecot.seed(user, "INBOX", seeded(3, "inbox"))
    access = ImapAccess(dovecot.endpoint(Security.NONE), {user: Password(user, password)})

    def read(connector: imap_backup.ImapBackup, previous: PreviousPoint) -> list[SourceItem]:
        got: list[SourceItem] = []
        try:
            connector.start([(user, ["mailbox"])], previous)
            got.extend(connector.items(user, "mailbox"))
        finally:
            connector.close()
        return got

    first = read(imap_backup.ImapBackup(access, on_skip=print), PreviousPoint())
    previous = PreviousPoint(
        [
            Item(
                i.key,
                i.user,
                i.kind,
                i.path,
                i.size,
                i.mtime,
                i.mode,
                i.meta | {"change_token": i.change_token},
            )
            for i in first
        ]
    )
    dovecot.seed(user, "INBOX", seeded(1, "new"))

    def dropping(endpoint: Endpoint, credentials: Credentials) -> ImapSession:
        session = connect(endpoint, credentials)

        def lost(*_: object, **__: object) -> None:
            raise ConnectionLost("BYE going away")

        session.select = lost  # type: ignore[method-assign,assignment]
        return session

    carried: list[SourceItem] = []
    with pytest.raises(PartFailed, match="BYE going away"):
        connector = imap_backup.ImapBackup(access, on_skip=print, connector=dropping)
        try:
            connector.start([(user, ["mailbox"])], previous)
            for item in connector.items(user, "mailbox"):
                carried.append(item)
        finally:
            connector.close()
    assert sorted(i.key for i in carried) == sorted(i.key for i in first)  # the last state
