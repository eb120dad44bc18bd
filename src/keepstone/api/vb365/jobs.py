"""Jobs: list, get, create, the seed 003 PUT, delete and actions."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from keepstone.api.plumbing import plain, plain_with
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import JobBody
from keepstone.api.vb365.deps import Ctx, Link, json
from keepstone.api.vb365.restore import Caller, ExploreBody, start_explore
from keepstone.api.vb365.tasks import wants_async
from keepstone.domain.errors import InvalidInput, PreconditionFailed
from keepstone.services import jobs, runs
from keepstone.store.tables import Job

router = APIRouter()
_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')


def etag(job: Job) -> str:
    return f'"{job.version}"'


def expected_version(if_match: str | None) -> int | None:
    """``If-Match: "7"`` pins the edit to version 7; ``*`` or no header pins nothing."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match)
    if match is None:
        raise PreconditionFailed(f"If-Match '{if_match}' is not an ETag this server issued")
    return int(match.group(1))


@router.get("/Jobs")
def list_jobs(ctx: Ctx, link: Link) -> Response:
    return json([views.job(j, link) for j in jobs.list_jobs(ctx)])


@router.get("/Organizations/{org_id}/Jobs")
def list_organization_jobs(org_id: str, ctx: Ctx, link: Link) -> Response:
    return json([views.job(j, link) for j in jobs.list_jobs(ctx, org_id)])


@router.get("/Jobs/{job_id}")
def get_job(job_id: str, ctx: Ctx, link: Link) -> Response:
    job = jobs.get_job(ctx, job_id)
    return json(views.job(job, link), headers={"ETag": etag(job)})


@router.post("/Organizations/{org_id}/Jobs")
def create_job(org_id: str, body: JobBody, ctx: Ctx, link: Link) -> Response:
    job = jobs.create_job(ctx, org_id, body.to_edit()).job
    return json(views.job(job, link), headers={"ETag": etag(job)})


@router.put(
    "/Jobs/{job_id}",
    response_class=Response,
    responses={200: {"description": "The job was changed; the body is empty."}},
)
def edit_job(
    job_id: str, body: JobBody, ctx: Ctx, if_match: str | None = Header(default=None)
) -> Response:
    job = jobs.edit_job(ctx, job_id, body.to_edit(), expected_version(if_match)).job
    response = plain(200)
    response.headers["ETag"] = etag(job)
    return response


@router.delete("/Jobs/{job_id}", status_code=204)
def delete_job(job_id: str, ctx: Ctx) -> Response:
    jobs.delete_job(ctx, job_id)
    return plain(204)


@router.get("/Jobs/{job_id}/SelectedItems")
def selected_items(job_id: str, ctx: Ctx) -> Response:
    return json(jobs.get_job(ctx, job_id).selected_items)


@router.get("/Jobs/{job_id}/ExcludedItems")
def excluded_items(job_id: str, ctx: Ctx) -> Response:
    return json(jobs.get_job(ctx, job_id).excluded_items)


ACTIONS = ("start", "stop", "enable", "disable", "explore")


@router.post("/Jobs/{job_id}/Action", response_class=Response)
def job_action(
    job_id: str, body: dict[str, Any], request: Request, ctx: Ctx, link: Link, caller: Caller
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
            session = runs.start_job(ctx, job_id, "Started by user")
            if wants_async(request) and session is not None:  # poll the run itself
                href = link("jobsessions", session.id)["href"]
                return plain_with(202, {"Location": href, "Preference-Applied": "respond-async"})
        case "stop":
            runs.stop_job(ctx, job_id)
        case "enable" | "disable":
            jobs.set_enabled(ctx, job_id, names[0] == "enable")
        case "explore":
            options = ExploreBody.model_validate(next(iter(body.values())) or {})
            return start_explore(ctx, caller, options, link, job_id=job_id)
    return plain(200)
