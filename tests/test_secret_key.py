"""Secrets sealed in the catalog with the operator's key: never in the clear there, reached by
every server on the catalog, refused clearly with a wrong or missing key, and the vault files of
a keyless server moved in the first time a key is given."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.server import ServerError, open_context, resolve_secret_key
from keepstone.services import vault
from keepstone.services.context import Context
from keepstone.services.secret_box import SecretBox, SecretKeyError
from keepstone.store.tables import SealedSecret
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api, catalog_text, login
from tests.s3_server import SECRET_KEY, account_body

KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()
REPO_PASSWORD = "repository password 7f3a"


def _server(ctx: Context, data_dir: Path, catalog_url: str | None, key: str | None) -> Context:
    """Another start of a server on the test's catalog (the same data directory or PostgreSQL
    database), with ``key``."""
    box = SecretBox(key) if key else None
    return open_context(data_dir, ctx.clock, database=catalog_url, secret_box=box)


@pytest.fixture
def keyed(ctx: Context, data_dir: Path, catalog_url: str | None) -> Iterator[Context]:
    server = _server(ctx, data_dir, catalog_url, KEY)
    yield server
    server.db.dispose()


@pytest.fixture
def keyed_api(keyed: Context) -> Iterator[Api]:
    with TestClient(create_app(keyed), base_url=BASE_URL) as client:
        yield Api(client, login(client, "admin", ADMIN_PASSWORD))


def _secrets_made(api: Api, tmp_path: Path) -> tuple[str, str]:
    """An S3 account and an encrypted repository made through the API: their ids."""
    account = api.post("/v8/Accounts", account_body())
    assert account.status_code == 201, account.text
    repo = api.post(
        "/v2/BackupRepositories",
        {"name": "sealed", "path": str(tmp_path / "sealed"), "encryptionPassword": REPO_PASSWORD},
    )
    assert repo.status_code == 200, repo.text
    return account.json()["id"], repo.json()["id"]


def _files(ctx: Context) -> list[str]:
    assert ctx.secrets_dir is not None
    return sorted(p.name for p in ctx.secrets_dir.glob("*")) if ctx.secrets_dir.is_dir() else []


def test_the_box_seals_binds_the_name_and_withholds_the_key() -> None:
    box = SecretBox(KEY + "\n")  # a key file's newline is no part of the key
    token = box.seal("repository-1", b"secret")
    assert b"secret" not in token.encode() and box.open("repository-1", token) == b"secret"
    assert KEY not in repr(box) and "withheld" in repr(box)
    with pytest.raises(SecretKeyError, match="another owner"):
        box.open("repository-2", token)
    with pytest.raises(SecretKeyError, match="does not open") as wrong:
        SecretBox(OTHER_KEY).open("repository-1", token)
    assert OTHER_KEY not in str(wrong.value) and KEY not in str(wrong.value)
    for bad in ("", "not a key", KEY[:-4], "A" * 43 + "=" + "!"):
        with pytest.raises(SecretKeyError, match="not a Fernet key") as refused:
            SecretBox(bad)
        assert bad.strip() == "" or bad not in str(refused.value)


def test_with_a_key_secrets_are_sealed_in_the_catalog_and_reach_every_server(
    keyed: Context,
    keyed_api: Api,
    ctx: Context,
    data_dir: Path,
    catalog_url: str | None,
    tmp_path: Path,
) -> None:
    account_id, repo_id = _secrets_made(keyed_api, tmp_path)
    assert _files(keyed) == []  # nothing in the vault files
    text = catalog_text(keyed, data_dir)
    assert SECRET_KEY not in text and REPO_PASSWORD not in text and KEY not in text
    with keyed.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SealedSecret)) == 2
    second = _server(ctx, data_dir, catalog_url, KEY)  # another server on the same catalog
    try:
        assert vault.password_of(second, repo_id) == REPO_PASSWORD
        assert vault.read_secret(second, f"account-{account_id}") == SECRET_KEY.encode()
        row = next(r for r in keyed_api.get("/v2/BackupRepositories").json() if r["id"] == repo_id)
        vault.open_repository(second, repo_id, row["path"])  # the password opens it there
        changed = keyed_api.put(f"/v8/Accounts/{account_id}", {"password": "rotated-secret"})
        assert changed.status_code == 204
        assert vault.read_secret(second, f"account-{account_id}") == b"rotated-secret"
        assert keyed_api.delete(f"/v8/Accounts/{account_id}").status_code == 204
        assert vault.read_secret(second, f"account-{account_id}") is None
    finally:
        second.db.dispose()


def test_a_wrong_or_missing_key_fails_at_start_without_a_secret(
    keyed: Context,
    keyed_api: Api,
    ctx: Context,
    data_dir: Path,
    catalog_url: str | None,
    tmp_path: Path,
) -> None:
    _secrets_made(keyed_api, tmp_path)
    for key, reason in ((None, "keeps encrypted secrets"), (OTHER_KEY, "does not open")):
        with pytest.raises(ServerError, match=reason) as refused:
            _server(ctx, data_dir, catalog_url, key)
        said = str(refused.value)
        assert REPO_PASSWORD not in said and SECRET_KEY not in said
        assert KEY not in said and OTHER_KEY not in said


def test_the_key_comes_from_a_private_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEEPSTONE_SECRET_KEY", raising=False)
    assert resolve_secret_key(None) is None  # no key: the vault files, as before
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    os.chmod(key_file, 0o640)
    with pytest.raises(ServerError, match="open to group or others"):
        resolve_secret_key(key_file)
    os.chmod(key_file, 0o600)
    box = resolve_secret_key(key_file)
    assert box is not None and box.open("x", SecretBox(KEY).seal("x", b"1")) == b"1"
    with pytest.raises(ServerError, match="No such file"):
        resolve_secret_key(tmp_path / "missing")
    monkeypatch.setenv("KEEPSTONE_SECRET_KEY", KEY)
    assert resolve_secret_key(None) is not None
    monkeypatch.setenv("KEEPSTONE_SECRET_KEY", "too short")
    with pytest.raises(ServerError, match="not a Fernet key"):
        resolve_secret_key(None)


def test_vault_files_move_into_the_catalog_the_first_time_a_key_is_given(
    api: Api, ctx: Context, data_dir: Path, catalog_url: str | None, tmp_path: Path
) -> None:
    account_id, repo_id = _secrets_made(api, tmp_path)  # a keyless server: vault files
    assert _files(ctx) == sorted([f"account-{account_id}", f"repository-{repo_id}"])
    assert REPO_PASSWORD not in catalog_text(ctx, data_dir)
    keyed = _server(ctx, data_dir, catalog_url, KEY)
    try:
        assert _files(keyed) == []
        assert vault.password_of(keyed, repo_id) == REPO_PASSWORD
        assert vault.read_secret(keyed, f"account-{account_id}") == SECRET_KEY.encode()
        text = catalog_text(keyed, data_dir)
        assert REPO_PASSWORD not in text and SECRET_KEY not in text
    finally:
        keyed.db.dispose()
    again = _server(ctx, data_dir, catalog_url, KEY)  # nothing left to move; still readable
    try:
        assert vault.start(again) == 0 and vault.password_of(again, repo_id) == REPO_PASSWORD
    finally:
        again.db.dispose()


def _statements(ctx: Context, work: Callable[[], Any]) -> int:
    """How many SQL statements ``work`` runs against the catalog (readers and writers)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    engines = (ctx.db._reader, ctx.db._writer)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_moving_files_costs_the_same_statements_for_4n_secrets(ctx: Context) -> None:
    keyed = dataclasses.replace(ctx, secret_box=SecretBox(KEY))
    counts = []
    for n in (5, 20):
        for i in range(n):
            vault.keep_secret(ctx, f"repository-{n}-{i}", b"p", "encryptionPassword")
        counts.append(_statements(keyed, lambda: vault.start(keyed)))
        assert _files(ctx) == []
    assert counts[0] == counts[1], counts
    with keyed.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SealedSecret)) == 25


