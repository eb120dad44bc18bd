"""Passwords, keys and the checks that open does."""

from __future__ import annotations

from pathlib import Path

import pytest

from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.engine import (
    LocalStore,
    NotARepository,
    PasswordRequired,
    Repository,
    RepositoryCorrupt,
    RepositoryExists,
    UnsupportedFormat,
    WrongPassword,
)

from .helpers import PASSWORD, backup, new_repo, restore


def test_wrong_password(tmp_path: Path) -> None:
    new_repo(tmp_path, PASSWORD)
    with pytest.raises(WrongPassword, match="wrong password") as raised:
        Repository.open(LocalStore(tmp_path), "not the password")
    assert isinstance(raised.value, KeepstoneError)


def test_no_password_for_an_encrypted_repository(tmp_path: Path) -> None:
    new_repo(tmp_path, PASSWORD)
    for password in (None, ""):
        with pytest.raises(PasswordRequired, match="encrypted: a password is needed"):
            Repository.open(LocalStore(tmp_path), password)


def test_password_for_an_unencrypted_repository(tmp_path: Path) -> None:
    new_repo(tmp_path)
    with pytest.raises(WrongPassword, match="not encrypted"):
        Repository.open(LocalStore(tmp_path), PASSWORD)


def test_encrypted_objects_reveal_no_content(tmp_path: Path) -> None:
    secret = b"the launch codes are 0000 " * 5000
    repo = new_repo(tmp_path, PASSWORD)
    snapshot_id = backup(repo, {"alice/secret": secret})
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"launch codes" not in path.read_bytes()
            assert b"alice" not in path.read_bytes()
    assert restore(repo, snapshot_id) == {"alice/secret": secret}


def test_turning_encryption_off_in_config_is_caught(tmp_path: Path) -> None:
    new_repo(tmp_path, PASSWORD)
    config = tmp_path / "config"
    config.write_bytes(config.read_bytes().replace(b'"encrypted":true', b'"encrypted":false'))
    with pytest.raises(RepositoryCorrupt, match="has keys"):
        Repository.open(LocalStore(tmp_path))


def test_not_a_repository_and_exists(tmp_path: Path) -> None:
    with pytest.raises(NotARepository):
        Repository.open(LocalStore(tmp_path))
    new_repo(tmp_path)
    with pytest.raises(RepositoryExists):
        new_repo(tmp_path)
    with pytest.raises(InvalidInput):
        new_repo(tmp_path / "other", "")


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    new_repo(tmp_path)
    config = tmp_path / "config"
    config.write_bytes(config.read_bytes().replace(b'"version":1', b'"version":2'))
    with pytest.raises(UnsupportedFormat):
        Repository.open(LocalStore(tmp_path))
