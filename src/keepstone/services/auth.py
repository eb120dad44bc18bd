"""Users, passwords, tokens and roles.

Passwords are hashed with Argon2id; tokens are random, opaque, and only their SHA-256 is stored.
Access tokens live 60 minutes; refresh tokens live 14 days and rotate: using one revokes it. The
tokens of one login form a family: logging out ends the family, and presenting a refresh token
that was already rotated (a stolen copy, or the thief's) revokes the whole family (OAuth 2.0
Security BCP). Enterprise Manager logon sessions end after 15 idle minutes and at most 8 hours
after logon; a logon session's token is the base64 of the ``SessionId`` its logon answered, a
random uuid that only its holder is told (``logon_token``). A password change,
``revoke-tokens`` and removing a user end all of the user's tokens and logon sessions. Logins
of both dialects pass the same ``LoginGuard``.

What the catalog answers for a token is remembered for a second (``services.credential_cache``):
every request would otherwise pay a catalog transaction before its own work. Each revocation
below forgets it all at once, in this process and, through the data directory's
``revocations`` file (replaced on every revocation, its identity checked by one ``stat`` per
request), in every other process on the same data directory: a ``keepstone admin user
revoke-tokens`` takes effect on the running server at once. Other servers of a shared catalog
forget within the second. A logon session's uses are written at most once a second
(``LOGON_RECORD_EVERY``), so its idle timeout may end up to a second early, never late.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import os
import secrets
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from keepstone.domain.errors import (
    BadCredentials,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from keepstone.services import audit
from keepstone.services.audit import AuditAction, Entry, Origin
from keepstone.services.context import Context, new_id
from keepstone.services.credential_cache import CredentialCache
from keepstone.services.login_guard import LoginGuard
from keepstone.store.db import Database
from keepstone.store.tables import LogonSession, RbacOperator, RbacRole, Token, User

if TYPE_CHECKING:
    from keepstone.services.access import Scope

ACCESS_TOKEN_LIFETIME = timedelta(minutes=60)
REFRESH_TOKEN_LIFETIME = timedelta(days=14)
LOGON_IDLE_TIMEOUT = timedelta(minutes=15)
LOGON_LIFETIME = timedelta(hours=8)
# A remembered logon session's use reaches the catalog once the catalog's clock moved this much
# since the last one it holds (other servers, the purge and the next read go by it there).
LOGON_RECORD_EVERY = timedelta(seconds=1)
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id (RFC 9106 low-memory profile)


# Verifying against this keeps a login for an unknown user as slow as one for a known user.
# Made at first use, not at import: a hash is a tenth of a second or more of every start.
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH


class Role(enum.StrEnum):
    """A user's global role. ``None``: no global role; what the user may do comes from the
    organization roles naming it as an operator (``services.rbac``, enforced by
    ``services.access``), and without one it may do nothing but log in and out."""

    ADMINISTRATOR = "Administrator"
    READ_ONLY = "ReadOnly"
    NONE = "None"


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"
    READ_AUDIT = "read the audit trail"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. ``scope`` is what an operator without a global role may reach, read from the
    catalog for each of its requests by ``services.access.admit``; None for a global role."""

    user_id: str
    user_name: str
    role: Role
    scope: Scope | None = None

    @property
    def scoped(self) -> bool:
        return self.role is Role.NONE


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    user_name: str
    issued: datetime
    expires: datetime

    @property
    def expires_in(self) -> int:
        return int((self.expires - self.issued).total_seconds())


def authorize(principal: Principal, action: Action) -> None:
    """Administrators may do everything; ReadOnly users may only read, and not the audit trail
    (it names every user and address that logged in). A user without a global role passes
    ``services.access.admit`` instead: here it may do nothing."""
    if principal.role is Role.NONE:
        raise Forbidden(
            f"user '{principal.user_name}' has no global role; only its organization roles "
            "grant it anything"
        )
    if action is Action.READ or principal.role is Role.ADMINISTRATOR:
        return
    if action is Action.WRITE:
        raise Forbidden(
            f"user '{principal.user_name}' has the ReadOnly role and may not change anything"
        )
    raise Forbidden(
        f"user '{principal.user_name}' has the ReadOnly role and may not {action.value}"
    )