def test_without_a_key_a_server_keeps_vault_files_as_before(
    ctx: Context, clock: ManualClock
) -> None:
    assert ctx.secret_box is None and vault.start(ctx) == 0
    vault.keep_password(ctx, "r1", REPO_PASSWORD)
    assert ctx.secrets_dir is not None
    path = ctx.secrets_dir / "repository-r1"
    assert path.read_bytes() == REPO_PASSWORD.encode() and path.stat().st_mode & 0o777 == 0o600
    with ctx.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SealedSecret)) == 0


def test_the_cli_reads_the_key_from_the_environment_and_refuses_without_it(
    keyed: Context,
    keyed_api: Api,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from keepstone.cli.main import app

    _secrets_made(keyed_api, tmp_path)
    runner = CliRunner()
    command = ["admin", "user", "list", "--data-dir", str(data_dir)]  # the catalog: the env's
    monkeypatch.delenv("KEEPSTONE_SECRET_KEY", raising=False)
    refused = runner.invoke(app, command)
    assert refused.exit_code == 1 and "keeps encrypted secrets" in refused.output
    assert REPO_PASSWORD not in refused.output
    monkeypatch.setenv("KEEPSTONE_SECRET_KEY", KEY)
    listed = runner.invoke(app, command)
    assert listed.exit_code == 0 and "admin" in listed.output, listed.output


def test_postgresql_files_and_wal_never_hold_a_sealed_secret(
    keyed: Context,
    keyed_api: Api,
    catalog_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The PostgreSQL server's own files (tables and WAL, after a checkpoint) read byte for byte:
    the secrets are not there, while a marker written beside them is (the grep sees the rows)."""
    if catalog_kind != "postgresql":
        pytest.skip("PostgreSQL's files; SQLite's file and WAL are grepped by the tests above")
    from tests.postgres_server import PostgresServer

    server: PostgresServer = request.getfixturevalue("postgres")
    marker = f"marker-{secrets.token_hex(8)}"
    password = f"pg-secret-{secrets.token_hex(8)}"
    created = keyed_api.post(
        "/v2/BackupRepositories",
        {"name": marker, "path": str(tmp_path / marker), "encryptionPassword": password},
    )
    assert created.status_code == 200, created.text
    with server.admin() as connection:
        connection.execute("CHECKPOINT")
    held = b"".join(
        path.read_bytes()
        for folder in (server.data / "pg_wal", server.data / "base")
        for path in folder.rglob("*")
        if path.is_file()
    )
    assert marker.encode() in held and password.encode() not in held
