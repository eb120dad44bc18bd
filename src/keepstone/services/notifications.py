"""E-mail notifications about finished runs, in the vendor's model (``VboEmailSettings``).

- **Settings** (``RESTNotificationEmailSettings``): the SMTP server, port, whether the connection
  is secured (``useSSL``: implicit TLS on port 465, STARTTLS on any other port, certificates
  verified against the system's trust store, ``SSL_CERT_FILE`` honoured), optional
  authentication (``userPassword`` is write-only: the vault's ``smtp-vbo``, sealed in the catalog
  with the operator's key), sender, recipients (``;``-separated), the subject with the vendor's
  ``%JobName%``-style variables, and when to send (success, warning, failure; after the last
  retry only, or after every failed attempt).
- **The outbox**: a run that ends (``runs.finish_in``, or a failed attempt that will be retried
  when the settings ask for it) adds a ``mail_outbox`` row in the transaction that ends it, so
  a run never waits on, nor fails with, a mail server, and no finished run is forgotten by a
  crash. The message is composed when it is sent: job, organization, result, duration, counts,
  the per-user warnings and errors, and the session's page in the console.
- **The daily digest** (Keepstone's extension: ``dailyDigest``, ``dailyDigestTime``): once a
  day at that time (``HH:MM``, the server's time zone) one mail lists every run that ended since
  the same time the day before, whatever the per-run switches say. The leader queues it in the
  outbox in the transaction that records its day in the catalog (``last_digest_day``, set only if
  older), so a day's digest is queued once across restarts and leader changes; a server that was
  down at that time queues it when it is back the same day (a day it was down throughout gets
  none). Enabling it after the day's time has passed starts with the next day's.
- **The sender** runs beside the scheduler, on the leader only (one sender in a cluster, its
  writes fenced): it sends what is due, and a mail the server refuses or cannot be reached for is
  retried with exponential backoff (``RETRY_FIRST`` doubling up to ``RETRY_MOST``), logged every
  time, and given up after ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import csv
import io
import re
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import structlog
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from keepstone import __version__
from keepstone.domain.errors import InvalidInput
from keepstone.domain.hosts import HOST_RULE, is_host
from keepstone.domain.jobs import SessionStatus
from keepstone.services import vault
from keepstone.services.context import Context, new_id
from keepstone.services.leadership import Fence
from keepstone.store.tables import (
    CopyJob,
    CopyJobSession,
    Job,
    JobSession,
    LogItem,
    MailOutbox,
    NotificationSettings,
    Organization,
)

log = structlog.get_logger(__name__)

SERVICE = "vbo"  # VboEmailSettings: backup and backup copy jobs
SECRET = f"smtp-{SERVICE}"
DEFAULT_SUBJECT = "[%JobResult%] %OrgName% - %JobName% (%MailboxCount% objects) %Issues% issues"
AUTHENTICATION_TYPES = ("CustomSmtp",)  # Gmail and Microsoft 365 OAuth sign-in: not supported
IMPLICIT_TLS_PORT = 465
SMTP_TIMEOUT_SECONDS = 30.0
RETRY_FIRST = timedelta(minutes=1)
RETRY_MOST = timedelta(hours=1)
MAX_ATTEMPTS = 10  # about five hours of retries
BATCH = 50  # mails one delivery pass sends at most
LISTED_ISSUES = 200  # per-user warnings and errors listed in one mail; the rest are counted
DIGEST = "Digest"  # the outbox row's ``result`` for a daily digest
LISTED_RUNS = 1000  # runs one digest lists; the rest are counted
_DIGEST_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_ADDRESS = re.compile(r"^[^@\s<>;,\"]+@[^@\s<>;,\"]+$")


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """What the catalog keeps (no password); the names of the vendor's properties."""

    enableNotification: bool = False
    smtpServer: str = ""
    port: int = 25
    useSSL: bool = False
    useAuthentication: bool = False
    username: str = ""
    authenticationType: str = "CustomSmtp"
    sender: str = ""  # ``from``
    to: str = ""
    subject: str = DEFAULT_SUBJECT
    notifyOnSuccess: bool = True
    notifyOnWarning: bool = True
    notifyOnFailure: bool = True
    supressUntilLastRetry: bool = True  # the vendor's spelling
    attachDetailedReport: bool = False
    # Keepstone's extension (vendor clients neither send nor read them)
    dailyDigest: bool = False
    dailyDigestTime: str = "08:00"  # HH:MM, the server's time zone

    @property
    def digest_on(self) -> bool:
        return self.enableNotification and self.dailyDigest

    def wants(self, result: str) -> bool:
        """Whether a run that ended with ``result`` is to be mailed."""
        wanted = {
            SessionStatus.SUCCESS.value: self.notifyOnSuccess,
            SessionStatus.WARNING.value: self.notifyOnWarning,
            SessionStatus.FAILED.value: self.notifyOnFailure,
        }
        return self.enableNotification and wanted.get(result, False)

    @property
    def recipients(self) -> list[str]:
        return [part.strip() for part in self.to.split(";") if part.strip()]


