"""The rows of each query type Keepstone has objects of, with the fields the vendor's query pages
name (get_query_<type>.html), lower-cased."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import partial

from fastapi import Request
from sqlalchemy import ColumnElement, false, select

from keepstone import __version__
from keepstone.api.em import query_sql
from keepstone.api.em.backup_servers import backup_server, server_reference
from keepstone.api.em.backup_sessions import SESSION_STATES, session_entity, session_reference
from keepstone.api.em.backups import Names, backup_entity, backup_reference
from keepstone.api.em.deps import Caller, boolean, ctx_of
from keepstone.api.em.jobs import job_entity, job_reference, job_uid
from keepstone.api.em.query import Clause
from keepstone.api.em.queryable import Asked, Found, Window
from keepstone.api.em.repositories import repository_entity, repository_reference
from keepstone.api.em.restore_points import (
    point_name,
    restore_point_entity,
    restore_point_reference,
)
from keepstone.api.em.tasks import task_document
from keepstone.api.em.xml import NS
from keepstone.api.vb365.views import iso
from keepstone.domain.policy import ScheduleType
from keepstone.services import catalog, jobs, restore_points, runs, tasks
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession


def job_rows(request: Request, who: Caller) -> list[Found]:
    return [_job_row(who, job) for job in jobs.list_jobs(ctx_of(request))]


def job_page(request: Request, who: Caller, asked: Asked) -> Window | None:
    """Jobs in their natural order (by name, as ``job_rows``), filtered and paged in the
    catalog when the filter has an exact SQL form (``query_sql``)."""
    if asked.order is not None:
        return None  # the query's text order (numbers, dates, words) is not the catalog's
    where = None if asked.clause is None else query_sql.condition(asked.clause, JOB_FIELDS)
    if asked.clause is not None and where is None:
        return None
    ctx = ctx_of(request)
    total = jobs.count_jobs(ctx, condition=where)
    page = jobs.page_jobs(ctx, asked.offset, asked.limit, total=total, condition=where)
    return Window([_job_row(who, job) for job in page], total)


# What each field of ``_job_row`` is computed from.
JOB_FIELDS: query_sql.Fields = {
    "name": query_sql.Text(Job.name),
    "uid": query_sql.Text(Job.id, "urn:veeam:Job:"),
    "jobtype": query_sql.constant("Backup"),
    "platform": query_sql.constant("Microsoft365"),
    "description": query_sql.Text(Job.description),
    "scheduleenabled": query_sql.Choices(
        [(Job.is_enabled.is_(True), boolean(True)), (Job.is_enabled.is_(False), boolean(False))]
    ),
    "nextrun": query_sql.Instant(Job.next_run),
    "scheduleconfigured": query_sql.Choices(
        [
            # The policy's type, kept in its own column: not read from each policy document.
            (Job.schedule_type != ScheduleType.MANUAL_ONLY.value, boolean(True)),
            (Job.schedule_type == ScheduleType.MANUAL_ONLY.value, boolean(False)),
        ]
    ),
}


def _job_row(who: Caller, job: Job) -> Found:
    entity = job_entity(who, job)
    fields = {
        "name": job.name,
        "uid": job_uid(job),
        "jobtype": "Backup",
        "platform": "Microsoft365",
        "description": job.description,
        "scheduleenabled": boolean(job.is_enabled),
        "nextrun": iso(job.next_run),
        "scheduleconfigured": entity.findtext(f"{{{NS}}}ScheduleConfigured"),
    }
    return Found(fields, job_reference(who, job, "Ref"), entity)


def session_rows(request: Request, who: Caller) -> list[Found]:
    ctx = ctx_of(request)
    names = {j.id: j.name for j in jobs.list_jobs(ctx)}
    return [
        _session_row(who, s, names.get(s.job_id, ""), runs.failure_of(ctx, s.id))
        for s in runs.list_sessions(ctx)
    ]


SESSION_ORDERS = {"creationtime", "creationtimeutc"}
FEW_JOBS = 100  # a filter on the sessions' jobs keeping at most this many lists their ids


def session_page(request: Request, who: Caller, asked: Asked) -> Window | None:
    """Sessions newest first (as ``session_rows``), or by creation time, filtered and paged in
    the catalog when the filter has an exact SQL form (``query_sql``)."""
    order, clause = asked.order, asked.clause
    if order is not None and order[0] not in SESSION_ORDERS:
        return None
    ctx = ctx_of(request)
    where = _session_filter(ctx, clause)
    if where is None:
        return None
    oldest = order is not None and order[1]
    total = runs.count_sessions(ctx, where)
    page = runs.list_sessions(
        ctx, None, asked.offset, asked.limit, where, oldest_first=oldest, total=total
    )
    names = {j.id: j.name for j in jobs.jobs_by_id(ctx, {s.job_id for s in page}).values()}
    failures = runs.failures_of(ctx, [s.id for s in page])
    rows = [_session_row(who, s, names.get(s.job_id, ""), failures.get(s.id, "")) for s in page]
    return Window(rows, total)


def _session_filter(ctx: Context, clause: Clause | None) -> runs.SessionFilter | None:
    """The sessions ``clause`` keeps, as the catalog finds them; None: only in memory. A filter
    on fields the status and the retry decide keeps some (status, retried) pairs, counted and
    paged by the hour (store/session_hours.py); any other, its condition."""
    if clause is None:
        return runs.SessionFilter()
    kinds = query_sql.rows_kept(clause, SESSION_FIELDS, SESSION_KINDS)
    if kinds is not None:
        return runs.SessionFilter(kinds=kinds)
    few_jobs = partial(jobs.few_job_ids, ctx, most=FEW_JOBS)
    condition = query_sql.condition(clause, SESSION_FIELDS, few_jobs)
    return None if condition is None else runs.SessionFilter(condition=condition)


def _kind_fields(status: str, retried: bool) -> dict[str, str]:
    """The fields of ``_session_row`` that a session's status and retry alone decide."""
    state, result = SESSION_STATES[status]
    return {"jobtype": "Backup", "state": state, "result": result, "isretry": boolean(retried)}


