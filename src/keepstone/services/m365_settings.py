"""An Office365 organization's settings: the vendor's ``exchangeOnlineSettings`` /
``sharePointOnlineSettings`` (``RESTOffice365ConnectionSettings``), what the catalog keeps of
them, the application secret or certificate the vault keeps, the credential check, and the way
in the connector's parts get (:func:`access_of`, :func:`graph_users`).

Only modern app-only authentication is accepted: one Entra application (``applicationId``) of
one tenant (``officeOrganizationName``) with a client secret or a certificate (base64 PFX and
its password). Basic and legacy authentication, which the vendor deprecates, and the flows that
would have Keepstone create or configure an application, are refused naming the property.

What is kept where: :class:`M365Settings` (no secret; the certificate's thumbprint, which is
public) is ``organizations.settings``; :class:`M365Secrets` is the vault file
``secrets/organization-<id>`` (JSON, 0600), never the catalog, a response or a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from keepstone.domain.errors import Conflict, InvalidInput
from keepstone.services import vault
from keepstone.services.context import Context
from keepstone.sources.graph.errors import GraphAuthError, GraphError, TokenError
from keepstone.sources.graph.settings import EndpointError, GraphEndpoints
from keepstone.store.tables import Organization

# Graph's access and login (and httpx under them) are imported where a tenant is reached: a
# server imports this module at its start (the API's views, the role checks) and reaches a
# tenant only for an Office365 organization.
if TYPE_CHECKING:
    from keepstone.sources.graph.access import GraphAccess, GraphUser
    from keepstone.sources.graph.auth import AppCredentials

OFFICE365_TYPE = "Office365"
EXCHANGE = "exchangeOnlineSettings"
SHAREPOINT = "sharePointOnlineSettings"
SERVICES = (EXCHANGE, SHAREPOINT)
FLAGS = ("isExchangeOnline", "isSharePointOnline", "isTeamsOnline", "isTeamsChatsOnline")
REGIONS = ("Worldwide", "Germany", "China", "USDefence", "USGovernment")
MAX_SECRET = 4096
MAX_PFX = 64 * 1024  # base64 characters; an application's PFX is a few KB
_TENANT_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Entra's answer codes (AADSTS...) -> the property that was wrong
_AADSTS_PROPERTY = {
    "90002": "officeOrganizationName",
    "900023": "officeOrganizationName",
    "700016": "applicationId",
    "7000215": "applicationSecret",
    "7000222": "applicationSecret",
    "700027": "applicationCertificate",
    "700021": "applicationCertificate",
    "700023": "applicationCertificate",
    "700024": "applicationCertificate",
    "7000218": "applicationSecret",
}
# The vendor's flows Keepstone does not offer: each refused naming the property.
_UNSUPPORTED = {
    "configureApplication": "Keepstone does not configure applications: register one in Entra "
    "ID, grant it the application permissions, and give applicationId with a certificate or "
    "a secret",
    "newApplicationName": "Keepstone does not create applications: give applicationId",
    "userCode": "device-code sign-in is not used: give applicationId with a certificate or a "
    "secret",
}


@dataclass(frozen=True, slots=True)
class M365Settings:
    """What the catalog keeps: everything but the secret."""

    tenant: str  # officeOrganizationName as given (domain or tenant id)
    application_id: str
    credential: str  # "certificate" | "secret"
    certificate_thumbprint: str | None = None  # SHA-1 hex of the certificate (public)
    tenant_id: str | None = None  # the tenant's id (msid), from GET /organization
    initial_domain: str | None = None  # contoso.onmicrosoft.com (officeName)
    tenant_name: str | None = None  # the tenant's display name
    region: str = "Worldwide"
    is_exchange_online: bool = True
    is_sharepoint_online: bool = True
    is_teams_online: bool = False
    is_teams_chats_online: bool = False
    sharepoint_save_all_web_parts: bool = False


@dataclass(frozen=True, slots=True)
class M365Secrets:
    secret: str | None = None
    certificate_pfx: str | None = None  # base64 PFX
    certificate_password: str | None = None

    def __repr__(self) -> str:
        return "M365Secrets(...)"


@dataclass(frozen=True, slots=True)
class Configured:
    settings: M365Settings
    secrets: M365Secrets
    credentials_changed: bool = True  # whether the edit must be checked against the tenant


@dataclass(frozen=True, slots=True)
class TenantFacts:
    tenant_id: str
    initial_domain: str
    display_name: str


# ---- the body ---------------------------------------------------------------------------------


def _lower_keys(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("must be a JSON object", where)
    return {k.lower(): v for k, v in value.items() if isinstance(k, str) and v is not None}


def _text(given: Mapping[str, Any], name: str, where: str, limit: int = 255) -> str | None:
    value = given.get(name.lower())
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be a string", f"{where}.{name}")
    if not value or len(value) > limit:
        raise InvalidInput(f"must be 1 to {limit} characters", f"{where}.{name}")
    if any(c in value for c in "\r\n\0"):
        raise InvalidInput("must not contain CR, LF or NUL", f"{where}.{name}")
    return value


def _flag(given: Mapping[str, Any], name: str, where: str) -> bool | None:
    value = given.get(name.lower())
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInput("must be true or false", f"{where}.{name}" if where else name)


def _tenant(value: str, where: str) -> str:
    text = value.strip().lower()
    try:
        return str(uuid.UUID(text)) if len(text) == 36 else _domain(text, where)
    except ValueError:
        return _domain(text, where)


def _domain(text: str, where: str) -> str:
    if not _TENANT_DOMAIN.match(text):
        raise InvalidInput(
            "must be the tenant's domain (contoso.onmicrosoft.com) or its tenant id", where
        )
    return text


def _application_id(value: str, where: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise InvalidInput("must be the application (client) id, a UUID", where) from None


@dataclass(frozen=True, slots=True)
class _Service:
    """One ``RESTOffice365ConnectionSettings`` as sent."""

    where: str
    tenant: str | None
    application_id: str | None
    secrets: M365Secrets | None
    save_all_web_parts: bool | None


def _service(value: Any, where: str) -> _Service:
    given = _lower_keys(value, where)
    app_only = _flag(given, "useApplicationOnlyAuth", where)
    if app_only is False or given.get("account") or given.get("password"):
        raise InvalidInput(
            "basic authentication (account and password) is not supported: use modern app-only "
            "authentication (useApplicationOnlyAuth: true, applicationId, and "
            "applicationCertificate or applicationSecret)",
            f"{where}.useApplicationOnlyAuth" if app_only is False else f"{where}.account",
        )
    if _flag(given, "useMfa", where):
        raise InvalidInput("MFA sign-in is not supported: use app-only authentication", where)
    tenant = _text(given, "officeOrganizationName", where)
    app = _text(given, "applicationId", where)
    return _Service(
        where,
        _tenant(tenant, f"{where}.officeOrganizationName") if tenant else None,
        _application_id(app, f"{where}.applicationId") if app else None,
        _secrets(given, where),
        _flag(given, "sharePointSaveAllWebParts", where),
    )


def _secrets(given: Mapping[str, Any], where: str) -> M365Secrets | None:
    secret = _text(given, "applicationSecret", where, MAX_SECRET)
    pfx = _text(given, "applicationCertificate", where, MAX_PFX)
    password = given.get("applicationcertificatepassword")
    if password is not None and not isinstance(password, str):
        raise InvalidInput("must be a string", f"{where}.applicationCertificatePassword")
    if secret and pfx:
        raise InvalidInput(
            "give either applicationSecret or applicationCertificate, not both",
            f"{where}.applicationSecret",
        )
    if pfx:
        return M365Secrets(certificate_pfx=pfx.strip(), certificate_password=password or None)
    if password:
        raise InvalidInput(
            "is given without applicationCertificate", f"{where}.applicationCertificatePassword"
        )
    # a thumbprint alone (as GET shows it, and a PUT may send back) names no new credential
    _text(given, "applicationCertificateThumbprint", where)
    return M365Secrets(secret=secret) if secret else None


def _agreed(services: list[_Service], field: str) -> Any:
    """The value every service that gives ``field`` agrees on (one application per tenant)."""
    values = [(s, getattr(s, field)) for s in services if getattr(s, field) is not None]
    for service, value in values[1:]:
        if value != values[0][1]:
            name = {"tenant": "officeOrganizationName", "application_id": "applicationId"}[field]
            raise InvalidInput(
                f"must be the same as in {values[0][0].where}: one organization is one tenant "
                "and one application",
                f"{service.where}.{name}",
            )
    return values[0][1] if values else None


def _chosen_secrets(services: list[_Service]) -> M365Secrets | None:
    given = [s for s in services if s.secrets is not None]
    for service in given[1:]:
        if service.secrets != given[0].secrets:
            raise InvalidInput(f"must be the same credential as in {given[0].where}", service.where)
    return given[0].secrets if given else None


def parse(body: Mapping[str, Any], current: Configured | None = None) -> Configured:
    """The settings and secrets an Office365 organization's body makes (``body``: the top-level
    properties by their vendor names), or ``current`` edited by it. Pure; every refusal names
    its property; the secrets are never quoted."""
    for name, why in _UNSUPPORTED.items():
        if body.get(name):
            raise InvalidInput(why, name)
    services = [_service(body[name], name) for name in SERVICES if body.get(name) is not None]
    if current is None and not services:
        raise InvalidInput(f"is required for an Office365 organization (or {SHAREPOINT})", EXCHANGE)
    old = current.settings if current else None
    tenant = _agreed(services, "tenant") or (old.tenant if old else None)
    app = _agreed(services, "application_id") or (old.application_id if old else None)
    where = services[0].where if services else EXCHANGE
    if tenant is None:
        raise InvalidInput("is required", f"{where}.officeOrganizationName")
    if app is None:
        raise InvalidInput("is required", f"{where}.applicationId")
    secrets = _chosen_secrets(services)
    changed = (
        secrets is not None or old is None or (tenant, app) != (old.tenant, old.application_id)
    )
    secrets = secrets or (current.secrets if current else None)
    if secrets is None or not (secrets.secret or secrets.certificate_pfx):
        raise InvalidInput(
            "applicationCertificate (base64 PFX, with applicationCertificatePassword) or "
            "applicationSecret is required: Keepstone has no certificate store to find a "
            "certificate by its thumbprint",
            f"{where}.applicationCertificate",
        )
    settings = _flags(body, services, old, tenant, app, secrets)
    return Configured(settings, secrets, changed)


def _flags(
    body: Mapping[str, Any],
    services: list[_Service],
    old: M365Settings | None,
    tenant: str,
    app: str,
    secrets: M365Secrets,
) -> M365Settings:
    sent = {name for name in SERVICES if body.get(name) is not None}
    defaults = {
        "isExchangeOnline": EXCHANGE in sent if old is None else old.is_exchange_online,
        "isSharePointOnline": SHAREPOINT in sent if old is None else old.is_sharepoint_online,
        "isTeamsOnline": old.is_teams_online if old else False,
        "isTeamsChatsOnline": old.is_teams_chats_online if old else False,
    }
    lowered = {k.lower(): v for k, v in body.items()}
    flags = {}
    for name in FLAGS:
        value = _flag(lowered, name, "")
        flags[name] = defaults[name] if value is None else value
    if not (flags["isExchangeOnline"] or flags["isSharePointOnline"]):
        raise InvalidInput(
            "an Office365 organization backs up Exchange Online, SharePoint Online or both",
            "isExchangeOnline",
        )
    web_parts = next(
        (s.save_all_web_parts for s in services if s.save_all_web_parts is not None), None
    )
    base = old or M365Settings(tenant, app, "secret")
    return replace(
        base,
        tenant=tenant,
        application_id=app,
        credential="secret" if secrets.secret else "certificate",
        certificate_thumbprint=None if secrets.secret else base.certificate_thumbprint,
        region=_region(body.get("region"), base.region),
        is_exchange_online=flags["isExchangeOnline"],
        is_sharepoint_online=flags["isSharePointOnline"],
        is_teams_online=flags["isTeamsOnline"],
        is_teams_chats_online=flags["isTeamsChatsOnline"],
        sharepoint_save_all_web_parts=web_parts
        if web_parts is not None
        else base.sharepoint_save_all_web_parts,
    )


def _region(value: Any, kept: str) -> str:
    if value is None:
        return kept
    by_lower = {r.lower(): r for r in REGIONS}
    if isinstance(value, str) and value.lower() in by_lower:
        return by_lower[value.lower()]
    raise InvalidInput(f"must be one of {', '.join(REGIONS)}", "region")


# ---- the credential check ---------------------------------------------------------------------


def thumbprint_of(secrets: M365Secrets, where: str) -> str | None:
    """The certificate's SHA-1 thumbprint (upper-case hex, as Entra shows it); a PFX that
    cannot be read with its password is the client's 400."""
    # imported here: PKCS #12 loads X.509, needed only for a certificate (20 ms of a start)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    if not secrets.certificate_pfx:
        return None
    password = secrets.certificate_password
    try:
        data = base64.b64decode(secrets.certificate_pfx, validate=True)
        _, certificate, _ = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None
        )
    except (ValueError, binascii.Error):
        raise InvalidInput(
            "is not a PFX (base64) readable with applicationCertificatePassword",
            f"{where}.applicationCertificate",
        ) from None
    if certificate is None:
        raise InvalidInput("holds no certificate", f"{where}.applicationCertificate")
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def credentials_of(settings: M365Settings, secrets: M365Secrets) -> AppCredentials:
    from keepstone.sources.graph.auth import AppCredentials

    return AppCredentials(
        tenant=settings.tenant_id or settings.tenant,
        client_id=settings.application_id,
        secret=secrets.secret,
        certificate_pfx=secrets.certificate_pfx,
        certificate_password=secrets.certificate_password,
    )