_FIELDS = {f.name for f in fields(EmailSettings)}


def _settings_of(record: dict[str, Any] | None) -> EmailSettings:
    known = {k: v for k, v in (record or {}).items() if k in _FIELDS}
    return EmailSettings(**known)


def get_settings(ctx: Context) -> tuple[EmailSettings, bool]:
    """The settings, and whether a password is kept for them."""
    with ctx.db.read() as s:
        row = s.get(NotificationSettings, SERVICE)
    settings = _settings_of(row.settings if row else None)
    return settings, vault.read_secret(ctx, SECRET) is not None


def put_settings(ctx: Context, changes: dict[str, Any], password: str | None) -> EmailSettings:
    """Apply ``changes`` (property -> value; absent properties keep their value) and, when
    given, the password. Refuses (naming the property) settings that could not send a mail."""
    unknown = set(changes) - _FIELDS
    if unknown:
        raise InvalidInput(f"unknown property {sorted(unknown)[0]}", sorted(unknown)[0])
    with ctx.db.write() as s:
        row = s.get(NotificationSettings, SERVICE)
        settings = replace(_settings_of(row.settings if row else None), **changes)
        has_password = password is not None or vault.read_secret(ctx, SECRET) is not None
        _check(settings, has_password)
        was_on = row is not None and _settings_of(row.settings).digest_on
        record = asdict(settings)
        if row is None:
            row = NotificationSettings(service=SERVICE, settings=record)
            s.add(row)
        else:
            row.settings = record
        if settings.digest_on and not was_on:
            # a digest turned on after today's time starts with tomorrow's, not one right away
            now = ctx.clock.now()
            today = now.astimezone(ctx.tz).date()
            if now >= digest_instant(today, settings.dailyDigestTime, ctx.tz):
                row.last_digest_day = today.isoformat()
        if password is not None:
            vault.keep_secret(ctx, SECRET, password.encode(), "userPassword", session=s)
    return settings


