"""The application an Office365 restore request names instead of the organization's own.

The vendor's restore bodies (``RESTRestoreToOriginalLocation``, ``…ToDifferentLocation``…) may
carry ``applicationId`` with ``applicationCertificate`` (base64 PFX) and its password; Keepstone
also takes ``applicationSecret``, as the organization itself does. Such a request is checked
against the organization's tenant before anything is written (a login, then
``GET /organization``); a refusal is a 400 naming the property. A request naming none uses the
organization's stored application. A user's password or device code (the vendor's legacy
flows) is refused: Graph restores run as an application.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from keepstone.domain.errors import InvalidInput
from keepstone.services import m365_settings
from keepstone.services.context import Context
from keepstone.services.m365_settings import Configured, M365Secrets
from keepstone.sources.graph.access import GraphAccess
from keepstone.store.tables import Organization

WHERE = "restore"  # the prefix m365_settings' checks give properties; dropped in answers
MAX_SECRET = m365_settings.MAX_SECRET
MAX_PFX = m365_settings.MAX_PFX


@dataclass(frozen=True, slots=True)
class RestoreCredentials:
    application_id: str
    secret: str | None = None
    certificate_pfx: str | None = None
    certificate_password: str | None = None

    def __repr__(self) -> str:  # the secret and the key never reach a log line
        return f"RestoreCredentials(application_id={self.application_id!r})"


def restore_credentials(
    *,
    application_id: str | None,
    secret: str | None,
    certificate: str | None,
    certificate_password: str | None,
    user_password: str | None = None,
    user_code: str | None = None,
) -> RestoreCredentials | None:
    """The application a restore request names, or None (the organization's own). Pure."""
    if user_password:
        raise InvalidInput(
            "a user's password is not used: Office365 restores run as an application "
            "(applicationId with applicationCertificate or applicationSecret), or as the "
            "organization's own when none is named",
            "userPassword",
        )
    if user_code:
        raise InvalidInput("device-code sign-in is not used", "userCode")
    if not application_id:
        for name, value in (
            ("applicationSecret", secret),
            ("applicationCertificate", certificate),
            ("applicationCertificatePassword", certificate_password),
        ):
            if value:
                raise InvalidInput("is given without applicationId", name)
        return None
    return _named(application_id, secret, certificate, certificate_password)


def _named(
    application_id: str, secret: str | None, certificate: str | None, password: str | None
) -> RestoreCredentials:
    try:
        uuid.UUID(application_id)
    except ValueError:
        raise InvalidInput("must be the application's id (a GUID)", "applicationId") from None
    if secret and certificate:
        raise InvalidInput(
            "give either applicationSecret or applicationCertificate, not both",
            "applicationSecret",
        )
    if not secret and not certificate:
        raise InvalidInput(
            "names an application without applicationCertificate or applicationSecret",
            "applicationId",
        )
    if password and not certificate:
        raise InvalidInput(
            "is given without applicationCertificate", "applicationCertificatePassword"
        )
    if secret and len(secret) > MAX_SECRET:
        raise InvalidInput(f"must be at most {MAX_SECRET} characters", "applicationSecret")
    if certificate and len(certificate) > MAX_PFX:
        raise InvalidInput(f"must be at most {MAX_PFX} characters", "applicationCertificate")
    return RestoreCredentials(
        application_id, secret or None, certificate.strip() if certificate else None, password
    )


def checked_access(ctx: Context, org: Organization, given: RestoreCredentials) -> GraphAccess:
    """The organization's tenant reached with the application a request named, once the
    tenant has accepted it (a 400 naming the property otherwise)."""
    stored = m365_settings.configured_of(ctx, org).settings
    settings = replace(
        stored, tenant=stored.tenant_id or stored.tenant, application_id=given.application_id
    )
    secrets = M365Secrets(given.secret, given.certificate_pfx, given.certificate_password)
    try:
        m365_settings.thumbprint_of(secrets, WHERE)
        m365_settings.check(ctx.graph, Configured(settings, secrets), WHERE)
    except InvalidInput as error:
        raise _top_level(error) from None
    return GraphAccess(ctx.graph, m365_settings.credentials_of(settings, secrets))


def _top_level(error: InvalidInput) -> InvalidInput:
    """The refusal naming the request's own property (``applicationSecret``, not
    ``restore.applicationSecret``)."""
    prop = error.prop or ""
    text = error.message.removeprefix(f"{prop}: ")
    name = prop.removeprefix(f"{WHERE}.") if prop != WHERE else "applicationId"
    return InvalidInput(text, name)
