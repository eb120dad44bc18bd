"""The rows of each query type Keepstone has objects of, with the fields the vendor's query pages
name (get_query_<type>.html), lower-cased."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import ColumnElement, and_, func, not_, or_

from keepstone import __version__
from keepstone.api.em.backup_servers import backup_server, server_reference
from keepstone.api.em.backup_sessions import SESSION_STATES, session_entity, session_reference
from keepstone.api.em.backups import Names, backup_entity, backup_reference
from keepstone.api.em.deps import Caller, boolean, ctx_of
from keepstone.api.em.jobs import job_entity, job_reference, job_uid
from keepstone.api.em.query import Clause, Term, is_plain_text
from keepstone.api.em.queryable import Found, Order, Window
from keepstone.api.em.repositories import repository_entity, repository_reference
from keepstone.api.em.restore_points import (
    point_name,
    restore_point_entity,
    restore_point_reference,
)
from keepstone.api.em.tasks import task_document
from keepstone.api.em.xml import NS
from keepstone.api.vb365.views import iso
from keepstone.services import catalog, jobs, restore_points, runs, tasks
from keepstone.store.tables import Job, JobSession


def job_rows(request: Request, who: Caller) -> list[Found]:
    return [_job_row(who, job) for job in jobs.list_jobs(ctx_of(request))]


def job_page(
    request: Request,
    who: Caller,
    clause: Clause | None,
    order: Order | None,
    offset: int,
    limit: int,
) -> Window | None:
    """Jobs in their natural order (by name, as ``job_rows``) filtered and paged in the
    catalog, when the filter compares only columns (``job_condition``)."""
    if order is not None:
        return None  # the query's text order (numbers, dates, words) is not the catalog's
    condition = None if clause is None else job_condition(clause)
    if clause is not None and condition is None:
        return None
    ctx = ctx_of(request)
    total = jobs.count_jobs(ctx, condition=condition)
    page = jobs.page_jobs(ctx, offset, limit, total=total, condition=condition)
    return Window([_job_row(who, job) for job in page], total)


# The job fields a catalog condition evaluates exactly: text columns compared with == and !=
# against plain text (``is_plain_text``). Every other field (uid, schedule, next run, ...) or
# operator is filtered in memory over all the jobs.
_JOB_TEXT_COLUMNS: dict[str, Any] = {"name": Job.name, "description": Job.description}


def job_condition(clause: Clause) -> ColumnElement[bool] | None:
    """The SQL condition that keeps exactly the jobs ``clause`` keeps, or None when some part
    of it has no exact SQL form."""
    if isinstance(clause, Term):
        column = _JOB_TEXT_COLUMNS.get(clause.name)
        if column is None or clause.op not in ("==", "!=") or not is_plain_text(*_pair(clause)):
            return None
        same = func.lower(func.coalesce(column, "")) == clause.value.lower()
        return same if clause.op == "==" else not_(same)
    kind, parts = clause
    conditions = [job_condition(part) for part in parts]
    if any(c is None for c in conditions):
        return None
    kept = [c for c in conditions if c is not None]
    return or_(*kept) if kind == "or" else and_(*kept)


def _pair(term: Term) -> tuple[str, str]:
    return term.name, term.value


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


def session_page(
    request: Request,
    who: Caller,
    clause: Clause | None,
    order: Order | None,
    offset: int,
    limit: int,
) -> Window | None:
    """Sessions newest first (as ``session_rows``), or by creation time, paged in the
    catalog; a filtered query filters them in memory (no session field is mapped yet)."""
    if clause is not None or (order is not None and order[0] not in SESSION_ORDERS):
        return None
    ctx = ctx_of(request)
    where = runs.SessionFilter()
    oldest = order is not None and order[1]
    total = runs.count_sessions(ctx, where)
    page = runs.list_sessions(ctx, None, offset, limit, where, oldest_first=oldest, total=total)
    names = {j.id: j.name for j in jobs.jobs_by_id(ctx, {s.job_id for s in page}).values()}
    failures = runs.failures_of(ctx, [s.id for s in page])
    rows = [_session_row(who, s, names.get(s.job_id, ""), failures.get(s.id, "")) for s in page]
    return Window(rows, total)


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