SESSION_KINDS = {
    (status, retried): _kind_fields(status, retried)
    for status in SESSION_STATES
    for retried in (False, True)
}


def _session_status_is(kept: Callable[[tuple[str, str]], str]) -> query_sql.Choices:
    """A field computed from the session's status (its State or Result)."""
    return query_sql.Choices(
        [(JobSession.status == status, kept(shown)) for status, shown in SESSION_STATES.items()]
    )


_OF_JOB = (JobSession.job_id, Job.id)  # a session's job (a foreign key)

# A session's Name (``session_name``): its job's name, "@" and its creation time as shown.
_SESSION_NAME = (
    select(Job.name).where(Job.id == JobSession.job_id).scalar_subquery()
    + "@"
    + query_sql.iso_text(JobSession.creation_time)
)

# A Name as ``views.iso`` writes its time, lower-cased: seven fraction digits when there is one.
_ISO_LOWER = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})t([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{6})0)?z"
)


def _created_as_named(wanted: str) -> ColumnElement[bool] | None:
    """The sessions a Name equal to ``wanted`` (lower-case) can be: those created at the instant
    written after its last ``@`` (a time holds none), found in the creation-time index; None
    when it is not written as a four-digit year's time (the Name's own comparison decides)."""
    written = _ISO_LOWER.fullmatch(wanted.rpartition("@")[2])
    if "@" not in wanted or written is None:
        return None
    if written[3] == "000000":  # a whole second is written without a fraction
        return false()
    day, time, fraction = written.groups()
    try:
        instant = datetime.fromisoformat(f"{day}T{time}.{fraction or '000000'}+00:00")
    except ValueError:  # digits in place, but no such date (2026-02-30)
        return false()
    return JobSession.creation_time == instant


