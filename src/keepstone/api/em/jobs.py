"""Jobs: ``/api/jobs``, their edits and actions.

Every write that changes a job is an asynchronous operation: the answer is ``202 Accepted`` with a
``Task`` the client polls (seed 000), even when the work is quick, so clients have one rule.
"""

from functools import partial
from typing import Any, Protocol

from fastapi import APIRouter, Request
from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from keepstone.api import direct
from keepstone.api.answer_memo import AnswerMemo
from keepstone.api.direct import DirectRoute
from keepstone.api.em.deps import (
    Caller,
    Who,
    answer,
    boolean,
    caller,
    ctx_of,
)
from keepstone.api.em.hypermedia import (
    LINK,
    LINKS,
    entity_href,
    link_attributes,
    server_up,
)
from keepstone.api.em.schedule_xml import parse_schedule_options, render_schedule_options
from keepstone.api.em.tasks import task_accepted
from keepstone.api.em.xml import NAMESPACES, NS, child_in, element, parse_body, text_of
from keepstone.api.vb365.views import iso
from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import JobEdit
from keepstone.domain.text import xml_safe
from keepstone.services import jobs, runs, tasks
from keepstone.store.codecs import policy_from_record
from keepstone.store.tables import Job, Task

router = APIRouter(prefix="/api")


class Named(Protocol):
    """What a job's reference shows of it (a ``Job``, or only its id and name)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


def job_uid(job: Named) -> str:
    return f"urn:veeam:Job:{job.id}"


def job_links(who: Caller, job: Job, parent: etree._Element | None = None) -> etree._Element:
    """The vendor's order (jobs_id.html): Up server, Alternate, Edit, Clone, toggle, Down
    includes and sessions, Start, Stop, Retry. Create ObjectInJob is left out: Keepstone jobs
    protect organizations, not objects added one by one."""
    return JobXml(who).links(job, parent)


def job_reference(
    who: Caller, job: Named, tag: str = "EntityRef", parent: etree._Element | None = None
) -> etree._Element:
    """A job's reference (resource_representation_for_ke.html): Up server, Alternate entity,
    Down its sessions. Made inside ``parent`` when given (a list of every job: see
    ``xml.sub_element``)."""
    return JobXml(who, tag).reference(job, parent)


def job_entity(who: Caller, job: Job, parent: etree._Element | None = None) -> etree._Element:
    """A job's entity, made inside ``parent`` when given."""
    return JobXml(who).entity(job, parent)


_ACTIONS = ("Start", "Stop", "Retry")


class JobXml:
    """A caller's job elements: what every one shares (the server's link, the jobs' base
    address, made XML-safe) is made once, so that a list of every job makes for each only its
    own strings and elements. Each attribute is what ``element`` and ``links_of`` would write:
    ``xml_safe`` replaces character by character, so the safe base joined with a safe id is
    the safe address."""

    def __init__(self, who: Caller, tag: str = "EntityRef") -> None:
        self.tag = f"{{{NS}}}{tag}"
        self.up = link_attributes(server_up(who))
        self.jobs = xml_safe(who.href("jobs"))

    def _made(
        self, tag: str, attributes: dict[str, str], parent: etree._Element | None
    ) -> etree._Element:
        if parent is None:
            return etree.Element(tag, attributes, nsmap=NAMESPACES)
        return etree.SubElement(parent, tag, attributes)

    def _safe(self, job: Named) -> tuple[str, str, str]:
        """The job's address, name and UID, XML-safe."""
        job_id = xml_safe(job.id)
        return f"{self.jobs}/{job_id}", xml_safe(job.name), f"urn:veeam:Job:{job_id}"

    def reference(self, job: Named, parent: etree._Element | None = None) -> etree._Element:
        href, name, uid = self._safe(job)
        attributes = {"Href": href, "Type": "JobReference", "Name": name, "UID": uid}
        made = self._made(self.tag, attributes, parent)
        links = etree.SubElement(made, LINKS)
        etree.SubElement(links, LINK, self.up)
        alternate = {"Rel": "Alternate", "Type": "Job", "Href": entity_href(href), "Name": name}
        etree.SubElement(links, LINK, alternate)
        down = {"Rel": "Down", "Type": "BackupJobSessionReferenceList"}
        etree.SubElement(links, LINK, down | {"Href": f"{href}/backupSessions"})
        return made

    def links(self, job: Named, parent: etree._Element | None = None) -> etree._Element:
        href, name, _ = self._safe(job)
        made = self._made(LINKS, {}, parent)
        for attributes in (
            self.up,
            {"Rel": "Alternate", "Type": "JobReference", "Href": href, "Name": name},
            {"Rel": "Edit", "Type": "JobReference", "Href": href, "Name": name},
            {"Rel": "Clone", "Href": f"{href}?action=clone"},
            {"Rel": "ToggleScheduleEnabled", "Href": f"{href}?action=toggleScheduleEnabled"},
            {"Rel": "Down", "Type": "ObjectInJobList", "Href": f"{href}/includes"},
            {
                "Rel": "Down",
                "Type": "BackupJobSessionReferenceList",
                "Href": f"{href}/backupSessions",
            },
            *({"Rel": action, "Href": f"{href}?action={action.lower()}"} for action in _ACTIONS),
        ):
            etree.SubElement(made, LINK, attributes)
        return made

    def entity(self, job: Job, parent: etree._Element | None = None) -> etree._Element:
        href, name, uid = self._safe(job)
        policy = policy_from_record(job.schedule_policy)
        attributes = {"Href": entity_href(href), "Type": "Job", "Name": name, "UID": uid}
        made = self._made(f"{{{NS}}}Job", attributes, parent)
        self.links(job, made)
        child_in(made, "JobType", "Backup")
        child_in(made, "Platform", "Microsoft365")
        child_in(made, "Description", job.description)
        child_in(made, "ScheduleConfigured", boolean(policy.type.value != "ManualOnly"))
        child_in(made, "ScheduleEnabled", boolean(job.is_enabled))
        child_in(made, "NextRun", iso(job.next_run))
        made.append(render_schedule_options(policy))
        return made


