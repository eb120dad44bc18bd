"""Backup jobs: create, edit (the seed 003 PUT), delete, enable/disable, and their next run."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import InvalidInput, NotFound, PreconditionFailed
from keepstone.domain.jobs import BackupType, JobEdit, check_description, check_name, check_scope
from keepstone.domain.policy import SchedulePolicy
from keepstone.domain.schedule import next_run
from keepstone.services import runs
from keepstone.services.catalog import get_job_in, get_organization_in, get_repository_in
from keepstone.services.context import Context, new_id
from keepstone.store.codecs import policy_from_record, policy_to_record
from keepstone.store.paging import page_of
from keepstone.store.prepared import KeyRead, KeyUpdate, Stored, snapshot
from keepstone.store.tables import Job, JobSession, Proxy


@dataclass(frozen=True, slots=True)
class NoOp:
    """An edit found to change nothing in a job's row (its values ``is_enabled`` and
    ``next_run``, its ``version``) at ``found_at``. The same edit of the same row changes
    nothing again while it ``holds``: ``_apply`` reads nothing but the row, the edit, the
    server's zone and the time, and the time only through the job's next run, which is the same
    slot from ``found_at`` up to that slot (``domain.schedule.next_run``); a disabled job has
    none at any time. So a client applying the configuration it keeps, again and again, can be
    answered from what the first application found (``api.vb365.jobs``)."""

    version: int
    found_at: datetime
    is_enabled: bool
    next_run: datetime | None
    row: tuple[Any, ...] | None  # the row's ``Stored.snapshot`` (None: the driver's has none)

    def holds(self, now: datetime) -> bool:
        if not self.is_enabled:
            return True
        return self.next_run is not None and self.found_at <= now < self.next_run


@dataclass(frozen=True, slots=True)
class JobEditResult:
    job: Job
    started: JobSession | None
    # set when the edit was found to change nothing (by ``edit_job_now``, which reads no other
    # row: an edit that needs a lookup is declined there)
    no_op: NoOp | None = None


def create_job(ctx: Context, org_id: str, spec: JobEdit) -> JobEditResult:
    if spec.name is None:
        raise InvalidInput("name is required", "name")
    if spec.repository_id is None:
        raise InvalidInput("repositoryId is required", "repositoryId")
    default = SchedulePolicy()
    with ctx.db.write() as s:
        org = get_organization_in(s, org_id)
        job = Job(
            id=new_id(),
            organization_id=org.id,
            name="",
            description="",
            backup_type=BackupType.ENTIRE_ORGANIZATION.value,
            selected_items=[],
            excluded_items=[],
            schedule_policy=policy_to_record(default),
            schedule_type=default.type.value,
            repository_id="",
            proxy_id="",
            is_enabled=True,
            last_run=None,
            last_backup=None,
            last_status=None,
            next_run=None,
            version=1,
        )
        _apply(s, job, spec, ctx.clock.now(), ctx.tz)
        s.add(job)
    return JobEditResult(job, _run_now(ctx, job, spec))


def edit_job(
    ctx: Context, job_id: str, edit: JobEdit, if_match: int | None = None
) -> JobEditResult:
    """Apply a partial edit atomically: all of it or, on any invalid property, none of it."""
    with ctx.db.write() as s:
        job = get_job_in(s, job_id)
        check_version(f"job '{job.name}'", job.version, if_match)
        _edit(s, job, edit, ctx.clock.now(), ctx.tz)
    return JobEditResult(job, _run_now(ctx, job, edit))


def edit_job_soon(
    ctx: Context, job_id: str, edit: JobEdit, if_match: int | None = None
) -> JobEditResult:
    """``edit_job`` on a worker thread after ``edit_job_now`` found the writer busy: the same
    short transaction once this process's other writer is done (PUTs that come together would
    otherwise all take the ORM's longer one, which keeps the writer busy for the next), else
    ``edit_job``."""
    done = edit_job_now(ctx, job_id, edit, if_match, wait=True)
    return done if done is not None else edit_job(ctx, job_id, edit, if_match)


def edit_job_now(
    ctx: Context, job_id: str, edit: JobEdit, if_match: int | None = None, *, wait: bool = False
) -> JobEditResult | None:
    """``edit_job`` for a caller that must not wait (an API answer on the event loop): the
    same edit, checks and errors, in one catalog transaction on a DBAPI connection
    (``Database.write_now``, begun deferred: an edit that changes nothing only reads): the row
    read (``store.prepared.KeyRead``), ``_apply`` on it, and one UPDATE of the columns it
    changed and the version, as the ORM's flush would write them. ``None``, with
    nothing written, when it cannot: the catalog's writer is busy or not SQLite, the edit
    starts a run (``IsRun``), or ``_apply`` needs a lookup in the catalog (a new name, another
    repository or proxy), which ``edit_job`` makes with its session; the caller then calls
    ``edit_job``. ``wait``: for this process's other writer (a worker thread may wait), never
    for another process's."""
    if edit.run_now:
        return None
    dialect = ctx.db.driver_dialect
    now = ctx.clock.now()

    def work(cursor: Any) -> JobEditResult:
        read = _JOB_BY_ID.values_in(cursor, dialect, job_id)
        if read is None:
            raise NotFound(f"job '{job_id}' does not exist")  # as get_job_in says it
        before, raw = read
        check_version(f"job '{before['name']}'", before["version"], if_match)
        job = _JobRow(before)
        _apply(None, job, edit, now, ctx.tz)
        after = job.__dict__
        changed = {name: after[name] for name in _JOB_COLUMNS if after[name] != before[name]}
        if not changed:  # see _edit
            row = snapshot(raw)  # what a later read of the same row gives, to keep it by
            no_op = NoOp(before["version"], now, before["is_enabled"], before["next_run"], row)
            return JobEditResult(_JOB_BY_ID.instance_of(before), None, no_op)
        after["version"] = changed["version"] = before["version"] + 1
        _JOB_UPDATE.run_in(cursor, dialect, job_id, changed)
        return JobEditResult(_JOB_BY_ID.instance_of(after), None)

    try:
        done = ctx.db.write_now(work, wait=wait, deferred=True)
    except _NeedsSession:
        return None
    return None if done is ctx.db.BUSY else cast(JobEditResult, done)