def check(endpoints: GraphEndpoints, configured: Configured, where: str) -> TenantFacts:
    """Log in as the application and read the tenant (``GET /organization``): a refusal is a
    400 naming the property at fault, with the login service's or Graph's own words."""
    import httpx

    from keepstone.sources.graph.access import GraphAccess
    from keepstone.sources.graph.auth import AppCredentials, CredentialError

    settings = configured.settings
    credentials = AppCredentials(
        tenant=settings.tenant,
        client_id=settings.application_id,
        secret=configured.secrets.secret,
        certificate_pfx=configured.secrets.certificate_pfx,
        certificate_password=configured.secrets.certificate_password,
    )
    try:
        with GraphAccess(endpoints, credentials).client() as client:
            document = client.get_json("/v1.0/organization")
    except CredentialError as error:
        raise InvalidInput(str(error), f"{where}.applicationCertificate") from None
    except TokenError as error:
        raise InvalidInput(_login_refusal(error), _login_property(error, where)) from None
    except GraphAuthError as error:
        raise InvalidInput(
            f"Graph refused the application ({error.status} {error.code}: {error.message}); "
            "it needs the application permissions Organization.Read.All, User.Read.All, "
            "Group.Read.All, Sites.Read.All, Mail.ReadWrite, MailboxSettings.Read and "
            "Files.ReadWrite.All with admin consent",
            f"{where}.applicationId",
        ) from None
    except (GraphError, httpx.HTTPError, EndpointError, ValueError) as error:
        raise InvalidInput(
            f"the tenant could not be read: {_one_line(str(error))}",
            f"{where}.officeOrganizationName",
        ) from None
    return _tenant_facts(document, where)


