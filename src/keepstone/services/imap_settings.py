"""An IMAP organization's settings: the ``imapSettings`` body, what the catalog keeps of it, the
secrets the vault keeps of it, and the way in the connectors get (:func:`access_of`).

The body is parsed here, not by a wire model, because its rules cross properties (``None``
security only on loopback, a pin or a verified chain, credentials per authentication) and a PUT
merges it into what is kept: a missing property keeps its value, a missing password is kept for
the user of the same name. Every refusal is an ``InvalidInput`` naming the property the way a
script author finds it, ``imapSettings.users[1].password``. Parsing is pure (no I/O), so its
rules are property-tested; secrets never appear in a message.

What is kept where: :class:`ImapSettings` (no secret) is ``organizations.settings``;
:class:`ImapSecrets` (user passwords, master password, client secret) is the vault file
``secrets/organization-<id>`` (JSON, 0600), never the catalog.
"""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from keepstone.domain.errors import Conflict, InvalidInput
from keepstone.domain.hosts import HOST_RULE, is_host
from keepstone.domain.text import check_characters
from keepstone.services import oauth_tokens, vault
from keepstone.services.context import Context
from keepstone.sources.imap import (
    Credentials,
    Endpoint,
    ImapAccess,
    MasterUser,
    OAuth2,
    Password,
    PinnedCertificate,
    Security,
    SystemTrust,
    Trust,
    TrustedCa,
)
from keepstone.store.tables import Organization

PREFIX = "imapSettings"
IMAP_TYPE = "Imap"
DEFAULT_PORTS = {Security.TLS: 993, Security.STARTTLS: 143, Security.NONE: 143}
DEFAULT_MAX_CONNECTIONS = 4
MAX_CONNECTIONS = 32
MAX_USERS = 10_000
MAX_TEXT = 255
MAX_SECRET = 4096
MAX_PEM = 64 * 1024
_HEX = re.compile(r"^[0-9a-f]{64}$")
E = TypeVar("E", bound=StrEnum)


class Authentication(StrEnum):
    PASSWORD = "Password"
    MASTER_USER = "MasterUser"
    OAUTH2 = "OAuth2"


@dataclass(frozen=True, slots=True)
class ImapUser:
    name: str  # as listed under the organization (and the key of its backed-up items)
    login: str  # what the server knows the user by


@dataclass(frozen=True, slots=True)
class MasterLogin:
    login: str
    separator: str = "*"


@dataclass(frozen=True, slots=True)
class OAuthClient:
    token_url: str
    client_id: str
    scope: str = ""


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """What the catalog keeps: everything but secrets."""

    host: str
    port: int
    security: Security
    authentication: Authentication
    users: tuple[ImapUser, ...]
    verify_certificate: bool = True
    ca_certificate: str | None = None
    certificate_fingerprint: str | None = None  # lower-case hex SHA-256 of the DER certificate
    allow_cleartext: bool = False
    master_user: MasterLogin | None = None
    oauth: OAuthClient | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS


@dataclass(frozen=True, slots=True)
class ImapSecrets:
    """What the vault keeps: user name -> password, the master password, the client secret."""

    passwords: Mapping[str, str] = field(default_factory=dict)
    master_password: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Configured:
    settings: ImapSettings
    secrets: ImapSecrets


# ---- the body ---------------------------------------------------------------------------------


