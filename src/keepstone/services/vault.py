"""Repository passwords, and opening repositories with them.

The server must open encrypted repositories unattended (scheduled runs), so it keeps each
repository's password, but beside the catalog, not in it: a file per repository in
``<data-dir>/secrets`` (mode 0600), so a copied or attached catalog never carries passwords.
"""

from __future__ import annotations

import os
from pathlib import Path

from keepstone.domain.errors import InvalidInput
from keepstone.engine import (
    LocalStore,
    PasswordRequired,
    Repository,
    RepositoryExists,
    WrongPassword,
)
from keepstone.services.context import Context


def _path(ctx: Context, repo_id: str) -> Path | None:
    return ctx.secrets_dir / f"repository-{repo_id}" if ctx.secrets_dir else None


def password_of(ctx: Context, repo_id: str) -> str | None:
    path = _path(ctx, repo_id)
    return path.read_text() if path is not None and path.exists() else None


def keep_password(ctx: Context, repo_id: str, password: str) -> None:
    path = _path(ctx, repo_id)
    if path is None:
        raise InvalidInput(
            "this server keeps no secrets: it has no data directory", "encryptionPassword"
        )
    path.parent.mkdir(mode=0o700, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password)


def forget_password(ctx: Context, repo_id: str) -> None:
    path = _path(ctx, repo_id)
    if path is not None:
        path.unlink(missing_ok=True)


def open_repository(ctx: Context, repo_id: str, path: str) -> Repository:
    """The repository at ``path`` with its kept password; created (unencrypted) on first use."""
    return open_or_create(path, password_of(ctx, repo_id))


def open_or_create(path: str, password: str | None) -> Repository:
    """Open the repository at ``path``, or create it there; a wrong or missing password is bad
    input naming ``encryptionPassword``."""
    store = LocalStore(Path(path))
    try:
        if not store.exists("config"):
            try:
                return Repository.init(store, password)
            except RepositoryExists:  # another run created it a moment ago
                pass
        return Repository.open(store, password)
    except PasswordRequired:
        raise InvalidInput(
            f"the repository at {path} is encrypted: its password is needed", "encryptionPassword"
        ) from None
    except WrongPassword:
        raise InvalidInput(
            f"the password does not open the repository at {path}", "encryptionPassword"
        ) from None
