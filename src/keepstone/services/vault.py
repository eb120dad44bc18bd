"""The server's secrets (repository passwords, organization credentials), and opening
repositories with their passwords.

The server must open encrypted repositories and log in to mail servers unattended (scheduled
runs), so it keeps those secrets, but beside the catalog, not in it: a file per owner in
``<data-dir>/secrets`` (``repository-<id>``, ``organization-<id>``; mode 0600 in a 0700
directory), so a copied or attached catalog never carries them. A secret file is replaced
atomically and durably: it may be the only copy of the key to an encrypted repository, so a
crash or power loss must leave either the old or the new content.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from keepstone.domain.errors import InvalidInput
from keepstone.engine import (
    LocalStore,
    ObjectStore,
    PasswordRequired,
    Repository,
    RepositoryExists,
    WrongPassword,
)
from keepstone.services.context import Context


def _path(ctx: Context, name: str) -> Path | None:
    return ctx.secrets_dir / name if ctx.secrets_dir else None


def read_secret(ctx: Context, name: str) -> bytes | None:
    """The secret file ``name`` (e.g. ``organization-<id>``), or None if there is none."""
    path = _path(ctx, name)
    return path.read_bytes() if path is not None and path.exists() else None


def keep_secret(ctx: Context, name: str, data: bytes, prop: str) -> None:
    """Replace the secret file ``name`` with ``data``; ``prop`` names the property that carried
    it, for the 400 of a server without a data directory."""
    path = _path(ctx, name)
    if path is None:
        raise InvalidInput("this server keeps no secrets: it has no data directory", prop)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path.parent, 0o700)  # mkdir's mode is filtered by the umask
    write_durably(path, data)


def forget_secret(ctx: Context, name: str) -> None:
    path = _path(ctx, name)
    if path is not None:
        path.unlink(missing_ok=True)


def password_of(ctx: Context, repo_id: str) -> str | None:
    data = read_secret(ctx, f"repository-{repo_id}")
    return data.decode() if data is not None else None


def keep_password(ctx: Context, repo_id: str, password: str) -> None:
    keep_secret(ctx, f"repository-{repo_id}", password.encode(), "encryptionPassword")


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600): a temporary file in the same directory,
    fsynced, renamed over ``path``, then the directory fsynced, so the name never points at a
    missing, empty or partial file, before or after a crash."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def forget_password(ctx: Context, repo_id: str) -> None:
    forget_secret(ctx, f"repository-{repo_id}")


def open_repository(ctx: Context, repo_id: str, path: str) -> Repository:
    """The repository ``repo_id`` (in its object storage, else at ``path``) with its kept
    password; created (unencrypted) on first use."""
    from keepstone.services.object_storage import store_of  # it reads its secrets from here

    return open_store(store_of(ctx, repo_id, path), path, password_of(ctx, repo_id))


def open_or_create(path: str, password: str | None) -> Repository:
    """Open the repository at ``path``, or create it there."""
    store = LocalStore(Path(path))
    store.make_private()
    return open_store(store, path, password)


def open_store(store: ObjectStore, where: str, password: str | None) -> Repository:
    """Open the repository in ``store``, or create it there; a wrong or missing password is bad
    input naming ``encryptionPassword``."""
    try:
        if not store.exists("config"):
            try:
                return Repository.init(store, password)
            except RepositoryExists:  # another run created it a moment ago
                pass
        return Repository.open(store, password)
    except PasswordRequired:
        raise InvalidInput(
            f"the repository at {where} is encrypted: its password is needed", "encryptionPassword"
        ) from None
    except WrongPassword:
        raise InvalidInput(
            f"the password does not open the repository at {where}", "encryptionPassword"
        ) from None
