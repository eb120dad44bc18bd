"""The proxy API (``/_proxy/v1``) in-process, on both catalogs: registration with one-time tokens,
credentials that open this API and nothing else, a run worked by a remote proxy's ``Worker``
over HTTP (``ServerChannel``) byte for byte, a proxy confined to its own claims, a taken-over run
refusing its first proxy, work packages only over TLS or loopback, and clear 400s."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from keepstone.api.app import create_app
from keepstone.api.proxy_link import SUBJECT_ID_MAX, SUBJECT_NAME_MAX
from keepstone.clock import ManualClock
from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.executor import StopRun
from keepstone.proxy.remote import ServerChannel
from keepstone.proxy.worker import ProxyWorker, Worker
from keepstone.services import catalog, licensing, proxies, proxy_link, proxy_wire, runs
from keepstone.services.context import Context, new_id
from keepstone.services.task_sessions import UserTally
from keepstone.store.tables import JobSession, LogItem, Proxy, TaskSession
from tests.backup.test_backup_restore import by_subject, everything_in, explore
from tests.conftest import BASE_URL, Api, SharedApp, catalog_text
from tests.local_org import Organization, api, organization
from tests.proxy_process import local_job, local_repository

__all__ = ["api", "organization"]

LOOPBACK = ("127.0.0.1", 50000)
FACTS = {
    "snapshotId": "a" * 64,
    "time": "2026-06-10T10:00:00+00:00",
    "tags": {},
    "itemCount": 1,
    "size": 1,
    "hasMail": True,
    "hasFiles": False,
}


@pytest.fixture
def app(ctx: Context, shared_app: SharedApp) -> FastAPI:
    return shared_app.adopt(create_app(ctx))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The API's client (for the ``api`` fixture): a peer on this host, as a local proxy is."""
    with TestClient(app, base_url=BASE_URL, client=LOOPBACK) as test_client:
        yield test_client


def register(app: FastAPI, ctx: Context, name: str) -> tuple[str, TestClient]:
    """A remote proxy registered through the API: its id, and a client with its credential."""
    token = proxy_link.new_registration_token(ctx)
    link = TestClient(app, base_url=BASE_URL, client=LOOPBACK)
    answer = link.post("/_proxy/v1/register", json={"token": token, "name": name})
    assert answer.status_code == 200, answer.text
    link.headers["Authorization"] = f"Bearer {answer.json()['credential']}"
    return str(answer.json()["proxyId"]), link


def remote_job(api: Api, organization: Organization, proxy_id: str, name: str = "far") -> Any:
    """A started job of the organization into a repository of the proxy ``proxy_id``."""
    repo = local_repository(api, organization.root.parent / name, proxy_id)
    job = local_job(api, organization, repo, name)
    assert api.get(f"/v2/Jobs/{job}").json()["proxyId"] == proxy_id
    assert api.post(f"/v2/Jobs/{job}/Action", {"start": None}).status_code == 200
    return {"id": job}


def claimed_run(
    app: FastAPI, ctx: Context, api: Api, organization: Organization
) -> tuple[TestClient, dict[str, Any], str]:
    """A remote proxy's client, the run it claimed, and the run's path in the proxy API."""
    proxy_id, link = register(app, ctx, "edge-1")
    remote_job(api, organization, proxy_id)
    claimed: dict[str, Any] = link.post("/_proxy/v1/claim").json()
    return link, claimed, f"/_proxy/v1/runs/{claimed['sessionId']}/{claimed['claim']}"


def test_a_registration_token_registers_one_proxy_once_within_a_day(
    app: FastAPI, ctx: Context, clock: ManualClock, data_dir: Any
) -> None:
    link = TestClient(app, base_url=BASE_URL, client=LOOPBACK)
    token = proxy_link.new_registration_token(ctx)
    assert token not in catalog_text(ctx, data_dir)  # only its digest is kept
    first = link.post("/_proxy/v1/register", json={"token": token, "name": "edge-1"})
    assert first.status_code == 200, first.text
    credential = first.json()["credential"]
    assert len(credential) > 60
    with ctx.db.read() as s:
        row = s.get(Proxy, first.json()["proxyId"])
        assert row is not None and not row.is_local and row.host_name == "edge-1"
        assert row.credential_hash == hashlib.sha256(credential.encode()).hexdigest()
    assert credential not in catalog_text(ctx, data_dir)

    again = link.post("/_proxy/v1/register", json={"token": token, "name": "edge-2"})
    assert again.status_code == 401
    assert "used already" in again.json()["message"]
    assert "keepstone admin proxy-token" in again.json()["message"]
    wrong = link.post("/_proxy/v1/register", json={"token": "ksreg_nothing", "name": "edge-2"})
    assert (wrong.status_code, "not valid" in wrong.json()["message"]) == (401, True)

    late = proxy_link.new_registration_token(ctx)
    clock.advance(timedelta(hours=24, seconds=1))
    expired = link.post("/_proxy/v1/register", json={"token": late, "name": "edge-2"})
    assert (expired.status_code, "expired" in expired.json()["message"]) == (401, True)
    with ctx.db.read() as s:  # the refused registrations made no proxy
        assert s.scalar(select(func.count()).select_from(Proxy).where(~Proxy.is_local)) == 1


