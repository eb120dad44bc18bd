"""The catalog's tables (SQLAlchemy 2 typed declarative).

Times are stored as naive UTC datetimes; the ``UtcDateTime`` type adds the zone back on read.

No ``from __future__ import annotations`` here: with it, every ``Mapped[...]`` annotation is a
string that SQLAlchemy's declarative scan cleans up and evaluates again (285 of them, a quarter
of the module's import, 0.02 s of every start); without it they are the types themselves and
the mapping is the same (tests/store/test_tables.py).
"""

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# A count of bytes: past 2**31 on any real mailbox or restore point. 64 bits on every catalog:
# BIGINT on PostgreSQL (whose INTEGER is 32), and on SQLite its INTEGER, which holds 64 bits
# already (so its tables keep the type name they were made with; migration 0034).
ByteCount = BigInteger().with_variant(Integer(), "sqlite")


# A user's id as the vendor's APIs list it: an Office 365 user's Entra object id followed by its
# on-premises GUID (``services.m365_directory.vendor_id``: 72 characters, at most the 64 and 36
# that ``M365User`` keeps them in), a UUID in other organizations. PostgreSQL enforces a
# column's length; SQLite enforces none, so its tables keep the length they were made with
# (``made_with``): widening them would rebuild every log item for nothing (migration 0035).
USER_ID_LENGTH = 100


def user_id_type(made_with: int) -> String:
    return String(USER_ID_LENGTH).with_variant(String(made_with), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class Token(Base):
    """An access or refresh token; only its SHA-256 is kept, so a stolen database grants nothing."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "access" | "refresh"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # One login's tokens: its first pair and every pair rotated from it (logout ends them all).
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Proxy(Base):
    __tablename__ = "proxies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    port: Mapped[int]
    threads_number: Mapped[int]
    is_local: Mapped[bool]
    heartbeat_at: Mapped[datetime | None]
    # A remote proxy (``keepstone proxy``) authenticates with a credential of its own; only its
    # SHA-256 is kept. A built-in proxy (one per server) has none.
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Which server runs a built-in proxy: its ``<data-dir>/server-id`` (None for remote ones).
    server_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    version: Mapped[str] = mapped_column(String(64), default="")
    # The host's load as the proxy last reported it (v8 cpuUsagePercent/memoryUsagePercent).
    cpu_percent: Mapped[float | None] = mapped_column(Float)
    memory_percent: Mapped[float | None] = mapped_column(Float)
    # Runs the proxy works now (at most threads_number): what a pool balances on.
    active_runs: Mapped[int] = mapped_column(default=0)
    maintenance: Mapped[bool] = mapped_column(default=False)  # claims nothing while set
    pool_id: Mapped[str | None] = mapped_column(
        ForeignKey("proxy_pools.id", ondelete="SET NULL"), index=True
    )


class ProxyPool(Base):
    """The vendor's v8 proxy pool: proxies a job (through its repository) may run on."""

    __tablename__ = "proxy_pools"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class ProxyRegistration(Base):
    """A one-time token (``keepstone admin proxy-token``) a remote proxy registers with; only
    its SHA-256 is kept, and ``used_at`` is set by the one registration it allows."""

    __tablename__ = "proxy_registrations"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    proxy_id: Mapped[str | None] = mapped_column(ForeignKey("proxies.id", ondelete="SET NULL"))


class LeaderLease(Base):
    """Who leads a role (``scheduler``: schedules, reaping, retention, directory syncs) among
    the servers of one catalog. ``epoch`` grows at every change of holder: a leader's writes
    check it in their own transaction, so a frozen leader's late writes are refused."""

    __tablename__ = "leader_leases"
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(36))  # the server id
    epoch: Mapped[int]
    expires_at: Mapped[datetime]