def check_version(what: str, version: int, if_match: int | None) -> None:
    """An edit pinned to ``if_match`` (an ETag) applies only to that version."""
    if if_match is not None and if_match != version:
        raise PreconditionFailed(
            f"{what} was changed by someone else (version {version}, If-Match {if_match}); "
            "fetch it again and reapply your change"
        )


def set_enabled(ctx: Context, job_id: str, enabled: bool) -> Job:
    return edit_job(ctx, job_id, JobEdit(is_enabled=enabled)).job


def toggle_schedule(ctx: Context, job_id: str) -> Job:
    """Enable a disabled job's schedule or disable an enabled one, in one transaction."""
    with ctx.db.write() as s:
        job = get_job_in(s, job_id)
        _edit(s, job, JobEdit(is_enabled=not job.is_enabled), ctx.clock.now(), ctx.tz)
    return job


def delete_job(ctx: Context, job_id: str) -> None:
    with ctx.db.write() as s:
        job = get_job_in(s, job_id)
        runs.stop_active_in(s, job, ctx.clock.now(), "the job was deleted")
        s.delete(job)


def list_jobs(ctx: Context, org_id: str | None = None) -> list[Job]:
    with ctx.db.read() as s:
        query = select(Job).order_by(Job.name, Job.id)
        if org_id is not None:
            get_organization_in(s, org_id)
            query = query.where(Job.organization_id == org_id)
        return list(s.scalars(query))


class JobName(NamedTuple):
    id: str
    name: str


def list_job_names(ctx: Context) -> list[JobName]:
    """Every job's id and name, in ``list_jobs``' order: what a list of references shows, read
    without building each job (its JSON columns decoded, an ORM object) when nothing else is
    shown."""
    with ctx.db.read() as s:
        rows = s.execute(select(Job.id, Job.name).order_by(Job.name, Job.id))
        return [JobName(job_id, name) for job_id, name in rows]