def test_registration_binds_the_proxy_row_that_awaits_it(app: FastAPI, ctx: Context) -> None:
    waiting = new_id()
    with ctx.db.write() as s:  # what POST /vN/Proxies makes: a remote row without a credential
        s.add(
            Proxy(
                id=waiting,
                host_name="edge-9",
                description="added",
                port=9193,
                threads_number=2,
                is_local=False,
                heartbeat_at=None,
            )
        )
    proxy_id, _ = register(app, ctx, "edge-9")
    assert proxy_id == waiting
    link = TestClient(app, base_url=BASE_URL, client=LOOPBACK)
    token = proxy_link.new_registration_token(ctx)
    taken = link.post("/_proxy/v1/register", json={"token": token, "name": "edge-9"})
    assert taken.status_code == 409 and "registered already" in taken.json()["message"]


def test_a_proxy_credential_opens_the_proxy_api_only(app: FastAPI, ctx: Context, api: Api) -> None:
    _, link = register(app, ctx, "edge-1")
    credential = link.headers["Authorization"]
    for path in ("/v8/Jobs", "/v2/Proxies", "/v8/JobSessions"):
        refused = link.get(path)
        assert refused.status_code == 401, path
        assert "proxy API only" in refused.json()["message"]
    em = link.get("/api/jobs", headers={"X-RestSvcSessionId": credential.split()[1]})
    assert em.status_code == 401
    # and a user's access token is no proxy credential
    user = link.post("/_proxy/v1/claim", headers={"Authorization": f"Bearer {api.token}"})
    assert user.status_code == 401 and "proxy credential" in user.json()["message"]
    bare = link.post("/_proxy/v1/claim", headers={"Authorization": ""})
    assert bare.status_code == 401


def test_a_remote_proxy_works_a_run_over_http_byte_for_byte(
    app: FastAPI,
    ctx: Context,
    api: Api,
    organization: Organization,
    worker: ProxyWorker,
) -> None:
    proxy_id, link = register(app, ctx, "edge-1")
    job = remote_job(api, organization, proxy_id)
    assert not worker.run_one()  # the built-in proxy does not take the remote proxy's job
    remote = Worker(ServerChannel(link, proxy_id, ctx.clock), renew_every=0)
    assert remote.channel.heartbeat(0) == proxy_link.REMOTE_THREADS  # its load and version
    assert remote.run_one() and not remote.run_one()
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert session["status"] == "Success", session
    titles = [i["title"] for i in api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()]
    assert any("on proxy edge-1" in t for t in titles), titles
    assert len(api.get(f"/v2/RestorePoints?jobId={job['id']}").json()) == 1
    assert everything_in(api, explore(api, job)) == by_subject(organization)
    # each user's success log item came with its user (from start_task): it licenses the user
    successes = [t for t in titles if t.startswith("[Success] User ")]
    licensed = {u.name for u in licensing.licensed_users(ctx)}
    assert (
        successes and licensed and all(f"User {name}:" in " ".join(successes) for name in licensed)
    )
    assert remote.channel._subjects == {}  # each task's user forgotten once it ended
    with ctx.db.read() as s:
        row = s.get(Proxy, proxy_id)
        assert row is not None and row.version and row.memory_percent is not None
    [listed] = [p for p in api.rows("/v8/Proxies") if p["id"] == proxy_id]
    assert (listed["hostName"], listed["status"]) == ("edge-1", "Online")


def test_a_proxy_cannot_touch_another_proxys_claim(
    app: FastAPI, ctx: Context, api: Api, organization: Organization
) -> None:
    owner_id, owner = register(app, ctx, "edge-1")
    _, other = register(app, ctx, "edge-2")
    remote_job(api, organization, owner_id)
    claimed = owner.post("/_proxy/v1/claim")
    assert claimed.status_code == 200, claimed.text
    run = f"/_proxy/v1/runs/{claimed.json()['sessionId']}/{claimed.json()['claim']}"
    assert other.post("/_proxy/v1/claim").status_code == 204  # nothing queued for edge-2
    with ctx.db.read() as s:
        logged = s.scalar(select(func.count()).select_from(LogItem))
    calls: list[tuple[str, dict[str, Any]]] = [
        ("work", {}),
        ("renew", {"statistics": {}, "progress": 1}),
        ("log", {"status": "Warning", "message": "not mine"}),
        ("tasks", {"id": "u", "name": "u"}),
        ("record", {"repositoryId": "r", "facts": FACTS}),
        ("end", {"status": "Success", "message": "done", "statistics": {}, "progress": 1}),
    ]
    for what, body in calls:
        refused = other.post(f"{run}/{what}", json=body)
        assert refused.status_code == 403, (what, refused.text)
        assert "not claimed by this proxy" in refused.json()["message"]
    unknown = other.post("/_proxy/v1/runs/nothing/0.0/end", json=calls[-1][1])
    assert unknown.status_code == 404
    with ctx.db.read() as s:  # nothing was written
        session = s.get(JobSession, claimed.json()["sessionId"])
        assert session is not None and (session.status, session.claimed_by) == (
            "Running",
            owner_id,
        )
        assert s.scalar(select(func.count()).select_from(LogItem)) == logged


