"""Schemathesis against the vendor's v6 and v8 specs, restricted to the operations the app serves.

Every operation gets its own test (``test_operation[v8 GET /v8/Jobs/{jobId}]``), run in process
against ``create_app`` with a logged-in administrator, over a catalog holding real data: a Local
organization with mail and OneDrive files, a job that has run (a session, log items, a restore
point) and an open restore session. Path parameters are the ids of that data most of the time
(otherwise every ``GET /Jobs/{jobId}`` would only ever see a 404) and generated ones otherwise.

A response passes when it is not a 5xx, conforms to the spec according to ``Spec.check_response``
(our validator: declared status, empty body where no content is declared, JSON schema with strict
uuid/date-time/int32/int64 formats, errors as ``{"message": ...}``), and passes schemathesis's own
checks except those switched off below with their reasons.

One catalog per spec version is shared by that version's tests, which run in an order that keeps
the data useful: reads first, then writes, then what stops or deletes the shared data. Bounded:
``MAX_EXAMPLES`` per operation, no shrinking, no stateful phase; under ``CI`` the conftest's
hypothesis profile derandomizes the examples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlsplit

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckFunction, GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import bootstrap, open_context
from keepstone.services import catalog
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, BASE_URL, START, login
from tests.contract.openapi import Operation, Spec, is_json_media_type, spec, spec_copy
from tests.contract.served import implemented_by_version
from tests.sources.builders import standard_org

VERSIONS_UNDER_TEST = (6, 8)
MAX_EXAMPLES = 10
# How an example's path parameters are chosen: as generated (mostly 404s), or the ids of the
# real data (with the generated query, or with none, which most often gets a 2xx).
VARIANTS = ("generated ids", "real ids", "real ids", "real ids, no query")
# Logging in and out are tested by tests/api; fuzzing them would end the session under test.
NOT_FUZZED = ("/token", "/token/logout", "/token/authcode")

load_all_checks()


def _checks(names: list[str]) -> list[CheckFunction]:
    """Built-in checks by name (they are all functions)."""
    return [cast(CheckFunction, check) for check in CHECKS.get_by_names(names)]


# schemathesis's checks that are switched off, and why:
EXCLUDED_CHECKS = _checks(
    [
        # "Schema-valid request rejected": the vendor's schemas constrain almost nothing (no
        # minimum on offset/limit, no required properties, no cross-field rules such as "a
        # SelectedItems job needs selected items" or "an organization must be one this server
        # can read"), so valid-per-schema requests are routinely and rightly refused with a 400,
        # by the vendor's server as by ours.
        "positive_data_acceptance",
        # "Schema-invalid request accepted": the vendor's server binds JSON like Newtonsoft does
        # (property names and enum values in any case, numbers and booleans as strings, unknown
        # properties ignored) and Keepstone does the same on purpose (docs/compatibility.md,
        # "Request bodies"), so many invalid-per-schema bodies are accepted by design.
        "negative_data_rejection",
        # "Missing required header": the only header the specs require is the Authorization one
        # of their security scheme, which the ignored_auth check already covers.
        "missing_required_header",
    ]
)
# "Undocumented Content-Type", for downloads only: the specs declare application/octet-stream
# for every download, Keepstone labels what it sends (message/rfc822 for a message saved as
# .eml, application/zip for several items); a client saves the bytes either way. JSON answers
# keep this check, and Spec.check_response requires application/json where it is declared.
DOWNLOAD_EXCLUDED_CHECKS = _checks(["content_type_conformance"])
# "API accepts requests without authentication", for the operations the vendor marks
# "x-anonymous" (v8's GET /Health): the spec's global security requirement, which schemathesis
# applies to every operation, does not hold for them; the vendor's server answers them without
# a token, and so does Keepstone.
ANONYMOUS_EXCLUDED_CHECKS = _checks(["ignored_auth"])


# ---- which operations ----------------------------------------------------------------------


def _order(operation: Operation) -> tuple[int, int, str]:
    """Reads, then writes, then what stops the shared restore session or disables the job,
    then deletes (deepest paths first, so a job's items go before the job)."""
    method, template = operation
    last = template.rsplit("/", 1)[-1].lower()
    depth = template.count("/")
    if method == "GET":
        return (0, depth, template)
    if method == "DELETE":
        return (3, -depth, template)
    if last in ("stop", "disable"):
        return (2, depth, template)
    return (1, depth, template)


def _fuzzed(version: int) -> list[Operation]:
    prefix = f"/v{version}"
    implemented = implemented_by_version()[version]
    return sorted(
        (op for op in implemented if op[1][len(prefix) :].lower() not in NOT_FUZZED),
        key=_order,
    )


def _parameters() -> Iterator[Any]:
    for version in VERSIONS_UNDER_TEST:
        operations = _fuzzed(version)
        if not operations:
            yield pytest.param(version, "", "", id=f"v{version} nothing implemented")
        for method, template in operations:
            yield pytest.param(version, method, template, id=f"v{version} {method} {template}")


# ---- the data under test -------------------------------------------------------------------


@dataclass
class Environment:
    version: int
    root: Path
    ctx: Context
    app: FastAPI
    token: str
    schema: Any  # schemathesis's OpenApiSchema of the version's spec
    ids: dict[str, list[str]] = field(default_factory=dict)  # list path (lower case) -> ids
    fuzzed_paths: int = 0  # directories handed out to generated bodies so far

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def real_path_parameters(self, template: str) -> dict[str, str] | None:
        """The template's path parameters filled with ids of the real data, left to right,
        or None when some parameter has no known id."""
        values: dict[str, str] = {}
        prefix = ""
        for segment in template.strip("/").split("/"):
            if segment.startswith("{"):
                known = self.ids.get(prefix.lower())
                if not known:
                    return None
                values[segment[1:-1]] = known[0]
                prefix += "/" + quote(known[0], safe="")
            else:
                prefix += "/" + segment
        return values


def build_environment(version: int, root: Path) -> Environment:
    """A catalog with real data, made through the API as the other tests make theirs."""
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        patch.delenv("KEEPSTONE_ADMIN_USER", raising=False)
        ctx = open_context(data_dir, ManualClock(START))
        bootstrap(ctx, data_dir)
    org_dir = standard_org(root / "org")
    app = create_app(ctx)
    with TestClient(app, base_url=BASE_URL) as client:
        token = login(client, "admin", ADMIN_PASSWORD)
        headers = {"Authorization": f"Bearer {token}"}

        def call(method: str, path: str, body: Any = None) -> Any:
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code in (200, 201, 204), f"{path}: {response.text}"
            return response.json() if response.content else None

        org = call(
            "POST",
            "/v2/Organizations",
            {"type": "Local", "name": "example.test", "localSettings": {"path": str(org_dir)}},
        )
        repository = call("GET", "/v2/BackupRepositories")[0]
        job = call(
            "POST",
            f"/v2/Organizations/{org['id']}/Jobs",
            {
                "name": "mail and files",
                "backupType": "SelectedItems",
                "repositoryId": repository["id"],
                "selectedItems": [
                    {"type": "User", "user": {"name": name}} for name in ("alice", "bob", "carol")
                ],
                "excludedItems": [{"type": "User", "user": {"name": "carol"}, "oneDrive": True}],
            },
        )
        call(  # its password is what /EncryptionKeys lists
            "POST",
            "/v2/BackupRepositories",
            {"name": "sealed", "path": str(root / "sealed"), "encryptionPassword": "s3cret pass"},
        )
        local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
        catalog.heartbeat(ctx, local.id)
        call("POST", f"/v2/Jobs/{job['id']}/Action", {"start": None})
        assert ProxyWorker(ctx, local.id).run_one(), "the job's run was not picked up"
        call("POST", f"/v2/Jobs/{job['id']}/Action", {"explore": {"type": "Vex"}})
        schema = schemathesis.openapi.from_dict(spec_copy(version))
        schema.config.update(base_url=BASE_URL, headers=headers)
        schema.app = app
        environment = Environment(version, root, ctx, app, token, schema)
        environment.ids = harvest_ids(client, headers, version)
    return environment


def harvest_ids(client: TestClient, headers: dict[str, str], version: int) -> dict[str, list[str]]:
    """GET every list of the spec whose path can be filled with ids found so far (parents
    before children), at this version or else at /v2, and keep the ids of what it lists."""
    ids: dict[str, list[str]] = {}
    prefix = f"/v{version}"
    templates = sorted(
        {
            template
            for method, template in spec(version).operations()
            if method == "GET" and not template.endswith("}")  # lists, not single resources
        },
        key=lambda template: template.count("/"),
    )
    for template in templates:
        path = _filled(template, ids)
        if path is None or path.lower() in ids:
            continue
        for candidate in (path, "/v2" + path[len(prefix) :]):
            found = _listed_ids(client.get(candidate, headers=headers))
            if found is not None:
                ids[path.lower()] = found
                break
    return ids


def _filled(template: str, ids: dict[str, list[str]]) -> str | None:
    path = ""
    for segment in template.strip("/").split("/"):
        if segment.startswith("{"):
            known = ids.get(path.lower())
            if not known:
                return None
            segment = quote(known[0], safe="")
        path += "/" + segment
    return path


def _listed_ids(response: Any) -> list[str] | None:
    content_type = response.headers.get("content-type", "")
    if response.status_code != 200 or not is_json_media_type(content_type):
        return None
    body = response.json()
    items = body.get("results") if isinstance(body, dict) else body
    if not isinstance(items, list):
        return None
    return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]


