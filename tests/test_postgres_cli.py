"""``--database`` / ``KEEPSTONE_DATABASE``: which catalog the commands open, and how a bad URL is
refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keepstone.cli.main import app
from keepstone.server import DATABASE_FILE, ServerError, resolve_database
from keepstone.store.db import DatabaseUrlError, database_url
from tests.postgres_server import PostgresServer


def test_a_plain_postgresql_url_means_psycopg() -> None:
    assert database_url("postgresql://ks@127.0.0.1:5432/cat") == (
        "postgresql+psycopg://ks@127.0.0.1:5432/cat"
    )
    assert database_url("postgres://ks@db/cat") == "postgresql+psycopg://ks@db/cat"
    assert database_url("sqlite:////var/k.db") == "sqlite:////var/k.db"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("just-a-name", "not a URL"),
        ("postgresql://", "not a URL"),
    ],
)
def test_an_unusable_url_is_refused_by_name(given: str, says: str) -> None:
    with pytest.raises(DatabaseUrlError, match=says):
        database_url(given)


def test_a_password_in_a_refused_url_is_never_repeated() -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        database_url("mysql://user:s3cret-pw@host/db")
    assert "s3cret-pw" not in str(refused.value)
    with pytest.raises(DatabaseUrlError) as refused:
        database_url("s3cret-pw")  # a password pasted in the wrong place
    assert "s3cret-pw" not in str(refused.value)


def test_the_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPSTONE_DATABASE", "postgresql://env@h/a")
    assert resolve_database("postgresql://opt@h/b") == "postgresql+psycopg://opt@h/b"
    assert resolve_database(None) == "postgresql+psycopg://env@h/a"
    monkeypatch.delenv("KEEPSTONE_DATABASE")
    assert resolve_database(None) is None
    with pytest.raises(ServerError):
        resolve_database("ftp://x")


@pytest.fixture
def catalog(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    yield postgres.url(name)  # as an operator writes it
    postgres.drop_database(name)


def test_admin_commands_work_on_a_postgresql_catalog(
    catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEEPSTONE_DATABASE", raising=False)
    runner = CliRunner()
    data = tmp_path / "data"
    add = ["admin", "user", "add", "carol", "--password", "pw one two three"]
    added = runner.invoke(app, [*add, "--data-dir", str(data), "--database", catalog])
    assert added.exit_code == 0, added.output
    # the catalog is PostgreSQL's: the data directory has no SQLite file
    assert not (data / DATABASE_FILE).exists()
    monkeypatch.setenv("KEEPSTONE_DATABASE", catalog)
    listed = runner.invoke(app, ["admin", "user", "list", "--data-dir", str(data)])
    assert listed.exit_code == 0, listed.output
    assert "carol" in listed.output
    monkeypatch.delenv("KEEPSTONE_DATABASE")
    elsewhere = runner.invoke(app, ["admin", "user", "list", "--data-dir", str(tmp_path / "other")])
    assert elsewhere.exit_code == 0 and "carol" not in elsewhere.output


def test_a_bad_database_option_ends_the_command_with_status_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["admin", "user", "list", "--data-dir", str(tmp_path), "--database", "mysql://x/y"]
    )
    assert result.exit_code == 2
    assert "unsupported scheme 'mysql'" in result.output
