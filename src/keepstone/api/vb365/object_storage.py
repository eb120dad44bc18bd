"""Object storage: ``/objectstoragerepositories`` (v6, v7) and the object storage parts of
``BackupRepositories`` (v6/v7 ``objectStorageId``, v8 inline ``objectStorage``).

Only S3-compatible storage (``amazonBucketS3Compatible``) is kept; the other kinds are refused
by name. Shapes follow ``RESTObjectStorageRepositoryComposed`` (v6, v7) and
``RESTObjectStorageComposed`` (v8).
"""

from typing import Any

from pydantic import Field
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365.bodies import Int64, RepositoryBody, WireModel, parse_nested
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter
from keepstone.domain.errors import InvalidInput
from keepstone.services import object_storage
from keepstone.services.context import Context
from keepstone.store.tables import ObjectStorage, Repository

router = VersionedRouter()
SINCE, UNTIL = 6, 7
_OTHER_KINDS = {  # property -> field of the other storage kinds, refused by name
    "amazonBucketS3Aws": "amazon_bucket_s3_aws",
    "azureContainer": "azure_container",
    "amazonArchiverAppliance": "amazon_archiver_appliance",
}


class BucketBody(WireModel):
    service_point: str | None = None
    custom_region_id: str | None = None
    name: str | None = None


class ObjectStorageBody(WireModel):
    amazon_bucket_s3_compatible: Any = None
    s3_folder: str | None = None
    name: str | None = None
    description: str | None = None
    account_id: str | None = None
    size_limit_enabled: bool | None = None
    size_limit_gb: Int64 | None = Field(default=None, alias="sizeLimitGB")
    type: str | None = None
    amazon_bucket_s3_aws: Any = None
    azure_container: Any = None
    amazon_archiver_appliance: Any = None

    def to_edit(self, prefix: str = "") -> object_storage.StorageEdit:
        for kind, field in _OTHER_KINDS.items():
            if getattr(self, field) is not None:
                raise InvalidInput("only S3-compatible object storage is supported", prefix + kind)
        if self.type is not None and self.type.lower() != "amazons3compatible":
            raise InvalidInput(f"type '{self.type}' is not supported", prefix + "type")
        bucket = parse_nested(
            BucketBody, self.amazon_bucket_s3_compatible, prefix + "amazonBucketS3Compatible"
        )
        return object_storage.StorageEdit(
            name=self.name,
            description=self.description,
            account_id=self.account_id,
            service_point=bucket.service_point,
            region=bucket.custom_region_id,
            bucket=bucket.name,
            folder=self.s3_folder,
            size_limit_gb=self.size_limit_gb if self.size_limit_enabled is not False else None,
        )


def storage_view(row: ObjectStorage, api: ApiVersion) -> dict[str, Any]:
    limit = {} if row.size_limit_gb is None else {"sizeLimitGB": row.size_limit_gb}
    return {
        "amazonBucketS3Compatible": {
            "servicePoint": row.service_point,
            "customRegionId": row.region,
            "name": row.bucket,
        },
        "s3Folder": row.folder,
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "accountId": row.account_id,
        "sizeLimitEnabled": row.size_limit_gb is not None,
        **limit,
        "type": "AmazonS3Compatible",
        "_links": {
            "self": api.link("objectstoragerepositories", row.id),
            "account": api.link("accounts", row.account_id),
        },
    }


@router.get("/objectstoragerepositories", since=SINCE, until=UNTIL)
def list_storages(ctx: Ctx, api: Version, longTerm: bool | None = None) -> Response:
    rows = [] if longTerm else object_storage.list_storages(ctx)  # no archive tiers here
    return json([storage_view(row, api) for row in rows])


@router.post("/objectstoragerepositories", since=SINCE, until=UNTIL)
def create_storage(body: ObjectStorageBody, ctx: Ctx, api: Version) -> Response:
    return json(storage_view(object_storage.create_storage(ctx, body.to_edit()), api))


