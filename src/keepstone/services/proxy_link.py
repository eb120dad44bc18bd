"""Remote proxies: registration, and what a registered proxy may ask of the control plane.

``keepstone admin proxy-token`` makes a one-time registration token (valid 24 h); a ``keepstone
proxy`` registers with it once and gets a long random credential, returned that one time (only
its SHA-256 is kept, in ``proxies.credential_hash``). Registration binds the credential to the
remote proxy row that ``POST /vN/Proxies`` made with the same host name, or creates one.

Everything else a remote proxy does is authenticated by that credential and limited to its own
claims (``claimed_by``, and the attempt it claimed): it may claim, fetch the work package of a
run it holds, renew, log, start and finish its users' task sessions, record the restore point
in the run's own repository and end the attempt; a call about any other run is refused (403),
about an attempt that is no longer its own too (409: the lease was lost, another proxy may work
the run now), and nothing is written. A proxy is trusted with nothing else.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, Forbidden, NotFound, Unauthenticated
from keepstone.domain.jobs import SessionStatus, check_name
from keepstone.proxy.channel import repositories_of, with_source_access
from keepstone.proxy.load import Load
from keepstone.services import auth, catalog, proxies, proxy_wire, restore_points, runs
from keepstone.services.context import Context, new_id
from keepstone.services.task_sessions import UserTally
from keepstone.store.tables import (
    JobSession,
    Proxy,
    ProxyRegistration,
    TaskSession,
)

TOKEN_PREFIX = "ksreg_"  # a registration token: recognisable in a paste, never a credential
CREDENTIAL_PREFIX = auth.PROXY_CREDENTIAL_PREFIX  # a proxy's credential: refused elsewhere
REGISTRATION_VALID = timedelta(hours=24)
REMOTE_THREADS = 4  # a new remote proxy's threadsNumber until an administrator edits it
NEW_TOKEN_HINT = "make a new one with 'keepstone admin proxy-token'"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_proxy_credential(token: str) -> bool:
    return token.startswith(CREDENTIAL_PREFIX)


# ---- registration -----------------------------------------------------------------------------


def new_registration_token(ctx: Context) -> str:
    """A one-time registration token, valid for 24 hours; only its digest is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = ctx.clock.now()
    with ctx.db.write() as s:
        s.add(
            ProxyRegistration(
                token_hash=_digest(token),
                created_at=now,
                expires_at=now + REGISTRATION_VALID,
                used_at=None,
                proxy_id=None,
            )
        )
    return token


@dataclass(frozen=True)
class Registered:
    proxy_id: str
    credential: str

    def __repr__(self) -> str:  # the credential never reaches a log line through a repr
        return f"Registered(proxy_id={self.proxy_id!r})"


def register(ctx: Context, token: str, name: str) -> Registered:
    """Use a registration token once: the remote proxy ``name`` gets its credential."""
    name = check_name(name)
    now = ctx.clock.now()
    credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(48)
    with ctx.db.write() as s:
        registration = s.get(ProxyRegistration, _digest(token))
        if registration is None:
            raise Unauthenticated(f"the registration token is not valid: {NEW_TOKEN_HINT}")
        if registration.used_at is not None:
            raise Unauthenticated(f"the registration token has been used already: {NEW_TOKEN_HINT}")
        if registration.expires_at <= now:
            raise Unauthenticated(f"the registration token has expired: {NEW_TOKEN_HINT}")
        proxy = _awaiting(s, name)
        proxy.credential_hash = _digest(credential)
        registration.used_at, registration.proxy_id = now, proxy.id
    return Registered(proxy.id, credential)


def _awaiting(s: Session, name: str) -> Proxy:
    """The remote proxy row ``name`` registers as: the one ``POST /vN/Proxies`` made, else new."""
    # Host names compare without case, as POST /vN/Proxies refuses a second one in another case.
    rows = list(s.scalars(select(Proxy).where(func.lower(Proxy.host_name) == name.lower())))
    waiting = [p for p in rows if not p.is_local and p.credential_hash is None]
    if waiting:
        return waiting[0]
    if rows:
        raise Conflict(f"a proxy named '{name}' is registered already")
    proxy = Proxy(
        id=new_id(),
        host_name=name,
        description="Remote proxy",
        port=proxies.PROXY_PORT,
        threads_number=REMOTE_THREADS,
        is_local=False,
        heartbeat_at=None,
        active_runs=0,
        maintenance=False,
    )
    s.add(proxy)
    return proxy


def authenticate(ctx: Context, credential: str) -> str:
    """The id of the remote proxy ``credential`` belongs to."""
    if not is_proxy_credential(credential):
        raise Unauthenticated("a proxy credential is required here")
    with ctx.db.read() as s:
        proxy_id = s.scalar(select(Proxy.id).where(Proxy.credential_hash == _digest(credential)))
    if proxy_id is None:
        raise Unauthenticated("the proxy credential is not valid")
    return proxy_id