@dataclass(frozen=True, slots=True)
class _Bearer:
    principal: Principal
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _Logon:
    principal: Principal
    session_id: str
    created_at: datetime
    recorded_at: datetime  # the last use the catalog holds


REVOCATIONS_FILE = "revocations"  # in the data directory; replaced by every revocation


@dataclass(slots=True)
class _Credentials:
    bearers: CredentialCache[_Bearer] = field(default_factory=CredentialCache)
    logons: CredentialCache[_Logon] = field(default_factory=CredentialCache)
    revocations_seen: tuple[int, int] | None = None  # the revocations file's (inode, mtime)

    def clear(self) -> None:
        self.bearers.clear()
        self.logons.clear()


def _revocations_identity(data_dir: Path | None) -> tuple[int, int] | None:
    if data_dir is None:
        return None
    try:
        found = os.stat(_revocations_path(data_dir))
    except OSError:
        return None
    return (found.st_ino, found.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _revocations_path(data_dir: Path) -> str:
    """The file every request stats: its path joined once, not per request."""
    return str(data_dir / REVOCATIONS_FILE)


# One memory per catalog connection pool: tests run many catalogs in one process.
_credentials: weakref.WeakKeyDictionary[Database, _Credentials] = weakref.WeakKeyDictionary()


def _remembered(ctx: Context) -> _Credentials:
    """This catalog's memory, forgotten first if another process on the data directory revoked
    something since it was last looked at."""
    found = _credentials.get(ctx.db)
    if found is None:
        found = _credentials.setdefault(ctx.db, _Credentials())
    revocations = _revocations_identity(ctx.data_dir)
    if revocations != found.revocations_seen:
        found.clear()
        found.revocations_seen = revocations
    return found


def _forget_credentials(ctx: Context) -> None:
    """After a revocation committed: every remembered token is checked in the catalog again,
    here and in the other processes on this data directory."""
    _remembered(ctx).clear()
    if ctx.data_dir is not None:
        _announce_revocation(ctx.data_dir)


def _announce_revocation(data_dir: Path) -> None:
    """Replaces the revocations file, so its identity changes even within one clock tick."""
    marker = data_dir / REVOCATIONS_FILE
    fresh = data_dir / f".{REVOCATIONS_FILE}.{secrets.token_hex(6)}"
    try:
        os.close(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(fresh, marker)
    except OSError:  # a read-only data directory: other processes forget within the second
        fresh.unlink(missing_ok=True)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", "password"
        )
    return _hasher.hash(password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- users -----------------------------------------------------------------------------------


def add_user(
    ctx: Context,
    name: str,
    password: str,
    role: Role,
    by: str | None = None,
    origin: Origin = audit.CLI,
) -> User:
    """A new user. ``by``: who added it, for the audit trail (the console names its user; the
    CLI, run by the host's operator, adds the first users before anyone could log in)."""
    if not name.strip():
        raise InvalidInput("user name must not be empty", "username")
    password_hash = hash_password(password)
    with ctx.db.write() as s:
        if s.scalar(select(User).where(User.name == name)) is not None:
            raise Conflict(f"user '{name}' already exists")
        user = User(
            id=new_id(),
            name=name,
            password_hash=password_hash,
            role=role.value,
            created_at=ctx.clock.now(),
        )
        s.add(user)
        if by is not None:
            details = {"role": role.value}
            entry = Entry(AuditAction.USER_ADDITION, by, origin, subject=name, details=details)
            audit.add(s, user.created_at, entry)
    return user


def list_users(ctx: Context) -> list[User]:
    with ctx.db.read() as s:
        return list(s.scalars(select(User).order_by(User.name)))


def page_users(
    ctx: Context, offset: int, limit: int, *, role: Role | None = None, search: str = ""
) -> list[User]:
    """One page of the users, by name (the console's listings): of one global role only, and
    whose name contains ``search``, when given."""
    query = select(User)
    if role is not None:
        query = query.where(User.role == role.value)
    if search:
        query = query.where(func.lower(User.name).contains(search.lower(), autoescape=True))
    with ctx.db.read() as s:
        return list(s.scalars(query.order_by(User.name, User.id).offset(offset).limit(limit)))


def users_by_id(ctx: Context, ids: set[str]) -> list[User]:
    """The users of ``ids`` that exist, by name."""
    with ctx.db.read() as s:
        return list(s.scalars(select(User).where(User.id.in_(ids)).order_by(User.name)))


def remove_user(ctx: Context, name: str, by: str, origin: Origin = audit.CLI) -> None:
    """Remove a user: their tokens and logon sessions go with them (foreign-key cascade). The
    last administrator stays: without one, no one could administer the server but the host."""
    with ctx.db.write() as s:
        user = _user_named(s, name)
        _keep_an_administrator(s, user, "remove")
        s.delete(user)
        audit.add(s, ctx.clock.now(), Entry(AuditAction.USER_REMOVAL, by, origin, subject=name))
    _forget_credentials(ctx)


def set_role(ctx: Context, name: str, role: Role, by: str, origin: Origin = audit.CLI) -> None:
    """Change a user's global role; it applies to the user's next request (no cached principal
    keeps the old one). An operator of an organization role keeps the global role None: a
    global role is not narrowed by an organization role (``services.rbac``)."""
    with ctx.db.write() as s:
        user = _user_named(s, name)
        if user.role == role.value:
            return
        if role is not Role.NONE:
            held = list(
                s.scalars(
                    select(RbacRole.name)
                    .join(RbacOperator, RbacOperator.role_id == RbacRole.id)
                    .where(RbacOperator.user_id == user.id)
                    .order_by(RbacRole.name)
                )
            )
            if held:
                raise Conflict(
                    f"user '{name}' is an operator of the organization role(s) "
                    f"{', '.join(held)}; remove it from them before giving it the global role "
                    f"{role.value}"
                )
        if role is not Role.ADMINISTRATOR:
            _keep_an_administrator(s, user, f"make {role.value}")
        details = {"from": user.role, "to": role.value}
        user.role = role.value
        entry = Entry(AuditAction.USER_ROLE_CHANGE, by, origin, subject=name, details=details)
        audit.add(s, ctx.clock.now(), entry)
    _forget_credentials(ctx)


def _keep_an_administrator(s: Session, user: User, what: str) -> None:
    if user.role != Role.ADMINISTRATOR.value:
        return
    others = s.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMINISTRATOR.value, User.id != user.id)
    )
    if not others:
        raise Conflict(f"user '{user.name}' is the last Administrator; cannot {what} it")