def test_a_taken_over_run_continues_its_session_and_refuses_its_first_proxy(
    app: FastAPI, ctx: Context, api: Api, organization: Organization, clock: ManualClock
) -> None:
    first_id, first = register(app, ctx, "edge-1")
    second_id, second = register(app, ctx, "edge-2")
    job = remote_job(api, organization, first_id)
    dead = ServerChannel(first, first_id, ctx.clock)
    lost = dead.claim()
    assert lost is not None
    clock.advance(runs.LEASE + timedelta(seconds=1))  # the first proxy stopped renewing
    assert runs.reap_lost_runs(ctx) == 1
    [queued] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert (queued["status"], queued["retryCount"]) == ("Queued", 0)
    titles = [i["title"] for i in api.get(f"/v2/JobSessions/{queued['id']}/LogItems").json()]
    assert "Proxy edge-1 stopped renewing; the run continues on another proxy" in titles[-1]

    # An administrator moves the job to the second proxy (pools do this by themselves).
    assert api.put(f"/v2/Jobs/{job['id']}", {"proxyId": second_id}).status_code in (200, 204)
    assert Worker(ServerChannel(second, second_id, ctx.clock), renew_every=0).run_one()
    [done] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert (done["id"], done["status"]) == (queued["id"], "Success")

    # The first proxy comes back: every call of its lost claim is refused, nothing is written.
    assert dead.renew(lost, {}, 5) is runs.RunState.LOST
    with pytest.raises(StopRun):
        dead.log(lost, SessionStatus.WARNING, "late", None)
    with pytest.raises(StopRun):
        dead.work(lost)
    dead.end(lost, SessionStatus.SUCCESS, "late", {}, 5, retryable=True)  # ignored
    assert api.get(f"/v2/JobSessions/{done['id']}").json()["status"] == "Success"
    assert len(api.get(f"/v2/RestorePoints?jobId={job['id']}").json()) == 1
    assert everything_in(api, explore(api, job)) == by_subject(organization)


def test_a_work_package_travels_over_tls_or_loopback_only(
    app: FastAPI, ctx: Context, api: Api, organization: Organization
) -> None:
    link, claimed, run = claimed_run(app, ctx, api, organization)
    far = TestClient(app, base_url="http://keepstone.test", client=("192.0.2.7", 40000))
    far.headers["Authorization"] = link.headers["Authorization"]
    refused = far.post(f"{run}/work")
    assert refused.status_code == 403 and "TLS or loopback" in refused.json()["message"]
    tls = TestClient(app, base_url=BASE_URL, client=("192.0.2.7", 40000))  # https://
    tls.headers["Authorization"] = link.headers["Authorization"]
    assert tls.post(f"{run}/work").status_code == 200
    near = link.post(f"{run}/work")
    assert near.status_code == 200 and near.headers["cache-control"] == "no-store"
    [place] = near.json()["repositories"]
    assert place["id"] == claimed["scope"]["repositoryId"] and place["s3"] is None


