"""Cloud accounts and S3-compatible object storages, and backup repositories kept in them.

An account (the vendor's ``/Accounts``) holds an S3 access key; its secret key is write-only and
lives in the vault (``account-<id>``), never in the catalog. An object storage (the vendor's
``objectstoragerepositories``) is a bucket folder on a service point, reached with an account. A
backup repository attached to an object storage keeps every object there; its ``path`` stays the
local directory the vendor calls the cache path. The repository in the bucket is self-describing:
attaching a folder that already holds one brings its restore points back, as for a local one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, InvalidInput, NotFound
from keepstone.domain.jobs import check_description, check_name
from keepstone.engine import LocalStore, ObjectStore
from keepstone.engine.s3location import (
    S3Location,
    S3Refused,
    S3Tuning,
    S3Unavailable,
    check_bucket,
    check_folder,
    check_service_point,
)
from keepstone.services import catalog, vault
from keepstone.services.context import Context, new_id
from keepstone.store.tables import CloudAccount, ObjectStorage
from keepstone.store.tables import Repository as RepositoryRow

if TYPE_CHECKING:
    from keepstone.engine.s3store import S3Store

R = TypeVar("R", CloudAccount, ObjectStorage)
S3_COMPATIBLE = "amazonS3CompatibleAccount"
ACCOUNT_TYPES = ("azureBlobAccount", "amazonS3Account", S3_COMPATIBLE)
# Tests shorten the waits between retries; production keeps S3Tuning's defaults.
TUNING: Callable[[], S3Tuning] = S3Tuning


# ---- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountEdit:
    account_type: str | None = None
    user_name: str | None = None
    password: str | None = None
    description: str | None = None


def _secret_name(account_id: str) -> str:
    return f"account-{account_id}"


def _account_type(value: str | None) -> str:
    if value is None:
        raise InvalidInput("accountType is required", "accountType")
    if value != S3_COMPATIBLE:
        raise InvalidInput(
            f"accountType '{value}' is not supported: only {S3_COMPATIBLE}", "accountType"
        )
    return value


def _user_name(value: str | None) -> str:
    name = (value or "").strip()
    if len(name) > 255:
        raise InvalidInput("userName (the access key) must be at most 255 characters", "userName")
    if not name or any(c.isspace() or not c.isprintable() for c in name):
        raise InvalidInput("userName (the access key) must be non-empty printable text", "userName")
    return name


def _secret(value: str | None) -> bytes:
    if not value:
        raise InvalidInput("password (the secret key) is required", "password")
    return value.encode()


def create_account(ctx: Context, spec: AccountEdit) -> CloudAccount:
    account = CloudAccount(
        id=new_id(),
        account_type=_account_type(spec.account_type),
        user_name=_user_name(spec.user_name),
        description=check_description(spec.description or ""),
    )
    secret = _secret(spec.password)
    vault.keep_secret(ctx, _secret_name(account.id), secret, "password")
    try:
        with ctx.db.write() as s:
            s.add(account)
    except BaseException:
        vault.forget_secret(ctx, _secret_name(account.id))
        raise
    return account


def edit_account(ctx: Context, account_id: str, edit: AccountEdit) -> CloudAccount:
    """Change the access key, description or secret; the type of an account never changes."""
    user_name = _user_name(edit.user_name) if edit.user_name is not None else None
    description = check_description(edit.description) if edit.description is not None else None
    with ctx.db.write() as s:
        account = _account(s, account_id)
        if edit.account_type is not None and edit.account_type != account.account_type:
            raise InvalidInput("the accountType of an account cannot be changed", "accountType")
        if edit.password is not None:
            secret = _secret(edit.password)
            vault.keep_secret(ctx, _secret_name(account.id), secret, "password", session=s)
        if user_name is not None:
            account.user_name = user_name
        if description is not None:
            account.description = description
    return account


def delete_account(ctx: Context, account_id: str) -> None:
    with ctx.db.write() as s:
        account = _account(s, account_id)
        users = list(
            s.scalars(select(ObjectStorage.name).where(ObjectStorage.account_id == account.id))
        )
        if users:
            raise Conflict(f"account is in use by object storage(s) {', '.join(users)}")
        s.delete(account)
    vault.forget_secret(ctx, _secret_name(account_id))


def list_accounts(
    ctx: Context, name: str | None = None, account_type: str | None = None
) -> list[CloudAccount]:
    with ctx.db.read() as s:
        query = select(CloudAccount).order_by(CloudAccount.user_name, CloudAccount.id)
        if name:
            query = query.where(func.lower(CloudAccount.user_name) == name.lower())
        if account_type:
            query = query.where(func.lower(CloudAccount.account_type) == account_type.lower())
        return list(s.scalars(query))


def get_account(ctx: Context, account_id: str) -> CloudAccount:
    with ctx.db.read() as s:
        return _account(s, account_id)


def _account(s: Session, account_id: str, prop: str | None = None) -> CloudAccount:
    return _row(s, CloudAccount, account_id, "account", prop)


def _row(s: Session, table: type[R], row_id: str, what: str, prop: str | None) -> R:
    """The row, else a 404 (a URL's target) or a 400 naming ``prop`` (a body's reference)."""
    row = s.get(table, row_id)
    if row is None:
        message = f"{what} '{row_id}' does not exist"
        raise InvalidInput(message, prop) if prop else NotFound(message)
    return row


# ---- object storages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StorageEdit:
    name: str | None = None
    description: str | None = None
    account_id: str | None = None
    service_point: str | None = None
    region: str | None = None
    bucket: str | None = None
    folder: str | None = None
    size_limit_gb: int | None = None


SERVICE_POINT = "amazonBucketS3Compatible.servicePoint"
BUCKET = "amazonBucketS3Compatible.name"
REGION = "amazonBucketS3Compatible.customRegionId"


def create_storage(ctx: Context, spec: StorageEdit, prefix: str = "") -> ObjectStorage:
    """A new object storage; the bucket must exist and the account must reach it."""
    if spec.service_point is None:
        raise InvalidInput("servicePoint is required", prefix + SERVICE_POINT)
    if spec.bucket is None:
        raise InvalidInput("the bucket name is required", prefix + BUCKET)
    if spec.account_id is None:
        raise InvalidInput("accountId is required", prefix + "accountId")
    if spec.size_limit_gb is not None and spec.size_limit_gb < 1:
        raise InvalidInput("sizeLimitGB must be at least 1", prefix + "sizeLimitGB")
    storage = ObjectStorage(
        id=new_id(),
        name=check_name(spec.name or spec.bucket),
        description=check_description(spec.description or ""),
        account_id=spec.account_id,
        service_point=check_service_point(spec.service_point, prefix + SERVICE_POINT),
        region=_region(spec.region, prefix + REGION),
        bucket=check_bucket(spec.bucket, prefix + BUCKET),
        folder=check_folder(spec.folder or "", prefix + "s3Folder"),
        size_limit_gb=spec.size_limit_gb,
    )
    with ctx.db.read() as s:
        _account(s, storage.account_id, prefix + "accountId")
    _check_reachable(ctx, storage, prefix)
    with ctx.db.write() as s:
        _unique_name(s, storage.name, None, prefix)
        _refuse_shared_folder(s, storage, prefix)
        s.add(storage)
    return storage


def edit_storage(ctx: Context, storage_id: str, edit: StorageEdit) -> ObjectStorage:
    """Name, description and size limit change; where the objects are does not."""
    with ctx.db.write() as s:
        storage = _storage(s, storage_id)
        fixed = {
            "accountId": (edit.account_id, storage.account_id),
            SERVICE_POINT: (edit.service_point, storage.service_point),
            BUCKET: (edit.bucket, storage.bucket),
            "s3Folder": (
                check_folder(edit.folder) if edit.folder is not None else None,
                storage.folder,
            ),
        }
        for prop, (wanted, current) in fixed.items():
            if wanted is not None and wanted.rstrip("/") != current:
                raise InvalidInput(f"{prop} of an existing object storage cannot be changed", prop)
        if edit.name is not None:
            storage.name = check_name(edit.name)
            _unique_name(s, storage.name, storage.id, "")
        if edit.description is not None:
            storage.description = check_description(edit.description)
        if edit.size_limit_gb is not None:
            storage.size_limit_gb = edit.size_limit_gb
    return storage


def delete_storage(ctx: Context, storage_id: str) -> None:
    with ctx.db.write() as s:
        storage = _storage(s, storage_id)
        if storage.repository_id is not None:
            repo = s.get(RepositoryRow, storage.repository_id)
            raise Conflict(f"object storage is in use by repository '{repo.name if repo else ''}'")
        s.delete(storage)


def list_storages(ctx: Context) -> list[ObjectStorage]:
    with ctx.db.read() as s:
        return list(s.scalars(select(ObjectStorage).order_by(ObjectStorage.name)))


def get_storage(ctx: Context, storage_id: str) -> ObjectStorage:
    with ctx.db.read() as s:
        return _storage(s, storage_id)


def storage_of_repository(ctx: Context, repo_id: str) -> ObjectStorage | None:
    with ctx.db.read() as s:
        return s.scalar(select(ObjectStorage).where(ObjectStorage.repository_id == repo_id))


def storages_by_repository(ctx: Context) -> dict[str, ObjectStorage]:
    """Every attached object storage by repository id (one query for a whole listing)."""
    with ctx.db.read() as s:
        rows = s.scalars(select(ObjectStorage).where(ObjectStorage.repository_id.is_not(None)))
        return {row.repository_id: row for row in rows if row.repository_id is not None}


def _storage(s: Session, storage_id: str, prop: str | None = None) -> ObjectStorage:
    return _row(s, ObjectStorage, storage_id, "object storage", prop)


def _region(value: str | None, prop: str) -> str:
    region = (value or "us-east-1").strip()
    if not region or len(region) > 64 or not all(c.isalnum() or c == "-" for c in region):
        raise InvalidInput(f"'{value}' is not a region identifier", prop)
    return region


def _unique_name(s: Session, name: str, own_id: str | None, prefix: str) -> None:
    clash = s.scalar(
        select(ObjectStorage.id).where(
            func.lower(ObjectStorage.name) == name.lower(), ObjectStorage.id != (own_id or "")
        )
    )
    if clash is not None:
        raise InvalidInput(f"the name '{name}' is already taken", prefix + "name")


def _refuse_shared_folder(s: Session, storage: ObjectStorage, prefix: str) -> None:
    """Two object storages on one bucket may not nest: each repository owns its folder."""
    others = s.scalars(
        select(ObjectStorage).where(
            ObjectStorage.service_point == storage.service_point,
            ObjectStorage.bucket == storage.bucket,
        )
    )
    for other in others:
        a, b = f"{storage.folder}/", f"{other.folder}/"
        if a.startswith(b) or b.startswith(a) or not storage.folder or not other.folder:
            raise InvalidInput(
                f"folder '{storage.folder}' overlaps object storage '{other.name}' in that bucket",
                prefix + "s3Folder",
            )


# ---- stores -----------------------------------------------------------------------------------


def location_of(ctx: Context, storage: ObjectStorage) -> S3Location:
    with ctx.db.read() as s:
        account = _account(s, storage.account_id)
    secret = vault.read_secret(ctx, _secret_name(account.id))
    if secret is None:
        raise InvalidInput(f"the secret key of account '{account.user_name}' is not kept here")
    return S3Location(
        storage.service_point,
        storage.region,
        storage.bucket,
        storage.folder,
        account.user_name,
        secret.decode(),
    )


def store_of(ctx: Context, repo_id: str, path: str) -> ObjectStore:
    """Where repository ``repo_id`` keeps its objects: its object storage, else its directory."""
    storage = storage_of_repository(ctx, repo_id)
    if storage is None:
        local = LocalStore(Path(path))
        local.make_private()
        return local
    return _s3_store(location_of(ctx, storage), TUNING())


def used_bytes(ctx: Context, storage: ObjectStorage) -> int:
    """The bytes the repository kept in ``storage`` takes in its bucket folder."""
    return _s3_store(location_of(ctx, storage), TUNING()).used_bytes()


def _s3_store(location: S3Location, tuning: S3Tuning) -> S3Store:
    # botocore (about 0.2 s and 200 modules) is imported when a bucket is first reached, not
    # with the API that names object storages.
    from keepstone.engine.s3store import S3Store

    return S3Store(location, tuning)


def unreachable(*also: type[Exception]) -> tuple[type[Exception], ...]:
    """What a bucket that cannot be reached raises (``S3Unavailable``, botocore's own errors),
    and ``also``. Called in an ``except`` clause, which evaluates it only once something was
    raised: the API's start does not import botocore."""
    from botocore.exceptions import BotoCoreError

    return (S3Unavailable, BotoCoreError, *also)


def _check_reachable(ctx: Context, storage: ObjectStorage, prefix: str) -> None:
    # A probe, not a run: one retry is enough to tell a wrong service point from a hiccup.
    store = _s3_store(location_of(ctx, storage), replace(TUNING(), attempts=2))
    try:
        store.list("config")
    except S3Refused as e:
        why = "does not exist" if e.code == "NoSuchBucket" else f"refused access ({e.code})"
        raise InvalidInput(f"bucket '{storage.bucket}' {why}", prefix + BUCKET) from None
    except unreachable() as e:
        raise InvalidInput(
            f"the service point does not answer: {type(e).__name__}", prefix + SERVICE_POINT
        ) from None


# ---- repositories kept in object storage ------------------------------------------------------


def add_repository(
    ctx: Context, spec: catalog.RepositoryEdit, storage_id: str, password: str | None
) -> tuple[RepositoryRow, int]:
    """A backup repository kept in object storage ``storage_id``; when its folder already holds
    a repository, it is attached and its restore points come back (``maintenance.attach``)."""
    from keepstone.services import maintenance  # maintenance reaches stores through this module

    with ctx.db.read() as s:
        storage = _storage(s, storage_id, "objectStorageId")
        if storage.repository_id is not None:
            raise InvalidInput("this object storage already holds a repository", "objectStorageId")
    row = catalog.create_repository(ctx, spec)
    try:
        with ctx.db.write() as s:
            attached = s.get(ObjectStorage, storage_id)
            if attached is None or attached.repository_id is not None:
                raise Conflict("the object storage was taken or removed meanwhile")
            attached.repository_id = row.id
        store = store_of(ctx, row.id, row.path)
        holds_one = store.exists("config")
        if password is not None or holds_one:
            vault.open_store(store, _where(storage), password)
        if password is not None:
            vault.keep_password(ctx, row.id, password)
    except BaseException:
        catalog.delete_repository(ctx, row.id)
        raise
    return row, maintenance.rebuild_catalog(ctx, row) if holds_one else 0


def _where(storage: ObjectStorage) -> str:
    return f"s3 bucket {storage.bucket}/{storage.folder}"