class JobVersion(NamedTuple):
    """What a job's EM entity shows that can change, as stored: its name, its version (bumped
    by every edit: description and schedule included), whether it is enabled and its next run
    (set by the scheduler without an edit)."""

    id: str
    name: str
    version: int
    is_enabled: bool
    next_run: datetime | None


def job_version(job: Job) -> JobVersion:
    return JobVersion(job.id, job.name, job.version, job.is_enabled, job.next_run)


def list_job_versions(ctx: Context) -> tuple[JobVersion, ...]:
    """Every job's ``JobVersion``, in ``list_jobs``' order, read without building the jobs: a
    list made from every job (``GET /api/jobs?format=Entity``) is kept by it."""
    with ctx.db.read() as s:
        columns = (Job.id, Job.name, Job.version, Job.is_enabled, Job.next_run)
        return tuple(
            JobVersion(*row) for row in s.execute(select(*columns).order_by(Job.name, Job.id))
        )


def few_job_ids(ctx: Context, query: Select[Any], *, most: int) -> list[str] | None:
    """The job ids ``query`` (a select of ``Job.id``) finds, or None when there are more than
    ``most``."""
    with ctx.db.read() as s:
        found = list(s.scalars(query.limit(most + 1)))
    return found if len(found) <= most else None


def jobs_by_id(ctx: Context, ids: Collection[str]) -> dict[str, Job]:
    """The jobs of ``ids`` that exist (a page's jobs: one query, never the whole table)."""
    if not ids:
        return {}
    with ctx.db.read() as s:
        return {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(list(ids))))}


def page_jobs(
    ctx: Context,
    offset: int = 0,
    limit: int | None = None,
    *,
    org_id: str | None = None,
    repository_id: str | None = None,
    total: int | None = None,
    condition: ColumnElement[bool] | None = None,
) -> list[Job]:
    """Jobs by name, one window of them read from the catalog (``total``: the set's size, when
    known; ``condition``: a further SQL condition on the jobs, as a query filter becomes)."""
    with ctx.db.read() as s:
        if org_id is not None:
            get_organization_in(s, org_id)
        where = partial(_jobs_where, org_id, repository_id, condition)
        keys = (Job.name, Job.id)
        return page_of(s, Job, where, keys, offset=offset, limit=limit, total=total)


def count_jobs(
    ctx: Context,
    *,
    org_id: str | None = None,
    repository_id: str | None = None,
    condition: ColumnElement[bool] | None = None,
) -> int:
    with ctx.db.read() as s:
        query = select(func.count()).select_from(Job)
        return s.scalar(_jobs_where(org_id, repository_id, condition, query)) or 0


def _jobs_where(
    org_id: str | None, repository_id: str | None, condition: ColumnElement[bool] | None, query: Any
) -> Any:
    if condition is not None:
        query = query.where(condition)
    if org_id is not None:
        query = query.where(Job.organization_id == org_id)
    if repository_id is not None:
        query = query.where(Job.repository_id == repository_id)
    return query


def get_job(ctx: Context, job_id: str) -> Job:
    with ctx.db.read() as s:
        return get_job_in(s, job_id)


_JOB_BY_ID = KeyRead(Job)
_JOB_UPDATE = KeyUpdate(Job)
_JOB_COLUMNS = tuple(column.key for column in Job.__table__.columns if not column.primary_key)


def read_job(ctx: Context, job_id: str) -> Job:
    """``get_job`` for a hot read (an API answer): a detached ``Job`` read without an ORM
    session or SQLAlchemy's per-statement work (``store.prepared``)."""
    return stored_job(ctx, job_id).instance()


def stored_job(ctx: Context, job_id: str) -> Stored[Job]:
    """``read_job``'s row as stored: an answer made from the job alone may be kept by its
    ``snapshot`` (``api.answer_memo``)."""
    found = _JOB_BY_ID.stored(ctx.db, job_id)
    if found is None:
        raise NotFound(f"job '{job_id}' does not exist")
    return found


def find_stored_job(ctx: Context, job_id: str) -> Stored[Job] | None:
    """``stored_job``, or None when there is no such job."""
    return _JOB_BY_ID.stored(ctx.db, job_id)


