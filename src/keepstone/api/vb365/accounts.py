"""Cloud accounts (``/Accounts``, v6+): the credentials of S3-compatible object storage.

The secret key (``password``) is write-only: it goes to the vault and no answer carries it.
"""

from typing import Any

from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365.bodies import WireModel
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter
from keepstone.services import object_storage
from keepstone.store.tables import CloudAccount

router = VersionedRouter()
SINCE = 6


class AccountBody(WireModel):
    """``RESTAccountToSend`` (v8) / ``RESTCredentialToSend`` (v6, v7); ``id`` and ``_links`` are
    read-only and ignored, ``newPassword``/``oldPassword`` (v6, v7) change the secret."""

    account_type: str | None = None
    user_name: str | None = None
    password: str | None = None
    new_password: str | None = None
    description: str | None = None

    def to_edit(self) -> object_storage.AccountEdit:
        return object_storage.AccountEdit(
            account_type=self.account_type,
            user_name=self.user_name,
            password=self.new_password or self.password,
            description=self.description,
        )


def account_view(row: CloudAccount, api: ApiVersion) -> dict[str, Any]:
    """``RESTAccount`` / ``RESTCredential``: never the secret (nor v8's ``organizationId``:
    accounts here belong to no organization)."""
    body: dict[str, Any] = {
        "accountType": row.account_type,
        "userName": row.user_name,
        "id": row.id,
        "description": row.description,
    }
    body["_links"] = {"self": api.link("accounts", row.id)}
    return body


@router.get("/Accounts", since=SINCE)
def list_accounts(
    ctx: Ctx,
    api: Version,
    name: str | None = None,
    accountType: str | None = None,
    organizationId: str | None = None,
) -> Response:
    rows = object_storage.list_accounts(ctx, name, accountType)
    if organizationId:  # accounts of an organization are not kept here (no Azure backups)
        rows = []
    return json([account_view(row, api) for row in rows])


@router.post("/Accounts", since=SINCE)
def create_account(body: AccountBody, ctx: Ctx, api: Version) -> Response:
    return json(account_view(object_storage.create_account(ctx, body.to_edit()), api), 201)


@router.get("/Accounts/{account_id}", since=SINCE)
def get_account(account_id: str, ctx: Ctx, api: Version) -> Response:
    return json(account_view(object_storage.get_account(ctx, account_id), api))


@router.put("/Accounts/{account_id}", since=SINCE, response_class=Response)
def edit_account(account_id: str, body: AccountBody, ctx: Ctx, api: Version) -> Response:
    object_storage.edit_account(ctx, account_id, body.to_edit())
    return plain(204 if api.at_least(8) else 200)


@router.delete("/Accounts/{account_id}", since=SINCE, status_code=204)
def delete_account(account_id: str, ctx: Ctx) -> Response:
    object_storage.delete_account(ctx, account_id)
    return plain(204)