class _Object:
    """A JSON object of the body read as the JSON dialect reads bodies: property names in any
    case, ``null`` as not sent, booleans and numbers also as strings, enums in any case."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise InvalidInput("must be a JSON object", where)
        self.where = where
        self._values = {k.lower(): v for k, v in value.items() if isinstance(k, str)}

    def at(self, name: str) -> str:
        return f"{self.where}.{name}"

    def raw(self, name: str) -> Any:
        return self._values.get(name.lower())

    def text(self, name: str, *, limit: int = MAX_TEXT) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidInput("must be a string", self.at(name))
        if len(value) > limit:
            raise InvalidInput(f"must be at most {limit} characters", self.at(name))
        return value

    def line(self, name: str) -> str | None:
        """One line of text, not empty: a name, a login, a host."""
        value = self.text(name)
        if value is None:
            return None
        check_characters(value, self.at(name), one_line=True)
        if not value.strip():
            raise InvalidInput("must not be empty", self.at(name))
        return value

    def secret(self, name: str) -> str | None:
        """A password or client secret: never quoted back. CR, LF and NUL cannot cross an IMAP
        command line or a form field intact, so they are refused rather than mangled."""
        value = self.text(name, limit=MAX_SECRET)
        if value is None:
            return None
        if not value:
            raise InvalidInput("must not be empty", self.at(name))
        if any(c in value for c in "\r\n\0"):
            raise InvalidInput("must not contain CR, LF or NUL", self.at(name))
        return value

    def flag(self, name: str) -> bool | None:
        value = self.raw(name)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value is None or isinstance(value, bool):
            return value
        raise InvalidInput("must be true or false", self.at(name))

    def number(self, name: str, low: int, high: int) -> int | None:
        value = self.raw(name)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"must be a whole number from {low} to {high}", self.at(name))
        if not low <= value <= high:
            raise InvalidInput(f"must be from {low} to {high}; got {value}", self.at(name))
        return value

    def choice(self, name: str, kind: type[E]) -> E | None:
        value = self.raw(name)
        if value is None:
            return None
        by_lower = {member.value.lower(): member for member in kind}
        if isinstance(value, str) and value.lower() in by_lower:
            return by_lower[value.lower()]
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"must be one of {allowed}", self.at(name))

    def child(self, name: str) -> _Object | None:
        value = self.raw(name)
        return None if value is None else _Object(value, self.at(name))


def parse(body: Any, current: Configured | None = None) -> Configured:
    """The settings and secrets ``body`` (the ``imapSettings`` object) makes: a new
    organization's when ``current`` is None, else ``current`` edited (a missing property keeps
    its value, a missing secret is kept). Pure; every refusal names its property."""
    given = _Object(body, PREFIX)
    old = current.settings if current else None
    host = _host(given, old)
    security = given.choice("security", Security) or (old.security if old else Security.TLS)
    port = given.number("port", 1, 65535) or (old.port if old else DEFAULT_PORTS[security])
    allow_cleartext = _keep(
        given.flag("allowCleartext"), old.allow_cleartext if old else None, False
    )
    if security is Security.NONE and not (allow_cleartext or is_loopback(host)):
        raise InvalidInput(
            f"None (no TLS) sends passwords in clear text: it is allowed only to a loopback "
            f"host or with allowCleartext: true; {host} is not loopback",
            given.at("security"),
        )
    settings = ImapSettings(
        host=host,
        port=port,
        security=security,
        authentication=given.choice("authentication", Authentication)
        or (old.authentication if old else Authentication.PASSWORD),
        users=(),
        verify_certificate=_keep(
            given.flag("verifyCertificate"), old.verify_certificate if old else None, True
        ),
        ca_certificate=_cleared(given, "caCertificate", _pem, old.ca_certificate if old else None),
        certificate_fingerprint=_cleared(
            given,
            "certificateFingerprint",
            _fingerprint,
            old.certificate_fingerprint if old else None,
        ),
        allow_cleartext=allow_cleartext,
        max_connections=_keep(
            given.number("maxConnections", 1, MAX_CONNECTIONS),
            old.max_connections if old else None,
            DEFAULT_MAX_CONNECTIONS,
        ),
    )
    _check_trust(settings, given)
    return _with_credentials(settings, given, current)


def _keep(sent: Any, kept: Any, default: Any) -> Any:
    """The value sent, else the value kept (None on create), else the default."""
    if sent is not None:
        return sent
    return kept if kept is not None else default


def _host(given: _Object, old: ImapSettings | None) -> str:
    host = given.line("host")
    if host is None:
        if old is None:
            raise InvalidInput("is required", given.at("host"))
        return old.host
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "://" in host or "/" in host:
        raise InvalidInput("must be a host name or an IP address, not a URL", given.at("host"))
    if not is_host(host):
        raise InvalidInput(
            f"'{host}' is not a host name or an IP address ({HOST_RULE})", given.at("host")
        )
    return host.lower()


def is_loopback(host: str) -> bool:
    """A loopback address, or ``localhost``; never decided by a DNS lookup (a name that
    resolves to loopback today may not tomorrow)."""
    if host in ("localhost", "localhost.") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cleared(given: _Object, name: str, check: Any, kept: str | None) -> str | None:
    """An optional text setting: sent -> checked; ``""`` -> cleared; missing -> kept."""
    value = given.text(name, limit=MAX_PEM)
    if value is None:
        return kept or None
    if not value.strip():
        return None
    result: str = check(value, given.at(name))
    return result


def _pem(value: str, where: str) -> str:
    try:
        ssl.create_default_context(cadata=value.strip())
    except (ssl.SSLError, ValueError):
        raise InvalidInput(
            "is not a PEM certificate (-----BEGIN CERTIFICATE-----...)", where
        ) from None
    return value.strip() + "\n"


def _fingerprint(value: str, where: str) -> str:
    digest = re.sub(r"[\s:]", "", value).lower()
    if not _HEX.match(digest):
        raise InvalidInput(
            "must be the SHA-256 of the server's certificate: 64 hexadecimal digits "
            "(colons allowed)",
            where,
        )
    return digest


def _check_trust(settings: ImapSettings, given: _Object) -> None:
    if settings.ca_certificate and settings.certificate_fingerprint:
        raise InvalidInput(
            'give either caCertificate or certificateFingerprint, not both (send "" to clear '
            "the one kept)",
            given.at("certificateFingerprint"),
        )
    unverified = not settings.verify_certificate and not settings.certificate_fingerprint
    if unverified and settings.security is not Security.NONE:
        raise InvalidInput(
            "false needs certificateFingerprint: a TLS connection that checks nothing would "
            "trust anyone in the middle",
            given.at("verifyCertificate"),
        )


def trust_of(settings: ImapSettings) -> Trust:
    """A pin, else a given CA, else the system store."""
    if settings.certificate_fingerprint:
        return PinnedCertificate(settings.certificate_fingerprint)
    if settings.ca_certificate:
        return TrustedCa(settings.ca_certificate)
    return SystemTrust()


# ---- credentials ------------------------------------------------------------------------------


def _with_credentials(
    settings: ImapSettings, given: _Object, current: Configured | None
) -> Configured:
    old = current.settings if current else None
    old_secrets = current.secrets if current else ImapSecrets()
    users, passwords = _users(given, settings.authentication, old, old_secrets)
    settings = replace(settings, users=users)
    if settings.authentication is Authentication.MASTER_USER:
        master, master_password = _master_user(given, old, old_secrets)
        return Configured(
            replace(settings, master_user=master), ImapSecrets(master_password=master_password)
        )
    if settings.authentication is Authentication.OAUTH2:
        client, client_secret = _oauth(given, old, old_secrets)
        return Configured(replace(settings, oauth=client), ImapSecrets(client_secret=client_secret))
    return Configured(settings, ImapSecrets(passwords=passwords))


def _users(
    given: _Object, authentication: Authentication, old: ImapSettings | None, kept: ImapSecrets
) -> tuple[tuple[ImapUser, ...], dict[str, str]]:
    """The users and (for Password) their passwords: the list sent replaces the kept one; a
    user sent without a password keeps the password kept under the same name."""
    where = given.at("users")
    sent = given.raw("users")
    if sent is None:
        if old is None:
            raise InvalidInput("is required: the mailboxes to back up", where)
        rows: list[tuple[str, str, str | None]] = [(u.name, u.login, None) for u in old.users]
    else:
        rows = _user_rows(sent, where)
    users: list[ImapUser] = []
    passwords: dict[str, str] = {}
    seen: dict[str, int] = {}
    for index, (name, login, password) in enumerate(rows):
        at = f"{where}[{index}]"
        if name.casefold() in seen:
            raise InvalidInput(
                f"'{name}' is listed twice (as {where}[{seen[name.casefold()]}])", f"{at}.name"
            )
        seen[name.casefold()] = index
        users.append(ImapUser(name, login))
        if authentication is Authentication.PASSWORD:
            password = password or kept.passwords.get(name)
            if password is None:
                raise InvalidInput(
                    f"is required for {name} with Password authentication", f"{at}.password"
                )
            passwords[name] = password
    return tuple(users), passwords


def _user_rows(sent: Any, where: str) -> list[tuple[str, str, str | None]]:
    if not isinstance(sent, list):
        raise InvalidInput("must be a list of users", where)
    if not sent:
        raise InvalidInput("must list at least one user", where)
    if len(sent) > MAX_USERS:
        raise InvalidInput(f"may list at most {MAX_USERS} users", where)
    rows = []
    for index, value in enumerate(sent):
        user = _Object(value, f"{where}[{index}]")
        name = user.line("name")
        if name is None:
            raise InvalidInput("is required", user.at("name"))
        _check_user_name(name, user.at("name"))
        rows.append((name, user.line("login") or name, user.secret("password")))
    return rows


def _check_user_name(name: str, where: str) -> None:
    """A user name keys the user's items (``<user>/imap/...``) and becomes a folder of a save:
    no separator, no dot-only name, no surrounding spaces."""
    if name != name.strip():
        raise InvalidInput("must not begin or end with a space", where)
    if "/" in name or "\\" in name:
        raise InvalidInput("must not contain '/' or '\\'", where)
    if not name.strip("."):
        raise InvalidInput("must not be only dots", where)


def _master_user(
    given: _Object, old: ImapSettings | None, kept: ImapSecrets
) -> tuple[MasterLogin, str]:
    sent = given.child("masterUser")
    where = given.at("masterUser")
    kept_login = old.master_user if old else None
    login = (sent.line("login") if sent else None) or (kept_login.login if kept_login else None)
    password = (sent.secret("password") if sent else None) or kept.master_password
    separator = (sent.line("separator") if sent else None) or (
        kept_login.separator if kept_login else "*"
    )
    if login is None:
        raise InvalidInput("is required with MasterUser authentication", f"{where}.login")
    if password is None:
        raise InvalidInput("is required with MasterUser authentication", f"{where}.password")
    if len(separator) > 8 or " " in separator:
        raise InvalidInput("must be 1 to 8 characters without spaces", f"{where}.separator")
    return MasterLogin(login, separator), password


def _oauth(given: _Object, old: ImapSettings | None, kept: ImapSecrets) -> tuple[OAuthClient, str]:
    sent = given.child("oauth")
    where = given.at("oauth")
    kept_client = old.oauth if old else None
    url = sent.line("tokenUrl") if sent else None
    token_url = (
        _token_url(url, f"{where}.tokenUrl")
        if url
        else (kept_client.token_url if kept_client else None)
    )
    client_id = (sent.line("clientId") if sent else None) or (
        kept_client.client_id if kept_client else None
    )
    scope = sent.text("scope") if sent else None
    if scope is not None:
        check_characters(scope, f"{where}.scope", one_line=True)
    secret = (sent.secret("clientSecret") if sent else None) or kept.client_secret
    for value, name in ((token_url, "tokenUrl"), (client_id, "clientId"), (secret, "clientSecret")):
        if not value:
            raise InvalidInput("is required with OAuth2 authentication", f"{where}.{name}")
    assert token_url and client_id and secret  # for the type checker: refused above otherwise
    kept_scope = kept_client.scope if kept_client else ""
    return OAuthClient(
        token_url, client_id, scope.strip() if scope is not None else kept_scope
    ), secret


def _token_url(url: str, where: str) -> str:
    """An absolute https URL (http only to loopback, for tests and local brokers), without
    credentials in it (they would be kept in the catalog)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput("is not a URL", where) from None
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput("must be an absolute https:// URL", where)
    if parts.scheme == "http" and not is_loopback(host):
        raise InvalidInput("must be https (http only to a loopback host)", where)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("must not carry credentials: give clientId and clientSecret", where)
    return url.strip()


