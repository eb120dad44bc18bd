"""No body makes a 500: every write route (POST, PUT, PATCH, DELETE) of /v2 and /v8, as the app
itself lists them (a new route is fuzzed without touching this file), gets arbitrary JSON values
(nested objects, huge and non-finite numbers, lone surrogates, NUL, long strings, the bodies'
own property names in any case) and arbitrary form and raw bodies, as an administrator, over a
catalog with real objects (tests/contract's: a Local organization, a job that has run, its
restore point and an open restore session) so that the path ids resolve.

Every answer must be below 500 and, if an error, the dialect's ``{"message": ...}``. Bounded:
``EXAMPLES`` per route, no shrinking; the CI profile of tests/conftest.py derandomizes them.
Routes run in an order that keeps the data useful: what stops the restore session or deletes
objects runs last, deepest paths first.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote, quote_from_bytes

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from keepstone.api.vb365.bodies import WireModel
from tests.conftest import ADMIN_PASSWORD, BASE_URL, login
from tests.contract.served import route_table_app
from tests.contract.test_schemathesis import Environment, build_environment
from tests.s3_server import account_body

VERSIONS_FUZZED = (2, 8)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
EXAMPLES = int(os.environ.get("KEEPSTONE_FUZZ_EXAMPLES", "10"))  # more for a deeper local run
Route = tuple[str, str]  # (METHOD, template)
route_table = functools.cache(route_table_app)


def write_routes() -> list[Route]:
    """(METHOD, template) of every write route of the fuzzed versions, read from the app."""
    prefixes = tuple(f"/v{n}/" for n in VERSIONS_FUZZED)
    found = {
        (method, context.path)
        for context in iter_route_contexts(route_table().routes)
        for method in context.methods or ()
        if method in WRITE_METHODS and context.path and context.path.startswith(prefixes)
    }
    return sorted(found, key=_order)


def body_properties(route: Route) -> list[str]:
    """The property names the route's body model knows (nested models' too), or all of them."""
    for context in iter_route_contexts(route_table().routes):
        original = context.original_route
        if context.path == route[1] and route[0] in (context.methods or ()):
            assert isinstance(original, APIRoute)
            annotations = [p.field_info.annotation for p in original.dependant.body_params]
            return sorted(_names_in(annotations)) or PROPERTIES
    return PROPERTIES


def _names_in(annotations: list[Any]) -> set[str]:
    names: set[str] = set()
    while annotations:
        annotation = annotations.pop()
        annotations.extend(get_args(annotation))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, field in annotation.model_fields.items():
                names.add(field.alias or name)
                annotations.append(field.annotation)
    return names


def _order(route: Route) -> tuple[int, int, str]:
    """Writes, then what stops the shared restore session, then deletes (deepest first)."""
    method, template = route
    depth = template.count("/")
    if method == "DELETE":
        return (2, -depth, template)
    stops_the_session = template.endswith(("{session_id}/stop", "{session_id}/Action"))
    if "/RestoreSessions/" in template and stops_the_session:
        return (1, depth, template)
    return (0, depth, template)


# ---- what a hostile client sends ---------------------------------------------------------------


def _property_names() -> list[str]:
    """Every property name a JSON body model knows (aliases), so generated objects hit them."""
    names: set[str] = set()
    pending: list[type[BaseModel]] = [WireModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        names.update(f.alias or n for n, f in model.model_fields.items())
    return sorted(names | {"grant_type", "username", "password", "refresh_token", "explore"})


NASTY_TEXT = [
    "",
    "\0",
    "a\0b",
    "\udc80",
    "\ud800x",
    "../../../../etc/passwd",
    "/etc",
    "C:\\Windows",
    ".&AC4ALg-",
    "NaN",
    "Infinity",
    "9" * 5000,
    "x" * 70_000,
    "-1",
    "true",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "task-99999999999999999999999",
    "\u202e\x1b[31m\r\n",
]
NASTY_NUMBERS = [2**63, 2**63 - 1, -(2**63) - 1, 10**20, 10**400, -0.0, 1e308, 5e-324]
PROPERTIES = _property_names()

texts = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(st.characters(exclude_categories=()), max_size=40),  # surrogates included
)
scalars = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(NASTY_NUMBERS),
    st.floats(),  # NaN and infinities: json.dumps writes them as NaN and Infinity
    texts,
)
deep_bodies = st.integers(60, 100_000).map(lambda n: ("[" * n + "]" * n).encode())


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str | None


def explicit_bodies(properties: list[str]) -> list[Body]:
    """Each property alone with a lone surrogate, and with one of the other nasty values."""
    nasty: list[Any] = [*NASTY_TEXT[1:], *NASTY_NUMBERS, {"a": ["\udc80"]}, [None], 1.5]
    found = []
    for n, name in enumerate(properties):
        for value in ("\udc80", nasty[n % len(nasty)]):
            found.append(Body(json.dumps({name: value}).encode(), "application/json"))
    return found


def bodies(properties: list[str]) -> st.SearchStrategy[Body]:
    """Bodies for a route whose body model knows ``properties``: mostly objects with those
    names (so values get past the first check and reach the parsers and services behind it)."""
    names = st.sampled_from(properties)
    keys = st.one_of(names, names, names.map(str.upper), st.sampled_from(PROPERTIES), texts)
    values = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)
        ),
        max_leaves=25,
    )
    flat = st.dictionaries(keys, scalars, min_size=1, max_size=3)
    as_json = st.one_of(
        flat,
        flat,
        flat,
        st.dictionaries(keys, values, max_size=8),
        st.lists(st.dictionaries(keys, values, max_size=4), max_size=3),  # list bodies
        values,
    ).map(lambda value: json.dumps(value).encode())
    # Numbers json.dumps cannot write: 5,000 digits (beyond Python's int parsing limit), 1e999.
    raw_numbers = st.tuples(names, st.sampled_from(["9" * 5000, "-1e999"])).map(
        lambda pair: f'{{"{pair[0]}": {pair[1]}}}'.encode()
    )
    field = st.one_of(names.map(str.encode), st.binary(max_size=8))
    field_value = st.one_of(
        st.binary(max_size=40), texts.map(lambda t: t.encode("utf-8", "surrogatepass"))
    )
    form = st.lists(st.tuples(field, field_value), max_size=6).map(
        lambda pairs: "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in pairs)
    )
    return st.one_of(
        as_json.map(lambda raw: Body(raw, "application/json")),
        as_json.map(lambda raw: Body(raw, "application/json")),
        as_json.map(lambda raw: Body(raw, "application/json")),
        as_json.map(lambda raw: Body(raw, None)),
        deep_bodies.map(lambda raw: Body(raw, "application/json")),
        raw_numbers.map(lambda raw: Body(raw, "application/json")),
        form.map(lambda text: Body(text.encode(), "application/x-www-form-urlencoded")),
        st.binary(max_size=200).map(lambda raw: Body(raw, "application/json")),
        st.just(Body(b"", None)),
    )


url_texts = st.one_of(  # a URL has a length limit the client enforces
    st.sampled_from([t[:300] for t in NASTY_TEXT]),
    st.text(st.characters(exclude_categories=()), max_size=40),
)
queries = st.lists(
    st.tuples(st.sampled_from(["ids", "offset", "limit", "setId", "x"]), url_texts), max_size=3
)
hostile_ids = st.one_of(url_texts, st.sampled_from(["99999999999999999999999", "%ED%B2%80", "%00"]))


# ---- the data under test -----------------------------------------------------------------------


@dataclass
class Catalog:
    environment: Environment
    ids: dict[str, str]  # path parameter name (or "item@Mailboxes"...) -> a real id
    logout_token: str

    def path(self, template: str, generated: dict[str, str]) -> str:
        filled = template
        for segment in template.split("/"):
            if segment.startswith("{"):
                name = segment[1:-1]
                value = generated.get(name) or self._real(name, template)
                raw = value.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8
                filled = filled.replace(segment, quote(raw, safe="%"), 1)
        return filled

    def _real(self, name: str, template: str) -> str:
        if name == "item":
            return self.ids["item@" + ("Mailboxes" if "/Mailboxes/" in template else "OneDrives")]
        return self.ids[name]


def _first(client: TestClient, headers: dict[str, str], path: str) -> str:
    body = client.get(path, headers=headers).json()
    rows = body["results"] if isinstance(body, dict) else body
    return str(rows[0]["id"])


def _real_ids(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    ids = {
        "job_id": _first(client, headers, "/v2/Jobs"),
        "org_id": _first(client, headers, "/v2/Organizations"),
        "proxy_id": _first(client, headers, "/v2/Proxies"),
        "session_id": _first(client, headers, "/v2/RestoreSessions"),
    }
    ids["repo_id"] = client.get(f"/v2/Jobs/{ids['job_id']}", headers=headers).json()["repositoryId"]
    ids["item_id"] = _first(client, headers, f"/v8/Jobs/{ids['job_id']}/SelectedItems")
    session = f"/v8/RestoreSessions/{ids['session_id']}/Organization"
    ids["owner_id"] = _first(client, headers, f"{session}/Mailboxes")
    ids["item@Mailboxes"] = _first(client, headers, f"{session}/Mailboxes/{ids['owner_id']}/Items")
    ids["item@OneDrives"] = _first(
        client, headers, f"{session}/OneDrives/{ids['owner_id']}/Documents"
    )
    ids["folder"] = _first(client, headers, f"{session}/Mailboxes/{ids['owner_id']}/Folders")
    ids["account_id"] = client.post("/v8/Accounts", json=account_body(), headers=headers).json()[
        "id"
    ]
    members = [{"proxyId": ids["proxy_id"]}]
    pool = {"name": "pool", "description": "", "proxyIds": members}
    ids["pool_id"] = client.post("/v8/ProxyPools", json=pool, headers=headers).json()["id"]
    role = {"name": "restorers", "access": "Restore", "operators": []}
    roles = f"/v8/Organizations/{ids['org_id']}/RbacRoles"
    ids["role_id"] = client.post(roles, json=role, headers=headers).json()["id"]
    return ids


def _copy_job(client: TestClient, headers: dict[str, str], job_id: str, root: Path) -> str:
    """A copy job of ``job_id`` to a repository of its own (``/CopyJobs/{copy_id}`` routes)."""
    repo = client.post(
        "/v8/BackupRepositories", headers=headers, json={"name": "copies", "path": str(root)}
    )
    body = {"backupJobId": job_id, "repositoryId": repo.json()["id"]}
    return str(client.post("/v6/CopyJobs", headers=headers, json=body).json()["id"])


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    environment = build_environment(8, tmp_path_factory.mktemp("fuzz"))
    with TestClient(environment.app, base_url=BASE_URL) as client:
        ids = _real_ids(client, environment.headers)
        copies = tmp_path_factory.mktemp("copies")
        ids["copy_id"] = _copy_job(client, environment.headers, ids["job_id"], copies)
        logout_token = login(client, "admin", ADMIN_PASSWORD)  # /Token/logout revokes this one
    yield Catalog(environment, ids, logout_token)
    environment.ctx.db.dispose()


# ---- the test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", write_routes(), ids=" ".join)
def test_no_body_makes_a_500(route: Route, catalog: Catalog) -> None:
    method, template = route
    names = [s[1:-1] for s in template.split("/") if s.startswith("{")]
    token = (
        catalog.logout_token if template.endswith("/Token/logout") else catalog.environment.token
    )
    client = TestClient(catalog.environment.app, base_url=BASE_URL, raise_server_exceptions=False)

    properties = body_properties(route)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(
        body=bodies(properties),
        query=queries,
        generated=st.dictionaries(st.sampled_from(names or ["-"]), hostile_ids, max_size=1)
        | st.just({}),
    )
    def answers_below_500(
        body: Body, query: list[tuple[str, str]], generated: dict[str, str]
    ) -> None:
        path = catalog.path(template, generated)
        headers = {"Authorization": f"Bearer {token}"}
        if body.content_type:
            headers["Content-Type"] = body.content_type
        params = [(k, v.encode("utf-8", "surrogatepass")) for k, v in query]
        response = client.request(
            method, path, content=body.content, headers=headers, params=params
        )
        note(f"{method} {response.request.url} body={body.content[:300]!r}")
        if os.environ.get("KEEPSTONE_FUZZ_TRACE"):
            print("FUZZ", method, template, response.status_code, response.text[:120])
        assert response.status_code < 500, response.text[:500]
        if response.status_code >= 400:
            assert isinstance(response.json().get("message"), str), response.text[:500]

    for body in explicit_bodies(properties):
        answers_below_500 = example(body=body, query=[], generated={})(answers_below_500)
    answers_below_500()
