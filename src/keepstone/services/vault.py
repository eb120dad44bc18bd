"""The server's secrets (repository passwords, organization credentials, S3 account secrets),
and opening repositories with their passwords.

The server must open encrypted repositories and log in to mail servers unattended (scheduled
runs), so it keeps those secrets. Where depends on the operator's key (``ctx.secret_box``):

- Without a key, beside the catalog, not in it: a file per owner in ``<data-dir>/secrets``
  (``repository-<id>``, ``organization-<id>``, ``account-<id>``; mode 0600 in a 0700
  directory), so a copied or attached catalog never carries them. A secret file is replaced
  atomically and durably: it may be the only copy of the key to an encrypted repository, so a
  crash or power loss must leave either the old or the new content.
- With a key, in the catalog (``sealed_secrets``), sealed (``services.secret_box``): every server
  sharing one catalog reaches them, and the catalog never holds one in the clear.
  :func:`start` moves the files there the first time a key is given.

A writer inside a catalog transaction passes its ``session``, so the row and its secret are
written together.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

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
from keepstone.services.secret_box import SecretBox, SecretKeyError
from keepstone.store.tables import SealedSecret


def _path(ctx: Context, name: str) -> Path | None:
    return ctx.secrets_dir / name if ctx.secrets_dir else None


def read_secret(ctx: Context, name: str) -> bytes | None:
    """The secret ``name`` (e.g. ``organization-<id>``), or None if there is none."""
    if ctx.secret_box is not None:
        with ctx.db.read() as s:
            token = s.scalar(select(SealedSecret.token).where(SealedSecret.name == name))
        return ctx.secret_box.open(name, token) if token is not None else None
    path = _path(ctx, name)
    return path.read_bytes() if path is not None and path.exists() else None


def keep_secret(
    ctx: Context, name: str, data: bytes, prop: str, session: Session | None = None
) -> None:
    """Replace the secret ``name`` with ``data`` (in ``session``'s transaction when given);
    ``prop`` names the property that carried it, for the 400 of a server that cannot keep it."""
    if ctx.secret_box is not None:
        row = SealedSecret(name=name, token=ctx.secret_box.seal(name, data))
        if session is not None:
            session.merge(row)
        else:
            with ctx.db.write() as s:
                s.merge(row)
        return
    path = _path(ctx, name)
    if path is None:
        raise InvalidInput("this server keeps no secrets: it has no data directory", prop)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path.parent, 0o700)  # mkdir's mode is filtered by the umask
    write_durably(path, data)


def forget_secret(ctx: Context, name: str) -> None:
    if ctx.secret_box is not None:
        with ctx.db.write() as s:
            s.execute(delete(SealedSecret).where(SealedSecret.name == name))
        return
    path = _path(ctx, name)
    if path is not None:
        path.unlink(missing_ok=True)


def start(ctx: Context) -> int:
    """Check the key against the catalog before serving, and move the vault files into the
    catalog the first time a key is given; how many were moved. A catalog holding sealed
    secrets without a key, or with another key, is a :class:`SecretKeyError` (no secret in it).
    """
    with ctx.db.read() as s:
        sample = s.execute(select(SealedSecret.name, SealedSecret.token).limit(1)).first()
    if ctx.secret_box is None:
        if sample is not None:
            raise SecretKeyError(
                "the catalog keeps encrypted secrets: start with the key that sealed them "
                "(KEEPSTONE_SECRET_KEY or --secret-key-file)"
            )
        return 0
    if sample is not None:
        ctx.secret_box.open(sample.name, sample.token)  # all share one key: one tells
    return _move_files(ctx, ctx.secret_box)


def _move_files(ctx: Context, box: SecretBox) -> int:
    """Every vault file sealed into the catalog in one transaction, then removed (a crash
    between the two leaves the files, moved again next start; a name the catalog already holds
    keeps the catalog's)."""
    if ctx.secrets_dir is None or not ctx.secrets_dir.is_dir():
        return 0
    files = [p for p in ctx.secrets_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not files:
        return 0
    with ctx.db.write() as s:
        names = [p.name for p in files]
        held = set(s.scalars(select(SealedSecret.name).where(SealedSecret.name.in_(names))))
        s.add_all(
            SealedSecret(name=p.name, token=box.seal(p.name, p.read_bytes()))
            for p in files
            if p.name not in held
        )
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)


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


def open_repository(
    ctx: Context, repo_id: str, path: str, *, load_index: bool = True
) -> Repository:
    """The repository ``repo_id`` (in its object storage, else at ``path``) with its kept
    password; created (unencrypted) on first use. ``load_index`` False: the index is loaded by
    the first read that needs it (browsing needs none)."""
    from keepstone.services.catalog import in_object_storage  # catalog imports this module

    password = password_of(ctx, repo_id)
    if not in_object_storage(ctx, repo_id):  # the S3 client is not loaded for it
        return open_or_create(path, password, load_index=load_index)
    from keepstone.services.object_storage import store_of  # it reads its secrets from here

    return open_store(store_of(ctx, repo_id, path), path, password, load_index=load_index)


def open_or_create(path: str, password: str | None, *, load_index: bool = True) -> Repository:
    """Open the repository at ``path``, or create it there."""
    store = LocalStore(Path(path))
    store.make_private()
    return open_store(store, path, password, load_index=load_index)


def open_store(
    store: ObjectStore, where: str, password: str | None, *, load_index: bool = True
) -> Repository:
    """Open the repository in ``store``, or create it there; a wrong or missing password is bad
    input naming ``encryptionPassword``."""
    try:
        if not store.exists("config"):
            try:
                return Repository.init(store, password)
            except RepositoryExists:  # another run created it a moment ago
                pass
        return Repository.open(store, password, load_index=load_index)
    except PasswordRequired:
        raise InvalidInput(
            f"the repository at {where} is encrypted: its password is needed", "encryptionPassword"
        ) from None
    except WrongPassword:
        raise InvalidInput(
            f"the password does not open the repository at {where}", "encryptionPassword"
        ) from None
