"""The credential gate (api/credential_gate.py) answers exactly what FastAPI's routes answer: every
route of the app, asked without credentials, with the gate on and off gives the same status,
headers and body; the gate takes most of them (every route behind a credential check), and
leaves to FastAPI what FastAPI decides first (a body) or differently (credentials sent)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.api import credential_gate
from keepstone.api.deferred import install_all
from keepstone.api.edge import Edge

VARYING = {"x-request-id", "date"}


def _gate(client: TestClient) -> credential_gate.CredentialGate:
    """The gate of the app's edge (api/edge.py)."""
    app: Any = client.app
    [edge] = [m for m in app.user_middleware if m.cls is Edge]
    gate: credential_gate.CredentialGate = edge.kwargs["gate"]
    return gate


def _answer(client: TestClient, method: str, path: str, **kw: Any) -> tuple[Any, ...]:
    response = client.request(method, path, **kw)
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VARYING)
    return response.status_code, headers, response.text


def _requests(client: TestClient) -> list[tuple[str, str]]:
    """One request per method of every route of the app, path parameters filled in (of the
    JSON dialect's seven versions, the first and the last: the others are copies)."""
    found = []
    install_all(client.app)  # type: ignore[attr-defined]  # the deferred parts' routes too
    for _segment, route in credential_gate._flatten(client.app.routes):  # type: ignore[attr-defined]
        if route is None or re.match(r"/v[3-7]/", route.template):
            continue
        path = re.sub(r"\{[^}]+\}", "x1", route.template)
        found += [(method, path) for method in sorted(route.methods)]
    return found


@pytest.mark.sqlite_catalog  # routing: the catalog plays no part
def test_every_route_answers_the_same_without_credentials(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _gate(client)
    taken: list[str] = []
    check = gate.check_without_credentials

    def counting(scope: Any) -> Any:
        found = check(scope)
        if found is not None:
            taken.append(f"{scope['method']} {scope['path']}")
        return found

    monkeypatch.setattr(gate, "check_without_credentials", counting)
    requests = _requests(client)
    assert len(requests) > 300  # two versions of the JSON dialect, EM, the console
    gated = [_answer(client, method, path) for method, path in requests]
    assert len(taken) > 0.7 * len(requests)
    assert any(t.startswith("GET /api/") for t in taken)  # EM routes too
    monkeypatch.setattr(gate, "check_without_credentials", lambda _scope: None)
    plain = [_answer(client, method, path) for method, path in requests]
    for request, with_gate, without in zip(requests, gated, plain, strict=True):
        assert with_gate == without, request


@pytest.mark.sqlite_catalog
def test_what_fastapi_decides_first_is_left_to_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _gate(client)
    cases: list[tuple[str, str, dict[str, Any]]] = [
        (
            "PUT",
            "/v2/Jobs/x1",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
        ("GET", "/v2/Jobs", {"headers": {"Authorization": "Bearer nonsense"}}),
        ("GET", "/api/jobs", {"headers": {"X-RestSvcSessionId": "nonsense"}}),
        ("GET", "/v2/NoSuchThing", {}),
        ("DELETE", "/v2/Token", {}),  # a path that is served, but not for this method
        ("POST", "/v2/Token", {}),  # no credential check: the token endpoint itself
    ]
    gated = [_answer(client, method, path, **kw) for method, path, kw in cases]
    monkeypatch.setattr(gate, "check_without_credentials", lambda _scope: None)
    plain = [_answer(client, method, path, **kw) for method, path, kw in cases]
    assert gated == plain
    assert [status for status, _h, _b in gated][:3] == [400, 401, 401]


@pytest.mark.sqlite_catalog
def test_a_path_matched_again_is_the_same_route_and_the_memory_is_bounded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credential_gate, "MATCHES_KEPT", 8)
    routes = [route for _s, route in credential_gate._flatten(client.app.routes) if route]  # type: ignore[attr-defined]
    candidates = credential_gate._Candidates([r for r in routes if r.template.startswith("/v8/")])
    paths = [f"/v8/Jobs/{n}" for n in range(20)] + ["/v8/Nowhere/1", "/v8/Jobs"]
    first = [candidates.first_match(path) for path in paths]
    again = [candidates.first_match(path) for path in paths]
    assert first == again and len(candidates._matched) <= 8
    assert first[0] is not None and first[0].template == "/v8/Jobs/{job_id}"
    assert first[-2] is None