class Repository(Base):
    __tablename__ = "repositories"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    path: Mapped[str] = mapped_column(Text)
    proxy_id: Mapped[str] = mapped_column(ForeignKey("proxies.id"))
    # v8: a repository owned by a pool; its jobs run on the pool's proxies only (``proxy_id``
    # then names the pool's proxy the repository was created with, as a fallback for views).
    proxy_pool_id: Mapped[str | None] = mapped_column(ForeignKey("proxy_pools.id"), index=True)
    retention: Mapped[dict[str, Any]]
    # When retention last ran here; the scheduler runs it again at the policy's next time.
    retention_applied_at: Mapped[datetime | None]


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    backup_type: Mapped[str] = mapped_column(String(32))
    selected_items: Mapped[list[Any]]
    excluded_items: Mapped[list[Any]]
    schedule_policy: Mapped[dict[str, Any]]
    # The policy's type, kept beside it by every writer of the policy (migration 0032): a query
    # filter on whether jobs are scheduled reads this short text, not every job's policy document.
    schedule_type: Mapped[str] = mapped_column(String(32))
    repository_id: Mapped[str] = mapped_column(ForeignKey("repositories.id"), index=True)
    proxy_id: Mapped[str] = mapped_column(ForeignKey("proxies.id"))
    is_enabled: Mapped[bool]
    last_run: Mapped[datetime | None]
    last_backup: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(32))
    next_run: Mapped[datetime | None] = mapped_column(index=True)
    # the ETag: bumped by every edit that changes the job
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Listings page jobs by name in the catalog (migration 0018).
    __table_args__ = (Index("ix_jobs_name", "name", "id"),)


class JobSession(Base):
    __tablename__ = "job_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    creation_time: Mapped[datetime]
    end_time: Mapped[datetime | None]
    progress: Mapped[int] = mapped_column(default=0)
    retry_count: Mapped[int] = mapped_column(default=0)
    statistics: Mapped[dict[str, Any]]
    details: Mapped[str] = mapped_column(Text, default="")
    stop_requested: Mapped[bool] = mapped_column(default=False)
    claimed_by: Mapped[str | None] = mapped_column(String(36))
    # The scheduled instant this session runs (None for manual starts): unique per job, so a
    # restart or a second scheduler can never run one slot twice.
    scheduled_for: Mapped[datetime | None]
    manual: Mapped[bool] = mapped_column(default=False)
    # A queued session waits until then (a retry's wait, or its backup window's opening).
    not_before: Mapped[datetime | None]
    # The proxy running the session renews this; once it passes, the attempt is lost.
    lease_expires_at: Mapped[datetime | None]
    attempt_started_at: Mapped[datetime | None]
    __table_args__ = (
        Index("ix_job_sessions_job_created", "job_id", "creation_time"),
        Index("ix_job_sessions_status", "status"),
        Index("ux_job_sessions_job_slot", "job_id", "scheduled_for", unique=True),
        # Listings page every session newest first (migration 0018).
        Index("ix_job_sessions_created", "creation_time", "id"),
        # The daily digest reads the runs that ended in a day (migration 0023).
        Index("ix_job_sessions_end_time", "end_time"),
    )


class JobSessionTally(Base):
    """How many job sessions were created in an hour (the creation time cut to the hour) with
    a status, retried or not: kept by triggers (migration 0031), read by
    store/session_hours.py to count and page every session, or those of some statuses and
    retries, without reading them all."""

    __tablename__ = "job_session_tallies"
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    retried: Mapped[bool] = mapped_column(primary_key=True)
    sessions: Mapped[int]


class LogItem(Base):
    __tablename__ = "log_items"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("job_sessions.id", ondelete="CASCADE"))
    usn: Mapped[int]
    status: Mapped[str] = mapped_column(
        String(16)
    )  # Running | Success | Warning | Failed | Stopped
    message: Mapped[str] = mapped_column(Text)
    creation_time: Mapped[datetime]
    end_time: Mapped[datetime | None]
    # The user the item is about (the run's processed objects); None for the run's own items.
    subject_id: Mapped[str | None] = mapped_column(user_id_type(36), index=True)
    subject_name: Mapped[str | None] = mapped_column(String(255))
    __table_args__ = (
        # A session's next sequence number (its highest ``usn``) is one index lookup (with an
        # index on the session alone, every append read all the session's earlier items), and
        # its log is paged by sequence number (0017).
        Index("ix_log_items_session_usn", "session_id", "usn", "id"),
        # A session's last failure, and its log listed by type, without reading its whole log.
        Index("ix_log_items_session_status", "session_id", "status", "usn"),
    )


class LicensedUser(Base):
    """A user some run backed up, once per organization: written when a run finishes the user,
    so the licence's answers read one row per user, never the runs' history."""

    __tablename__ = "licensed_users"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        user_id_type(36), primary_key=True
    )  # log items' subject_id
    user_name: Mapped[str] = mapped_column(String(255))  # as of its latest backup
    first_backup: Mapped[datetime]
    last_backup: Mapped[datetime]
    __table_args__ = (Index("ix_licensed_users_name", "user_name"),)


