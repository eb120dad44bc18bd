"""E-mail notification settings (``/VboEmailSettings``, v6+) and their test mail
(``SendTest`` in v6 and v7, ``SendTestEmail`` in v8). ``userPassword`` is write-only: no answer
carries it (services/notifications.py keeps it in the vault). ``dailyDigest`` and
``dailyDigestTime`` are Keepstone's extension (the vendor's model has no digest): vendor clients
never send them, so a PUT of theirs keeps them, and ignore them in answers."""

from typing import Any

from pydantic import Field, StrictBool, StrictStr
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365.bodies import Int64, WireModel
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.versions import Version, VersionedRouter
from keepstone.services import notifications

router = VersionedRouter()
SINCE = 6
# the vendor's property names where they are not the camel case of ours
_WIRE_NAMES = {"useSsl": "useSSL", "from": "sender"}


class EmailSettingsBody(WireModel):
    """``RESTNotificationEmailSettingsRequest``; v8's OAuth properties are ignored (only
    ``CustomSmtp`` is supported; another ``authenticationType`` is refused)."""

    user_password: str | None = None
    notify_on_success: bool | None = None
    notify_on_warning: bool | None = None
    notify_on_failure: bool | None = None
    supress_until_last_retry: bool | None = None
    attach_detailed_report: bool | None = None
    enable_notification: bool | None = None
    smtp_server: str | None = None
    port: Int64 | None = None
    use_authentication: bool | None = None
    username: str | None = None
    use_ssl: bool | None = None
    sender: str | None = Field(default=None, alias="from")
    to: str | None = None
    subject: str | None = None
    authentication_type: str | None = None
    daily_digest: StrictBool | None = None  # Keepstone's
    daily_digest_time: StrictStr | None = None  # Keepstone's: HH:MM, the server's time zone

    def changes(self) -> dict[str, Any]:
        sent = self.model_dump(by_alias=True, exclude_none=True, exclude={"user_password"})
        return {_WIRE_NAMES.get(name, name): value for name, value in sent.items()}


@router.get("/VboEmailSettings", since=SINCE)
def get_email_settings(ctx: Ctx, api: Version) -> Response:
    settings, _ = notifications.get_settings(ctx)
    body: dict[str, Any] = {
        "notifyOnSuccess": settings.notifyOnSuccess,
        "notifyOnWarning": settings.notifyOnWarning,
        "notifyOnFailure": settings.notifyOnFailure,
        "supressUntilLastRetry": settings.supressUntilLastRetry,
        "attachDetailedReport": settings.attachDetailedReport,
        "enableNotification": settings.enableNotification,
        "smtpServer": settings.smtpServer,
        "port": settings.port,
        "useAuthentication": settings.useAuthentication,
        "username": settings.username,
        "useSSL": settings.useSSL,
        "from": settings.sender,
        "to": settings.to,
        "subject": settings.subject,
        "dailyDigest": settings.dailyDigest,
        "dailyDigestTime": settings.dailyDigestTime,
    }
    if api.at_least(8):
        body["authenticationType"] = settings.authenticationType
    body["_links"] = {"self": api.link("VboEmailSettings")}
    return json(body)


@router.put("/VboEmailSettings", since=SINCE, response_class=Response)
def put_email_settings(body: EmailSettingsBody, ctx: Ctx, api: Version) -> Response:
    notifications.put_settings(ctx, body.changes(), body.user_password)
    return plain(204 if api.at_least(8) else 200)


@router.post("/VboEmailSettings/SendTest", since=SINCE, until=7, response_class=Response)
def send_test(ctx: Ctx) -> Response:
    notifications.send_test(ctx)
    return plain(200)


@router.post("/VboEmailSettings/SendTestEmail", since=8, response_class=Response)
def send_test_email(ctx: Ctx) -> Response:
    notifications.send_test(ctx)
    return plain(204)
