"""Users, passwords, tokens and roles.

Passwords are hashed with Argon2id; tokens are random, opaque, and only their SHA-256 is stored.
Access tokens live 60 minutes; refresh tokens live 14 days and rotate: using one revokes it.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from keepstone.domain.errors import (
    BadCredentials,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from keepstone.services.context import Context, new_id
from keepstone.store.tables import LogonSession, Token, User

ACCESS_TOKEN_LIFETIME = timedelta(minutes=60)
REFRESH_TOKEN_LIFETIME = timedelta(days=14)
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id (RFC 9106 low-memory profile)
# Verifying against this keeps a login for an unknown user as slow as one for a known user.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(enum.StrEnum):
    ADMINISTRATOR = "Administrator"
    READ_ONLY = "ReadOnly"


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    user_name: str
    role: Role


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
    """Administrators may do everything; ReadOnly users may only read."""
    if action is Action.WRITE and principal.role is not Role.ADMINISTRATOR:
        raise Forbidden(
            f"user '{principal.user_name}' has the ReadOnly role and may not change anything"
        )


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", "password"
        )
    return _hasher.hash(password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- users -----------------------------------------------------------------------------------


def add_user(ctx: Context, name: str, password: str, role: Role) -> User:
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
    return user


def list_users(ctx: Context) -> list[User]:
    with ctx.db.read() as s:
        return list(s.scalars(select(User).order_by(User.name)))


def remove_user(ctx: Context, name: str) -> None:
    with ctx.db.write() as s:
        user = _user_named(s, name)
        s.delete(user)


def set_password(ctx: Context, name: str, password: str) -> None:
    """Change a password and revoke every token the user holds."""
    password_hash = hash_password(password)
    with ctx.db.write() as s:
        user = _user_named(s, name)
        user.password_hash = password_hash
        _revoke_all(s, user.id, ctx.clock.now())


def revoke_tokens(ctx: Context, name: str) -> None:
    with ctx.db.write() as s:
        _revoke_all(s, _user_named(s, name).id, ctx.clock.now())


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


# ---- tokens ----------------------------------------------------------------------------------


def login(ctx: Context, name: str, password: str) -> IssuedTokens:
    with ctx.db.read() as s:
        user = s.scalar(select(User).where(User.name == name))
    if not _password_matches(user.password_hash if user else None, password) or user is None:
        raise BadCredentials("the user name or password is incorrect")
    with ctx.db.write() as s:
        return _issue(s, user, ctx.clock.now())


def refresh(ctx: Context, refresh_token: str) -> IssuedTokens:
    now = ctx.clock.now()
    with ctx.db.write() as s:
        token = s.scalar(select(Token).where(Token.token_hash == _digest(refresh_token)))
        if token is None or token.kind != "refresh" or token.revoked_at or token.expires_at <= now:
            raise BadCredentials("the refresh token is invalid, expired or already used")
        token.revoked_at = now  # rotation: a refresh token works once
        user = s.get(User, token.user_id)
        assert user is not None  # tokens cascade with their user
        return _issue(s, user, now)


def authenticate(ctx: Context, access_token: str) -> Principal:
    now = ctx.clock.now()
    with ctx.db.read() as s:  # plain columns, not entities: this runs on every request
        row = s.execute(
            select(Token.revoked_at, Token.expires_at, User.id, User.name, User.role)
            .join(User, User.id == Token.user_id)
            .where(Token.token_hash == _digest(access_token), Token.kind == "access")
        ).first()
    if row is None:
        raise Unauthenticated("the access token is not valid")
    revoked_at, expires_at, user_id, user_name, role = row
    if revoked_at is not None:
        raise Unauthenticated("the access token has been revoked")
    if expires_at <= now:
        raise Unauthenticated("the access token has expired")
    return Principal(user_id, user_name, Role(role))


def revoke_token(ctx: Context, token_value: str) -> None:
    with ctx.db.write() as s:
        s.execute(
            update(Token)
            .where(Token.token_hash == _digest(token_value), Token.revoked_at.is_(None))
            .values(revoked_at=ctx.clock.now())
        )


def _issue(s: Session, user: User, now: datetime) -> IssuedTokens:
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
                issued_at=now,
                expires_at=now + lifetime,
                revoked_at=None,
            )
        )
    return IssuedTokens(access, refresh_value, user.name, now, now + ACCESS_TOKEN_LIFETIME)


def _password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# ---- throttling of failed logins ----------------------------------------------------------------


class LoginThrottle:
    """Slows down password guessing per client address.

    After ``free_failures`` consecutive failures an address must wait before its next attempt; the
    wait doubles with each further failure up to ``max_delay``. A success clears the address.
    """

    def __init__(
        self,
        free_failures: int = 5,
        first_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=5),
    ) -> None:
        self.free_failures = free_failures
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._failures: dict[str, tuple[int, datetime]] = {}
        self._lock = threading.Lock()

    def wait_needed(self, address: str, now: datetime) -> timedelta:
        """How long this address must still wait before it may try again (zero if it may now)."""
        with self._lock:
            count, last = self._failures.get(address, (0, now))
        if count < self.free_failures:
            return timedelta(0)
        delay = min(self.first_delay * (1 << (count - self.free_failures)), self.max_delay)
        return max(last + delay - now, timedelta(0))

    def failed(self, address: str, now: datetime) -> None:
        with self._lock:
            count, _ = self._failures.get(address, (0, now))
            self._failures[address] = (count + 1, now)
            if len(self._failures) > 100_000:  # bound memory under a distributed attack
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


# ---- Enterprise Manager logon sessions -----------------------------------------------------------

LOGON_IDLE_TIMEOUT = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Logon:
    session_id: str
    token: str
    principal: Principal


def start_logon(ctx: Context, name: str, password: str) -> Logon:
    """Basic-auth logon of the Enterprise Manager dialect: same users and roles as bearer tokens."""
    with ctx.db.read() as s:
        user = s.scalar(select(User).where(User.name == name))
    if not _password_matches(user.password_hash if user else None, password) or user is None:
        raise BadCredentials("the user name or password is incorrect")
    token, now = secrets.token_urlsafe(24), ctx.clock.now()
    with ctx.db.write() as s:
        session = LogonSession(
            id=new_id(),
            user_id=user.id,
            token_hash=_digest(token),
            created_at=now,
            last_used_at=now,
            ended_at=None,
        )
        s.add(session)
    return Logon(session.id, token, Principal(user.id, user.name, Role(user.role)))


def resume_logon(ctx: Context, token: str) -> tuple[Principal, str]:
    """The caller and logon session of a token; each use restarts the 15-minute idle clock."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        row = s.execute(
            select(LogonSession, User)
            .join(User, User.id == LogonSession.user_id)
            .where(LogonSession.token_hash == _digest(token))
        ).first()
        if row is None:
            raise Unauthenticated("the logon session is not valid")
        session, user = row
        if session.ended_at is not None:
            raise Unauthenticated("the logon session has ended")
        if now - session.last_used_at >= LOGON_IDLE_TIMEOUT:
            raise Unauthenticated("the logon session expired after 15 idle minutes")
        session.last_used_at = now
        return Principal(user.id, user.name, Role(user.role)), session.id


def get_logon(ctx: Context, session_id: str, caller: Principal) -> LogonSession:
    with ctx.db.read() as s:
        session = s.get(LogonSession, session_id)
    if (
        session is None
        or session.ended_at is not None
        or (session.user_id != caller.user_id and caller.role is not Role.ADMINISTRATOR)
    ):
        raise NotFound(f"logon session '{session_id}' does not exist")
    return session


def end_logon(ctx: Context, session_id: str, caller: Principal) -> None:
    get_logon(ctx, session_id, caller)
    with ctx.db.write() as s:
        session = s.get(LogonSession, session_id)
        assert session is not None
        session.ended_at = ctx.clock.now()
