"""Remembered credentials (services/credential_cache.py): bounded, refused at once after every
revocation on the server that revokes, within the trust period on another server of the catalog,
and one authenticated request costs its own catalog work and no more. The suite trusts answers
for an hour (tests/conftest.py), so only a revocation's own forgetting can refuse a token here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.api.app import create_app
from keepstone.services import auth, credential_cache
from keepstone.services.context import Context
from keepstone.services.credential_cache import CredentialCache
from keepstone.store.db import Database
from tests.conftest import ADMIN_PASSWORD, BASE_URL, READER_PASSWORD, login
from tests.em.conftest import basic
from tests.work import catalog_work


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    cache: CredentialCache[str] = CredentialCache(capacity=3, trust_seconds=60)
    for key in "abc":
        cache.put(key, key.upper(), cache.generation)
    assert cache.get("a") == "A"  # now the most recently used
    for key in "de":
        cache.put(key, key.upper(), cache.generation)
    assert len(cache) == 3
    assert [cache.get(k) for k in "abcde"] == ["A", None, None, "D", "E"]


def test_an_answer_is_trusted_for_its_period_only() -> None:
    ticks = Ticks()
    cache: CredentialCache[str] = CredentialCache(trust_seconds=1.0, monotonic=ticks)
    cache.put("a", "A", cache.generation)
    ticks.now = 0.99
    assert cache.get("a") == "A"
    ticks.now = 1.0
    assert cache.get("a") is None
    assert len(cache) == 0


def test_an_answer_read_before_a_clear_is_not_remembered() -> None:
    cache: CredentialCache[str] = CredentialCache(trust_seconds=60)
    before = cache.generation  # a request starts reading the catalog...
    cache.clear()  # ...a revocation commits meanwhile...
    cache.put("a", "A", before)  # ...and the request's answer predates it
    assert cache.get("a") is None
    cache.put("a", "A", cache.generation)
    assert cache.get("a") == "A"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


REVOCATIONS: dict[str, Callable[[Context, TestClient, dict[str, Any]], None]] = {
    "logout": lambda ctx, client, issued: _ok(
        client.post("/v7/Token/logout", headers=bearer(issued["access_token"]))
    ),
    "revoke-tokens": lambda ctx, client, issued: auth.revoke_tokens(ctx, "reader", by="op"),
    "password change": lambda ctx, client, issued: auth.set_password(
        ctx, "reader", "another password", by="op"
    ),
    "user removal": lambda ctx, client, issued: auth.remove_user(ctx, "reader", by="op"),
    "refresh token replay": lambda ctx, client, issued: (
        [
            client.post(
                "/v2/Token",
                data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
            )
            for _ in range(2)  # the second use is a replay: the whole family is revoked
        ]
        and None
    ),
}


def _ok(response: Any) -> None:
    assert response.status_code < 300, response.text


@pytest.mark.parametrize("revocation", REVOCATIONS)
def test_a_revoked_token_is_refused_at_once(
    ctx: Context, client: TestClient, revocation: str
) -> None:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    issued = client.post(
        "/v2/Token",
        data={"grant_type": "password", "username": "reader", "password": READER_PASSWORD},
    ).json()
    other = login(client, "admin", ADMIN_PASSWORD)
    for _ in range(2):  # the second answer comes from memory
        assert client.get("/v2/Jobs", headers=bearer(issued["access_token"])).status_code == 200
    REVOCATIONS[revocation](ctx, client, issued)
    assert client.get("/v2/Jobs", headers=bearer(issued["access_token"])).status_code == 401
    assert client.get("/v2/Jobs", headers=bearer(other)).status_code == 200


def test_an_ended_logon_session_is_refused_at_once(ctx: Context, client: TestClient) -> None:
    logon = client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    headers = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    client.cookies.clear()  # the header alone carries the session
    for _ in range(2):
        assert client.get("/api/jobs", headers=headers).status_code == 200
    location = "/api/" + logon.headers["Location"].split("/api/", 1)[1]
    assert client.delete(location, headers=headers).status_code == 204
    assert client.get("/api/jobs", headers=headers).status_code == 401


@contextmanager
def another_process(ctx: Context, data_dir: Path | None) -> Iterator[TestClient]:
    """Another process of the same catalog: its own connection pool, so its own memory."""
    other = Context(db=Database(ctx.db.url), clock=ctx.clock, data_dir=data_dir)
    with TestClient(create_app(other), base_url=BASE_URL) as client:
        yield client
    other.db.dispose()


@pytest.fixture
def second_server(ctx: Context, tmp_path: Path) -> Iterator[TestClient]:
    """A server on another machine: the same catalog, its own data directory."""
    with another_process(ctx, tmp_path / "elsewhere") as client:
        yield client


def test_a_revocation_on_the_same_data_directory_takes_effect_at_once(
    ctx: Context, client: TestClient
) -> None:
    """The CLI and the server share the data directory: a revocation made by one is refused by
    the other at its next request, however long the trust period (conftest: an hour)."""
    assert ctx.data_dir is not None
    token = login(client, "admin", ADMIN_PASSWORD)
    with another_process(ctx, ctx.data_dir) as cli:
        for _ in range(2):  # the second answer comes from each one's memory
            assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 200
            assert cli.get("/v2/Jobs", headers=bearer(token)).status_code == 200
        assert cli.post("/v7/Token/logout", headers=bearer(token)).status_code < 300
        assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 401
    marker = ctx.data_dir / auth.REVOCATIONS_FILE
    assert marker.stat().st_mode & 0o777 == 0o600


def test_a_revocation_on_another_server_takes_effect_within_the_trust_period(
    ctx: Context, client: TestClient, second_server: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credential_cache, "TRUST_SECONDS", 0.5)
    token = login(client, "admin", ADMIN_PASSWORD)
    assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 200
    assert second_server.get("/v2/Jobs", headers=bearer(token)).status_code == 200
    assert second_server.post("/v7/Token/logout", headers=bearer(token)).status_code < 300
    assert second_server.get("/v2/Jobs", headers=bearer(token)).status_code == 401  # at once
    deadline = time.monotonic() + 60  # generous: a loaded machine; the trust period is 0.5 s
    while client.get("/v2/Jobs", headers=bearer(token)).status_code != 401:
        assert time.monotonic() < deadline, "the first server never learned of the revocation"
        time.sleep(0.05)


def test_an_authenticated_get_costs_a_constant_number_of_statements(
    ctx: Context, client: TestClient, org: dict[str, Any]
) -> None:
    token = login(client, "admin", ADMIN_PASSWORD)
    repository = client.get("/v2/BackupRepositories", headers=bearer(token)).json()[0]
    job = client.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        headers=bearer(token),
        json={
            "name": "counted",
            "repositoryId": repository["id"],
            "backupType": "SelectedItems",
            "selectedItems": [{"type": "User", "user": {"id": "u1"}, "mailbox": True}],
        },
    ).json()

    def statements(requests: int) -> list[str]:
        with catalog_work(ctx) as work:
            for _ in range(requests):
                response = client.get(f"/v2/Jobs/{job['id']}", headers=bearer(token))
                assert response.status_code == 200
        return work.statements

    one, five = statements(1), statements(5)
    assert len(five) == 5 * len(one)  # the same work every time: nothing grows, nothing is redone
    assert len(one) <= 3, one  # BEGIN, the job, and nothing else (the token is remembered)
    assert not [s for s in five if "tokens" in s.lower()]


def test_a_busy_logon_session_writes_its_use_once_per_trust_period(
    ctx: Context, client: TestClient
) -> None:
    logon = client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    headers = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    with catalog_work(ctx) as work:
        for _ in range(10):
            assert client.get("/api/jobs", headers=headers).status_code == 200
    assert work.writes == 0  # the logon wrote its use; these come from memory