def _login_refusal(error: TokenError) -> str:
    return f"the login service refused the application: {_one_line(error.description)}"


def _one_line(text: str) -> str:
    """The first line (Entra's descriptions go on with trace and correlation ids)."""
    return text.strip().splitlines()[0][:500] if text.strip() else "no reason given"


def _login_property(error: TokenError, where: str) -> str:
    match = re.match(r"AADSTS(\d+)", error.description.strip())
    name = _AADSTS_PROPERTY.get(match.group(1)) if match else None
    return f"{where}.{name}" if name else where


def _tenant_facts(document: Mapping[str, Any], where: str) -> TenantFacts:
    rows = document.get("value")
    row = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None
    if row is None or not isinstance(row.get("id"), str):
        raise InvalidInput("Graph gave no organization for the tenant", where)
    domains = [d for d in row.get("verifiedDomains") or [] if isinstance(d, dict)]
    initial = next((d for d in domains if d.get("isInitial")), domains[0] if domains else {})
    name = str(initial.get("name") or row["id"]).lower()
    return TenantFacts(str(row["id"]), name, str(row.get("displayName") or name))


def checked(ctx: Context, configured: Configured, where: str = EXCHANGE) -> Configured:
    """``configured`` with what the tenant says about itself (a secret change only if checked)."""
    settings = configured.settings
    thumbprint = thumbprint_of(configured.secrets, where)
    if not configured.credentials_changed:
        return configured
    facts = check(ctx.graph, configured, where)
    if settings.tenant_id and facts.tenant_id != settings.tenant_id:
        raise InvalidInput(
            f"names another tenant ({facts.initial_domain}) than the organization's "
            f"({settings.initial_domain}); add it as a new organization",
            f"{where}.officeOrganizationName",
        )
    return replace(
        configured,
        settings=replace(
            settings,
            tenant_id=facts.tenant_id,
            initial_domain=facts.initial_domain,
            tenant_name=facts.display_name,
            certificate_thumbprint=thumbprint,
        ),
    )


