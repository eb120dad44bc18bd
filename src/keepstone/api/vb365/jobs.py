"""Jobs: list, get, create, the seed 003 PUT, delete, actions, and their selected/excluded items."""

import hashlib
import re
import weakref
from collections.abc import Hashable, Sequence
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import Header, Query, Request
from starlette.responses import Response

from keepstone.api import direct
from keepstone.api.answer_memo import AnswerMemo
from keepstone.api.direct import DirectRoute
from keepstone.api.errors import JSON_MEDIA_TYPE
from keepstone.api.inputs import INT64_MAX, shorten
from keepstone.api.plumbing import plain, plain_with
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import JobBody, JobItemBody, NewJobBody, StartBody, parse_nested
from keepstone.api.vb365.deps import Caller, Ctx, json, principal
from keepstone.api.vb365.pages import Paging, listing, query_listing
from keepstone.api.vb365.restore import ExploreBody, start_explore
from keepstone.api.vb365.tasks import wants_async
from keepstone.api.vb365.versions import (
    VERSIONS,
    ApiVersion,
    Version,
    VersionedRouter,
    api_version,
    version_of,
)
from keepstone.domain.errors import InvalidInput, PreconditionFailed
from keepstone.services import jobs, runs
from keepstone.services.context import Context
from keepstone.store.prepared import Stored
from keepstone.store.tables import Job

router = VersionedRouter()
_ETAG = re.compile(r'^\s*(?:W/)?"([0-9]{1,19})"\s*$')  # versions are SQLite int64s


def etag(job: Job) -> str:
    return f'"{job.version}"'  # as _edited_version writes it