@pytest.fixture(scope="module")
def environments(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[int], Environment]]:
    """One environment per spec version, made when its first test runs."""
    made: dict[int, Environment] = {}

    def environment(version: int) -> Environment:
        if version not in made:
            made[version] = build_environment(version, tmp_path_factory.mktemp(f"v{version}"))
        return made[version]

    yield environment
    for each in made.values():
        each.ctx.db.dispose()


# ---- the test -----------------------------------------------------------------------------


def _sanitised(case: Case[Any], environment: Environment) -> None:
    """Keep generated requests inside the test's temporary directory: a repository's ``path``
    (or any ``path`` in a body) is a directory the server creates."""
    if not isinstance(case.body, dict):
        return
    for key in list(case.body):
        if isinstance(key, str) and key.lower() == "path":
            environment.fuzzed_paths += 1
            case.body[key] = str(environment.root / "fuzzed" / str(environment.fuzzed_paths))


def _downloads(checked: Spec, method: str, template: str) -> bool:
    responses = checked.operation(method, template).get("responses", {})
    return any(
        "application/octet-stream" in (response.get("content") or {})
        for status, response in responses.items()
        if status.startswith("2")
    )


@pytest.mark.parametrize(("version", "method", "template"), list(_parameters()))
def test_operation(
    version: int, method: str, template: str, environments: Callable[[int], Environment]
) -> None:
    if not method:
        pytest.fail(
            f"the app serves no operation of the vendor's v{version} spec (apart from the "
            f"token ones): nothing to test; is /v{version} mounted?"
        )
    environment = environments(version)
    operation = environment.schema[template][method.lower()]
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    real_ids = environment.real_path_parameters(template)
    checked = spec(version)
    excluded = EXCLUDED_CHECKS + (
        DOWNLOAD_EXCLUDED_CHECKS if _downloads(checked, method, template) else []
    )
    if checked.operation(method, template).get("x-anonymous"):
        excluded += ANONYMOUS_EXCLUDED_CHECKS

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, variant=st.sampled_from(VARIANTS))
    def conforms(case: Case[Any], variant: str) -> None:
        if real_ids and variant != "generated ids" and case.path_parameters is not None:
            case.path_parameters.update(real_ids)
            if variant == "real ids, no query":  # generated queries are mostly refused
                case.query = {}
        _sanitised(case, environment)
        response = case.call(app=environment.app, base_url=BASE_URL)
        note(f"request: {method} {response.request.url!r}\n  body: {response.request.body!r:.500}")
        url = response.request.url or ""
        sent = urlsplit(url.decode() if isinstance(url, bytes) else url).path
        status = response.status_code
        content_type = (response.headers.get("content-type") or [""])[0]
        assert status < 500, f"{method} {sent} -> {status}: {response.text[:500]}"
        checked.check_response(method, sent, status, content_type, response.content)
        case.validate_response(
            response,
            excluded_checks=excluded,
            headers=environment.headers,
            transport_kwargs={"app": environment.app, "base_url": BASE_URL},
        )

    conforms()
