"""The server itself: its version, its licence, the restore portal."""

from fastapi import Request
from starlette.responses import Response

from keepstone.api import public_url
from keepstone.api.vb365 import views
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.versions import Version, VersionedRouter
from keepstone.services import catalog, licensing

router = VersionedRouter()


@router.get("/ServiceInstance", since=6)
def service_instance(ctx: Ctx) -> Response:
    return json(views.service_instance(catalog.installation_id(ctx)))


@router.get("/License", since=6)
def get_license(ctx: Ctx, api: Version) -> Response:
    return json(views.license_body(licensing.license_of(ctx), api))


@router.get("/RestorePortalSettings", since=6)
def restore_portal_settings(request: Request, api: Version) -> Response:
    return json(views.restore_portal_settings(api, public_url.base_url(request)))
