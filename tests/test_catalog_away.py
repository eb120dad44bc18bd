"""A catalog that is away for a moment (PostgreSQL restarting, SQLite locked past its busy
timeout) is not a fault of the request: the API answers 503 with ``Retry-After`` in the dialect's
format, and a remote proxy asks again within its patience rather than failing the run (in the
failure matrix, a PostgreSQL restart under a proxy's ``work`` call gave a 500, the proxy failed
the run, and its retry waited the job's ten minutes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from keepstone.proxy.remote import ServerChannel
from keepstone.proxy.worker import Worker
from keepstone.services import jobs
from keepstone.services.context import Context
from tests.backup.test_backup_restore import by_subject, everything_in, explore
from tests.conftest import ADMIN_PASSWORD, Api
from tests.local_org import Organization, api, organization
from tests.test_remote_proxy_link import app, client, register, remote_job

__all__ = ["api", "app", "client", "organization"]


def unreachable_catalog_error(tmp_path: Path) -> OperationalError:
    """A real driver error of a catalog that cannot be opened."""
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'catalog.db'}")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError("the catalog opened")


@pytest.fixture
def catalog_away(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """A client of the app whose job listing finds the catalog away."""
    error = unreachable_catalog_error(tmp_path)

    def away(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(jobs, "page_jobs", away)  # what /v2/Jobs lists through
    monkeypatch.setattr(jobs, "list_jobs", away)  # what /api/jobs?format=Entity lists through
    monkeypatch.setattr(jobs, "list_job_names", away)  # what /api/jobs (references) lists
    yield TestClient(client.app, raise_server_exceptions=False, base_url=str(client.base_url))


def test_the_json_dialect_answers_503_with_retry_after(catalog_away: TestClient, api: Api) -> None:
    response = catalog_away.get("/v2/Jobs", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json() == {
        "message": "The catalog is unavailable for a moment; try again in 2 s"
    }
    assert "x-request-id" in response.headers


def test_the_em_dialect_answers_503_in_its_own_format(catalog_away: TestClient) -> None:
    logon = catalog_away.post("/api/sessionMngr/?v=latest", auth=("admin", ADMIN_PASSWORD))
    assert logon.status_code == 201, logon.text
    session = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    response = catalog_away.get("/api/jobs", headers=session)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert "<Error" in response.text and "catalog is unavailable" in response.text


class AwayFor(httpx.BaseTransport):
    """The server's transport, but the first ``times`` calls to a run's ``what`` answered as a
    server whose catalog is away (or, with ``refuse``, as a server not listening)."""

    def __init__(self, inner: httpx.BaseTransport, what: str, times: int, refuse: bool) -> None:
        self.inner, self.what, self.left, self.refuse = inner, what, times, refuse
        self.faults = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(f"/{self.what}") and self.left > 0:
            self.left -= 1
            self.faults += 1
            if self.refuse:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"message": "away"})
        return self.inner.handle_request(request)


@pytest.mark.parametrize("refuse", [False, True], ids=["503", "refused"])
def test_a_remote_proxy_waits_out_a_server_away_and_the_run_succeeds(
    app: FastAPI, ctx: Context, api: Api, organization: Organization, refuse: bool
) -> None:
    proxy_id, link = register(app, ctx, "edge-1")
    job = remote_job(api, organization, proxy_id)
    away = AwayFor(link._transport, "work", times=2, refuse=refuse)
    link._transport = away
    assert Worker(ServerChannel(link, proxy_id, ctx.clock), renew_every=0).run_one()
    assert away.faults == 2
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert session["status"] == "Success", session
    assert everything_in(api, explore(api, job)) == by_subject(organization)


def test_a_server_away_past_the_proxys_patience_fails_the_attempt(
    app: FastAPI, ctx: Context, api: Api, organization: Organization
) -> None:
    proxy_id, link = register(app, ctx, "edge-1")
    job = remote_job(api, organization, proxy_id)
    away = AwayFor(link._transport, "work", times=1000, refuse=False)
    link._transport = away
    channel = ServerChannel(link, proxy_id, ctx.clock)
    channel.away_patience = 0.0  # asked once more at most, then the answer is the caller's
    assert Worker(channel, renew_every=0).run_one()
    assert 1 <= away.faults <= 2
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert session["status"] != "Success", session
