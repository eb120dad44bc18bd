"""Enterprise Manager logon sessions end with every other credential of their user: a password
change, ``revoke-tokens`` and removal; they last at most 8 hours however busy; a ReadOnly user
may log off; ended and expired sessions are purged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from keepstone.clock import ManualClock
from keepstone.services import auth
from keepstone.services.context import Context
from keepstone.store.tables import LogonSession
from tests.conftest import ADMIN_PASSWORD, BASE_URL, READER_PASSWORD
from tests.em.conftest import Em, basic


def log_on(client: TestClient, user: str, password: str) -> Em:
    """A logon from a client of its own: the session cookie of one never travels with another's
    requests (the cookie wins over the header, as in EM)."""
    own = TestClient(client.app, base_url=BASE_URL)
    response = own.post("/api/sessionMngr/?v=latest", headers=basic(user, password))
    assert response.status_code == 201, response.text
    em = Em(own, response.headers["X-RestSvcSessionId"])
    em.location = "/api/" + response.headers["Location"].split("/api/", 1)[1]
    return em


@pytest.fixture
def reader_em(client: TestClient, ctx: Context) -> Em:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    return log_on(client, "reader", READER_PASSWORD)


REVOCATIONS: dict[str, Callable[[Context], None]] = {
    "password change": lambda ctx: auth.set_password(ctx, "reader", "a brand new one", by="op"),
    "revoke-tokens": lambda ctx: auth.revoke_tokens(ctx, "reader", by="op"),
    "user removal": lambda ctx: auth.remove_user(ctx, "reader", by="op"),
}


@pytest.mark.parametrize("revocation", REVOCATIONS)
def test_revocations_end_logon_sessions(
    ctx: Context, client: TestClient, reader_em: Em, revocation: str
) -> None:
    em = log_on(client, "admin", ADMIN_PASSWORD)
    assert reader_em.request("GET", "/api/jobs").status_code == 200
    REVOCATIONS[revocation](ctx)
    ended = reader_em.request("GET", "/api/jobs")
    assert ended.status_code == 401, ended.text
    assert em.request("GET", "/api/jobs").status_code == 200  # another user's session lives on


def test_a_logon_session_lasts_at_most_8_hours(client: TestClient, clock: ManualClock) -> None:
    em = log_on(client, "admin", ADMIN_PASSWORD)
    for _ in range(8 * 6 - 1):  # busy all day: never 15 minutes idle
        clock.advance(timedelta(minutes=10))
        assert em.request("GET", "/api/jobs").status_code == 200
    clock.advance(timedelta(minutes=10))
    expired = em.request("GET", "/api/jobs")
    assert expired.status_code == 401
    assert "8 hours" in expired.text


def test_a_read_only_user_can_log_off(client: TestClient, reader_em: Em) -> None:
    mine = log_on(client, "reader", READER_PASSWORD)
    assert mine.request("DELETE", mine.location).status_code == 204
    assert mine.request("GET", "/api/jobs").status_code == 401
    assert reader_em.request("GET", "/api/jobs").status_code == 200  # only that session ended


def test_a_read_only_user_cannot_end_someone_elses_session(
    client: TestClient, reader_em: Em
) -> None:
    admin = log_on(client, "admin", ADMIN_PASSWORD)
    assert reader_em.request("DELETE", admin.location).status_code == 404
    assert admin.request("GET", "/api/jobs").status_code == 200


def test_ended_and_expired_logon_sessions_are_purged(
    ctx: Context, client: TestClient, clock: ManualClock
) -> None:
    first = log_on(client, "admin", ADMIN_PASSWORD)
    log_on(client, "admin", ADMIN_PASSWORD)
    assert first.request("DELETE", first.location).status_code == 204
    assert session_rows(ctx) == 2
    log_on(client, "admin", ADMIN_PASSWORD)
    assert session_rows(ctx) == 2  # the ended one went, the idle one and the new one stay
    clock.advance(timedelta(minutes=15))
    log_on(client, "admin", ADMIN_PASSWORD)
    assert session_rows(ctx) == 1


def session_rows(ctx: Context) -> int:
    with ctx.db.read() as s:
        return len(list(s.scalars(select(LogonSession.id))))
