"""/healthz, /readyz and the JSON dialect's /v8/Health: unauthenticated, without data (no path,
no error), and /readyz and /v8/Health true to the catalog, its schema and the repositories."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.store.db import Database
from tests.contract.openapi import spec
from tests.work import catalog_work

PROBES = ("/healthz", "/readyz")


@pytest.fixture
def served(ctx: Context, client: TestClient) -> TestClient:
    """The probes as the server sees them: this server's id known (its built-in proxy)."""
    ctx.server_id = catalog.ensure_local_proxy(ctx).server_id or ""
    return client


def _default_repository(ctx: Context) -> str:
    return next(r.path for r in catalog.list_repositories(ctx))


def test_probes_answer_without_credentials_or_data(served: TestClient) -> None:
    for path in PROBES:
        answer = served.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.text in ("ok\n", "ready\n")
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.headers["cache-control"] == "no-store"
        # the probes are no API resource: any other method is refused, nothing else answers
        assert served.post(path).status_code == 405


def test_not_ready_when_a_local_repository_is_gone(ctx: Context, served: TestClient) -> None:
    path = _default_repository(ctx)
    shutil.rmtree(path)
    answer = served.get("/readyz")
    assert answer.status_code == 503
    assert answer.text == "not ready\n"  # the reason is for the log, not for the caller
    assert path not in answer.text
    assert served.get("/healthz").status_code == 200  # the process itself is fine
    Path(path).mkdir()
    assert served.get("/readyz").status_code == 200


def test_not_ready_when_the_schema_is_not_this_servers(ctx: Context, served: TestClient) -> None:
    with ctx.db.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '0017'"))
    assert served.get("/readyz").status_code == 503


def test_another_servers_repository_is_reachable_while_its_proxy_is_online(
    ctx: Context, served: TestClient
) -> None:
    local = catalog.ensure_local_proxy(ctx)
    ctx.server_id = "another-server"  # the built-in proxy is now another server's
    assert served.get("/readyz").status_code == 503  # it never sent a heartbeat
    catalog.heartbeat(ctx, local.id)
    assert served.get("/readyz").status_code == 200


@contextmanager
def _catalog_away(ctx: Context, served: TestClient, tmp_path: Path) -> Iterator[None]:
    """The served app's catalog, for the duration, a file in a directory that does not exist."""
    unreachable = Database(f"sqlite:///{tmp_path / 'no-such-directory' / 'catalog.db'}")
    served.app.state.ctx = dataclasses.replace(ctx, db=unreachable)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        served.app.state.ctx = ctx  # type: ignore[attr-defined]
        unreachable.dispose()


@pytest.mark.sqlite_catalog
def test_not_ready_when_the_catalog_cannot_be_reached(
    ctx: Context, served: TestClient, tmp_path: Path
) -> None:
    with _catalog_away(ctx, served, tmp_path):
        assert served.get("/readyz").status_code == 503
        assert served.get("/healthz").status_code == 200


def test_readiness_reads_the_catalog_a_fixed_number_of_times(
    ctx: Context, served: TestClient, tmp_path: Path
) -> None:
    def statements(repositories: int) -> int:
        for index in range(len(catalog.list_repositories(ctx)), repositories):
            catalog.create_repository(
                ctx, catalog.RepositoryEdit(name=f"r{index}", path=str(tmp_path / f"r{index}"))
            )
        with catalog_work(ctx) as work:
            assert served.get("/readyz").status_code == 200
        return work.count

    assert statements(2) == statements(8)


def _health_report(served: TestClient) -> dict[str, object]:
    """``GET /v8/Health`` without credentials: always a 200 with the v8 spec's RESTHealthReport
    (the spec declares no other answer for it)."""
    answer = served.get("/v8/Health")
    assert answer.status_code == 200, answer.text
    spec(8).check_response("GET", "/v8/Health", 200, answer.headers["content-type"], answer.content)
    body: dict[str, object] = answer.json()
    return body


def _statuses(body: dict[str, object]) -> dict[str, object]:
    entries = body["entries"]
    assert isinstance(entries, dict)
    return {"": body["status"]} | {name: entry["status"] for name, entry in entries.items()}


def test_the_health_report_says_what_readyz_says_in_the_vendors_shape(
    ctx: Context, served: TestClient
) -> None:
    body = _health_report(served)
    assert _statuses(body) == {"": "Healthy", "catalog": "Healthy", "repositories": "Healthy"}
    assert served.get("/v7/Health").status_code == 404  # the vendor added it in v8

    path = _default_repository(ctx)
    shutil.rmtree(path)
    body = _health_report(served)
    assert _statuses(body) == {"": "Unhealthy", "catalog": "Healthy", "repositories": "Unhealthy"}
    assert path not in str(body) and "not a writable directory" not in str(body)
    Path(path).mkdir()

    with ctx.db.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '0017'"))
    body = _health_report(served)
    assert _statuses(body)["catalog"] == "Unhealthy"
    assert "0017" not in str(body)


@pytest.mark.sqlite_catalog
def test_the_health_report_does_not_check_repositories_without_the_catalog(
    ctx: Context, served: TestClient, tmp_path: Path
) -> None:
    with _catalog_away(ctx, served, tmp_path):
        body = _health_report(served)
    assert _statuses(body) == {"": "Unhealthy", "catalog": "Unhealthy", "repositories": "Unhealthy"}
    assert "no-such-directory" not in str(body)