# What each field of ``_session_row`` is computed from.
SESSION_FIELDS: query_sql.Fields = {
    "name": query_sql.Text(_SESSION_NAME, equal_needs=_created_as_named),
    "jobname": query_sql.Text(Job.name, through=_OF_JOB),
    "uid": query_sql.Text(JobSession.id, "urn:veeam:BackupJobSession:"),
    "jobuid": query_sql.Text(Job.id, "urn:veeam:Job:", through=_OF_JOB),
    "jobtype": query_sql.constant("Backup"),
    "creationtime": query_sql.Instant(JobSession.creation_time),
    "creationtimeutc": query_sql.Instant(JobSession.creation_time),
    "endtime": query_sql.Instant(JobSession.end_time),
    "endtimeutc": query_sql.Instant(JobSession.end_time),
    "state": _session_status_is(lambda shown: shown[0]),
    "result": _session_status_is(lambda shown: shown[1]),
    "progress": query_sql.Number(JobSession.progress),
    "isretry": query_sql.Choices(
        [
            (JobSession.retry_count > 0, boolean(True)),
            (JobSession.retry_count <= 0, boolean(False)),
        ]
    ),
}


def _session_row(who: Caller, session: JobSession, name: str, failure: str) -> Found:
    state, result = SESSION_STATES[session.status]
    fields = {
        "name": f"{name}@{iso(session.creation_time)}",
        "jobname": name,
        "uid": f"urn:veeam:BackupJobSession:{session.id}",
        "jobuid": f"urn:veeam:Job:{session.job_id}",
        "jobtype": "Backup",
        "creationtime": iso(session.creation_time),
        "creationtimeutc": iso(session.creation_time),
        "endtime": iso(session.end_time),
        "endtimeutc": iso(session.end_time),
        "state": state,
        "result": result,
        "progress": session.progress,
        "isretry": boolean(session.retry_count > 0),
    }
    return Found(
        fields,
        session_reference(who, session, name, "Ref"),
        session_entity(who, session, name, failure),
    )


def repository_rows(request: Request, who: Caller) -> list[Found]:
    rows = []
    for repo in catalog.list_repositories(ctx_of(request)):
        entity = repository_entity(who, repo)
        fields = {
            "name": repo.name,
            "uid": entity.get("UID"),
            "capacity": int(entity.findtext(f"{{{NS}}}Capacity") or 0),
            "freespace": int(entity.findtext(f"{{{NS}}}FreeSpace") or 0),
        }
        rows.append(Found(fields, repository_reference(who, repo, "Ref"), entity))
    return rows


def server_rows(request: Request, who: Caller) -> list[Found]:
    entity = backup_server(request, who)
    fields = {
        "name": entity.get("Name"),
        "uid": entity.get("UID"),
        "description": entity.findtext(f"{{{NS}}}Description"),
        "port": int(entity.findtext(f"{{{NS}}}Port") or 0),
        "version": __version__,
    }
    return [Found(fields, server_reference(who, "Ref"), entity)]


def restore_point_rows(request: Request, who: Caller) -> list[Found]:
    names = Names(request)
    rows = []
    for point in restore_points.list_points(ctx_of(request)):
        fields = {
            "name": point_name(point, names),
            "jobname": names.job(point.job_id or ""),
            "uid": f"urn:veeam:RestorePoint:{point.id}",
            # The vendor's restore point query fields name the point's time CreationTime
            # (get_restorepoints_id.html); its entity calls it BackupDateUTC.
            "creationtime": iso(point.backup_time),
            "creationtimeutc": iso(point.backup_time),
            "backupdate": iso(point.backup_time),
            "backupdateutc": iso(point.backup_time),
        }
        rows.append(
            Found(
                fields,
                restore_point_reference(who, point, names, "Ref"),
                restore_point_entity(who, point, names),
            )
        )
    return rows


def task_rows(request: Request, who: Caller) -> list[Found]:
    """The tasks of the caller's logon session (get_query_task.html), as resources."""
    rows = []
    for task in tasks.list_for(ctx_of(request), who.logon_session_id):
        fields = {
            "taskid": f"task-{task.number}",
            "state": task.state,
            "operation": task.operation,
        }
        rows.append(Found(fields, None, task_document(who, task)))
    return rows


def backup_rows(request: Request, who: Caller) -> list[Found]:
    names = Names(request)
    rows = []
    for backup in restore_points.job_backups(ctx_of(request)):
        entity = backup_entity(who, backup, names)
        fields = {"name": entity.get("Name"), "uid": entity.get("UID"), "platform": "Microsoft365"}
        rows.append(Found(fields, backup_reference(who, backup, names, "Ref"), entity))
    return rows