def expected_version(if_match: str | None) -> int | None:
    """``If-Match: "7"`` pins the edit to version 7; ``*`` or no header pins nothing."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match)
    if match is None or int(match.group(1)) > INT64_MAX:
        raise PreconditionFailed(
            f"If-Match '{shorten(if_match, 40)}' is not an ETag this server issued"
        )
    return int(match.group(1))


@router.get("/Jobs")
def list_jobs(
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    organizationId: str | None = None,
    repositoryId: str | None = None,
) -> Response:
    where = {"org_id": organizationId, "repository_id": repositoryId}

    def page(_pin: None, offset: int, limit: int | None, total: int | None) -> list[Job]:
        return jobs.page_jobs(
            ctx, offset, limit, org_id=organizationId, repository_id=repositoryId, total=total
        )

    def render(rows: Sequence[Job]) -> list[dict[str, Any]]:
        return [views.job(job, api) for job in rows]

    # Jobs have no creation instant to pin a set by: a set's pages read the jobs as they are.
    count = partial(_count_jobs, ctx, where)
    now = ctx.clock.now()
    return json(query_listing(request, api, "jobs", lambda: None, page, count, render, paging, now))


def _count_jobs(ctx: Any, where: dict[str, str | None], _pin: None) -> int:
    return jobs.count_jobs(
        ctx, org_id=where.get("org_id"), repository_id=where.get("repository_id")
    )


@router.get("/Organizations/{org_id}/Jobs", until=7)
def list_organization_jobs(org_id: str, ctx: Ctx, api: Version) -> Response:
    return json([views.job(j, api) for j in jobs.list_jobs(ctx, org_id)])


@router.get("/Jobs/{job_id}")
def get_job(job_id: str, ctx: Ctx, api: Version) -> Response:
    return _job_answer(jobs.read_job(ctx, job_id), api)


def _job_answer(job: Job, api: ApiVersion) -> Response:
    return json(views.job(job, api), headers={"ETag": etag(job)})


# A job's answer by its stored row, version and link base (api.answer_memo): body and ETag.
_JOB_ANSWERS: AnswerMemo[tuple[bytes, str]] = AnswerMemo()


async def get_job_direct(request: Request, params: dict[str, str], _body: bytes) -> Response:
    """``get_job`` without FastAPI (``api.direct``): the same dependencies in the same order,
    and the same bytes as ``_job_answer``, kept by the stored row they are made from."""
    await principal(request)
    ctx: Context = request.app.state.ctx
    api = await api_version(request)
    stored = await direct.read(ctx, partial(jobs.stored_job, ctx, params["job_id"]))

    def make() -> tuple[bytes, str]:
        job = stored.instance()
        return bytes(_job_answer(job, api).body), etag(job)

    key = None if stored.snapshot is None else (stored.snapshot, api.number, api.link.root)
    body, tag = _JOB_ANSWERS.get(key, make)
    return Response(body, headers={"ETag": tag}, media_type=JSON_MEDIA_TYPE)


@router.post("/Organizations/{org_id}/Jobs", until=7)
def create_organization_job(org_id: str, body: JobBody, ctx: Ctx, api: Version) -> Response:
    job = jobs.create_job(ctx, org_id, body.to_edit()).job
    return json(views.job(job, api), api.created, headers={"ETag": etag(job)})


@router.post("/Jobs", since=8)
def create_job(body: NewJobBody, ctx: Ctx, api: Version) -> Response:
    """v8 creates jobs at ``/Jobs`` with the organization in the body, and answers 201."""
    job = jobs.create_job(ctx, body.organization_id, body.to_edit()).job
    return json(views.job(job, api), api.created, headers={"ETag": etag(job)})


@router.put(
    "/Jobs/{job_id}",
    response_class=Response,
    responses={200: {"description": "The job was changed; the body is empty."}},
)
def edit_job(
    job_id: str,
    body: JobBody,
    ctx: Ctx,
    api: Version,
    if_match: str | None = Header(default=None),
) -> Response:
    return _edit(ctx, job_id, body, api, if_match)


def _edit(
    ctx: Context, job_id: str, body: JobBody, api: ApiVersion, if_match: str | None
) -> Response:
    job = jobs.edit_job(ctx, job_id, body.to_edit(), expected_version(if_match)).job
    return _edited(job, api.number)


def _edited(job: Job, version: int) -> Response:
    """The answer to an edit in API ``version``: empty (204 from v6, 200 before), its ETag."""
    return _edited_version(job.version, version)


def _edited_version(job_version: int, version: int) -> Response:
    """``_edited`` of a job whose version is ``job_version``."""
    response = plain(204 if version >= 6 else 200)
    # after the content headers, as ``response.headers["ETag"] = ...`` puts it, without making
    # the mutable view of the headers and searching them for one an empty answer never has
    response.raw_headers.append((b"etag", f'"{job_version}"'.encode("latin-1")))
    return response


async def edit_job_direct(request: Request, params: dict[str, str], body: bytes) -> Response | None:
    """``edit_job`` without FastAPI (``api.direct``) for a JSON body that parses and validates;
    any other body is declined, and the FastAPI route answers it as before. The edit is made
    on the event loop when the catalog's writer is free at once (``jobs.edit_job_now``), else
    on a worker thread (``jobs.edit_job_soon``). A body an earlier PUT found to change nothing
    in the row the job still has is answered from that finding (``NoOpEdits``): a read, as a
    GET's, instead of the body's validation and the edit's transaction."""
    if not direct.is_json(request, body):
        return None
    ctx: Context = request.app.state.ctx
    no_ops = _no_op_edits(request)
    # the answer is empty: only the version's number matters, not its links (``api_version``
    # makes a link builder and the public URL, about 2 % of the request's CPU)
    version = version_of(request.scope["path"])
    if_match = request.headers.get("if-match")
    job_id = params["job_id"]
    key = no_ops.key(job_id, body, if_match)
    known = no_ops.known(key)  # then its body validated when it was kept, and does again
    parsed = None if known else direct.json_body(request, body, JobBody)
    if not known and parsed is None:
        return None
    await principal(request)
    expected = expected_version(if_match)  # after the caller is known, as the route checks it
    if known:
        stored = await direct.read(ctx, partial(jobs.find_stored_job, ctx, job_id))
        no_op = no_ops.found(key, stored, ctx.clock.now())
        if no_op is not None:
            return _edited_version(no_op.version, version)
        parsed = direct.json_body(request, body, JobBody)  # as it did when it was kept
    if parsed is None:
        return None
    args = (ctx, job_id, parsed.to_edit(), expected)
    done = await direct.write(partial(jobs.edit_job_now, *args), partial(jobs.edit_job_soon, *args))
    if key is not None:
        no_ops.learn(key, done.no_op)
    return _edited_version(done.job.version, version)