# ---- a registered proxy's calls ---------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What a heartbeat says: the proxy's load, version, and runs it works now."""

    cpu_percent: float | None
    memory_percent: float | None
    version: str
    active_runs: int


def heartbeat(ctx: Context, proxy_id: str, report: Report) -> int:
    """The proxy is alive; returns its threads' number (how many runs it may work at once)."""
    load = Load(report.cpu_percent, report.memory_percent)
    proxy = catalog.heartbeat(
        ctx, proxy_id, load=load, version=report.version, active_runs=report.active_runs
    )
    return proxy.threads_number


def start(ctx: Context, proxy_id: str) -> int:
    """The proxy (re)started: runs it held can never finish; their attempts fail (retries)."""
    return runs.abandon_runs_of(ctx, proxy_id)


def claim(ctx: Context, proxy_id: str) -> dict[str, Any] | None:
    run = runs.claim_next(ctx, proxy_id)
    return None if run is None else proxy_wire.encode_run(run)


def work(ctx: Context, proxy_id: str, attempt: runs.Attempt) -> dict[str, Any]:
    """The work package of a run this proxy holds, in its wire form: where its repositories are
    and their secrets, and how to reach the organization. Read from the catalog for the claimed
    session, never from what the proxy says."""
    with ctx.db.read() as s:
        session = _claimed_in(s, proxy_id, attempt)
        organization, scope, copy = runs.scope_of_in(s, session)
    package = repositories_of(ctx, scope, copy)
    if organization.type in ("Imap", "Office365") and copy is None:
        package = with_source_access(ctx, organization, package.repositories)
    return proxy_wire.encode_work(package)


def renew(
    ctx: Context,
    proxy_id: str,
    attempt: runs.Attempt,
    statistics: runs.Statistics,
    progress: int,
) -> runs.RunState:
    with ctx.db.read() as s:
        _claimed_in(s, proxy_id, attempt)
    return runs.renew_lease(ctx, attempt, proxy_id, statistics, progress)


def log(
    ctx: Context,
    proxy_id: str,
    attempt: runs.Attempt,
    status: SessionStatus,
    message: str,
    subject: tuple[str, str] | None,
) -> None:
    now = ctx.clock.now()
    with ctx.db.write() as s:
        _claimed_in(s, proxy_id, attempt)
        runs.add_log_in(s, attempt.session_id, status, message, now, end=now, subject=subject)


def start_task(ctx: Context, proxy_id: str, attempt: runs.Attempt, subject: tuple[str, str]) -> str:
    with ctx.db.read() as s:
        _claimed_in(s, proxy_id, attempt)
    from keepstone.services import task_sessions

    return task_sessions.start(ctx, attempt.session_id, subject)


def finish_task(
    ctx: Context,
    proxy_id: str,
    attempt: runs.Attempt,
    task_id: str,
    status: SessionStatus,
    tally: UserTally,
    reason: str,
) -> None:
    with ctx.db.read() as s:
        _claimed_in(s, proxy_id, attempt)
        task = s.get(TaskSession, task_id)
        if task is None or task.session_id != attempt.session_id:
            raise NotFound(f"task session '{task_id}' is not one of this run's")
    runs.finish_task(ctx, task_id, status, tally, reason=reason, outcome="")


def record(
    ctx: Context,
    proxy_id: str,
    attempt: runs.Attempt,
    repository_id: str,
    facts: restore_points.SnapshotFacts,
) -> None:
    """The run's snapshot, recorded as a restore point of the repository the run writes."""
    with ctx.db.read() as s:
        session = _claimed_in(s, proxy_id, attempt)
        _, scope, _ = runs.scope_of_in(s, session)
    if repository_id != scope.repository_id:
        raise Forbidden(f"this run writes repository '{scope.repository_id}' only")
    restore_points.record(ctx, repository_id, facts)


def end(
    ctx: Context,
    proxy_id: str,
    attempt: runs.Attempt,
    status: SessionStatus,
    message: str,
    statistics: runs.Statistics,
    progress: int,
    retryable: bool,
) -> None:
    with ctx.db.read() as s:
        _claimed_in(s, proxy_id, attempt)
    runs.end_attempt(
        ctx, attempt, proxy_id, status, message, statistics, progress, retryable=retryable
    )


def _claimed_in(s: Session, proxy_id: str, attempt: runs.Attempt) -> JobSession:
    """The session of an attempt this proxy holds now; refused otherwise, naming why."""
    session = s.get(JobSession, attempt.session_id)
    if session is None:
        raise NotFound(f"job session '{attempt.session_id}' does not exist")
    if session.claimed_by != proxy_id:
        raise Forbidden(f"job session '{session.id}' is not claimed by this proxy")
    if (
        session.status != SessionStatus.RUNNING.value
        or session.retry_count != attempt.attempt
        or attempt.claimed_at != session.attempt_started_at
    ):
        raise Conflict(f"this proxy's claim on job session '{session.id}' has ended")
    return session
