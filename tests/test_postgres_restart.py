"""A PostgreSQL restart in the middle of a run: every connection of the server is terminated, and
the run, the API and the wake-ups carry on without losing anything.

The tests restart a cluster of their own (the worker's shared one serves other tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.executor import Outcome, RunContext
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.store.db import database_url
from tests import postgres_server
from tests.conftest import Api
from tests.postgres_server import PostgresServer, listening

DEADLINE = 60.0  # generous: the machine is shared


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    with postgres_server.running() as server:
        yield server


@pytest.fixture
def catalog_url(own_postgres: PostgresServer) -> Iterator[str | None]:
    """Replaces conftest's: this module's catalogs live on its own restartable cluster."""
    name = own_postgres.create_database()
    yield database_url(own_postgres.url(name))
    own_postgres.drop_database(name)


def test_a_run_survives_a_postgresql_restart(
    ctx: Context, api: Api, job: dict[str, Any], own_postgres: PostgresServer
) -> None:
    at_checkpoint, restarted = threading.Event(), threading.Event()

    def executor(run: RunContext) -> Outcome:
        run.log(SessionStatus.SUCCESS, "before the restart")
        run.renew()
        at_checkpoint.set()
        assert restarted.wait(DEADLINE)
        # every pooled connection of this process was terminated by the restart
        assert run.renew() is None
        run.log(SessionStatus.SUCCESS, "after the restart")
        run.report(progress=100, transferred=1)
        return Outcome(SessionStatus.SUCCESS, "done")

    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    worker = ProxyWorker(ctx, local.id, executor, renew_every=0)
    response = api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None})
    assert response.status_code == 200, response.text
    outcome: list[bool] = []
    proxy = threading.Thread(target=lambda: outcome.append(worker.run_one()))
    proxy.start()
    try:
        assert at_checkpoint.wait(DEADLINE)
        own_postgres.restart()
    finally:
        restarted.set()
        proxy.join(DEADLINE)
    assert outcome == [True]
    sessions = api.rows(f"/v2/Jobs/{job['id']}/JobSessions")
    assert [(s["status"], s["retryCount"]) for s in sessions] == [("Success", 0)]
    log = api.get(f"/v2/JobSessions/{sessions[0]['id']}/LogItems").json()
    titles = [item["title"] for item in log]
    assert "[Success] before the restart" in titles
    assert "[Success] after the restart" in titles


def test_an_outcome_whose_connection_is_cut_mid_transaction_is_written_again(
    ctx: Context, api: Api, job: dict[str, Any], own_postgres: PostgresServer
) -> None:
    """The connection dies inside the transaction that ends the attempt (pre-ping cannot see
    that coming): the worker runs the transaction again rather than lose the run's outcome."""
    done = threading.Event()
    cut: list[int] = []

    def executor(_run: RunContext) -> Outcome:
        done.set()
        return Outcome(SessionStatus.SUCCESS, "done")

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if done.is_set() and not cut and "job_sessions" in statement:
            cut.append(conn.connection.dbapi_connection.info.backend_pid)
            with own_postgres.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (cut[0],))

    for engine in {ctx.db._reader, ctx.db._writer}:
        event.listen(engine, "before_cursor_execute", before)
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    assert ProxyWorker(ctx, local.id, executor, renew_every=0).run_one()
    assert cut, "no connection was cut"
    sessions = api.rows(f"/v2/Jobs/{job['id']}/JobSessions")
    assert [(s["status"], s["retryCount"]) for s in sessions] == [("Success", 0)]


def test_a_listener_comes_back_after_a_restart_and_reports_it_as_a_wake_up(
    ctx: Context, own_postgres: PostgresServer
) -> None:
    with listening(ctx.db.url, "keepstone_test", DEADLINE) as woken:
        own_postgres.restart()
        # notifications sent while it reconnected are lost: the reconnect itself wakes
        assert woken.wait(DEADLINE)
        woken.clear()
        _wait_for_notify(ctx, woken)


def _wait_for_notify(ctx: Context, woken: threading.Event) -> None:
    """Notify until the listener (subscribed again after its reconnect) hears it."""
    for _ in range(int(DEADLINE)):
        ctx.db.notify("keepstone_test")
        if woken.wait(1.0):
            return
    raise AssertionError("the listener never heard a notification after the restart")


def test_a_request_after_a_restart_is_answered(
    api: Api, job: dict[str, Any], own_postgres: PostgresServer
) -> None:
    own_postgres.restart()
    assert api.get(f"/v2/Jobs/{job['id']}").status_code == 200