def compute_next_run(
    job: JobFields, now: datetime, tz: tzinfo, policy: SchedulePolicy | None = None
) -> datetime | None:
    """Disabled jobs have no next run; the schedule decides for enabled ones (``policy``: the
    job's, when the caller has it already)."""
    if not job.is_enabled:
        return None
    if policy is None:
        policy = policy_from_record(job.schedule_policy)
    return next_run(policy, now, tz)


class _NeedsSession(Exception):
    """``_apply`` without a session (``edit_job_now``) came to a lookup in the catalog."""


def _session(s: Session | None) -> Session:
    if s is None:
        raise _NeedsSession
    return s


class _JobRow:
    """A job's row as plain attributes (its column values, converted as the ORM loads them):
    ``edit_job_now`` applies the edit to this rather than to a ``Job``, whose instrumented
    attributes cost more than the edit's own work (about 25 reads and sets an edit)."""

    id: str
    organization_id: str
    name: str
    description: str
    backup_type: str
    selected_items: list[Any]
    excluded_items: list[Any]
    schedule_policy: dict[str, Any]
    schedule_type: str
    repository_id: str
    proxy_id: str
    is_enabled: bool
    next_run: datetime | None
    version: int

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


# What ``_apply`` reads and changes of a job: a ``Job``, or ``edit_job_now``'s row.
JobFields = Job | _JobRow


def _apply(s: Session | None, job: JobFields, edit: JobEdit, now: datetime, tz: tzinfo) -> None:
    """Validate every property of ``edit`` against ``job``, then change ``job`` in place.
    Without a session (``s`` None) a property that needs a lookup raises ``_NeedsSession``: the
    caller discards ``job`` and makes the edit again with one."""
    if edit.name is not None and check_name(edit.name) != job.name:
        job.name = check_name(edit.name)
        _ensure_unique_name(_session(s), job)
    if edit.description is not None:
        _set(job, "description", check_description(edit.description))
    kept = None  # the job's policy, when it is the one its record held already
    if edit.schedule is not None:
        kept = policy_from_record(job.schedule_policy)
        edited = edit.schedule.apply(kept)
        if edited is not kept:  # an edit that changes nothing keeps the record it had
            kept = None
            _set(job, "schedule_policy", policy_to_record(edited))
            _set(job, "schedule_type", edited.type.value)
    if edit.repository_id is not None and edit.repository_id != job.repository_id:
        job.repository_id = get_repository_in(
            _session(s), edit.repository_id, prop="repositoryId"
        ).id
    if edit.proxy_id is not None and edit.proxy_id != job.proxy_id:
        if _session(s).get(Proxy, edit.proxy_id) is None:
            raise InvalidInput(f"proxy '{edit.proxy_id}' does not exist", "proxyId")
        job.proxy_id = edit.proxy_id
    elif not job.proxy_id:
        job.proxy_id = get_repository_in(_session(s), job.repository_id).proxy_id
    if edit.backup_type is not None:
        _set(job, "backup_type", edit.backup_type.value)
    if edit.selected_items is not None:
        job.selected_items = _with_ids(edit.selected_items)
    if edit.excluded_items is not None:
        job.excluded_items = _with_ids(edit.excluded_items)
    check_scope(BackupType(job.backup_type), job.selected_items)
    if edit.is_enabled is not None:
        _set(job, "is_enabled", edit.is_enabled)
    _set(job, "next_run", compute_next_run(job, now, tz, kept))


def _edit(s: Session, job: Job, edit: JobEdit, now: datetime, tz: tzinfo) -> None:
    """``_apply``, and the job's next version (its ETag) when that changed any of its values.
    An edit that sends what the job holds already changes nothing: nothing is written and the
    version is kept, as Kubernetes keeps an object's ``resourceVersion`` through an update
    that changes nothing (a client applying the configuration it keeps, again and again, is
    the common case; its ``If-Match`` stays good)."""
    before = _values(job)
    _apply(s, job, edit, now, tz)
    if _values(job) != before:
        job.version += 1