# Every job's references, by every job's id and name, the caller's base address and whether JSON
# was asked for: two kept (a monitoring script's XML or JSON; 6 MB each for 10,000 jobs).
_REFERENCE_LISTS: AnswerMemo[tuple[bytes, str | None]] = AnswerMemo(capacity=2)


# Every job's entity, by every job's ``JobVersion``, the caller's base address and whether JSON
# was asked for: one kept (34.5 MB for 10,000 jobs, made in about 2 s).
_ENTITY_LISTS: AnswerMemo[tuple[bytes, str | None]] = AnswerMemo(capacity=1)


def jobs_document(request: Request, who: Caller, format: str) -> Response:
    """Every job: references, or entities with ``format=Entity``. References show a job's id and
    name only, so only those are read."""
    ctx = ctx_of(request)
    as_json = "json" in request.headers.get("accept", "").lower()  # as deps.answer decides
    if format.lower() == "entity":
        return _entities_document(request, who, as_json)
    names = tuple(jobs.list_job_names(ctx))

    def make() -> tuple[bytes, str | None]:
        listed, made = element("EntityReferences"), JobXml(who, "Ref")
        for named in names:
            made.reference(named, listed)
        document = answer(request, listed)
        return bytes(document.body), document.media_type

    # a list of references shows each job's id and name alone: kept by those (api.answer_memo)
    body, media_type = _REFERENCE_LISTS.get((names, who.base, as_json), make)
    return Response(body, media_type=media_type)


def _entities_document(request: Request, who: Caller, as_json: bool) -> Response:
    """Every job's entity, kept by what each shows that can change (``jobs.JobVersion``): the
    key kept is read from the very jobs the list is made from, so a job changed between the
    two reads is never kept under the state before its change."""
    ctx = ctx_of(request)
    found = _ENTITY_LISTS.kept((jobs.list_job_versions(ctx), who.base, as_json))
    if found is None:
        every = jobs.list_jobs(ctx)
        listed, made = element("Jobs"), JobXml(who)
        for job in every:
            made.entity(job, listed)
        document = answer(request, listed)
        found = bytes(document.body), document.media_type
        key = (tuple(map(jobs.job_version, every)), who.base, as_json)
        _ENTITY_LISTS.keep(key, found)
    body, media_type = found
    return Response(body, media_type=media_type)


@router.get("/jobs")
def list_jobs(request: Request, who: Who, format: str = "References") -> Response:
    return jobs_document(request, who, format)


@router.get("/jobs/{job_id}/includes")
def list_job_includes(job_id: str, request: Request, who: Who) -> Response:
    """A job's objects (``ObjectsInJob``): none, since a Keepstone job protects a whole
    organization rather than objects included one by one."""
    del who
    jobs.get_job(ctx_of(request), job_id)
    return answer(request, element("ObjectsInJob"))


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request, who: Who, format: str = "Reference") -> Response:
    return _job_answer(request, who, jobs.read_job(ctx_of(request), job_id), format)


def _job_answer(request: Request, who: Caller, job: Job, format: str) -> Response:
    return answer(
        request, job_entity(who, job) if format.lower() == "entity" else job_reference(who, job)
    )