@router.get("/objectstoragerepositories/{storage_id}", since=SINCE, until=UNTIL)
def get_storage(storage_id: str, ctx: Ctx, api: Version) -> Response:
    return json(storage_view(object_storage.get_storage(ctx, storage_id), api))


@router.put(
    "/objectstoragerepositories/{storage_id}", since=SINCE, until=UNTIL, response_class=Response
)
def edit_storage(storage_id: str, body: ObjectStorageBody, ctx: Ctx) -> Response:
    object_storage.edit_storage(ctx, storage_id, body.to_edit())
    return plain(200)


@router.delete("/objectstoragerepositories/{storage_id}", since=SINCE, until=UNTIL, status_code=204)
def delete_storage(storage_id: str, ctx: Ctx) -> Response:
    object_storage.delete_storage(ctx, storage_id)
    return plain(204)


# ---- BackupRepositories ----------------------------------------------------------------------


def inline_storage(ctx: Context, value: Any) -> tuple[str, str | None]:
    """v8's inline ``objectStorage`` of a new repository: an existing one by ``id``, or a new
    one from the body (named after the bucket folder unless ``name`` is given); the id, and the
    id again when it was made here."""
    body = parse_nested(ObjectStorageBody, value, "objectStorage")
    raw_id = value.get("id") if isinstance(value, dict) else None
    if isinstance(raw_id, str) and raw_id and raw_id != "00000000-0000-0000-0000-000000000000":
        return raw_id, None
    edit = body.to_edit("objectStorage.")
    if edit.name is None and edit.bucket is not None:
        folder = (edit.folder or "").strip("/").replace("/", "-")
        edit = object_storage.StorageEdit(**{**_fields(edit), "name": f"{edit.bucket}-{folder}"})
    made = object_storage.create_storage(ctx, edit, "objectStorage.").id
    return made, made


def _fields(edit: object_storage.StorageEdit) -> dict[str, Any]:
    return {name: getattr(edit, name) for name in edit.__slots__}


def repository_fields(
    row: ObjectStorage | None, api: ApiVersion, encrypted: bool
) -> dict[str, Any]:
    """What a repository's view says of its object storage (encrypted as any repository is:
    by its ``encryptionPassword``); for a repository on disk, that none is encrypted. A v8
    ``proxyPoolId`` is ``views.repository``'s: a pool may own either kind."""
    if api.number < 6:
        return {}
    if row is None:  # nothing kept in a bucket, so nothing encrypted there
        return {"objectStorageEncryptionEnabled": False}
    fields: dict[str, Any] = {"objectStorageEncryptionEnabled": encrypted}
    if api.at_least(8):
        return fields | {"objectStorage": storage_view(row, api)}
    return fields | {"objectStorageId": row.id}


def add_repository(ctx: Context, body: RepositoryBody) -> Repository:
    """``POST BackupRepositories`` with an object storage: by ``objectStorageId`` (v6, v7) or
    inline ``objectStorage`` (v8); a storage made here for the repository goes if it fails."""
    made = None
    if body.object_storage_id is not None:
        storage_id = body.object_storage_id
    else:
        storage_id, made = inline_storage(ctx, body.object_storage)
    try:
        row, _ = object_storage.add_repository(
            ctx, body.to_edit(), storage_id, body.encryption_password
        )
    except BaseException:
        if made is not None:
            object_storage.delete_storage(ctx, made)
        raise
    return row


def refuse_storage_change(ctx: Context, repo_id: str, body: RepositoryBody) -> None:
    """A repository's objects stay where they are: another object storage is bad input."""
    current = object_storage.storage_of_repository(ctx, repo_id)
    wanted = body.object_storage_id
    if wanted is None and isinstance(body.object_storage, dict):
        wanted = body.object_storage.get("id")
    if wanted is not None and wanted != (current.id if current else None):
        prop = "objectStorageId" if body.object_storage_id is not None else "objectStorage"
        raise InvalidInput("the object storage of a repository cannot be changed", prop)
