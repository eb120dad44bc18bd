"""Checking an IMAP organization's logins before anything of it is stored.

On create, and on an edit that changes the connection or credentials, every user whose way in
changed logs in once (in parallel, at most ``maxConnections`` at a time, each with the adapter's
connect timeout) and logs out. A failure is the client's 400 naming the failing property and
user (``imapSettings.users[1].password: login failed for bob``); the server's own words are
shown only for connection and TLS failures, and never with a secret in them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from keepstone.domain.errors import InvalidInput
from keepstone.services import oauth_tokens
from keepstone.services.imap_settings import (
    PREFIX,
    Authentication,
    Configured,
    ImapSettings,
    credentials_of,
    endpoint_of,
)
from keepstone.sources import imap
from keepstone.sources.imap import Credentials, Endpoint

Connect = Callable[[Endpoint, Credentials], object]


@dataclass(frozen=True, slots=True)
class _Failure:
    index: int  # in the configured users
    name: str
    error: imap.ImapError


def logins_to_check(old: Configured | None, new: Configured) -> list[str]:
    """The users whose login must be tried: all of them when the connection or the shared
    credentials changed (or on create), else those added or with a new login or password."""
    if old is None or _shared(old) != _shared(new):
        return [u.name for u in new.settings.users]
    before = {u.name: (u.login, old.secrets.passwords.get(u.name)) for u in old.settings.users}
    return [
        u.name
        for u in new.settings.users
        if before.get(u.name) != (u.login, new.secrets.passwords.get(u.name))
    ]


def _shared(configured: Configured) -> tuple[object, ...]:
    s, secrets = configured.settings, configured.secrets
    return (
        endpoint_of(s),
        s.authentication,
        s.master_user,
        s.oauth,
        secrets.master_password,
        secrets.client_secret,
    )


def check_logins(
    configured: Configured, names: Sequence[str], connect: Connect | None = None
) -> None:
    """Log each named user in once; raise InvalidInput naming the first failure."""
    if not names:
        return
    settings = configured.settings
    users = {u.name: (i, u) for i, u in enumerate(settings.users)}
    _fetch_token_first(configured)
    attempt = connect or _connect_and_leave

    def one(name: str) -> _Failure | None:
        index, user = users[name]
        try:
            attempt(endpoint_of(settings), credentials_of(configured, user))
        except imap.ImapError as error:
            return _Failure(index, name, error)
        return None

    workers = min(settings.max_connections, len(names))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imap-login") as pool:
        failures = [f for f in pool.map(one, names) if f is not None]
    if failures:
        raise _described(configured, failures, len(names))


def _connect_and_leave(endpoint: Endpoint, credentials: Credentials) -> object:
    with imap.connect(endpoint, credentials):
        return None


def _fetch_token_first(configured: Configured) -> None:
    """With OAuth2, get the token once before the logins, so that a token endpoint refusing
    the client is named as such (and is asked once, not once per user)."""
    settings = configured.settings
    if settings.authentication is not Authentication.OAUTH2 or not settings.users:
        return
    credentials = credentials_of(configured, settings.users[0])
    assert isinstance(credentials, imap.OAuth2)
    try:
        credentials.token()
    except oauth_tokens.TokenFailure as failure:
        raise InvalidInput(failure.message, f"{PREFIX}.oauth.{failure.prop}") from None


def _described(configured: Configured, failures: list[_Failure], tried: int) -> InvalidInput:
    settings = configured.settings
    failures.sort(key=lambda f: f.index)
    others = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    first = next((f for f in failures if not _is_login(f.error)), failures[0])
    message = _masked(configured, first.error.message)
    if isinstance(first.error, imap.TlsFailure):
        return InvalidInput(
            f"TLS with {settings.host}:{settings.port} failed: {message}", _trust_property(settings)
        )
    if not _is_login(first.error):
        return InvalidInput(
            f"cannot use the IMAP server at {settings.host}:{settings.port}: {message}",
            f"{PREFIX}.host",
        )
    at = f"{PREFIX}.users[{first.index}]"
    if settings.authentication is Authentication.MASTER_USER:
        master = settings.master_user
        assert master is not None
        if len(failures) == tried:
            return InvalidInput(
                f"login through master user {master.login} failed for every user tried "
                f"({first.name}{others}): check the master user's login and password",
                f"{PREFIX}.masterUser.password",
            )
        return InvalidInput(
            f"login through master user {master.login} failed for {first.name}{others}: does "
            "the mailbox exist under that login?",
            f"{at}.login",
        )
    if settings.authentication is Authentication.OAUTH2:
        return InvalidInput(f"XOAUTH2 login failed for {first.name}{others}", f"{at}.login")
    return InvalidInput(f"login failed for {first.name}{others}", f"{at}.password")


def _is_login(error: imap.ImapError) -> bool:
    return isinstance(error, imap.AuthenticationFailed)


def _trust_property(settings: ImapSettings) -> str:
    if settings.certificate_fingerprint:
        return f"{PREFIX}.certificateFingerprint"
    if settings.ca_certificate:
        return f"{PREFIX}.caCertificate"
    return f"{PREFIX}.verifyCertificate"


def _masked(configured: Configured, text: str) -> str:
    """``text`` with every secret of the organization replaced (a server that quotes the
    command it refused would otherwise show a password)."""
    secrets = configured.secrets
    for secret in (*secrets.passwords.values(), secrets.master_password, secrets.client_secret):
        if secret:
            text = text.replace(secret, "***")
    return text