class NoOpEdits:
    """Job PUTs found to change nothing, by the job, the body (a digest of it) and its
    If-Match header as sent: what was found (``jobs.NoOp``), with the row the edit read (its
    snapshot, as ``store.prepared.Stored`` gives it). Exact: the same body validates to the
    same edit, which changes nothing again in a row with the same values while the finding
    ``holds`` (the time moves the job's next run only when its slot passes); any other row
    (another writer's edit, the scheduler's next run) is another snapshot, and the PUT is made
    again (and the finding forgotten, so a body that alternates with others does not pay for
    a read it cannot use). Bounded (``AnswerMemo``); bodies over ``MAX_BODY`` are not kept."""

    MAX_BODY = 64 * 1024

    def __init__(self) -> None:
        self._kept: AnswerMemo[jobs.NoOp] = AnswerMemo()

    def key(self, job_id: str, body: bytes, if_match: str | None) -> Hashable | None:
        if len(body) > self.MAX_BODY:
            return None
        return job_id, hashlib.blake2b(body, digest_size=32).digest(), if_match

    def known(self, key: Hashable | None) -> bool:
        return key is not None and self._kept.kept(key) is not None

    def found(self, key: Hashable, stored: Stored[Job] | None, now: datetime) -> jobs.NoOp | None:
        """What was found for ``key`` if it holds for ``stored`` (the job's row now) at ``now``;
        else None, and it is forgotten."""
        kept = self._kept.kept(key)
        if kept is None:
            return None
        if stored is not None and kept.row == stored.snapshot and kept.holds(now):
            return kept
        self._kept.forget(key)
        return None

    def learn(self, key: Hashable, no_op: jobs.NoOp | None) -> None:
        """Keep what an edit found, if it changed nothing in a row with a snapshot."""
        if no_op is not None and no_op.row is not None:
            self._kept.keep(key, no_op)


def _no_op_edits(request: Request) -> NoOpEdits:
    """The ``NoOpEdits`` of the app's state: of its context (its catalog, clock and zone)."""
    state = request.app.state
    found = _NO_OP_EDITS.get(state)
    if found is None:
        found = _NO_OP_EDITS[state] = NoOpEdits()
    return found


_NO_OP_EDITS: weakref.WeakKeyDictionary[Any, NoOpEdits] = weakref.WeakKeyDictionary()


def direct_routes() -> list[DirectRoute]:
    """The job by id, read and edited in every version."""
    return [
        DirectRoute(method, f"/v{number}/Jobs/{{job_id}}", handler)
        for number in VERSIONS
        for method, handler in (("GET", get_job_direct), ("PUT", edit_job_direct))
    ]


@router.delete("/Jobs/{job_id}", status_code=204)
def delete_job(job_id: str, ctx: Ctx) -> Response:
    jobs.delete_job(ctx, job_id)
    return plain(204)


# ---- selected and excluded items -------------------------------------------------------------

ITEM_KINDS = {"SelectedItems": "selected", "ExcludedItems": "excluded"}


