"""An Imap organization's run on a remote proxy: the work package brings the endpoint and the
users' logins over the proxy API, and the restore point is the server's mailbox byte for byte
(a real Dovecot, the remote proxy's ``Worker`` over HTTP in-process)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from keepstone.clock import ManualClock
from keepstone.proxy.remote import ServerChannel
from keepstone.proxy.worker import ProxyWorker, Worker
from keepstone.services.context import Context
from tests.conftest import Api
from tests.imap.conftest import dovecot
from tests.imap.test_backup import Env, backed_up, fill_mailbox, make_job, server_view
from tests.imap_server import DovecotServer, WireTap
from tests.proxy_process import local_repository
from tests.test_remote_proxy_link import app, client, register

__all__ = ["app", "client", "dovecot"]


def test_an_imap_run_on_a_remote_proxy_is_the_mailbox_byte_for_byte(
    app: FastAPI,
    ctx: Context,
    api: Api,
    clock: ManualClock,
    worker: ProxyWorker,
    dovecot: DovecotServer,
    tmp_path: Path,
) -> None:
    proxy_id, link = register(app, ctx, "edge-imap")
    repo_id = local_repository(api, tmp_path / "imap-repo", proxy_id)
    repo = next(r for r in api.get("/v2/BackupRepositories").json() if r["id"] == repo_id)
    user, password = dovecot.add_user()
    fill_mailbox(dovecot, user)
    before = server_view(dovecot, user)
    remote = Worker(ServerChannel(link, proxy_id, ctx.clock), renew_every=0)
    with WireTap(dovecot.host, dovecot.port) as tap:
        job = make_job(Env(api, ctx, worker, repo, clock), tap, [(user, user, password)], "far")
        assert api.post(f"/v2/Jobs/{job.id}/Action", {"start": None}).status_code == 200
        assert not worker.run_one()  # the built-in proxy leaves it to the remote one
        assert remote.run_one()
    [session] = api.get(f"/v2/Jobs/{job.id}/JobSessions").json()
    assert session["status"] == "Success", job.log(session)
    assert any("on proxy edge-imap" in title for title in job.log(session))
    assert backed_up(job, user) == before