# ---- what is kept -----------------------------------------------------------------------------


def to_record(settings: ImapSettings) -> dict[str, Any]:
    """``organizations.settings`` of an IMAP organization: no secret in it."""
    record: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "security": settings.security.value,
        "authentication": settings.authentication.value,
        "users": [{"name": u.name, "login": u.login} for u in settings.users],
        "verifyCertificate": settings.verify_certificate,
        "caCertificate": settings.ca_certificate,
        "certificateFingerprint": settings.certificate_fingerprint,
        "allowCleartext": settings.allow_cleartext,
        "maxConnections": settings.max_connections,
    }
    if settings.master_user:
        record["masterUser"] = {
            "login": settings.master_user.login,
            "separator": settings.master_user.separator,
        }
    if settings.oauth:
        record["oauth"] = {
            "tokenUrl": settings.oauth.token_url,
            "clientId": settings.oauth.client_id,
            "scope": settings.oauth.scope,
        }
    return record


def from_record(record: Mapping[str, Any]) -> ImapSettings:
    master, oauth = record.get("masterUser"), record.get("oauth")
    return ImapSettings(
        host=record["host"],
        port=record["port"],
        security=Security(record["security"]),
        authentication=Authentication(record["authentication"]),
        users=tuple(ImapUser(u["name"], u["login"]) for u in record["users"]),
        verify_certificate=record["verifyCertificate"],
        ca_certificate=record.get("caCertificate"),
        certificate_fingerprint=record.get("certificateFingerprint"),
        allow_cleartext=record.get("allowCleartext", False),
        master_user=MasterLogin(master["login"], master["separator"]) if master else None,
        oauth=OAuthClient(oauth["tokenUrl"], oauth["clientId"], oauth["scope"]) if oauth else None,
        max_connections=record.get("maxConnections", DEFAULT_MAX_CONNECTIONS),
    )