class TaskSession(Base):
    """One protected user's part of a job session (the EM ``BackupTaskSession``): written when
    the engine starts the user and when it finishes it, never per item."""

    __tablename__ = "task_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("job_sessions.id", ondelete="CASCADE"))
    object_id: Mapped[str] = mapped_column(user_id_type(36), index=True)  # log items' subject_id
    name: Mapped[str] = mapped_column(String(255))
    # Running | Success | Warning | Failed | Stopped
    status: Mapped[str] = mapped_column(String(16))
    creation_time: Mapped[datetime] = mapped_column(index=True)
    # Indexed: the processed-users report reads the tasks that ended in its last days only.
    end_time: Mapped[datetime | None] = mapped_column(index=True)
    items: Mapped[int] = mapped_column(default=0)  # messages and files in the restore point
    # their size, unchanged ones included; read from the source this run; new in the repository
    # (deduplicated)
    total_bytes: Mapped[int] = mapped_column(ByteCount, default=0)
    read_bytes: Mapped[int] = mapped_column(ByteCount, default=0)
    written_bytes: Mapped[int] = mapped_column(ByteCount, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")  # why Warning or Failed
    __table_args__ = (
        # One row per user per session: a retried attempt takes its user's row over.
        Index("ux_task_sessions_session_object", "session_id", "object_id", unique=True),
    )


class RestorePoint(Base):
    """The catalog's copy of a snapshot in a repository: rebuilt from the repository on attach."""

    __tablename__ = "restore_points"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    repository_id: Mapped[str] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    snapshot_id: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(36), index=True)
    organization_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # One restore point per run: a retried or re-recorded session can never add a second.
    session_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    backup_time: Mapped[datetime]
    is_exchange: Mapped[bool]
    is_onedrive: Mapped[bool]
    item_count: Mapped[int]
    size: Mapped[int] = mapped_column(ByteCount)
    __table_args__ = (
        Index("ux_restore_points_snapshot", "repository_id", "snapshot_id", unique=True),
        # Listings page restore points by time, all or a job's (migration 0018).
        Index("ix_restore_points_time", "backup_time", "id"),
        Index("ix_restore_points_job_time", "job_id", "backup_time", "id"),
    )


class RestoreSession(Base):
    """An explore of one restore point: browse, save and put back its items until stopped."""

    __tablename__ = "restore_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    restore_point_id: Mapped[str] = mapped_column(
        ForeignKey("restore_points.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[str | None] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(16))  # Vex (mail) | Veod (OneDrive)
    state: Mapped[str] = mapped_column(String(16))  # Working | Stopped
    result: Mapped[str] = mapped_column(String(16))  # Success | Warning | Failed
    creation_time: Mapped[datetime]
    end_time: Mapped[datetime | None]
    initiated_by: Mapped[str] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text, default="")
    statistics: Mapped[dict[str, Any]]  # restored / skipped / failed items and bytes, so far
    # Its events, counted as they are recorded (migration 0033): equal to their highest ``seq``,
    # it proves them numbered 1..n, so a page of them is found by ``seq`` (services/restores.py).
    events_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Listings page restore sessions newest first (migration 0018).
    __table_args__ = (Index("ix_restore_sessions_created", "creation_time", "id"),)


class RestoreEvent(Base):
    """One save or restore of a restore session, as it ran: a row each, so the Nth event costs
    one insert however many came before it."""

    __tablename__ = "restore_events"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("restore_sessions.id", ondelete="CASCADE"))
    seq: Mapped[int]  # the vendor's ``order``: 1, 2, … within the session
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    item_name: Mapped[str] = mapped_column(Text, default="")
    item_type: Mapped[str] = mapped_column(String(32), default="")
    item_size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ux_restore_events_session_seq", "session_id", "seq", unique=True),)


class LogonSession(Base):
    """An Enterprise Manager logon session: a token (kept hashed) that expires when idle."""

    __tablename__ = "logon_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class Task(Base):
    """An asynchronous operation a client polls (``task-<number>``); survives restarts."""

    __tablename__ = "tasks"
    # A deleted task-N is never handed out again.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it as is)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    logon_session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    operation: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # Running | Finished
    success: Mapped[bool | None]
    message: Mapped[str] = mapped_column(Text, default="")
    related: Mapped[dict[str, Any]]  # links the finished task offers (a clone's new job)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # The server working it (its ``server-id``): when that server stops heartbeating, the task
    # can never finish, and the scheduler's leader fails it.
    server_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # The user who started it (its id): a user without a global role reads only its own
    # tasks (migration 0028; None for a task the server started, or one older than that).
    started_by: Mapped[str | None] = mapped_column(String(36))


