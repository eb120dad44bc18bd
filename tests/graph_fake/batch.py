"""`POST /v1.0/$batch`: up to 20 inner requests, `dependsOn`, 424 for a failed dependency.

Each inner request runs through the whole Graph app (throttling and faults included), so it
counts against the limits on its own and can be 429 alone (graph.md §1.3 Batching); all of them
count as sent when the batch arrived (`throttle.BATCH_SENT`), so an inner request the fake
reaches after a block that began inside the same batch is not a premature retry. Answers come
back in a shuffled order, as Graph promises no order.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of
from tests.graph_fake.throttle import BATCH_SENT

MAX_REQUESTS = 20


class BadBatch(Exception):
    pass


def _validate(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise BadBatch("The batch body must be an object with a 'requests' array.")
    requests: list[dict[str, Any]] = body["requests"]
    if not 1 <= len(requests) <= MAX_REQUESTS:
        raise BadBatch(f"A batch holds 1 to {MAX_REQUESTS} requests, not {len(requests)}.")
    ids: set[str] = set()
    for inner in requests:
        if not isinstance(inner, dict) or not all(
            isinstance(inner.get(k), str) for k in ("id", "method", "url")
        ):
            raise BadBatch("Each request needs string 'id', 'method' and 'url'.")
        if inner["id"] in ids:
            raise BadBatch(f"Duplicate request id '{inner['id']}'.")
        ids.add(inner["id"])
    earlier: set[str] = set()
    for inner in requests:
        for dependency in inner.get("dependsOn", []):
            # The fake runs requests in the given order, so a dependency must come first.
            if dependency not in earlier:
                raise BadBatch(f"Request '{inner['id']}' depends on '{dependency}' not before it.")
        earlier.add(inner["id"])
    return requests


async def _run(
    http: httpx.AsyncClient, inner: dict[str, Any], authorization: str | None
) -> dict[str, Any]:
    headers = {k: str(v) for k, v in (inner.get("headers") or {}).items()}
    if authorization:
        headers["Authorization"] = authorization
    content: bytes | None = None
    if "body" in inner:
        content = json.dumps(inner["body"]).encode()
        headers.setdefault("Content-Type", "application/json")
    url = "/v1.0/" + inner["url"].lstrip("/")
    answer = await http.request(inner["method"], url, headers=headers, content=content)
    result: dict[str, Any] = {"id": inner["id"], "status": answer.status_code}
    result["headers"] = {
        k: v
        for k, v in answer.headers.items()
        if k.lower() in ("retry-after", "content-type", "location")
    }
    if answer.headers.get("content-type", "").startswith("application/json"):
        result["body"] = answer.json()
    elif answer.content:
        result["body"] = base64.b64encode(answer.content).decode()
    return result


def _failed_dependency(inner: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": inner["id"],
        "status": 424,
        "body": {"error": {"code": "FailedDependency", "message": "A dependency failed."}},
    }


async def batch(request: Request) -> Response:
    state = fake_of(request)
    try:
        requests = _validate(json.loads(await request.body()))
    except (BadBatch, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return graph_error(400, "BadRequest", str(exc), state.clock.now())
    authorization = request.headers.get("authorization")
    sent = BATCH_SENT.set(state.clock.now())  # every inner request was sent with the batch
    try:
        answers = await _run_all(request, requests, authorization)
    finally:
        BATCH_SENT.reset(sent)
    random.Random(state.tokens_issued).shuffle(answers)
    return JSONResponse({"responses": answers})


async def _run_all(
    request: Request, requests: list[dict[str, Any]], authorization: str | None
) -> list[dict[str, Any]]:
    transport = httpx.ASGITransport(app=request.app)
    status: dict[str, int] = {}
    answers: list[dict[str, Any]] = []
    async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as http:
        for inner in requests:  # in the given order, so a dependency always ran before
            if any(status.get(d, 0) >= 400 for d in inner.get("dependsOn", [])):
                answer = _failed_dependency(inner)
            else:
                answer = await _run(http, inner, authorization)
            status[inner["id"]] = answer["status"]
            answers.append(answer)
    return answers
