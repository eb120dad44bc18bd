"""``keepstone admin user ...`` and ``keepstone admin audit`` as real processes, on their own and
against a running server that shares the data directory: roles, password changes, token and
logon-session revocation, removal, the audit trail, and how passwords and tokens are stored."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.process_helpers import (
    ServerProcess,
    bearer,
    login,
    process_env,
    run_cli,
    run_clis,
    start_server,
    token_response,
)

ADMIN_PASSWORD = "admin password 1"


@dataclass(frozen=True)
class CliUser:
    name: str
    password: str
    role: str


# Users the CLI adds to the live server's data directory, one per test that changes them.
READER = CliUser("reader", "reader-password", "ReadOnly")
CHANGER = CliUser("changer", "changer-password", "Administrator")
HOLDER = CliUser("holder", "exactly8", "ReadOnly")  # the shortest password allowed
LEAVER = CliUser("leaver", "leaver-password", "ReadOnly")


def user_args(data_dir: Path, *args: str) -> list[str]:
    return ["admin", "user", *args, "--data-dir", str(data_dir)]


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    return f"{result.stdout or ''}{result.stderr or ''}"


def db_rows(data_dir: Path, query: str, *params: str) -> list[tuple[str, ...]]:
    with sqlite3.connect(data_dir / "keepstone.db") as db:
        return [tuple(row) for row in db.execute(query, params)]


def em_logon(client: httpx.Client, name: str, password: str) -> dict[str, str]:
    """The session header of a new Enterprise Manager logon session (cookies are not kept)."""
    credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
    response = client.post(
        "/api/sessionMngr/?v=latest", headers={"Authorization": f"Basic {credentials}"}
    )
    assert response.status_code == 201, response.text
    client.cookies.clear()
    return {"X-RestSvcSessionId": response.headers["X-RestSvcSessionId"]}


def em_works(client: httpx.Client, session: dict[str, str]) -> bool:
    status = client.get("/api/jobs", headers=session).status_code
    client.cookies.clear()
    return bool(status == 200)


def password_hash(data_dir: Path, name: str) -> str:
    rows = db_rows(data_dir, "SELECT password_hash FROM users WHERE name = ?", name)
    assert len(rows) == 1, f"user {name!r} not in the database"
    return rows[0][0]


# ---- the CLI on its own ---------------------------------------------------------------------


def test_add_then_list_shows_the_users_and_their_roles(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    alice, bob = run_clis(
        user_args(data_dir, "add", "alice", "--role", "ReadOnly", "--password", "alice-password"),
        user_args(data_dir, "add", "bob", "--password", "bob-password"),
    )
    assert alice.returncode == 0, output_of(alice)
    assert "Added user 'alice' (ReadOnly)" in alice.stdout
    assert bob.returncode == 0, output_of(bob)
    assert "Added user 'bob' (Administrator)" in bob.stdout  # the default role

    listing = run_cli(*user_args(data_dir, "list"))
    assert listing.returncode == 0, output_of(listing)
    rows = {
        line.split()[1]: line
        for line in listing.stdout.splitlines()
        if line.split()[1:2] in (["alice"], ["bob"])
    }
    assert set(rows) == {"alice", "bob"}, listing.stdout
    assert "ReadOnly" in rows["alice"] and "Administrator" not in rows["alice"]
    assert "Administrator" in rows["bob"]


def test_user_names_are_printed_verbatim(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    name = "team[eu]"
    added = run_cli(*user_args(data_dir, "add", name, "--password", "team-password"))
    assert added.returncode == 0, output_of(added)
    assert db_rows(data_dir, "SELECT name FROM users") == [(name,)]
    listing = run_cli(*user_args(data_dir, "list"))
    assert listing.returncode == 0, output_of(listing)
    problems = []
    if f"Added user '{name}'" not in added.stdout:
        problems.append(f"'add' printed: {added.stdout!r}")
    if name not in listing.stdout:
        problems.append(f"'list' printed:\n{listing.stdout}")
    assert not problems, f"user name {name!r} not printed verbatim\n" + "\n".join(problems)


def test_commands_on_an_unknown_user_fail_clearly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    results = run_clis(
        user_args(data_dir, "remove", "nobody"),
        user_args(data_dir, "passwd", "nobody", "--password", "long-enough"),
        user_args(data_dir, "revoke-tokens", "nobody"),
    )
    for result in results:
        output = output_of(result)
        assert result.returncode == 1, (result.args, output)
        assert "'nobody' does not exist" in output, (result.args, output)
        assert "Traceback" not in output


# ---- against a running server on the same data directory -----------------------------------


@dataclass(frozen=True)
class Live:
    server: ServerProcess
    data_dir: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, timeout=60)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A running server, plus the users the CLI added to its data directory while it runs."""
    root = tmp_path_factory.mktemp("live")
    data_dir = root / "data"
    server = start_server(
        root / "logs", data_dir, env=process_env(KEEPSTONE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    )
    try:
        results = run_clis(
            *(
                user_args(
                    data_dir, "add", user.name, "--role", user.role, "--password", user.password
                )
                for user in (READER, CHANGER, HOLDER, LEAVER)
            )
        )
        for result in results:
            assert result.returncode == 0, (result.args, output_of(result))
        yield Live(server, data_dir)
    finally:
        server.stop()


def test_a_readonly_user_may_read_but_not_write(live: Live) -> None:
    with live.client() as client:
        token = login(client, READER.name, READER.password)
        assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 200
        assert client.get("/v2/Organizations", headers=bearer(token)).status_code == 200
        refused = client.post(
            "/v2/Organizations",
            headers=bearer(token),
            json={
                "type": "Local",
                "name": "not allowed",
                "localSettings": {"path": "/tmp/nowhere"},
            },
        )
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/json")
        message = refused.json()["message"]
        assert isinstance(message, str) and message
        admin = login(client, "admin", ADMIN_PASSWORD)
        names = [o["name"] for o in client.get("/v2/Organizations", headers=bearer(admin)).json()]
        assert "not allowed" not in names


def test_adding_an_existing_user_fails_and_leaves_it_unchanged(live: Live) -> None:
    before = password_hash(live.data_dir, READER.name)
    again = run_cli(*user_args(live.data_dir, "add", READER.name, "--password", "other-password"))
    assert again.returncode == 1, output_of(again)
    assert f"'{READER.name}' already exists" in output_of(again)
    assert "Traceback" not in output_of(again)
    assert password_hash(live.data_dir, READER.name) == before
    with live.client() as client:
        login(client, READER.name, READER.password)


def test_a_password_under_8_characters_is_refused(live: Live) -> None:
    before = password_hash(live.data_dir, READER.name)
    add, passwd = run_clis(
        user_args(live.data_dir, "add", "shorty", "--password", "1234567"),
        user_args(live.data_dir, "passwd", READER.name, "--password", "1234567"),
    )
    for result in (add, passwd):
        assert result.returncode == 1, (result.args, output_of(result))
        assert "at least 8 characters" in output_of(result)
        assert "Traceback" not in output_of(result)
    assert db_rows(live.data_dir, "SELECT name FROM users WHERE name = 'shorty'") == []
    assert password_hash(live.data_dir, READER.name) == before


def test_passwd_changes_the_password_and_revokes_existing_tokens(live: Live) -> None:
    with live.client() as client:
        issued = token_response(client, CHANGER.name, CHANGER.password).json()
        old_token, old_refresh = issued["access_token"], issued["refresh_token"]
        assert client.get("/v2/Jobs", headers=bearer(old_token)).status_code == 200
        session = em_logon(client, CHANGER.name, CHANGER.password)
        assert em_works(client, session)

        changed = run_cli(
            *user_args(live.data_dir, "passwd", CHANGER.name, "--password", "a-new-password")
        )
        assert changed.returncode == 0, output_of(changed)

        assert client.get("/v2/Jobs", headers=bearer(old_token)).status_code == 401
        assert not em_works(client, session)
        assert token_response(client, CHANGER.name, CHANGER.password).status_code == 400
        refreshed = client.post(
            "/v2/Token", data={"grant_type": "refresh_token", "refresh_token": old_refresh}
        )
        assert refreshed.status_code == 400
        new_token = login(client, CHANGER.name, "a-new-password")
        assert client.get("/v2/Jobs", headers=bearer(new_token)).status_code == 200


def test_revoke_tokens_invalidates_every_token_but_not_the_password(live: Live) -> None:
    with live.client() as client:
        first = token_response(client, HOLDER.name, HOLDER.password).json()
        second = login(client, HOLDER.name, HOLDER.password)
        for token in (first["access_token"], second):
            assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 200
        session = em_logon(client, HOLDER.name, HOLDER.password)
        assert em_works(client, session)

        revoked = run_cli(*user_args(live.data_dir, "revoke-tokens", HOLDER.name))
        assert revoked.returncode == 0, output_of(revoked)
        assert not em_works(client, session)

        for token in (first["access_token"], second):
            response = client.get("/v2/Jobs", headers=bearer(token))
            assert response.status_code == 401
            assert response.json()["message"]
        refreshed = client.post(
            "/v2/Token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert refreshed.status_code == 400
        fresh = login(client, HOLDER.name, HOLDER.password)
        assert client.get("/v2/Jobs", headers=bearer(fresh)).status_code == 200


def test_remove_makes_the_users_tokens_fail(live: Live) -> None:
    with live.client() as client:
        token = login(client, LEAVER.name, LEAVER.password)
        assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 200
        session = em_logon(client, LEAVER.name, LEAVER.password)
        assert em_works(client, session)

        removed = run_cli(*user_args(live.data_dir, "remove", LEAVER.name))
        assert removed.returncode == 0, output_of(removed)
        assert f"Removed user '{LEAVER.name}'" in removed.stdout

        assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 401
        assert not em_works(client, session)
        assert token_response(client, LEAVER.name, LEAVER.password).status_code == 400
    assert db_rows(live.data_dir, "SELECT name FROM users WHERE name = ?", LEAVER.name) == []


def test_passwords_are_stored_as_argon2id_hashes(live: Live) -> None:
    users = {
        name: stored
        for name, stored in db_rows(live.data_dir, "SELECT name, password_hash FROM users")
    }
    assert {"admin", READER.name} <= set(users)
    for name, stored in users.items():
        assert stored.startswith("$argon2id$"), name
    assert READER.password not in users[READER.name]
    assert ADMIN_PASSWORD not in users["admin"]


def test_tokens_are_stored_only_as_hashes(live: Live) -> None:
    with live.client() as client:
        issued = token_response(client, READER.name, READER.password).json()
    access, refresh = issued["access_token"], issued["refresh_token"]
    rows = db_rows(live.data_dir, "SELECT * FROM tokens")
    stored_hashes = {row[0] for row in db_rows(live.data_dir, "SELECT token_hash FROM tokens")}
    assert stored_hashes and access not in stored_hashes and refresh not in stored_hashes
    for row in rows:
        for value in row:
            assert access not in str(value) and refresh not in str(value)
    # Nowhere in the database files, including the write-ahead log, either.
    for path in live.data_dir.glob("keepstone.db*"):
        raw = path.read_bytes()
        assert access.encode() not in raw and refresh.encode() not in raw, path.name


def test_audit_lists_logins_and_revocations_newest_first(live: Live) -> None:
    with live.client() as client:
        assert token_response(client, "audited", "not the password").status_code == 400
        login(client, READER.name, READER.password)
    revoked = run_cli(*user_args(live.data_dir, "revoke-tokens", READER.name))
    assert revoked.returncode == 0, output_of(revoked)

    listing = run_cli("admin", "audit", "--limit", "3", "--data-dir", str(live.data_dir))
    assert listing.returncode == 0, output_of(listing)
    lines = [
        line
        for line in listing.stdout.splitlines()
        if "(keepstone CLI)" in line or "127.0.0.1" in line
    ]
    assert len(lines) == 3, listing.stdout
    assert "RevokeTokens" in lines[0] and f"user {READER.name}" in lines[0]
    assert "Login" in lines[1] and "Success" in lines[1] and READER.name in lines[1]
    assert "vb365" in lines[1] and "127.0.0.1" in lines[1]
    assert "Login" in lines[2] and "Failure" in lines[2] and "audited" in lines[2]

    future = run_cli("admin", "audit", "--since", "2999-01-01", "--data-dir", str(live.data_dir))
    assert future.returncode == 0, output_of(future)
    assert "Login" not in future.stdout and "RevokeTokens" not in future.stdout
    wrong = run_cli("admin", "audit", "--limit", "0", "--data-dir", str(live.data_dir))
    assert wrong.returncode == 1 and "limit" in output_of(wrong)
    assert "Traceback" not in output_of(wrong)


def test_the_access_log_carries_the_user_name(live: Live) -> None:
    with live.client() as client:
        token = login(client, READER.name, READER.password)
        marker = "access-log-user-check"
        client.get("/v2/Jobs", headers=bearer(token) | {"X-Request-Id": marker})
        client.get("/v2/Jobs", headers={"X-Request-Id": marker + "-anonymous"})
    wanted = {marker: READER.name, marker + "-anonymous": None}
    # The access log line is written after the response is sent: wait for it, do not race it.
    deadline = time.monotonic() + 60
    while (users := logged_users(live.server.stderr, marker)).keys() != wanted.keys():
        assert time.monotonic() < deadline, f"access log lines never appeared: {users}"
        time.sleep(0.05)
    assert users == wanted


def logged_users(log: str, marker: str) -> dict[str, str | None]:
    """request id -> the user its access log line names, for the requests carrying ``marker``."""
    lines = [json.loads(line) for line in log.splitlines() if marker in line]
    return {line["request_id"]: line.get("user") for line in lines if line["event"] == "request"}