def set_password(ctx: Context, name: str, password: str, by: str) -> None:
    """Change a password and end every token and logon session the user holds."""
    password_hash = hash_password(password)
    now = ctx.clock.now()
    with ctx.db.write() as s:
        user = _user_named(s, name)
        user.password_hash = password_hash
        _revoke_all(s, user.id, now)
        audit.add(s, now, Entry(AuditAction.PASSWORD_CHANGE, by, subject=name))
    _forget_credentials(ctx)


def revoke_tokens(ctx: Context, name: str, by: str, origin: Origin = audit.CLI) -> None:
    """End every access and refresh token and every logon session of a user."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        _revoke_all(s, _user_named(s, name).id, now)
        audit.add(s, now, Entry(AuditAction.REVOKE_TOKENS, by, origin, subject=name))
    _forget_credentials(ctx)


def _user_named(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"user '{name}' does not exist")
    return user


def _revoke_all(s: Session, user_id: str, now: datetime) -> None:
    s.execute(
        update(Token)
        .where(Token.user_id == user_id, Token.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    s.execute(
        update(LogonSession)
        .where(LogonSession.user_id == user_id, LogonSession.ended_at.is_(None))
        .values(ended_at=now)
    )


# ---- password checks, through the login guard -------------------------------------------------


def _verified_user(
    ctx: Context, guard: LoginGuard, name: str, password: str, origin: Origin
) -> User:
    """The user whose name and password these are; a wrong pair is audited and refused."""
    with guard.attempt(name, origin.address or "unknown"):
        with ctx.db.read() as s:
            user = s.scalar(select(User).where(User.name == name))
        with guard.verifying():
            matches = _password_matches(user.password_hash if user else None, password)
        if not matches or user is None:
            audit.record(ctx, Entry(AuditAction.LOGIN, name[:255], origin, success=False))
            raise BadCredentials("the user name or password is incorrect")
    return user


def _password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def purge_expired(s: Session, now: datetime) -> None:
    """Forget tokens past their expiry and logon sessions that ended or expired. A rotated refresh
    token is kept until it expires: its reuse must still be recognised (and punished)."""
    s.execute(delete(Token).where(Token.expires_at <= now))
    s.execute(
        delete(LogonSession).where(
            or_(
                LogonSession.ended_at.is_not(None),
                LogonSession.last_used_at <= now - LOGON_IDLE_TIMEOUT,
                LogonSession.created_at <= now - LOGON_LIFETIME,
            )
        )
    )


# ---- tokens ----------------------------------------------------------------------------------


def login(
    ctx: Context, guard: LoginGuard, name: str, password: str, origin: Origin
) -> IssuedTokens:
    user = _verified_user(ctx, guard, name, password, origin)
    now = ctx.clock.now()
    with ctx.db.write() as s:
        purge_expired(s, now)
        audit.add(s, now, Entry(AuditAction.LOGIN, user.name, origin))
        return _issue(s, user, now, family_id=new_id())


def refresh(ctx: Context, refresh_token: str, origin: Origin) -> IssuedTokens:
    now = ctx.clock.now()
    with ctx.db.write() as s:
        token = s.scalar(select(Token).where(Token.token_hash == _digest(refresh_token)))
        issued = _rotate(s, token, now, origin) if token and token.kind == "refresh" else None
    if issued is None:
        _forget_credentials(ctx)  # a replayed token may have revoked its family
        raise BadCredentials("the refresh token is invalid, expired or already used")
    return issued


def _rotate(s: Session, token: Token, now: datetime, origin: Origin) -> IssuedTokens | None:
    """A new pair for a live refresh token (which stops working); None for a dead one. A token
    that was already rotated is being replayed: its whole family is revoked."""
    user = s.get(User, token.user_id)
    assert user is not None  # tokens cascade with their user
    if token.expires_at <= now:
        return None
    if token.revoked_at is not None:
        revoked = _revoke_family(s, token.family_id, now)
        if revoked:
            entry = Entry(
                AuditAction.REFRESH_TOKEN_REUSE,
                user.name,
                origin,
                success=False,
                details={"revokedTokens": revoked},
            )
            audit.add(s, now, entry)
        return None
    token.revoked_at = now  # rotation: a refresh token works once
    return _issue(s, user, now, family_id=token.family_id)


def _revoke_family(s: Session, family_id: str, now: datetime) -> int:
    result = s.execute(
        update(Token)
        .where(Token.family_id == family_id, Token.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# A remote proxy's credential (services/proxy_link.py) opens /_proxy/v1 and nothing else.
PROXY_CREDENTIAL_PREFIX = "ksproxy_"


def cached_principal(ctx: Context, access_token: str) -> Principal | None:
    """The caller of a token the catalog vouched for within the last second, without asking it
    again (no I/O: the event loop may call this); None when the catalog must be asked."""
    if access_token.startswith(PROXY_CREDENTIAL_PREFIX):
        return None
    found = _remembered(ctx).bearers.get(_digest(access_token))
    if found is None:
        return None
    if found.expires_at <= ctx.clock.now():
        raise Unauthenticated("the access token has expired")
    return found.principal


def authenticate(ctx: Context, access_token: str) -> Principal:
    if access_token.startswith(PROXY_CREDENTIAL_PREFIX):
        raise Unauthenticated("a proxy credential is accepted by the proxy API only")
    known = cached_principal(ctx, access_token)
    if known is not None:
        return known
    bearers = _remembered(ctx).bearers
    generation, digest, now = bearers.generation, _digest(access_token), ctx.clock.now()
    with ctx.db.read() as s:  # plain columns, not entities: this runs on every request
        row = s.execute(
            select(Token.revoked_at, Token.expires_at, User.id, User.name, User.role)
            .join(User, User.id == Token.user_id)
            .where(Token.token_hash == digest, Token.kind == "access")
        ).first()
    if row is None:
        raise Unauthenticated("the access token is not valid")
    revoked_at, expires_at, user_id, user_name, role = row
    if revoked_at is not None:
        raise Unauthenticated("the access token has been revoked")
    if expires_at <= now:
        raise Unauthenticated("the access token has expired")
    principal = Principal(user_id, user_name, Role(role))
    bearers.put(digest, _Bearer(principal, expires_at), generation)
    return principal


def log_out(ctx: Context, access_token: str, origin: Origin) -> None:
    """End the login this access token belongs to: it, its refresh token, and every token
    rotated from the same login stop working."""
    caller = authenticate(ctx, access_token)
    now = ctx.clock.now()
    with ctx.db.write() as s:
        family = s.scalar(select(Token.family_id).where(Token.token_hash == _digest(access_token)))
        revoked = _revoke_family(s, family, now) if family else 0
        audit.add(
            s,
            now,
            Entry(AuditAction.LOGOUT, caller.user_name, origin, details={"revokedTokens": revoked}),
        )
    _forget_credentials(ctx)


def _issue(s: Session, user: User, now: datetime, family_id: str) -> IssuedTokens:
    access, refresh_value = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    for kind, value, lifetime in (
        ("access", access, ACCESS_TOKEN_LIFETIME),
        ("refresh", refresh_value, REFRESH_TOKEN_LIFETIME),
    ):
        s.add(
            Token(
                id=new_id(),
                user_id=user.id,
                kind=kind,
                token_hash=_digest(value),
                family_id=family_id,
                issued_at=now,
                expires_at=now + lifetime,
                revoked_at=None,
            )
        )
    return IssuedTokens(access, refresh_value, user.name, now, now + ACCESS_TOKEN_LIFETIME)


# ---- Enterprise Manager logon sessions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Logon:
    session_id: str  # the session's row: what the catalog, the audit log and tasks name it by
    key: str  # the SessionId its holder is told, which its token is made from (``logon_token``)
    token: str
    principal: Principal


def logon_token(key: str) -> str:
    """The token of the logon session whose ``SessionId`` is ``key``: the base64 of its text, as
    Enterprise Manager's is. Monitoring scripts in wide use log on and send
    ``base64(SessionId)`` as their ``X-RestSvcSessionId`` rather than the header they were given
    (jorgedlcruz's Grafana collectors do), so the two must agree. The key is therefore as secret
    as the token: a random uuid told only to its holder (the logon's answer, its own session's
    representation), never stored (the catalog keeps the token's SHA-256, as for every token),
    and masked in logs (``api.plumbing.loggable_path``). Others, administrators listing every
    session included, see a session by its row id, which is no credential."""
    return base64.b64encode(key.encode()).decode("ascii")


def logon_key(token: str) -> str | None:
    """The ``SessionId`` a token was made from by ``logon_token``, if it was (None otherwise)."""
    try:
        key = base64.b64decode(token, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return key if logon_token(key) == token else None


def start_logon(ctx: Context, guard: LoginGuard, name: str, password: str, origin: Origin) -> Logon:
    """Basic-auth logon of the Enterprise Manager dialect: same users, roles and guard as the
    bearer tokens of the JSON dialect."""
    user = _verified_user(ctx, guard, name, password, origin)
    key, now = str(uuid.UUID(bytes=secrets.token_bytes(16), version=4)), ctx.clock.now()
    token = logon_token(key)
    with ctx.db.write() as s:
        purge_expired(s, now)
        session = LogonSession(
            id=new_id(),
            user_id=user.id,
            token_hash=_digest(token),
            created_at=now,
            last_used_at=now,
            ended_at=None,
        )
        s.add(session)
        audit.add(s, now, Entry(AuditAction.LOGIN, user.name, origin))
    return Logon(session.id, key, token, Principal(user.id, user.name, Role(user.role)))


def cached_logon(ctx: Context, token: str) -> tuple[Principal, str] | None:
    """``resume_logon`` for a session the catalog vouched for within the last second (no I/O:
    the event loop may call this); None: call ``resume_logon``."""
    found = _remembered(ctx).logons.get(_digest(token))
    if found is None:
        return None
    now = ctx.clock.now()
    if now - found.recorded_at >= LOGON_RECORD_EVERY or now - found.created_at >= LOGON_LIFETIME:
        return None  # the catalog records this use (and says whether the session still lives)
    return found.principal, found.session_id


def resume_logon(ctx: Context, token: str) -> tuple[Principal, str]:
    """The caller and logon session of a token; each use restarts the 15-minute idle clock,
    none extends the 8 hours a session may last."""
    known = cached_logon(ctx, token)
    if known is not None:
        return known
    logons = _remembered(ctx).logons
    generation, digest, now = logons.generation, _digest(token), ctx.clock.now()
    with ctx.db.write() as s:
        row = s.execute(
            select(LogonSession, User)
            .join(User, User.id == LogonSession.user_id)
            .where(LogonSession.token_hash == digest)
        ).first()
        if row is None:
            raise Unauthenticated("the logon session is not valid")
        session, user = row
        if session.ended_at is not None:
            raise Unauthenticated("the logon session has ended")
        if now - session.last_used_at >= LOGON_IDLE_TIMEOUT:
            raise Unauthenticated("the logon session expired after 15 idle minutes")
        if now - session.created_at >= LOGON_LIFETIME:
            raise Unauthenticated(
                "the logon session expired: it lasts at most 8 hours; log on again"
            )
        session.last_used_at = now
        principal = Principal(user.id, user.name, Role(user.role))
    logons.put(digest, _Logon(principal, session.id, session.created_at, now), generation)
    return principal, session.id


def _logon_named(s: Session, ref: str) -> LogonSession | None:
    """The logon session ``ref`` names: its ``SessionId`` (which its holder knows) or its row id
    (what others see of it)."""
    by_key = s.scalar(
        select(LogonSession).where(LogonSession.token_hash == _digest(logon_token(ref)))
    )
    return by_key if by_key is not None else s.get(LogonSession, ref)


def get_logon(ctx: Context, ref: str, caller: Principal) -> tuple[LogonSession, str]:
    """The live logon session ``ref`` names (``_logon_named``) and its user's name, if the caller
    may see it: its own, or anyone's for an administrator."""
    with ctx.db.read() as s:
        session = _logon_named(s, ref)
        owner = None if session is None else s.get(User, session.user_id)
    if (
        session is None
        or owner is None
        or session.ended_at is not None
        or (session.user_id != caller.user_id and caller.role is not Role.ADMINISTRATOR)
    ):
        raise NotFound(f"logon session '{ref}' does not exist")
    return session, owner.name


def end_logon(ctx: Context, ref: str, caller: Principal, origin: Origin) -> None:
    """Log off: any user may end their own session (administrators anyone's)."""
    found, _ = get_logon(ctx, ref, caller)
    now = ctx.clock.now()
    with ctx.db.write() as s:
        session = s.get(LogonSession, found.id)
        assert session is not None
        session.ended_at = now
        audit.add(
            s,
            now,
            Entry(
                AuditAction.LOGOUT, caller.user_name, origin, details={"logonSession": session.id}
            ),
        )
    _forget_credentials(ctx)


def list_logons(ctx: Context, caller: Principal) -> list[tuple[LogonSession, str]]:
    """The live logon sessions a caller may see, with their user names, oldest first: its own,
    or everyone's for an administrator (the rule ``get_logon`` applies to one)."""
    now = ctx.clock.now()
    query = (
        select(LogonSession, User.name)
        .join(User, User.id == LogonSession.user_id)
        .where(
            LogonSession.ended_at.is_(None),
            LogonSession.last_used_at > now - LOGON_IDLE_TIMEOUT,
            LogonSession.created_at > now - LOGON_LIFETIME,
        )
        .order_by(LogonSession.created_at)
    )
    if caller.role is not Role.ADMINISTRATOR:
        query = query.where(LogonSession.user_id == caller.user_id)
    with ctx.db.read() as s:
        return [(session, name) for session, name in s.execute(query)]