def _item_routes(collection: str, which: str) -> None:
    base = f"/Jobs/{{job_id}}/{collection}"
    kind = collection.lower()

    def list_items(
        job_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging
    ) -> Response:
        rows = partial(jobs.job_items, ctx, job_id, which)
        render = partial(views.job_item, job_id, kind=kind, api=api)
        return json(listing(request, api, "jobItems", rows, render, paging, ctx.clock.now()))

    def add_items(job_id: str, body: list[JobItemBody], ctx: Ctx) -> Response:
        jobs.change_items(ctx, job_id, which, add=[item.record() for item in body])
        return plain(204)

    def remove_items(
        job_id: str, ctx: Ctx, ids: Annotated[list[str] | None, Query()] = None
    ) -> Response:
        names = [i for part in ids or [] for i in part.split(",") if i]
        if not names:
            raise InvalidInput("ids must name at least one item", "ids")
        jobs.change_items(ctx, job_id, which, remove=names)
        return plain(204)

    def get_item(job_id: str, item_id: str, ctx: Ctx, api: Version) -> Response:
        return json(views.job_item(job_id, jobs.job_item(ctx, job_id, which, item_id), kind, api))

    def put_item(job_id: str, item_id: str, body: JobItemBody, ctx: Ctx) -> Response:
        jobs.change_items(ctx, job_id, which, replace=(item_id, body.record()))
        return plain(204)

    router.get(base)(list_items)
    router.post(base, since=6)(add_items)
    router.delete(base, since=6)(remove_items)
    router.get(f"{base}/{{item_id}}", since=6)(get_item)
    router.put(f"{base}/{{item_id}}", since=6)(put_item)


for _collection, _which in ITEM_KINDS.items():
    _item_routes(_collection, _which)


# ---- actions ---------------------------------------------------------------------------------


def _start(request: Request, ctx: Ctx, api: Version, job_id: str) -> Response:
    """Start a run; v8 answers with the session, ``Prefer: respond-async`` with where to poll."""
    session = runs.start_job(ctx, job_id, "Started by user")
    assert session is not None  # a start refuses (409) while a run is active; it never skips
    if wants_async(request):
        href = api.link.absolute("jobsessions", session.id)
        return plain_with(202, {"Location": href, "Preference-Applied": "respond-async"})
    if api.at_least(8):
        return json(views.job_session(session, api, jobs.get_job(ctx, job_id)))
    return plain(204 if api.at_least(6) else 200)


@router.post("/Jobs/{job_id}/start", since=6, response_class=Response)
def start(
    job_id: str, request: Request, ctx: Ctx, api: Version, body: StartBody | None = None
) -> Response:
    # Every Keepstone restore point is complete (incremental forever over deduplicated chunks),
    # so an active full backup ({"full": true}) would store nothing more: it runs as any run.
    return _start(request, ctx, api, job_id)


@router.post("/Jobs/{job_id}/stop", since=6, response_class=Response)
def stop(job_id: str, ctx: Ctx) -> Response:
    runs.stop_job(ctx, job_id)
    return plain(204)


@router.post("/Jobs/{job_id}/enable", since=6, response_class=Response)
def enable(job_id: str, ctx: Ctx) -> Response:
    jobs.set_enabled(ctx, job_id, True)
    return plain(204)


@router.post("/Jobs/{job_id}/disable", since=6, response_class=Response)
def disable(job_id: str, ctx: Ctx) -> Response:
    jobs.set_enabled(ctx, job_id, False)
    return plain(204)


@router.post("/Jobs/{job_id}/explore")  # v2-v5 also via /Action, as the vendor did
def explore(job_id: str, body: ExploreBody, ctx: Ctx, api: Version, caller: Caller) -> Response:
    return start_explore(ctx, caller, body, api, job_id=job_id)


ACTIONS = ("start", "stop", "enable", "disable", "explore")


@router.post("/Jobs/{job_id}/Action", until=5, response_class=Response)
def job_action(
    job_id: str, body: dict[str, Any], request: Request, ctx: Ctx, api: Version, caller: Caller
) -> Response:
    """``{"start": null}`` and friends: exactly one action property; only explore has options."""
    names = [name.lower() for name in body]
    if len(names) != 1 or names[0] not in ACTIONS:
        raise InvalidInput(
            "the body must hold exactly one action: "
            + ", ".join(f'{{"{a}": null}}' for a in ACTIONS),
            "action",
        )
    match names[0]:
        case "start":
            return _start(request, ctx, api, job_id)
        case "stop":
            runs.stop_job(ctx, job_id)
        case "enable" | "disable":
            jobs.set_enabled(ctx, job_id, names[0] == "enable")
        case "explore":
            options = parse_nested(ExploreBody, next(iter(body.values())), "explore")
            return start_explore(ctx, caller, options, api, job_id=job_id)
    return plain(200)
