"""The application an Office365 restore request names instead of the organization's own.

The vendor's restore bodies (``RESTRestoreToOriginalLocation``, ``…ToDifferentLocation``…) may
carry ``applicationId`` with ``applicationCertificate`` (base64 PFX) and its password; Keepstone
also takes ``applicationSecret``, as the organization itself does. Such a request is checked
against the organization's tenant before anything is written (a login, then
``GET /organization``); a refusal is a 400 naming the property. A request naming none uses the
organization's stored application. A user's password or device code (the vendor's legacy
flows) is refused: Graph restores run as an application.

Also the vendor's Exchange restore options (``changedItems``, ``deletedItems``,
``markRestoredAsUnread``, ``excludeDrafts``, …): each is carried out or refused with a 400
naming it, never ignored (:func:`mail_options`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from keepstone.domain.errors import InvalidInput
from keepstone.services import m365_settings
from keepstone.services.catalog import get_organization_in
from keepstone.services.context import Context
from keepstone.services.m365_settings import Configured, M365Secrets
from keepstone.sources.targets import LocalTarget, RestoreTarget
from keepstone.store.tables import Organization

# Graph's restore modules (and httpx under them) are imported by a restore that uses them: the
# API's restore routes import this module at a server's start.
if TYPE_CHECKING:
    from keepstone.sources.graph.access import GraphAccess
    from keepstone.sources.graph.mail_restore import MailOptions

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
    office365: bool = True,
) -> RestoreCredentials | None:
    """The application a restore request names, or None (the organization's own). Pure.

    An Office365 organization is written as an application, so a user's sign-in (a password,
    a device code) is refused there: it would not be what the restore runs as. Any other
    organization is written through Keepstone's own access to its source, which the caller's
    role authorizes: a user's sign-in, which v2-v5 clients send with every restore (the
    vendor's self-service portal among them), is accepted there and not used (neither kept
    nor logged)."""
    if user_password and office365:
        raise InvalidInput(
            "a user's password is not used: Office365 restores run as an application "
            "(applicationId with applicationCertificate or applicationSecret), or as the "
            "organization's own when none is named",
            "userPassword",
        )
    if user_code and office365:
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


def is_office365(ctx: Context, organization_id: str) -> bool:
    with ctx.db.read() as s:
        return get_organization_in(s, organization_id).type == m365_settings.OFFICE365_TYPE


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
    from keepstone.sources.graph.access import GraphAccess

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


# ---- the vendor's Exchange restore options -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExchangeOptions:
    """The Exchange options of a restore body (``RESTRestoreToDifferentLocation`` and its
    selected-items form, v6-v8), as given; None is "not given"."""

    changed_items: bool | None = None
    deleted_items: bool | None = None
    mark_restored_as_unread: bool | None = None
    exclude_drafts: bool | None = None
    exclude_deleted_items: bool | None = None
    exclude_in_place_hold_items: bool | None = None
    exclude_litigation_hold_items: bool | None = None
    cas_server: str | None = None
    impersonation_account_name: str | None = None
    office_region: str | None = None
    office_organization_name: str | None = None


TEXT_OPTIONS = frozenset(
    {"cas_server", "impersonation_account_name", "office_region", "office_organization_name"}
)


def _wire(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


WIRE_NAMES = {_wire(name).lower(): name for name in ExchangeOptions.__dataclass_fields__}


def exchange_options(given: Mapping[str, Any]) -> ExchangeOptions:
    """The Exchange options among a body's properties (any letter case, others ignored);
    a value of the wrong type is a 400 naming it."""
    values: dict[str, Any] = {}
    for key, value in given.items():
        name = WIRE_NAMES.get(str(key).lower())
        if name is None or value is None:
            continue
        kind = str if name in TEXT_OPTIONS else bool
        if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"  # as every body's booleans (v2-v5 clients send "true")
        if not isinstance(value, kind):
            shown = "a string" if kind is str else "true or false"
            raise InvalidInput(f"must be {shown}", _wire(name))
        values[name] = value
    return ExchangeOptions(**values)


# the options that change how messages are put back
MAIL_ONLY = tuple(name for name in ExchangeOptions.__dataclass_fields__ if name not in TEXT_OPTIONS)
REGIONS = ("worldwide",)  # Graph's global service; national clouds have other endpoints


def mail_options(given: ExchangeOptions, kind: str, office365: bool) -> MailOptions | None:
    """What the options ask of a put-back of ``kind`` items into an organization (``office365``
    or not) (None: nothing beyond the defaults). Pure; a refusal is a 400 naming the option.

    - ``changedItems``/``deletedItems`` (default true): whether a message already in its
      target folder / missing from it is put back; both false would restore nothing.
    - ``markRestoredAsUnread``, ``excludeDrafts``, ``excludeDeletedItems``: as named.
    - ``excludeInPlaceHoldItems``/``excludeLitigationHoldItems``: accepted either way, since a
      backup never reads the Recoverable Items folders that hold such items: there are none to
      exclude or include.
    - ``casServer`` and ``impersonationAccountName`` belong to on-premises Exchange and EWS
      impersonation: refused for an Office365 organization; for a Local or Imap one they name
      where and as whom the vendor's server would sign in, which Keepstone never does there (it
      writes through the organization's own access), so they are taken and not used, as a
      user's name and password are (``restore_credentials``); ``officeRegion`` other than
      Worldwide is refused (Graph's global endpoints are what Keepstone writes to)."""
    from keepstone.sources.graph.mail_restore import MailOptions

    _refuse_foreign(
        given if office365 else replace(given, cas_server=None, impersonation_account_name=None)
    )
    asked = [(_wire(name), getattr(given, name)) for name in MAIL_ONLY]
    if kind != "mail":
        for wire, value in asked:
            if value is not None and wire not in ("changedItems", "deletedItems"):
                raise InvalidInput("applies to mailboxes only, not to OneDrive documents", wire)
            if value is False:
                raise InvalidInput("applies to mailboxes only, not to OneDrive documents", wire)
        return None
    if given.changed_items is False and given.deleted_items is False:
        raise InvalidInput("with changedItems also false nothing would be restored", "deletedItems")
    roles = {
        role
        for role, flag in (
            ("drafts", given.exclude_drafts),
            ("deleteditems", given.exclude_deleted_items),
        )
        if flag
    }
    options = MailOptions(
        mark_unread=bool(given.mark_restored_as_unread),
        excluded_roles=frozenset(roles),
        existing=given.changed_items is not False,
        missing=given.deleted_items is not False,
    )
    return None if options == MailOptions() else options


def _refuse_foreign(given: ExchangeOptions) -> None:
    if given.cas_server:
        raise InvalidInput(
            "names an on-premises Exchange server; Office365 restores go through Graph",
            "casServer",
        )
    if given.impersonation_account_name:
        raise InvalidInput(
            "is not used: Graph restores run as an application, without impersonation",
            "impersonationAccountName",
        )
    region = (given.office_region or "").strip().lower()
    if region and region not in REGIONS:
        raise InvalidInput(
            f"'{given.office_region}' is not served: Keepstone writes to Graph's global "
            "service (Worldwide)",
            "officeRegion",
        )


def check_organization_name(ctx: Context, org: Organization, name: str | None) -> None:
    """A restore writes into its session's organization: ``officeOrganizationName``, when
    given, must name that tenant (its domain, initial domain or id)."""
    if not name or not name.strip():
        return
    if org.type != m365_settings.OFFICE365_TYPE:
        raise InvalidInput(
            "names an Office365 organization, but the restore point is not of one",
            "officeOrganizationName",
        )
    settings = m365_settings.configured_of(ctx, org).settings
    known = {
        value.lower()
        for value in (settings.tenant, settings.tenant_id, settings.initial_domain)
        if value
    }
    if name.strip().lower() not in known:
        raise InvalidInput(
            "is not the organization of this restore session (restores into another "
            "organization are not offered)",
            "officeOrganizationName",
        )


def with_mail_options(target: RestoreTarget, options: MailOptions | None) -> RestoreTarget:
    """``target`` putting messages back with ``options``: an Office365 organization offers
    them all; a Local or Imap one marking messages unread (their Maildir or IMAP flags without
    Seen), and a 400 naming the first other option given."""
    from keepstone.sources.graph.mail_restore import MailOptions
    from keepstone.sources.graph.restore import GraphTarget
    from keepstone.sources.imap.restore import ImapTarget

    if options is None:
        return target
    if isinstance(target, GraphTarget):
        return target.with_mail_options(options)
    others = replace(options, mark_unread=False)
    if others == MailOptions() and isinstance(target, LocalTarget | ImapTarget):
        return target.marking_unread()
    raise InvalidInput("is offered for Office365 organizations only", _first_option_name(others))


def _first_option_name(options: MailOptions) -> str:
    if options.mark_unread:
        return "markRestoredAsUnread"
    if "drafts" in options.excluded_roles:
        return "excludeDrafts"
    if options.excluded_roles:
        return "excludeDeletedItems"
    return "changedItems" if not options.existing else "deletedItems"


def checked_options(
    ctx: Context, organization_id: str, given: ExchangeOptions, kind: str, office365: bool
) -> MailOptions | None:
    """The options of a restore into ``organization_id`` (``office365`` or not), checked before
    anything is written or any login is tried (a 400 naming the option)."""
    options = mail_options(given, kind, office365)
    if given.office_organization_name:
        with ctx.db.read() as s:
            org = get_organization_in(s, organization_id)
        check_organization_name(ctx, org, given.office_organization_name)
    return options