def secrets_name(org_id: str) -> str:
    return f"organization-{org_id}"


def encode_secrets(secrets: ImapSecrets) -> bytes:
    return json.dumps(
        {
            "passwords": dict(secrets.passwords),
            "masterPassword": secrets.master_password,
            "clientSecret": secrets.client_secret,
        }
    ).encode()


def decode_secrets(data: bytes) -> ImapSecrets:
    kept = json.loads(data)
    return ImapSecrets(
        kept.get("passwords", {}), kept.get("masterPassword"), kept.get("clientSecret")
    )


def kept_secrets(ctx: Context, org: Organization) -> ImapSecrets | None:
    """The organization's secrets as the vault holds them, or None (not IMAP, or lost)."""
    data = vault.read_secret(ctx, secrets_name(org.id)) if org.type == IMAP_TYPE else None
    return decode_secrets(data) if data is not None else None


def configured_of(ctx: Context, org: Organization) -> Configured:
    """The organization's settings and its kept secrets (a 409 if the vault lost them)."""
    if org.type != IMAP_TYPE:
        raise Conflict(f"organization '{org.name}' is a {org.type} organization, not Imap")
    secrets = kept_secrets(ctx, org)
    if secrets is None:
        raise Conflict(
            f"the credentials of organization '{org.name}' are missing from the server's "
            "secrets directory: set them again with PUT"
        )
    return Configured(from_record(org.settings), secrets)


