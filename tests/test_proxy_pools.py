"""Who claims what (services/proxies.py ``claimable_by``, used by ``runs.claim_next``): a
pool-owned repository's jobs on its pool's members only, the pool balancing by load, nothing
for a proxy in maintenance; ``active_runs`` kept true by the claim and end transactions; the
claim one statement whatever the number of proxies and jobs. Real catalogs (SQLite and
PostgreSQL), several proxy rows, a manual clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from keepstone.clock import ManualClock
from keepstone.domain.errors import Conflict, InvalidInput
from keepstone.domain.jobs import JobEdit, SessionStatus
from keepstone.services import catalog, jobs, proxies, runs
from keepstone.services.catalog import OrganizationEdit, RepositoryEdit
from keepstone.services.context import Context
from keepstone.services.proxies import NewProxy, PoolEdit
from keepstone.store.tables import Proxy
from tests.test_copy_dispatch_work import counted


@dataclass
class Setup:
    ctx: Context
    clock: ManualClock
    tmp: Path
    org_id: str

    def proxy(self, name: str, threads: int = 4) -> str:
        """A remote proxy row, online (it has just heartbeated)."""
        proxy = proxies.add_proxy(self.ctx, NewProxy(name, threads_number=threads))
        catalog.heartbeat(self.ctx, proxy.id)
        return proxy.id

    def pool(self, name: str, members: list[str]) -> str:
        return proxies.create_pool(self.ctx, PoolEdit(name, "", members)).id

    def repository(self, name: str, pool_id: str | None = None, proxy_id: str | None = None) -> str:
        spec = RepositoryEdit(
            name=name, path=str(self.tmp / name), proxy_pool_id=pool_id, proxy_id=proxy_id
        )
        return catalog.create_repository(self.ctx, spec).id

    def queued(self, repo_id: str, name: str) -> str:
        """A job on the repository with a run queued (a manual start)."""
        job = jobs.create_job(self.ctx, self.org_id, JobEdit(name=name, repository_id=repo_id))
        runs.start_job(self.ctx, job.job.id, "test")
        return job.job.id

    def active(self, proxy_id: str) -> int:
        with self.ctx.db.read() as s:
            row = s.get(Proxy, proxy_id)
            assert row is not None
            return row.active_runs


@pytest.fixture
def setup(ctx: Context, clock: ManualClock, tmp_path: Path) -> Setup:
    source = tmp_path / "org"
    source.mkdir()
    edit = OrganizationEdit(name="acme", type="Local", local_path=str(source))
    org = catalog.create_organization(ctx, edit)
    return Setup(ctx, clock, tmp_path, org.id)


def _claim(setup: Setup, proxy_id: str) -> runs.ClaimedRun | None:
    return runs.claim_next(setup.ctx, proxy_id)


def _local(ctx: Context) -> str:
    return next(p.id for p in catalog.list_proxies(ctx) if p.is_local)


def _end(setup: Setup, run: runs.ClaimedRun, proxy_id: str) -> None:
    ended = runs.end_attempt(
        setup.ctx, run, proxy_id, SessionStatus.SUCCESS, "done", dict(runs.EMPTY_STATISTICS), 100
    )
    assert ended is not None


def test_a_pool_owned_repository_runs_on_its_pool_only(setup: Setup) -> None:
    a, b, outsider = setup.proxy("a"), setup.proxy("b"), setup.proxy("outsider")
    pool = setup.pool("pool", [a, b])
    repo = setup.repository("pooled", pool)
    setup.queued(repo, "pooled job")
    assert _claim(setup, outsider) is None
    assert _claim(setup, _local(setup.ctx)) is None  # the job's own proxy field: not the pool's
    run = _claim(setup, b)
    assert run is not None and run.scope.repository_id == repo
    assert (setup.active(a), setup.active(b), setup.active(outsider)) == (0, 1, 0)


def test_a_repository_without_a_pool_runs_on_its_own_proxy(setup: Setup) -> None:
    own, member = setup.proxy("own"), setup.proxy("member")
    setup.pool("pool", [member])
    setup.queued(setup.repository("plain", proxy_id=own), "plain job")
    assert _claim(setup, member) is None
    assert _claim(setup, own) is not None


def test_a_proxy_in_maintenance_claims_nothing_and_its_runs_finish(setup: Setup) -> None:
    a, b = setup.proxy("a"), setup.proxy("b")
    repo = setup.repository("pooled", setup.pool("pool", [a, b]))
    setup.queued(repo, "first")
    first = _claim(setup, a)
    assert first is not None
    proxies.set_maintenance(setup.ctx, a, True)
    assert proxies.maintenance_state(catalog.get_proxy(setup.ctx, a)) == "Enabling"
    setup.queued(repo, "second")
    assert _claim(setup, a) is None
    assert runs.renew_lease(setup.ctx, first, a) is runs.RunState.CONTINUE  # it goes on
    _end(setup, first, a)
    assert proxies.maintenance_state(catalog.get_proxy(setup.ctx, a)) == "Enabled"
    assert _claim(setup, a) is None
    assert _claim(setup, b) is not None
    proxies.set_maintenance(setup.ctx, a, False)
    setup.queued(repo, "third")
    assert _claim(setup, a) is not None  # b works one run, a none: a is the lighter


def test_maintenance_holds_a_proxy_of_its_own_too(setup: Setup) -> None:
    own = setup.proxy("own")
    setup.queued(setup.repository("plain", proxy_id=own), "plain job")
    proxies.set_maintenance(setup.ctx, own, True)
    assert _claim(setup, own) is None
    proxies.set_maintenance(setup.ctx, own, False)
    assert _claim(setup, own) is not None


def test_a_pool_balances_by_load(setup: Setup) -> None:
    a, b = setup.proxy("a", threads=8), setup.proxy("b", threads=2)
    repo = setup.repository("pooled", setup.pool("pool", [a, b]))
    for n in range(4):
        setup.queued(repo, f"job {n}")
    assert _claim(setup, a) is not None  # 0/8 and 0/2: a tie, either may claim
    assert _claim(setup, a) is None  # a works 1/8, b 0/2: b is lighter
    assert _claim(setup, b) is not None  # 1/8 against 1/2: now a is lighter
    assert _claim(setup, b) is None
    assert _claim(setup, a) is not None  # 2/8 < 1/2
    assert (setup.active(a), setup.active(b)) == (2, 1)


def test_an_offline_or_maintained_peer_does_not_hold_a_member_back(setup: Setup) -> None:
    a, b = setup.proxy("a"), setup.proxy("b")
    repo = setup.repository("pooled", setup.pool("pool", [a, b]))
    for n in range(3):
        setup.queued(repo, f"job {n}")
    assert _claim(setup, a) is not None
    assert _claim(setup, a) is None  # b (0 runs) is lighter and online
    proxies.set_maintenance(setup.ctx, b, True)
    assert _claim(setup, a) is not None  # b claims nothing: it is no peer to wait for
    proxies.set_maintenance(setup.ctx, b, False)
    assert _claim(setup, a) is None
    setup.clock.advance(proxies.HEARTBEAT_STALE_AFTER)
    catalog.heartbeat(setup.ctx, a)  # a is alive; b has missed two leases: Offline
    assert proxies.proxy_status(catalog.get_proxy(setup.ctx, b), setup.clock.now()) == "Offline"
    assert _claim(setup, a) is not None


def test_active_runs_follow_claims_ends_and_reaping(setup: Setup) -> None:
    a = setup.proxy("a")
    repo = setup.repository("own", proxy_id=a)
    setup.queued(repo, "one")
    setup.queued(repo, "two")
    first, second = _claim(setup, a), _claim(setup, a)
    assert first is not None and second is not None and setup.active(a) == 2
    _end(setup, first, a)
    assert setup.active(a) == 1
    setup.clock.advance(runs.LEASE + timedelta(seconds=1))  # a stopped renewing the second
    assert runs.reap_lost_runs(setup.ctx) == 1
    assert setup.active(a) == 0
    late = runs.end_attempt(
        setup.ctx, second, a, SessionStatus.SUCCESS, "late", dict(runs.EMPTY_STATISTICS), 100
    )
    assert late is None and setup.active(a) == 0  # a lost claim counts nothing twice


def test_offline_within_two_lease_periods(setup: Setup) -> None:
    assert proxies.HEARTBEAT_STALE_AFTER == 2 * runs.LEASE
    a = setup.proxy("a")
    status = lambda: proxies.proxy_status(catalog.get_proxy(setup.ctx, a), setup.clock.now())  # noqa: E731
    assert status() == "Online"
    setup.clock.advance(2 * runs.LEASE - timedelta(seconds=1))
    assert status() == "Online"
    setup.clock.advance(timedelta(seconds=1))
    assert status() == "Offline"
    catalog.heartbeat(setup.ctx, a)
    assert status() == "Online"


def test_pool_membership_rules(setup: Setup) -> None:
    a, b, c = setup.proxy("a"), setup.proxy("b"), setup.proxy("c")
    pool = setup.pool("pool", [a, b])
    with pytest.raises(Conflict, match="another proxy pool"):
        setup.pool("other", [b, c])
    assert proxies.get_pool(setup.ctx, pool)  # the failed pool changed nothing
    assert [p.name for p in proxies.list_pools(setup.ctx)] == ["pool"]
    repo = setup.repository("pooled", pool, proxy_id=b)
    with pytest.raises(InvalidInput, match="is not in proxy pool"):
        setup.repository("wrong member", pool, proxy_id=c)
    proxies.remove_from_pool(setup.ctx, pool, [b])  # the repository's proxy: it names a now
    assert catalog.get_repository(setup.ctx, repo).proxy_id == a
    with pytest.raises(Conflict, match="must keep a proxy"):
        proxies.remove_from_pool(setup.ctx, pool, [a])
    with pytest.raises(Conflict, match="owns repository"):
        proxies.delete_pool(setup.ctx, pool)
    with pytest.raises(Conflict, match="used by repository"):
        proxies.remove_proxy(setup.ctx, a)
    proxies.remove_proxy(setup.ctx, b)  # in no pool and used by nothing
    with pytest.raises(Conflict, match="built into a server"):
        proxies.remove_proxy(setup.ctx, _local(setup.ctx))


def _claim_statements(setup: Setup, members: list[str], repo: str) -> int:
    with counted(setup.ctx) as statements:
        assert _claim(setup, members[-1]) is not None
    return len(statements)


def test_a_claim_costs_the_same_for_n_and_4n_proxies_and_jobs(setup: Setup) -> None:
    n = 3
    members = [setup.proxy(f"p{i}") for i in range(n)]
    pool = setup.pool("pool", members)
    repo = setup.repository("pooled", pool)
    for i in range(n):
        setup.queued(repo, f"job {i}")
    small = _claim_statements(setup, members, repo)
    more = [setup.proxy(f"q{i}") for i in range(3 * n)]
    proxies.add_to_pool(setup.ctx, pool, more)
    for i in range(3 * n):
        setup.queued(repo, f"more job {i}")
    # the claimer must be the lightest: the first member already works a run, so a new one
    assert _claim_statements(setup, more, repo) == small
