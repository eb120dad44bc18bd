"""The two Starlette apps: Graph (`/v1.0/...`) and the login host (`/{tenant}/oauth2/...`).

They are separate apps on separate ports, as Graph and Entra are separate hosts: a client that
sends a Graph request to the login URL (or the reverse) gets a 404, not an answer.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.graph_fake import (
    attachments,
    auth,
    batch,
    directory,
    folders_create,
    mail,
    mail_create,
    onedrive,
    uploads,
)
from tests.graph_fake.errors import graph_error
from tests.graph_fake.gate import GraphGate
from tests.graph_fake.graph_auth import fake_of
from tests.graph_fake.sharepoint import ResourceUnitGate
from tests.graph_fake.state import FakeState


async def unknown_segment(request: Request) -> Response:
    segment = request.path_params["rest"].split("/")[-1]
    return graph_error(
        400,
        "BadRequest",
        f"Resource not found for the segment '{segment}'.",
        fake_of(request).clock.now(),
    )


def graph_app(state: FakeState) -> Starlette:
    routes = [
        Route("/v1.0/organization", directory.organization, methods=["GET"]),
        Route("/v1.0/users", directory.list_users, methods=["GET"]),
        Route("/v1.0/users/{user}", directory.get_user, methods=["GET"]),
        # organization cache (m365-org): groups, their members, SharePoint sites
        Route("/v1.0/groups", directory.list_groups, methods=["GET"]),
        Route("/v1.0/groups/{group}/members", directory.group_members, methods=["GET"]),
        Route("/v1.0/sites/getAllSites", directory.all_sites, methods=["GET"]),
        Route("/v1.0/users/{user}/mailboxSettings", mail.mailbox_settings, methods=["GET"]),
        Route("/v1.0/users/{user}/mailFolders", mail.list_folders, methods=["GET"]),
        Route(
            "/v1.0/users/{user}/mailFolders/{folder}/childFolders",
            mail.child_folders,
            methods=["GET"],
        ),
        Route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages/delta",
            mail.message_delta,
            methods=["GET"],
        ),
        Route("/v1.0/users/{user}/messages", mail_create.create_message, methods=["POST"]),
        Route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages",
            mail_create.create_in_folder,
            methods=["POST"],
        ),
        Route("/v1.0/users/{user}/messages/{message}", mail.get_message, methods=["GET"]),
        Route("/v1.0/users/{user}/messages/{message}/$value", mail.message_mime, methods=["GET"]),
        Route("/v1.0/users/{user}/drive", onedrive.user_drive, methods=["GET"]),
        Route("/v1.0/drives/{drive}/root/delta", onedrive.drive_delta, methods=["GET"]),
        Route("/v1.0/drives/{drive}/items/root/delta", onedrive.drive_delta, methods=["GET"]),
        Route("/v1.0/drives/{drive}/items/{item}", onedrive.get_item, methods=["GET"]),
        Route("/v1.0/drives/{drive}/items/{item}/content", onedrive.item_content, methods=["GET"]),
        Route("/_download/{item}", onedrive.download, methods=["GET"]),
        # OneDrive writes (m365-drive): folders, simple and session uploads, the upload host
        Route(
            "/v1.0/drives/{drive}/items/{parent}/children", uploads.create_child, methods=["POST"]
        ),
        Route(
            "/v1.0/drives/{drive}/items/{parent}:/{rest:path}",
            uploads.by_path,
            methods=["GET", "PUT", "POST"],
        ),
        Route("/v1.0/drives/{drive}/items/{item}", uploads.patch_item, methods=["PATCH"]),
        Route("/_upload/{session}", uploads.upload_host, methods=["GET", "PUT", "DELETE"]),
        Route("/v1.0/$batch", batch.batch, methods=["POST"]),
        # -- mail backup (m365-mail): one folder by id or well-known name; the beta mail API
        # for In-Place Archives (settings/exchange, then the archive's id as a user)
        Route("/v1.0/users/{user}/mailFolders/{folder}", mail.get_folder, methods=["GET"]),
        Route("/beta/users/{user}/settings/exchange", mail.exchange_settings, methods=["GET"]),
        Route("/beta/users/{user}/mailFolders", mail.list_folders, methods=["GET"]),
        Route(
            "/beta/users/{user}/mailFolders/{folder}/childFolders",
            mail.child_folders,
            methods=["GET"],
        ),
        Route(
            "/beta/users/{user}/mailFolders/{folder}/messages/delta",
            mail.message_delta,
            methods=["GET"],
        ),
        Route("/beta/users/{user}/messages/{message}/$value", mail.message_mime, methods=["GET"]),
        # -- end of mail backup
        # restore (mail): folders, collision lookup, delete, attachments, the upload host
        Route("/v1.0/users/{user}/mailFolders", folders_create.create_top_folder, methods=["POST"]),
        Route(
            "/v1.0/users/{user}/mailFolders/{folder}/childFolders",
            folders_create.create_child_folder,
            methods=["POST"],
        ),
        Route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages",
            mail_create.find_in_folder,
            methods=["GET"],
        ),
        Route(
            "/v1.0/users/{user}/messages/{message}", mail_create.delete_message, methods=["DELETE"]
        ),
        Route(
            "/v1.0/users/{user}/messages/{message}/attachments",
            attachments.add_attachment,
            methods=["POST"],
        ),
        Route(
            "/v1.0/users/{user}/messages/{message}/attachments",
            attachments.list_attachments,
            methods=["GET"],
        ),
        Route(
            "/v1.0/users/{user}/messages/{message}/attachments/createUploadSession",
            attachments.create_upload_session,
            methods=["POST"],
        ),
        Route(
            "/_outlook/attachmentSessions/{session}",
            attachments.upload_fragment,
            methods=["PUT"],
        ),
        Route(
            "/_outlook/attachmentSessions/{session}",
            attachments.cancel_upload,
            methods=["DELETE"],
        ),
        Route("/{rest:path}", unknown_segment),
    ]
    # Outlook throttling and faults first, then SharePoint/OneDrive resource units (m365-e2e).
    middleware = [Middleware(GraphGate), Middleware(ResourceUnitGate)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.fake = state
    return app


def login_app(state: FakeState) -> Starlette:
    routes = [
        Route("/{tenant}/oauth2/v2.0/token", auth.token_endpoint, methods=["POST"]),
        Route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            auth.openid_configuration,
            methods=["GET"],
        ),
    ]
    app = Starlette(routes=routes)
    app.state.fake = state
    return app