def _values(job: Job) -> tuple[Any, ...]:
    return tuple(getattr(job, name) for name in _JOB_COLUMNS)


def _set(job: JobFields, name: str, value: Any) -> None:
    """``job.<name> = value`` unless it holds an equal value already: the UPDATE is the same
    (the ORM's flush and ``edit_job_now``'s diff both leave an equal value out), and an
    instrumented set costs more than the comparison (a seed PUT sends mostly what is kept)."""
    if getattr(job, name) != value:
        setattr(job, name, value)


def _with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every item gets an id (kept if it had one) so it can be addressed as a sub-resource."""
    return [item if item.get("id") else item | {"id": new_id()} for item in items]


# ---- selected and excluded items as sub-resources ---------------------------------------------

ITEM_LISTS = {"selected": "selected_items", "excluded": "excluded_items"}


def job_items(ctx: Context, job_id: str, which: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = getattr(get_job(ctx, job_id), ITEM_LISTS[which])
    return items


def job_item(ctx: Context, job_id: str, which: str, item_id: str) -> dict[str, Any]:
    for item in job_items(ctx, job_id, which):
        if item.get("id") == item_id:
            return item
    raise NotFound(f"job '{job_id}' has no {which} item '{item_id}'")


def change_items(
    ctx: Context,
    job_id: str,
    which: str,
    add: list[dict[str, Any]] | None = None,
    remove: list[str] | None = None,
    replace: tuple[str, dict[str, Any]] | None = None,
) -> Job:
    """Add, remove or replace items of one list, in one validated, versioned edit."""
    with ctx.db.write() as s:
        job = get_job_in(s, job_id)
        items = list(getattr(job, ITEM_LISTS[which]))
        known = {item.get("id") for item in items}
        missing = [i for i in (remove or []) + ([replace[0]] if replace else []) if i not in known]
        if missing:
            raise NotFound(f"job '{job.name}' has no {which} item '{missing[0]}'")
        items = [item for item in items if item.get("id") not in set(remove or [])]
        if replace is not None:
            items = [replace[1] | {"id": replace[0]} if i["id"] == replace[0] else i for i in items]
        items += add or []
        edit = (
            JobEdit(selected_items=items) if which == "selected" else JobEdit(excluded_items=items)
        )
        _edit(s, job, edit, ctx.clock.now(), ctx.tz)
    return job


def _ensure_unique_name(s: Session, job: JobFields) -> None:
    clash = s.scalar(
        select(Job.id).where(
            Job.organization_id == job.organization_id,
            func.lower(Job.name) == job.name.lower(),
            Job.id != job.id,
        )
    )
    if clash is not None:
        raise InvalidInput(f"the organization already has a job named '{job.name}'", "name")


def _run_now(ctx: Context, job: Job, edit: JobEdit) -> JobSession | None:
    """IsRun/runNow: start the job right after the edit; an already active run is left alone."""
    if not edit.run_now:
        return None
    return runs.start_job(ctx, job.id, "Started by the edit's IsRun", already_active_ok=True)


def clone_job(ctx: Context, job_id: str) -> Job:
    """A copy of a job under a new name, disabled so it never runs twice the work unasked."""
    with ctx.db.write() as s:
        source = get_job_in(s, job_id)
        taken = {
            n.lower()
            for n in s.scalars(
                select(Job.name).where(Job.organization_id == source.organization_id)
            )
        }
        name = next(
            candidate
            for n in range(1, 10_000)
            if (candidate := f"{source.name} clone" + (f" {n}" if n > 1 else "")).lower()
            not in taken
        )
        clone = Job(
            id=new_id(),
            organization_id=source.organization_id,
            name=name,
            description=source.description,
            backup_type=source.backup_type,
            selected_items=list(source.selected_items),
            excluded_items=list(source.excluded_items),
            schedule_policy=dict(source.schedule_policy),
            schedule_type=source.schedule_type,
            repository_id=source.repository_id,
            proxy_id=source.proxy_id,
            is_enabled=False,
            last_run=None,
            last_backup=None,
            last_status=None,
            next_run=None,
            version=1,
        )
        s.add(clone)
    return clone