def _check(settings: EmailSettings, has_password: bool) -> None:
    for name in ("smtpServer", "username", "sender", "to", "subject"):
        if re.search(r"[\r\n\x00]", getattr(settings, name)):
            raise InvalidInput(f"{_wire(name)} must be one line", _wire(name))
    if not _DIGEST_TIME.match(settings.dailyDigestTime):
        raise InvalidInput(
            f"dailyDigestTime must be HH:MM (00:00-23:59); got '{settings.dailyDigestTime}'",
            "dailyDigestTime",
        )
    server = settings.smtpServer.strip()
    if server and not is_host(server):
        raise InvalidInput(
            f"smtpServer '{server}' is not a host name or an IP address ({HOST_RULE})",
            "smtpServer",
        )
    if not 0 < settings.port < 65536:
        raise InvalidInput(f"port must be 1-65535; got {settings.port}", "port")
    if settings.authenticationType not in AUTHENTICATION_TYPES:
        raise InvalidInput(
            f"authenticationType {settings.authenticationType} is not supported "
            f"(supported: {', '.join(AUTHENTICATION_TYPES)})",
            "authenticationType",
        )
    if not settings.enableNotification:
        return  # kept as given: a half-filled form may be saved while notifications are off
    if not settings.smtpServer.strip():
        raise InvalidInput("smtpServer is required to enable notifications", "smtpServer")
    if not _ADDRESS.match(settings.sender.strip()):
        raise InvalidInput(f"from is not an e-mail address: '{settings.sender}'", "from")
    if not settings.recipients:
        raise InvalidInput("to needs at least one e-mail address", "to")
    for address in settings.recipients:
        if not _ADDRESS.match(address):
            raise InvalidInput(f"to: '{address}' is not an e-mail address", "to")
    if settings.useAuthentication and not settings.username.strip():
        raise InvalidInput("username is required when useAuthentication is true", "username")
    if settings.useAuthentication and not has_password:
        raise InvalidInput(
            "userPassword is required when useAuthentication is true", "userPassword"
        )


def _wire(name: str) -> str:
    return "from" if name == "sender" else name


# ---- the outbox ------------------------------------------------------------------------------


def enqueue_in(s: Session, session: JobSession, result: str, now: datetime) -> None:
    """Owe a mail about ``session`` ending with ``result`` (in the transaction that ends it),
    if the settings want one. One primary-key read (the settings row) per call."""
    row = s.get(NotificationSettings, SERVICE)
    if row is None or not _settings_of(row.settings).wants(result):
        return
    s.add(
        MailOutbox(
            id=new_id(),
            session_id=session.id,
            result=result,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
            last_error="",
        )
    )


def mail_on_every_attempt_in(s: Session) -> bool:
    """Whether a failed attempt that will be retried is mailed too (not only the last)."""
    row = s.get(NotificationSettings, SERVICE)
    return row is not None and not _settings_of(row.settings).supressUntilLastRetry


def digest_instant(day: date, at: str, tz: tzinfo) -> datetime:
    """When ``day``'s digest is due: ``at`` (``HH:MM``) on that day in ``tz``, in UTC."""
    hour, minute = int(at[:2]), int(at[3:])
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