# A job's answer by its stored row, the caller's base address, the format and whether JSON was
# asked for (api.answer_memo): the body and its media type.
_JOB_ANSWERS: AnswerMemo[tuple[bytes, str | None]] = AnswerMemo()


async def get_job_direct(request: Request, params: dict[str, str], _body: bytes) -> Response:
    """``get_job`` without FastAPI (``api.direct``): the same dependencies in the same order,
    and the same bytes as ``_job_answer``, kept by what they are made from."""
    who = await caller(request)
    ctx = ctx_of(request)
    stored = await direct.read(ctx, partial(jobs.stored_job, ctx, params["job_id"]))
    format = request.query_params.get("format", "Reference")

    def make() -> tuple[bytes, str | None]:
        made = _job_answer(request, who, stored.instance(), format)
        return bytes(made.body), made.media_type

    as_json = "json" in request.headers.get("accept", "").lower()  # as deps.answer decides
    entity = format.lower() == "entity"
    key = None if stored.snapshot is None else (stored.snapshot, who.base, entity, as_json)
    body, media_type = _JOB_ANSWERS.get(key, make)
    return Response(body, media_type=media_type)


DIRECT_ROUTES = [DirectRoute("GET", "/api/jobs/{job_id}", get_job_direct)]


@router.put("/jobs/{job_id}")
async def edit_job(job_id: str, request: Request, who: Who, action: str = "edit") -> Response:
    """Seed 000: the body conforms to RestAPI.xsd and holds the whole job or only what changes."""
    if action.lower() != "edit":
        raise InvalidInput(f"PUT takes ?action=edit, not '{action}'", "action")
    edit = job_edit(parse_body(await request.body(), "Job", request.headers.get("content-type")))
    ctx = ctx_of(request)

    def work() -> tuple[str, dict[str, Any]]:
        jobs.edit_job(ctx, job_id, edit)
        return "Ok", {}

    def accept() -> Task:
        jobs.get_job(ctx, job_id)  # an unknown job is a 404 now, not a failed task later
        return tasks.submit(ctx, who.logon_session_id, "EditJob", work)

    return task_accepted(request, who, await run_in_threadpool(accept))


def job_edit(document: etree._Element) -> JobEdit:
    """What a Job body changes. Its attributes (Href, Type, Name, UID) identify the job and are
    required by the schema, so they are not edits; JobType, Platform, ScheduleConfigured and
    NextRun are read-only and ignored, like read-only JSON properties."""
    if document.find("{http://www.veeam.com/ent/v1.0}JobInfo") is not None:
        raise InvalidInput(
            "JobInfo (backup objects of a virtual machine job) cannot be edited: "
            "Keepstone jobs protect organizations",
            "Job/JobInfo",
        )
    enabled = text_of(document, "ScheduleEnabled")
    options = document.find("{http://www.veeam.com/ent/v1.0}JobScheduleOptions")
    return JobEdit(
        description=text_of(document, "Description"),
        is_enabled=None if enabled is None else enabled.strip() in ("true", "1"),
        schedule=None if options is None else parse_schedule_options(options),
    )


ACTIONS = {
    "start": "StartJob",
    "stop": "StopJob",
    "retry": "RetryJob",
    "togglescheduleenabled": "UpdateJob",
    "clone": "CloneJob",
}


@router.post("/jobs/{job_id}")
def job_action(job_id: str, request: Request, who: Who, action: str = "") -> Response:
    operation = ACTIONS.get(action.lower())
    if operation is None:
        raise InvalidInput(f"action must be one of {', '.join(sorted(ACTIONS))}", "action")
    ctx = ctx_of(request)
    job = jobs.get_job(ctx, job_id)

    def work() -> tuple[str, dict[str, Any]]:
        match operation:
            case "StartJob" | "RetryJob":
                runs.start_job(ctx, job.id, f"Started through Enterprise Manager ({action})")
                return f'Job "{job.name}" triggered to start.', {}
            case "StopJob":
                runs.stop_job(ctx, job.id)
                return f'Job "{job.name}" triggered to stop.', {}
            case "UpdateJob":
                changed = jobs.toggle_schedule(ctx, job.id)
                state = "enabled" if changed.is_enabled else "disabled"
                return f'Schedule of job "{job.name}" {state}.', {}
        clone = jobs.clone_job(ctx, job.id)
        return f'Job "{job.name}" cloned as "{clone.name}".', {"job": clone.id}

    return task_accepted(request, who, tasks.submit(ctx, who.logon_session_id, operation, work))