def test_bad_calls_get_a_clear_400_and_change_nothing(
    app: FastAPI, ctx: Context, api: Api, organization: Organization
) -> None:
    link, claimed, run = claimed_run(app, ctx, api, organization)
    started = link.post(f"{run}/tasks", json={"id": "user-1", "name": "alice"})
    assert started.status_code == 200, started.text
    task = started.json()["taskId"]
    too_many = {
        "status": "Success",
        "items": 2**31,
        "totalBytes": 1,
        "readBytes": 1,
        "writtenBytes": 1,
    }
    long_subject = {"id": "user-1", "name": "n" * (SUBJECT_NAME_MAX + 1)}
    # beyond what the catalog's columns keep: PostgreSQL refused these with a 500 before
    for what, body, named in (
        ("renew", {"statistics": {}, "progress": -1}, "progress"),
        ("renew", {"statistics": {}, "progress": 2**31}, "progress"),
        ("log", {"status": "Happy", "message": "x"}, "status"),
        ("log", {"status": "Warning", "message": "x", "subject": long_subject}, "name"),
        ("tasks", {"id": "u" * (SUBJECT_ID_MAX + 1), "name": "alice"}, "id"),
        ("tasks", long_subject, "name"),
        (f"tasks/{task}/finish", too_many, "items"),
        ("record", {"repositoryId": claimed["scope"]["repositoryId"], "facts": {}}, "facts"),
        ("end", {"status": "Success"}, "message"),
        (
            "end",
            {"status": "Success", "message": "m", "statistics": {}, "progress": 2**31},
            "progress",
        ),
    ):
        answer = link.post(f"{run}/{what}", json=body)
        assert answer.status_code == 400, (what, answer.text)
        assert named in answer.json()["message"], (what, answer.json())
    heartbeat = link.post("/_proxy/v1/heartbeat", json={"cpuPercent": 400})
    assert heartbeat.status_code == 400 and "cpuPercent" in heartbeat.json()["message"]
    with ctx.db.read() as s:
        session = s.get(JobSession, claimed["sessionId"])
        assert session is not None and session.progress == 0 and session.status == "Running"
        tasks = s.scalars(select(TaskSession).where(TaskSession.session_id == session.id)).all()
        assert [(t.name, t.status, t.items) for t in tasks] == [("alice", "Running", 0)]
        logged = s.scalars(select(LogItem).where(LogItem.session_id == session.id)).all()
        assert all(item.subject_name != long_subject["name"] for item in logged)


def test_a_heartbeat_reports_load_version_and_runs(app: FastAPI, ctx: Context) -> None:
    proxy_id, link = register(app, ctx, "edge-1")
    body = {"cpuPercent": 12.5, "memoryPercent": 40.0, "version": "9.9.9", "activeRuns": 0}
    answer = link.post("/_proxy/v1/heartbeat", json=body)
    assert answer.status_code == 200 and answer.json() == {
        "threadsNumber": proxy_link.REMOTE_THREADS
    }
    proxy = catalog.get_proxy(ctx, proxy_id)
    assert (proxy.cpu_percent, proxy.memory_percent, proxy.version) == (12.5, 40.0, "9.9.9")
    assert proxies.proxy_status(proxy, ctx.clock.now()) == "Online"


def test_a_claim_lost_and_taken_again_by_the_same_proxy_is_a_new_claim(
    app: FastAPI, ctx: Context, api: Api, organization: Organization, clock: ManualClock
) -> None:
    """A proxy frozen past its lease, whose run it then claims again (a pool of one): the old
    thread's calls name the old claim and are refused; the new claim works the run once."""
    proxy_id, link = register(app, ctx, "edge-1")
    job = remote_job(api, organization, proxy_id)
    channel = ServerChannel(link, proxy_id, ctx.clock)
    old = channel.claim()
    assert old is not None
    clock.advance(runs.LEASE + timedelta(seconds=1))
    assert runs.reap_lost_runs(ctx) == 1
    clock.advance(timedelta(seconds=1))
    new = channel.claim()
    assert new is not None and (new.session_id, new.attempt) == (old.session_id, old.attempt)
    assert channel.renew(old, {}, 1) is runs.RunState.LOST
    stale = link.post(
        f"/_proxy/v1/runs/{old.session_id}/{proxy_wire.claim_token(old)}/log",
        json={"status": "Warning", "message": "from the frozen thread"},
    )
    assert stale.status_code == 409 and "has ended" in stale.json()["message"]
    assert channel.renew(new, {}, 1) is runs.RunState.CONTINUE
    Worker(channel, renew_every=0).execute(new)
    [done] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert done["status"] == "Success"
    assert len(api.get(f"/v2/RestorePoints?jobId={job['id']}").json()) == 1


def test_the_users_of_a_run_stopped_midway_are_forgotten_at_its_end(
    app: FastAPI, ctx: Context, api: Api, organization: Organization
) -> None:
    """A remote proxy remembers each started task's user for its success log item; a run that
    ends without finishing its tasks (stopped, taken over) leaves nothing behind."""
    proxy_id, link = register(app, ctx, "edge-1")
    remote_job(api, organization, proxy_id)
    channel = ServerChannel(link, proxy_id, ctx.clock)
    run = channel.claim()
    assert run is not None
    channel.start_task(run, ("u1", "alice"))
    finished = channel.start_task(run, ("u2", "bob"))
    channel.start_task(run, ("u3", "carol"))
    tally = UserTally(1, 1, 1, 1)
    channel.finish_task(run, finished, SessionStatus.SUCCESS, tally, "", "User bob: 1 message")
    assert len(channel._subjects) == 2
    channel.end(run, SessionStatus.FAILED, "stopped", {}, 0, retryable=False)
    assert channel._subjects == {}