class AuditEvent(Base):
    """One entry of the append-only audit trail: a login, a revocation, a save or a put-back.

    ``organization_id`` is set for events about an organization's data; ``subject`` names the
    organization user whose data it was (or the Keepstone user a revocation was about)."""

    __tablename__ = "audit_events"
    # A sequence number: events of one instant keep the order they happened in.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))  # Success | Failure
    user_name: Mapped[str] = mapped_column(String(255))  # who did it (as given, for a login)
    address: Mapped[str | None] = mapped_column(String(64))
    dialect: Mapped[str | None] = mapped_column(String(16))  # vb365 | em | cli
    organization_id: Mapped[str | None] = mapped_column(String(36))
    subject: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any]]
    __table_args__ = (
        Index("ix_audit_events_organization_time", "organization_id", "time"),
        # The users an organization's trail names, one index entry each (migration 0022).
        Index("ix_audit_events_organization_subject", "organization_id", "subject"),
        {"sqlite_autoincrement": True},  # never reuse a number, even after the newest is gone
    )


# ---- the Office365 organization cache (services/m365_directory.py) ------------------------------
# One row per directory object, replaced by each sync; Graph's ids are kept as Graph gives them
# (an Entra object id, a SharePoint site id ``host,collection,web``).


class M365User(Base):
    __tablename__ = "m365_users"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    graph_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    onprem_guid: Mapped[str] = mapped_column(String(36))  # zeros for a cloud-only user
    name: Mapped[str] = mapped_column(String(255), index=True)  # the UPN, lower-cased
    display_name: Mapped[str] = mapped_column(Text)
    mail: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))  # User | Shared | Public
    location: Mapped[str] = mapped_column(String(16))  # Cloud | Hybrid
    office: Mapped[str | None] = mapped_column(Text)
    onprem_sid: Mapped[str | None] = mapped_column(String(184))
    licenses: Mapped[list[Any]]  # skuIds
    has_mailbox: Mapped[bool]
    has_archive: Mapped[bool]
    has_onedrive: Mapped[bool]
    drive_id: Mapped[str | None] = mapped_column(String(255))
    drive_url: Mapped[str | None] = mapped_column(Text)


class M365Group(Base):
    __tablename__ = "m365_groups"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    graph_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    onprem_guid: Mapped[str] = mapped_column(String(36))
    display_name: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(320))  # mail, else the mail nickname
    description: Mapped[str | None] = mapped_column(Text)
    mail: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(32))  # Office365 | Security | Distribution | ...
    location: Mapped[str] = mapped_column(String(16))
    onprem_sid: Mapped[str | None] = mapped_column(String(184))
    is_team: Mapped[bool]


class M365GroupMember(Base):
    __tablename__ = "m365_group_members"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # User | Group | Unknown
    name: Mapped[str] = mapped_column(Text)
    login: Mapped[str | None] = mapped_column(String(320))
    is_cloud: Mapped[bool]


class M365Site(Base):
    __tablename__ = "m365_sites"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    graph_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    is_personal: Mapped[bool]


class M365SyncState(Base):
    """The organization cache's last and current sync (``RESTOrganizationSyncState``)."""

    __tablename__ = "m365_sync_states"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    last_type: Mapped[str | None] = mapped_column(String(16))
    last_result: Mapped[str | None] = mapped_column(String(16))  # Success | Error
    last_start: Mapped[datetime | None]
    last_end: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    current_type: Mapped[str | None] = mapped_column(String(16))
    current_status: Mapped[str | None] = mapped_column(String(16))  # Queued | Running
    current_scheduled: Mapped[datetime | None]
    current_start: Mapped[datetime | None]


class CloudAccount(Base):
    """A cloud account (``RESTAccount``): the S3 access key; the secret key is in the vault."""

    __tablename__ = "cloud_accounts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_type: Mapped[str] = mapped_column(String(32))  # amazonS3CompatibleAccount
    user_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")


class ObjectStorage(Base):
    """An S3-compatible bucket folder (``RESTObjectStorageRepository``); once a backup repository
    keeps its objects there, ``repository_id`` names it (one repository per object storage)."""

    __tablename__ = "object_storages"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    account_id: Mapped[str] = mapped_column(ForeignKey("cloud_accounts.id"), index=True)
    service_point: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(String(64))
    bucket: Mapped[str] = mapped_column(String(63))
    folder: Mapped[str] = mapped_column(Text)
    size_limit_gb: Mapped[int | None] = mapped_column(BigInteger)
    repository_id: Mapped[str | None] = mapped_column(
        ForeignKey("repositories.id", ondelete="SET NULL"), unique=True
    )