# ---- what is kept -----------------------------------------------------------------------------


def to_record(settings: M365Settings) -> dict[str, Any]:
    """``organizations.settings`` of an Office365 organization: no secret in it."""
    return {
        "officeOrganizationName": settings.tenant,
        "applicationId": settings.application_id,
        "credential": settings.credential,
        "applicationCertificateThumbprint": settings.certificate_thumbprint,
        "tenantId": settings.tenant_id,
        "initialDomain": settings.initial_domain,
        "tenantName": settings.tenant_name,
        "region": settings.region,
        "isExchangeOnline": settings.is_exchange_online,
        "isSharePointOnline": settings.is_sharepoint_online,
        "isTeamsOnline": settings.is_teams_online,
        "isTeamsChatsOnline": settings.is_teams_chats_online,
        "sharePointSaveAllWebParts": settings.sharepoint_save_all_web_parts,
    }


def from_record(record: Mapping[str, Any]) -> M365Settings:
    return M365Settings(
        tenant=record["officeOrganizationName"],
        application_id=record["applicationId"],
        credential=record["credential"],
        certificate_thumbprint=record.get("applicationCertificateThumbprint"),
        tenant_id=record.get("tenantId"),
        initial_domain=record.get("initialDomain"),
        tenant_name=record.get("tenantName"),
        region=record.get("region", "Worldwide"),
        is_exchange_online=record.get("isExchangeOnline", True),
        is_sharepoint_online=record.get("isSharePointOnline", True),
        is_teams_online=record.get("isTeamsOnline", False),
        is_teams_chats_online=record.get("isTeamsChatsOnline", False),
        sharepoint_save_all_web_parts=record.get("sharePointSaveAllWebParts", False),
    )


