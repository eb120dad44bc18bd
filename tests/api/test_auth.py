"""``POST /v2/Token``, bearer tokens, expiry, rotation, revocation, throttling and roles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from keepstone.clock import ManualClock
from keepstone.services import auth
from keepstone.services.context import Context
from keepstone.store.tables import Token, User
from tests.conftest import ADMIN_PASSWORD, Api


def password_grant(client: TestClient, password: str = ADMIN_PASSWORD, **extra: str) -> Any:
    return client.post(
        "/v2/Token",
        data={"grant_type": "password", "username": "admin", "password": password, **extra},
    )


def test_password_grant_response(client: TestClient, clock: ManualClock) -> None:
    response = password_grant(client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "userName",
        ".issued",
        ".expires",
    }
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["userName"] == "admin"
    issued = datetime.fromisoformat(body[".issued"])
    assert issued == clock.now()
    assert datetime.fromisoformat(body[".expires"]) - issued == timedelta(hours=1)
    assert body["access_token"] != body["refresh_token"]


def test_empty_refresh_token_field_on_a_password_grant_is_ignored(client: TestClient) -> None:
    assert password_grant(client, refresh_token="").status_code == 200


def test_json_body_and_default_grant_type(client: TestClient) -> None:
    response = client.post("/v2/Token", json={"UserName": "admin", "Password": ADMIN_PASSWORD})
    assert response.status_code == 200


def test_token_path_is_case_insensitive(client: TestClient) -> None:
    response = client.post(
        "/v2/token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
    )
    assert response.status_code == 200


def test_wrong_password_and_unknown_user_are_indistinguishable(client: TestClient) -> None:
    wrong_password = password_grant(client, password="nope-nope")
    unknown_user = client.post(
        "/v2/Token",
        data={"grant_type": "password", "username": "mallory", "password": ADMIN_PASSWORD},
    )
    assert wrong_password.status_code == unknown_user.status_code == 400
    assert wrong_password.json() == unknown_user.json()
    assert "user name or password" in wrong_password.json()["message"]


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "admin"},
        {"grant_type": "password", "password": "x"},
        {"grant_type": "client_credentials"},
        {"grant_type": "refresh_token"},
    ],
)
def test_incomplete_or_unsupported_grants(client: TestClient, form: dict[str, str]) -> None:
    response = client.post("/v2/Token", data=form)
    assert response.status_code == 400 and response.json()["message"]


def test_malformed_json_token_body(client: TestClient) -> None:
    response = client.post(
        "/v2/Token", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "JSON" in response.json()["message"]


def test_repeated_failures_are_slowed_down(client: TestClient, clock: ManualClock) -> None:
    for _ in range(5):  # five free attempts
        assert password_grant(client, password="guess-guess").status_code == 400
    throttled = password_grant(client)  # then even the right password must wait
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert "retry" in throttled.json()["message"]
    clock.advance(timedelta(seconds=2))
    assert password_grant(client).status_code == 200  # waited long enough, and success clears it
    assert password_grant(client).status_code == 200


def test_the_wait_doubles_with_each_further_failure(client: TestClient, clock: ManualClock) -> None:
    for _ in range(8):
        password_grant(client, password="guess-guess")
        clock.advance(timedelta(seconds=300))  # wait out any delay so each attempt is counted
    password_grant(client, password="guess-guess")
    assert int(password_grant(client).headers["retry-after"]) >= 16


def test_refresh_rotates_tokens(client: TestClient) -> None:
    first = password_grant(client).json()
    refreshed = client.post(
        "/v2/Token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        client.get(
            "/v2/Jobs", headers={"Authorization": f"Bearer {second['access_token']}"}
        ).status_code
        == 200
    )
    reused = client.post(
        "/v2/Token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 400


def test_access_token_expires_after_60_minutes(api: Api, clock: ManualClock) -> None:
    clock.advance(timedelta(minutes=59, seconds=59))
    assert api.get("/v2/Jobs").status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = api.get("/v2/Jobs")
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"]


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer garbage", "Basic YWRtaW46eA==", "bearer "]
)
def test_missing_or_garbage_token_is_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    for path in (
        "/v2/Jobs",
        "/v2/Organizations",
        "/v2/Proxies",
        "/v2/BackupRepositories",
        "/v2/JobSessions",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.json()["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_writes_without_token_are_401_and_change_nothing(
    client: TestClient, api: Api, job: dict[str, Any]
) -> None:
    assert client.put(f"/v2/Jobs/{job['id']}", json={"name": "x"}).status_code == 401
    assert client.delete(f"/v2/Jobs/{job['id']}").status_code == 401
    assert api.get(f"/v2/Jobs/{job['id']}").json()["name"] == "test_job"


@pytest.mark.production_password_hashing
def test_tokens_and_passwords_are_stored_hashed(ctx: Context, api: Api) -> None:
    with ctx.db.read() as s:
        hashes = list(s.scalars(select(Token.token_hash)))
        password_hash = s.scalar(select(User.password_hash).where(User.name == "admin"))
    assert api.token not in hashes and len(hashes) >= 2
    assert password_hash is not None and password_hash.startswith("$argon2id$")
    assert "$m=65536,t=3,p=4$" in password_hash  # RFC 9106 low memory, as the server runs


def test_revoked_tokens_stop_working(ctx: Context, api: Api) -> None:
    auth.revoke_tokens(ctx, "admin", by="operator")
    assert api.get("/v2/Jobs").status_code == 401


def test_changing_the_password_revokes_tokens(ctx: Context, api: Api, client: TestClient) -> None:
    auth.set_password(ctx, "admin", "a new long password", by="operator")
    assert api.get("/v2/Jobs").status_code == 401
    assert password_grant(client).status_code == 400
    assert password_grant(client, password="a new long password").status_code == 200


def test_read_only_role_reads_but_cannot_write(
    reader: Api, api: Api, job: dict[str, Any], org: dict[str, Any]
) -> None:
    for path in (
        "/v2/Jobs",
        f"/v2/Jobs/{job['id']}",
        "/v2/Organizations",
        "/v2/Proxies",
        "/v2/BackupRepositories",
        "/v2/JobSessions",
        f"/v2/Organizations/{org['id']}/Jobs",
    ):
        assert reader.get(path).status_code == 200, path
    writes = [
        reader.put(f"/v2/Jobs/{job['id']}", {"name": "x"}),
        reader.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}),
        reader.delete(f"/v2/Jobs/{job['id']}"),
        reader.post(
            "/v2/Organizations", {"type": "Local", "name": "x", "localSettings": {"path": "/"}}
        ),
        reader.post(f"/v2/Organizations/{org['id']}/Jobs", {"name": "x"}),
        reader.delete(f"/v2/Organizations/{org['id']}"),
        reader.post("/v2/BackupRepositories", {"name": "x", "path": "/tmp/x"}),
    ]
    for response in writes:
        assert response.status_code == 403
        assert "ReadOnly" in response.json()["message"]
    assert api.get(f"/v2/Jobs/{job['id']}").json()["name"] == "test_job"
    assert api.get(f"/v2/Jobs/{job['id']}/JobSessions").json() == []


# ---- token families, logout, purge ---------------------------------------------------------------


def refresh_grant(client: TestClient, refresh_token: str) -> Any:
    return client.post(
        "/v2/Token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def works(client: TestClient, access_token: str) -> bool:
    status = client.get("/v2/Jobs", headers={"Authorization": f"Bearer {access_token}"})
    return bool(status.status_code == 200)


@pytest.mark.parametrize("version", [7, 8])
def test_logout_revokes_the_refresh_token_of_the_pair(client: TestClient, version: int) -> None:
    pair = password_grant(client).json()
    other = password_grant(client).json()  # another login of the same user
    logout = client.post(
        f"/v{version}/Token/logout", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert logout.status_code == (204 if version == 8 else 200)
    assert not works(client, pair["access_token"])
    assert refresh_grant(client, pair["refresh_token"]).status_code == 400
    assert works(client, other["access_token"])  # logging out ends one login, not every login
    assert refresh_grant(client, other["refresh_token"]).status_code == 200


def test_logout_also_ends_the_pairs_rotated_from_the_same_login(client: TestClient) -> None:
    first = password_grant(client).json()
    second = refresh_grant(client, first["refresh_token"]).json()
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert client.post("/v8/Token/logout", headers=headers).status_code == 204
    assert not works(client, first["access_token"])
    assert refresh_grant(client, second["refresh_token"]).status_code == 400


def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(client: TestClient) -> None:
    stolen = password_grant(client).json()
    unrelated = password_grant(client).json()
    rotated = refresh_grant(client, stolen["refresh_token"]).json()
    latest = refresh_grant(client, rotated["refresh_token"]).json()
    assert works(client, latest["access_token"])

    replayed = refresh_grant(client, stolen["refresh_token"])  # the thief, or the victim, replays
    assert replayed.status_code == 400
    assert not works(client, latest["access_token"])
    assert not works(client, rotated["access_token"])
    assert refresh_grant(client, latest["refresh_token"]).status_code == 400
    assert works(client, unrelated["access_token"])  # other logins are not its family


def test_expired_tokens_are_purged_on_login(
    ctx: Context, client: TestClient, clock: ManualClock
) -> None:
    for _ in range(3):
        pair = password_grant(client).json()
    refresh_grant(client, pair["refresh_token"])
    assert token_rows(ctx) == 8
    clock.advance(timedelta(days=1))
    password_grant(client)  # the access tokens expired; the refresh tokens live 14 days
    assert token_rows(ctx) == 4 + 2
    clock.advance(timedelta(days=14))
    password_grant(client)
    assert token_rows(ctx) == 2  # only the pair just issued


def token_rows(ctx: Context) -> int:
    with ctx.db.read() as s:
        return len(list(s.scalars(select(Token.id))))