# ---- copy jobs (services/copy_jobs.py) ----------------------------------------------------------


class CopyJob(Base):
    """A backup copy job: its backup job's restore points copied to a second repository.

    The vendor allows one per backup job. ``schedule_policy`` is a ``SchedulePolicy`` record
    (the vendor's ``DailyAtTime`` is ``Daily``); ``immediate`` is the vendor's ``Immediate``: a
    run as soon as the backup job has a restore point the copy lacks."""

    __tablename__ = "copy_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    backup_job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True
    )
    repository_id: Mapped[str] = mapped_column(ForeignKey("repositories.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    schedule_policy: Mapped[dict[str, Any]]
    immediate: Mapped[bool]
    is_enabled: Mapped[bool]
    last_run: Mapped[datetime | None]
    last_backup: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(32))
    next_run: Mapped[datetime | None] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class CopyJobSession(Base):
    """Marks a job session as a run of a copy job (the session's ``job_id`` is the backup job,
    so deleting either ends both). ``scheduled_for`` is unique per copy job, as a backup job's
    slot is unique per job: one scheduled instant never runs twice."""

    __tablename__ = "copy_job_sessions"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("job_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    copy_job_id: Mapped[str] = mapped_column(ForeignKey("copy_jobs.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime | None]
    __table_args__ = (
        Index("ux_copy_job_sessions_slot", "copy_job_id", "scheduled_for", unique=True),
    )


class SealedSecret(Base):
    """A secret (a repository password, an organization's or account's credentials) sealed with
    the operator's key (``services.secret_box``): kept here only when the server has a key, so
    every server on one catalog reaches it; without a key the vault's files keep it."""

    __tablename__ = "sealed_secrets"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    token: Mapped[str] = mapped_column(Text)


# ---- per-organization roles (services/rbac.py, services/access.py) ------------------------------


class RbacRole(Base):
    """A role of one organization (the vendor's ``RESTRbacRole``): its operators may read
    (``ReadOnly``) or explore and restore (``Restore``) that organization's backed-up data of the
    users in its scope: all of them (``EntireOrganization``) or the selected ones
    (``SpecificObjects``), less the excluded ones."""

    __tablename__ = "rbac_roles"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    role_type: Mapped[str] = mapped_column(String(32))  # EntireOrganization | SpecificObjects
    access: Mapped[str] = mapped_column(String(16))  # Restore | ReadOnly
    created_at: Mapped[datetime]


class RbacOperator(Base):
    """A Keepstone user who holds a role."""

    __tablename__ = "rbac_operators"
    role_id: Mapped[str] = mapped_column(
        ForeignKey("rbac_roles.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RbacItem(Base):
    """An organization user in a role's scope: selected (managed) or excluded."""

    __tablename__ = "rbac_items"
    role_id: Mapped[str] = mapped_column(
        ForeignKey("rbac_roles.id", ondelete="CASCADE"), primary_key=True
    )
    excluded: Mapped[bool] = mapped_column(primary_key=True)
    item_id: Mapped[str] = mapped_column(user_id_type(64), primary_key=True)  # the user's id
    name: Mapped[str] = mapped_column(String(255))  # the user's name (address)
    display_name: Mapped[str] = mapped_column(Text)


class NotificationSettings(Base):
    """The e-mail notification settings of one service (``VboEmailSettings``: ``vbo``), as the
    vendor's ``RESTNotificationEmailSettings`` minus the password (the vault's
    ``smtp-<service>``)."""

    __tablename__ = "notification_settings"
    service: Mapped[str] = mapped_column(String(16), primary_key=True)
    settings: Mapped[dict[str, Any]]
    # The day (``YYYY-MM-DD``, the server's time zone) of the last daily digest queued: set in
    # the transaction that queues it, so a day's digest is queued once across restarts and
    # leader changes.
    last_digest_day: Mapped[str | None] = mapped_column(String(10))


class MailOutbox(Base):
    """A notification to send about a finished run: written in the transaction that ends the
    run, sent later by the leader's sender (``services.notifications``), retried with backoff.
    The message is composed when it is sent, from the session as it then is."""

    __tablename__ = "mail_outbox"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The run the mail is about; None for a daily digest.
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("job_sessions.id", ondelete="CASCADE")
    )
    # A daily digest's day (``YYYY-MM-DD``, the server's time zone): unique, one digest a day.
    digest_day: Mapped[str | None] = mapped_column(String(10), unique=True)
    result: Mapped[str] = mapped_column(String(16))  # the run's status the mail reports
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    # When the sender next tries it; None once it was sent or given up.
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