def queue_digest(ctx: Context, fence: Fence | None = None) -> bool:
    """Queue today's digest if its time has come and it was not queued yet (the leader, every
    tick: one primary-key read while nothing is due). The day is claimed by a conditional update
    in the transaction that adds the outbox row, so two servers, or a restart, never queue it
    twice."""
    now = ctx.clock.now()
    with ctx.db.read() as s:
        row = s.get(NotificationSettings, SERVICE)
        if row is None:
            return False
        settings, last = _settings_of(row.settings), row.last_digest_day
    if not settings.digest_on:
        return False
    today = now.astimezone(ctx.tz).date()
    due = digest_instant(today, settings.dailyDigestTime, ctx.tz)
    if now < due or (last is not None and last >= today.isoformat()):
        return False
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        claimed = s.execute(
            update(NotificationSettings)
            .where(
                NotificationSettings.service == SERVICE,
                or_(
                    NotificationSettings.last_digest_day.is_(None),
                    NotificationSettings.last_digest_day < today.isoformat(),
                ),
            )
            .values(last_digest_day=today.isoformat())
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return False  # another server claimed the day meanwhile
        s.add(
            MailOutbox(
                id=new_id(),
                session_id=None,
                digest_day=today.isoformat(),
                result=DIGEST,
                created_at=due,  # the end of the day the digest covers
                attempts=0,
                next_attempt_at=now,
                last_error="",
            )
        )
    log.info("daily digest queued", day=today.isoformat())
    return True


def mail_due(ctx: Context) -> bool:
    with ctx.db.read() as s:
        found = s.scalar(
            select(MailOutbox.id).where(MailOutbox.next_attempt_at <= ctx.clock.now()).limit(1)
        )
    return found is not None


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 1, 2, 4 ... minutes, at most an hour."""
    wait: timedelta = RETRY_FIRST * (2 ** min(max(0, attempts - 1), 12))
    return min(wait, RETRY_MOST)


@dataclass(frozen=True, slots=True)
class Delivery:
    sent: int = 0
    failed: int = 0  # attempts that failed (retried later, or given up)


def deliver_due(ctx: Context, public_url: str, fence: Fence | None = None) -> Delivery:
    """Send the mails that are due (at most ``BATCH``); each outcome is written (fenced) after
    its send. ``public_url`` is the console's base for the session links."""
    now = ctx.clock.now()
    with ctx.db.read() as s:
        due = list(
            s.scalars(
                select(MailOutbox)
                .where(MailOutbox.next_attempt_at <= now)
                .order_by(MailOutbox.next_attempt_at, MailOutbox.id)
                .limit(BATCH)
            )
        )
        settings = _settings_of(getattr(s.get(NotificationSettings, SERVICE), "settings", None))
    if not due:
        return Delivery()
    password = _password(ctx) if settings.useAuthentication else None
    sent = failed = 0
    for mail in due:
        error, permanent = "", False
        if not settings.enableNotification:
            error, permanent = "notifications were disabled before the mail was sent", True
        else:
            try:
                message = (
                    compose(ctx, mail, settings, public_url)
                    if mail.session_id is not None
                    else compose_digest(ctx, mail, settings, public_url)
                )
                send(settings, password, message)
            except (OSError, smtplib.SMTPException) as problem:
                error = f"{problem.__class__.__name__}: {problem}"
            except LookupError:  # its session was deleted meanwhile (the row goes with it)
                continue
            except Exception as problem:  # a mail that cannot be composed must not block others
                log.exception("notification could not be composed", session=mail.session_id)
                error = f"{problem.__class__.__name__}: {problem}"
        _record(ctx, mail, error, permanent, fence)
        sent, failed = (sent + 1, failed) if not error else (sent, failed + 1)
    return Delivery(sent, failed)


def _record(
    ctx: Context, mail: MailOutbox, error: str, permanent: bool, fence: Fence | None
) -> None:
    now = ctx.clock.now()
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        row = s.get(MailOutbox, mail.id)
        if row is None:  # its session was deleted meanwhile
            return
        row.attempts += 1
        if not error:
            row.sent_at, row.next_attempt_at, row.last_error = now, None, ""
            log.info("notification sent", session=row.session_id, result=row.result)
            return
        row.last_error = error[:1000]
        if permanent or row.attempts >= MAX_ATTEMPTS:
            row.next_attempt_at = None
            log.error(
                "notification given up",
                session=row.session_id,
                attempts=row.attempts,
                error=error,
            )
            return
        row.next_attempt_at = now + backoff(row.attempts)
        log.warning(
            "notification not sent; retrying",
            session=row.session_id,
            attempts=row.attempts,
            retry_at=row.next_attempt_at.isoformat(),
            error=error,
        )


def _password(ctx: Context) -> str | None:
    secret = vault.read_secret(ctx, SECRET)
    return secret.decode() if secret is not None else None


# ---- composing and sending -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a notification says about one run."""

    session_id: str
    job_name: str
    organization: str
    result: str
    started: datetime
    ended: datetime | None
    retry: int
    statistics: dict[str, Any]
    details: str
    issues: list[tuple[str, str, str]]  # (user, Warning | Failed, message), first LISTED_ISSUES
    issue_count: int
    objects: int  # users the run processed


def summary_of(ctx: Context, session_id: str | None, result: str) -> RunSummary:
    """The run's facts, in a fixed number of catalog statements."""
    with ctx.db.read() as s:
        session = s.get(JobSession, session_id) if session_id is not None else None
        if session is None or session_id is None:
            raise LookupError(session_id)
        job = s.get(Job, session.job_id)
        copy = s.scalar(
            select(CopyJob)
            .join(CopyJobSession, CopyJobSession.copy_job_id == CopyJob.id)
            .where(CopyJobSession.session_id == session_id)
        )
        org = s.get(Organization, job.organization_id) if job is not None else None
        of_users = (LogItem.session_id == session_id, LogItem.subject_id.is_not(None))
        wrong = LogItem.status.in_((SessionStatus.WARNING.value, SessionStatus.FAILED.value))
        issues = s.execute(
            select(LogItem.subject_name, LogItem.status, LogItem.message)
            .where(*of_users, wrong)
            .order_by(LogItem.usn)
            .limit(LISTED_ISSUES)
        ).all()
        issue_count = s.scalar(select(func.count()).where(*of_users, wrong)) or 0
        objects = s.scalar(select(func.count(func.distinct(LogItem.subject_id))).where(*of_users))
    owner = copy or job
    return RunSummary(
        session_id=session_id,
        job_name=owner.name if owner is not None else "(deleted job)",
        organization=org.name if org is not None else "",
        result=result,
        started=session.creation_time,
        ended=session.end_time,
        retry=session.retry_count,
        statistics=dict(session.statistics or {}),
        details=session.details,
        issues=[(name or "", status, message) for name, status, message in issues],
        issue_count=int(issue_count),
        objects=int(objects or 0),
    )


def session_link(public_url: str, session_id: str) -> str:
    """The session's page in the web console."""
    return f"{public_url.rstrip('/')}/sessions/{session_id}"


def compose(
    ctx: Context, mail: MailOutbox, settings: EmailSettings, public_url: str
) -> EmailMessage:
    run = summary_of(ctx, mail.session_id, mail.result)
    end = run.ended or mail.created_at
    variables = {
        "%JobName%": run.job_name,
        "%JobResult%": run.result,
        "%OrgName%": run.organization,
        "%MailboxCount%": str(run.objects),
        "%Issues%": str(run.issue_count),
        "%Time%": end.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    subject = settings.subject or DEFAULT_SUBJECT
    for name, value in variables.items():
        subject = subject.replace(name, value)
    message = _envelope(settings, subject)
    message.set_content(_body(ctx, run, end, session_link(public_url, run.session_id)))
    if settings.attachDetailedReport:
        message.add_attachment(
            detailed_report(ctx, run.session_id),
            subtype="csv",
            filename=f"{run.job_name}-{run.session_id[:8]}.csv".replace("/", "_"),
        )
    return message


def detailed_report(ctx: Context, session_id: str) -> str:
    """``attachDetailedReport``: every user's outcome in the run, one CSV row each (one
    statement: the run's per-user log items)."""
    with ctx.db.read() as s:
        rows = s.execute(
            select(LogItem.subject_name, LogItem.status, LogItem.creation_time, LogItem.message)
            .where(LogItem.session_id == session_id, LogItem.subject_id.is_not(None))
            .order_by(LogItem.usn)
        ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["User", "Status", "Time", "Message"])
    for user, status, when, text in rows:
        writer.writerow([user or "", status, _local(ctx, when), text])
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class DigestRun:
    """One run in a daily digest."""

    session_id: str
    job_name: str
    organization: str
    result: str
    started: datetime
    ended: datetime
    statistics: dict[str, Any]
    objects: int  # users the run processed
    issues: int  # of them with warnings or errors


def digest_window(ctx: Context, due: datetime) -> tuple[datetime, datetime]:
    """The runs a digest due at ``due`` covers: those that ended from the same wall-clock time
    the day before (23 or 25 hours across a daylight-saving change) until ``due``."""
    local = due.astimezone(ctx.tz)
    start = datetime.combine(local.date() - timedelta(days=1), local.time(), tzinfo=ctx.tz)
    return start.astimezone(UTC), due


def digest_runs(ctx: Context, start: datetime, end: datetime) -> tuple[list[DigestRun], int]:
    """The runs that ended in ``[start, end)``, per job then by start (the first
    ``LISTED_RUNS``), and how many there are: three catalog statements whatever their number."""
    in_window = (JobSession.end_time >= start, JobSession.end_time < end)
    owner = func.coalesce(CopyJob.name, Job.name)
    with ctx.db.read() as s:
        rows = s.execute(
            select(
                JobSession.id,
                owner,
                Organization.name,
                JobSession.status,
                JobSession.creation_time,
                JobSession.end_time,
                JobSession.statistics,
            )
            .outerjoin(Job, Job.id == JobSession.job_id)
            .outerjoin(Organization, Organization.id == Job.organization_id)
            .outerjoin(CopyJobSession, CopyJobSession.session_id == JobSession.id)
            .outerjoin(CopyJob, CopyJob.id == CopyJobSession.copy_job_id)
            .where(*in_window)
            .order_by(owner, JobSession.creation_time, JobSession.id)
            .limit(LISTED_RUNS)
        ).all()
        total = s.scalar(select(func.count()).select_from(JobSession).where(*in_window)) or 0
        wrong = LogItem.status.in_((SessionStatus.WARNING.value, SessionStatus.FAILED.value))
        counts = {
            session_id: (int(objects or 0), int(issues or 0))
            for session_id, objects, issues in s.execute(
                select(
                    LogItem.session_id,
                    func.count(func.distinct(LogItem.subject_id)),
                    func.sum(case((wrong, 1), else_=0)),
                )
                .where(
                    LogItem.session_id.in_(select(JobSession.id).where(*in_window)),
                    LogItem.subject_id.is_not(None),
                )
                .group_by(LogItem.session_id)
            ).all()
        }
    runs = [
        DigestRun(
            session_id=session_id,
            job_name=name or "(deleted job)",
            organization=organization or "",
            result=status,
            started=started,
            ended=ended or end,
            statistics=dict(statistics or {}),
            objects=counts.get(session_id, (0, 0))[0],
            issues=counts.get(session_id, (0, 0))[1],
        )
        for session_id, name, organization, status, started, ended, statistics in rows
    ]
    return runs, int(total)


def compose_digest(
    ctx: Context, mail: MailOutbox, settings: EmailSettings, public_url: str
) -> EmailMessage:
    """The daily digest due at ``mail.created_at``: every run that ended in the day before it,
    per job; a day without runs gets a short mail saying so (silence would look like a broken
    sender)."""
    start, end = digest_window(ctx, mail.created_at)
    runs, total = digest_runs(ctx, start, end)
    day = mail.digest_day or end.astimezone(ctx.tz).date().isoformat()
    results: dict[str, int] = {}
    for run in runs:
        results[run.result] = results.get(run.result, 0) + 1
    tally = ", ".join(f"{count} {result}" for result, count in sorted(results.items()))
    heading = f"{total} run{'s' if total != 1 else ''}" + (f": {tally}" if tally else "")
    message = _envelope(
        settings, f"Keepstone daily digest {day}: {heading if total else 'no runs'}"
    )
    lines = [f"Runs that ended from {_local(ctx, start)} to {_local(ctx, end)}.", ""]
    if not total:
        lines.append("No job ran in these 24 hours.")
    else:
        lines.append(heading)
    job: tuple[str, str] | None = None
    for run in runs:
        if (run.job_name, run.organization) != job:
            job = (run.job_name, run.organization)
            lines += [
                "",
                f"{run.job_name} ({run.organization})" if run.organization else run.job_name,
            ]
        stats = run.statistics
        lines += [
            f"  {run.result:<8} started {_local(ctx, run.started)}, "
            f"duration {_duration(run.ended - run.started)}",
            f"           {run.objects} objects, {run.issues} with warnings or errors, "
            f"{int(float(stats.get('read_items', 0)))} items read, "
            f"{int(float(stats.get('read_bytes', 0)))} bytes read, "
            f"{int(float(stats.get('written_bytes', 0)))} bytes stored",
            f"           {session_link(public_url, run.session_id)}",
        ]
    if total > len(runs):
        lines += ["", f"... and {total - len(runs)} more runs (see the sessions in the console)"]
    message.set_content("\n".join(lines) + "\n")
    return message


def _envelope(settings: EmailSettings, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    message["X-Mailer"] = f"Keepstone {__version__}"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    return message


def _body(ctx: Context, run: RunSummary, end: datetime, link: str) -> str:
    stats = run.statistics
    duration = end - run.started
    lines = [
        f"Job:           {run.job_name}",
        f"Organization:  {run.organization}",
        f"Result:        {run.result}" + (f" (attempt {run.retry + 1})" if run.retry else ""),
        f"Started:       {_local(ctx, run.started)}",
        f"Ended:         {_local(ctx, end)}",
        f"Duration:      {_duration(duration)}",
        f"Objects:       {run.objects} processed, {run.issue_count} with warnings or errors",
        f"Items read:    {int(float(stats.get('read_items', 0)))}",
        f"Bytes read:    {int(float(stats.get('read_bytes', 0)))}",
        f"Bytes stored:  {int(float(stats.get('written_bytes', 0)))}",
        "",
        f"Session:       {link}",
    ]
    if run.details:
        lines += ["", run.details]
    if run.issues:
        lines += ["", "Warnings and errors:"]
        lines += [f"  {status:<8} {user}: {message}" for user, status, message in run.issues]
        if run.issue_count > len(run.issues):
            lines.append(f"  ... and {run.issue_count - len(run.issues)} more (see the session)")
    return "\n".join(lines) + "\n"


def _local(ctx: Context, instant: datetime) -> str:
    return instant.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _duration(span: timedelta) -> str:
    seconds = max(0, int(span.total_seconds()))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def send(settings: EmailSettings, password: str | None, message: EmailMessage) -> None:
    """One SMTP conversation; raises ``OSError`` or ``smtplib.SMTPException``."""
    host, port = settings.smtpServer.strip(), settings.port
    if not is_host(host):  # saved before host names were checked: the resolver would raise
        raise OSError(f"'{host}' is not a host name or an IP address")
    tls = ssl.create_default_context()  # certificates and host name verified
    client: smtplib.SMTP
    if settings.useSSL and port == IMPLICIT_TLS_PORT:
        client = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=tls)
    else:
        client = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        if settings.useSSL and port != IMPLICIT_TLS_PORT:
            client.starttls(context=tls)
            client.ehlo()
        if settings.useAuthentication:
            client.login(settings.username, password or "")
        client.send_message(message, to_addrs=settings.recipients)


def send_test(ctx: Context) -> None:
    """``SendTestEmail``: a test mail with the saved settings, now; a refusal names the cause."""
    settings, _ = get_settings(ctx)
    if not settings.smtpServer or not settings.recipients or not settings.sender:
        raise InvalidInput(
            "save smtpServer, from and to before sending a test e-mail", "smtpServer"
        )
    message = _envelope(settings, "Keepstone test e-mail")
    message.set_content(
        "This is a test e-mail from Keepstone: notifications about backup jobs reach this "
        "address.\n"
    )
    try:
        send(settings, _password(ctx) if settings.useAuthentication else None, message)
    except (OSError, smtplib.SMTPException) as problem:
        raise InvalidInput(
            f"the test e-mail could not be sent: {problem.__class__.__name__}: {problem}",
            "smtpServer",
        ) from None


def pending(ctx: Context) -> Iterable[MailOutbox]:
    """The outbox as it is (for tests and the operator's inspection)."""
    with ctx.db.read() as s:
        return list(s.scalars(select(MailOutbox).order_by(MailOutbox.created_at, MailOutbox.id)))
