"""One built-in proxy per server of a catalog (``catalog.ensure_local_proxy``): the first server
adopts the built-in row no server owns, later servers make their own, and a server starting
abandons only its own proxy's runs, never another server's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog, runs
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession, Proxy

SERVER_A = "00000000-0000-4000-8000-00000000000a"
SERVER_B = "00000000-0000-4000-8000-00000000000b"


def _built_in(ctx: Context) -> int:
    with ctx.db.read() as s:
        return s.scalar(select(func.count()).where(Proxy.is_local.is_(True))) or 0


def test_the_first_server_adopts_the_built_in_row_and_a_later_one_makes_its_own(
    ctx: Context,
) -> None:
    with ctx.db.write() as s:  # the row as a single server (or an admin command) left it
        s.execute(update(Proxy).where(Proxy.is_local.is_(True)).values(server_id=None))
    [original] = [p for p in catalog.list_proxies(ctx) if p.is_local]
    assert catalog.ensure_local_proxy(ctx).id == original.id  # an admin command: makes none
    a = catalog.ensure_local_proxy(ctx, SERVER_A)
    assert (a.id, a.server_id) == (original.id, SERVER_A)
    b = catalog.ensure_local_proxy(ctx, SERVER_B)
    assert b.id != a.id and b.is_local and b.server_id == SERVER_B
    assert catalog.ensure_local_proxy(ctx, SERVER_A).id == a.id  # restarts find their own
    assert catalog.ensure_local_proxy(ctx, SERVER_B).id == b.id
    assert _built_in(ctx) == 2


def test_a_starting_server_abandons_only_its_own_proxys_runs(
    ctx: Context, job: dict[str, Any]
) -> None:
    with ctx.db.read() as s:
        own = s.scalar(select(Job.proxy_id).where(Job.id == job["id"]))
    assert own is not None
    other = catalog.ensure_local_proxy(ctx, SERVER_B)
    session = runs.start_job(ctx, job["id"], "manual")
    assert session is not None and runs.claim_next(ctx, own) is not None
    assert runs.abandon_runs_of(ctx, other.id) == 0  # server B starting
    with ctx.db.read() as s:
        running = s.get(JobSession, session.id)
        assert running is not None and running.status == SessionStatus.RUNNING.value
    assert runs.abandon_runs_of(ctx, own) == 1  # the owner restarting