# ---- the way in -------------------------------------------------------------------------------


def endpoint_of(settings: ImapSettings) -> Endpoint:
    return Endpoint(settings.host, settings.port, settings.security, trust_of(settings))


def credentials_of(configured: Configured, user: ImapUser) -> Credentials:
    settings, secrets = configured.settings, configured.secrets
    if settings.authentication is Authentication.MASTER_USER:
        master = settings.master_user
        assert master is not None and secrets.master_password is not None
        return MasterUser(user.login, master.login, secrets.master_password, master.separator)
    if settings.authentication is Authentication.OAUTH2:
        client = settings.oauth
        assert client is not None and secrets.client_secret is not None
        source = oauth_tokens.token_source(
            client.token_url, client.client_id, secrets.client_secret, client.scope
        )
        return OAuth2(user.login, source)
    return Password(user.login, secrets.passwords[user.name])


def access_for(configured: Configured) -> ImapAccess:
    settings = configured.settings
    return ImapAccess(
        endpoint=endpoint_of(settings),
        logins={u.name: credentials_of(configured, u) for u in settings.users},
        max_connections=settings.max_connections,
    )


def access_of(ctx: Context, organization: Organization) -> ImapAccess:
    """How the connectors reach ``organization``'s mailboxes: the endpoint, every configured
    user's credentials (by the user's name as listed), and the parallel connection limit."""
    return access_for(configured_of(ctx, organization))