def secrets_name(org_id: str) -> str:
    return f"organization-{org_id}"


def encode_secrets(secrets: M365Secrets) -> bytes:
    return json.dumps(
        {
            "applicationSecret": secrets.secret,
            "applicationCertificate": secrets.certificate_pfx,
            "applicationCertificatePassword": secrets.certificate_password,
        }
    ).encode()


def decode_secrets(data: bytes) -> M365Secrets:
    kept = json.loads(data)
    return M365Secrets(
        kept.get("applicationSecret"),
        kept.get("applicationCertificate"),
        kept.get("applicationCertificatePassword"),
    )


def kept_secrets(ctx: Context, org: Organization) -> M365Secrets | None:
    data = vault.read_secret(ctx, secrets_name(org.id)) if org.type == OFFICE365_TYPE else None
    return decode_secrets(data) if data is not None else None


def configured_of(ctx: Context, org: Organization) -> Configured:
    """The organization's settings and kept secrets (a 409 if the vault lost them)."""
    if org.type != OFFICE365_TYPE:
        raise Conflict(f"organization '{org.name}' is a {org.type} organization, not Office365")
    secrets = kept_secrets(ctx, org)
    if secrets is None:
        raise Conflict(
            f"the application credentials of organization '{org.name}' are missing from the "
            "server's secrets directory: set them again with PUT"
        )
    return Configured(from_record(org.settings), secrets, credentials_changed=False)


# ---- the way in -------------------------------------------------------------------------------


def access_of(ctx: Context, org: Organization) -> GraphAccess:
    """How the connector's parts reach ``org``'s tenant: the server's Graph endpoints and the
    organization's application (by the tenant id Graph gave at the check)."""
    from keepstone.sources.graph.access import GraphAccess

    configured = configured_of(ctx, org)
    return GraphAccess(ctx.graph, credentials_of(configured.settings, configured.secrets))


def graph_users(ctx: Context, org: Organization) -> list[GraphUser]:
    """The organization's users as the cache holds them (filled by its syncs)."""
    from keepstone.services import m365_directory  # the cache needs this module's access_of

    return m365_directory.graph_users(ctx, org.id)
