"""Proxies and proxy pools: adding remote proxies, removing them, maintenance mode, pools, and
who may claim which run.

A remote proxy is added in two steps: ``POST /vN/Proxies`` makes its row (no credential yet),
and ``keepstone proxy --name <hostName>`` later registers with a one-time token and binds to
that row by name (``services/proxy_link.py``). What a proxy reports of itself (version, load,
runs it works) is written by its heartbeat and read from the row here.

A repository owned by a pool (v8 ``proxyPoolId``) has its jobs run on the pool's proxies only,
and the pool balances by load: a member claims only when no other online member out of
maintenance works a smaller share of its threads (:func:`claimable_by`).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from keepstone.domain.errors import Conflict, InvalidInput, NotFound
from keepstone.domain.jobs import check_description, check_name
from keepstone.services.context import Context, new_id
from keepstone.store.tables import Job, JobSession, Proxy, ProxyPool, Repository

PROXY_PORT = 9193
PROXY_THREADS = 64
MAX_THREADS = 512
# Offline once a proxy missed two lease periods (runs.LEASE, 30 s): a proxy renews its runs'
# leases and heartbeats well inside one, so two missed mean it is gone (tests check the ratio).
HEARTBEAT_STALE_AFTER = timedelta(seconds=60)
LOCAL_TYPE = "Local"
# The vendor's type of a proxy outside the server's domain; Keepstone's remote proxies join
# through a registration token, not a domain, so every remote proxy is one.
REMOTE_TYPE = "Workgroup"


# ---- what a proxy is -------------------------------------------------------------------------


def proxy_status(proxy: Proxy, now: datetime) -> str:
    alive = proxy.heartbeat_at is not None and now - proxy.heartbeat_at < HEARTBEAT_STALE_AFTER
    return "Online" if alive else "Offline"


def proxy_type(proxy: Proxy) -> str:
    return LOCAL_TYPE if proxy.is_local else REMOTE_TYPE


def operating_system(proxy: Proxy) -> str | None:
    """v8 ``operatingSystem`` (Windows or Linux) of a server's built-in proxy: this process's
    system; None for a remote one, which does not report it."""
    if not proxy.is_local:
        return None
    system = platform.system()
    return system if system in ("Linux", "Windows") else None


def maintenance_state(proxy: Proxy) -> str:
    """v8 ``maintenanceModeState``: Enabling while runs it had claimed still finish."""
    if not proxy.maintenance:
        return "Disabled"
    return "Enabling" if proxy.active_runs > 0 else "Enabled"


# ---- proxies ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewProxy:
    host_name: str | None
    description: str | None = None
    port: int | None = None
    threads_number: int | None = None


def add_proxy(ctx: Context, spec: NewProxy) -> Proxy:
    """A remote proxy awaiting its registration: ``keepstone proxy --name`` binds to it."""
    host_name = _host_name(spec.host_name)
    port = PROXY_PORT if spec.port is None else spec.port
    if not 1 <= port <= 65535:
        raise InvalidInput("port must be between 1 and 65535", "port")
    threads = PROXY_THREADS if spec.threads_number is None else check_threads(spec.threads_number)
    with ctx.db.write() as s:
        clash = s.scalar(select(Proxy.id).where(func.lower(Proxy.host_name) == host_name.lower()))
        if clash is not None:
            raise Conflict(f"a proxy with host name '{host_name}' already exists ({clash})")
        proxy = Proxy(
            id=new_id(),
            host_name=host_name,
            description=check_description(spec.description or ""),
            port=port,
            threads_number=threads,
            is_local=False,
            heartbeat_at=None,
            version="",
            active_runs=0,
            maintenance=False,
        )
        s.add(proxy)
    return proxy


def _host_name(value: str | None) -> str:
    if value is None:
        raise InvalidInput("hostName is required", "hostName")
    try:
        name = check_name(value)
    except InvalidInput as error:
        raise InvalidInput(str(error).replace("name", "hostName", 1), "hostName") from None
    if any(c.isspace() for c in name):
        raise InvalidInput("hostName must not contain spaces", "hostName")
    return name


def check_threads(threads: int) -> int:
    if not 1 <= threads <= MAX_THREADS:
        raise InvalidInput(f"threadsNumber must be between 1 and {MAX_THREADS}", "threadsNumber")
    return threads


def remove_proxy(ctx: Context, proxy_id: str) -> None:
    """Refused for a built-in proxy and for one a repository or job uses or a run runs on:
    their rows refer to it (the vendor's ``force`` does not override what would dangle)."""
    with ctx.db.write() as s:
        proxy = get_proxy_in(s, proxy_id)
        if proxy.is_local:
            raise Conflict(f"proxy '{proxy.host_name}' is built into a server: it stays")
        _refuse_in_use(s, proxy)
        s.delete(proxy)


def _refuse_in_use(s: Session, proxy: Proxy) -> None:
    repository = s.scalar(select(Repository.name).where(Repository.proxy_id == proxy.id).limit(1))
    if repository is not None:
        raise Conflict(f"proxy '{proxy.host_name}' is used by repository '{repository}'")
    job = s.scalar(select(Job.name).where(Job.proxy_id == proxy.id).limit(1))
    if job is not None:
        raise Conflict(f"proxy '{proxy.host_name}' is used by job '{job}'")
    running = s.scalar(
        select(JobSession.id)
        .where(JobSession.claimed_by == proxy.id, JobSession.end_time.is_(None))
        .limit(1)
    )
    if running is not None or proxy.active_runs > 0:
        raise Conflict(f"proxy '{proxy.host_name}' is running a job")


def set_maintenance(ctx: Context, proxy_id: str, enabled: bool) -> Proxy:
    """In maintenance a proxy claims nothing; the runs it works go on to their end."""
    with ctx.db.write() as s:
        proxy = get_proxy_in(s, proxy_id)
        proxy.maintenance = enabled
    return proxy


def get_proxy_in(s: Session, proxy_id: str) -> Proxy:
    proxy = s.get(Proxy, proxy_id)
    if proxy is None:
        raise NotFound(f"proxy '{proxy_id}' does not exist")
    return proxy


# ---- who claims what -------------------------------------------------------------------------


def claimable_by(proxy_id: str, now: datetime) -> ColumnElement[bool]:
    """The runs (rows of ``Job``, joined by the claim) proxy ``proxy_id`` may claim now.

    Never while it is in maintenance. A job whose repository a pool owns: only the pool's
    members, and among them only one that no other online member out of maintenance undercuts
    in load (``active_runs / threads_number``; ties: any, SKIP LOCKED keeps claims apart). Any
    other job: only its own proxy. Correlated subqueries on primary keys and ``pool_id``: the
    claim stays one statement whatever the number of proxies and jobs.
    """
    me = aliased(Proxy, name="claimer")
    peer = aliased(Proxy, name="peer")
    repo = aliased(Repository, name="claimed_repository")
    lighter_peer = exists().where(
        peer.pool_id == repo.proxy_pool_id,
        peer.id != me.id,
        peer.maintenance.is_(False),
        peer.heartbeat_at > now - HEARTBEAT_STALE_AFTER,
        # peer.active_runs / peer.threads < me.active_runs / me.threads, without division
        peer.active_runs * me.threads_number < me.active_runs * peer.threads_number,
    )
    return exists().where(
        me.id == proxy_id,
        me.maintenance.is_(False),
        repo.id == Job.repository_id,
        or_(
            and_(repo.proxy_pool_id.is_(None), Job.proxy_id == me.id),
            and_(repo.proxy_pool_id == me.pool_id, ~lighter_peer),
        ),
    )


def take_run_in(s: Session, proxy_id: str) -> None:
    """In the claim's transaction: the proxy works one run more."""
    s.execute(update(Proxy).where(Proxy.id == proxy_id).values(active_runs=Proxy.active_runs + 1))


def release_run_in(s: Session, proxy_id: str | None) -> None:
    """In the transaction that ends an attempt (its end, or the reaper's): one run less."""
    if proxy_id is None:
        return
    s.execute(
        update(Proxy)
        .where(Proxy.id == proxy_id)
        .values(active_runs=case((Proxy.active_runs > 0, Proxy.active_runs - 1), else_=0))
    )


# ---- pools -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolEdit:
    name: str | None = None
    description: str | None = None
    proxy_ids: Sequence[str] | None = None  # the members; None: unchanged


def create_pool(ctx: Context, spec: PoolEdit) -> ProxyPool:
    if spec.name is None:
        raise InvalidInput("name is required", "name")
    if not spec.proxy_ids:
        raise InvalidInput("a proxy pool needs at least one proxy", "proxyIds")
    with ctx.db.write() as s:
        pool = ProxyPool(id=new_id(), name=check_name(spec.name), description="")
        pool.description = check_description(spec.description or "")
        _ensure_unique_pool(s, pool.name, None)
        s.add(pool)
        s.flush()
        _add_members(s, pool, spec.proxy_ids)
    return pool


def edit_pool(ctx: Context, pool_id: str, edit: PoolEdit) -> ProxyPool:
    """``PUT``: the name and description, and the members when ``proxyIds`` is sent."""
    with ctx.db.write() as s:
        pool = get_pool_in(s, pool_id)
        if edit.name is not None:
            pool.name = check_name(edit.name)
            _ensure_unique_pool(s, pool.name, pool.id)
        if edit.description is not None:
            pool.description = check_description(edit.description)
        if edit.proxy_ids is not None:
            wanted = set(edit.proxy_ids)
            current = set(s.scalars(select(Proxy.id).where(Proxy.pool_id == pool.id)))
            _add_members(s, pool, [p for p in edit.proxy_ids if p not in current])
            _remove_members(s, pool, sorted(current - wanted))
    return pool


def delete_pool(ctx: Context, pool_id: str) -> None:
    """Refused while a repository belongs to the pool; its proxies stay, in no pool."""
    with ctx.db.write() as s:
        pool = get_pool_in(s, pool_id)
        owned = s.scalar(select(Repository.name).where(Repository.proxy_pool_id == pool.id))
        if owned is not None:
            raise Conflict(f"proxy pool '{pool.name}' owns repository '{owned}'")
        s.execute(update(Proxy).where(Proxy.pool_id == pool.id).values(pool_id=None))
        s.delete(pool)


def list_pools(ctx: Context) -> list[ProxyPool]:
    with ctx.db.read() as s:
        return list(s.scalars(select(ProxyPool).order_by(ProxyPool.name)))


def get_pool(ctx: Context, pool_id: str) -> ProxyPool:
    with ctx.db.read() as s:
        return get_pool_in(s, pool_id)


def get_pool_in(s: Session, pool_id: str, prop: str | None = None) -> ProxyPool:
    """``prop``: the body property that named the pool (a missing one is then a 400)."""
    pool = s.get(ProxyPool, pool_id)
    if pool is None:
        message = f"proxy pool '{pool_id}' does not exist"
        raise InvalidInput(message, prop) if prop else NotFound(message)
    return pool


def pool_proxies(ctx: Context, pool_id: str) -> list[Proxy]:
    with ctx.db.read() as s:
        get_pool_in(s, pool_id)
        return list(
            s.scalars(select(Proxy).where(Proxy.pool_id == pool_id).order_by(Proxy.host_name))
        )


def add_to_pool(ctx: Context, pool_id: str, proxy_ids: Sequence[str]) -> None:
    with ctx.db.write() as s:
        _add_members(s, get_pool_in(s, pool_id), proxy_ids)


def remove_from_pool(ctx: Context, pool_id: str, proxy_ids: Sequence[str]) -> None:
    with ctx.db.write() as s:
        _remove_members(s, get_pool_in(s, pool_id), proxy_ids)


def _add_members(s: Session, pool: ProxyPool, proxy_ids: Sequence[str]) -> None:
    """A proxy belongs to one pool at most; one already in this pool is left as it is."""
    for proxy in _proxies(s, proxy_ids):
        if proxy.pool_id not in (None, pool.id):
            raise Conflict(f"proxy '{proxy.host_name}' already belongs to another proxy pool")
        proxy.pool_id = pool.id


def _remove_members(s: Session, pool: ProxyPool, proxy_ids: Sequence[str]) -> None:
    """The pool's repositories keep a member as their proxy (for views), so one that named a
    leaving proxy names a remaining one; a pool that owns repositories keeps one member."""
    leaving = _proxies(s, proxy_ids)
    for proxy in leaving:
        if proxy.pool_id != pool.id:
            raise InvalidInput(f"proxy '{proxy.id}' is not in proxy pool '{pool.name}'", "proxyId")
        proxy.pool_id = None
    s.flush()
    remaining = s.scalar(
        select(Proxy.id).where(Proxy.pool_id == pool.id).order_by(Proxy.host_name).limit(1)
    )
    owned = select(Repository.id).where(Repository.proxy_pool_id == pool.id)
    if remaining is None and s.scalar(owned.limit(1)) is not None:
        raise Conflict(f"proxy pool '{pool.name}' owns repositories: it must keep a proxy")
    s.execute(
        update(Repository)
        .where(
            Repository.proxy_pool_id == pool.id,
            Repository.proxy_id.in_([p.id for p in leaving]),
        )
        .values(proxy_id=remaining)
    )


def _proxies(s: Session, proxy_ids: Sequence[str]) -> list[Proxy]:
    """The proxies named, all of them or a 400 naming the first missing one (one query)."""
    wanted = list(dict.fromkeys(proxy_ids))
    found = {p.id: p for p in s.scalars(select(Proxy).where(Proxy.id.in_(wanted)))}
    for proxy_id in wanted:
        if proxy_id not in found:
            raise InvalidInput(f"proxy '{proxy_id}' does not exist", "proxyId")
    return [found[p] for p in wanted]


def _ensure_unique_pool(s: Session, name: str, own_id: str | None) -> None:
    clash = s.scalar(select(ProxyPool.id).where(func.lower(ProxyPool.name) == name.lower()))
    if clash is not None and clash != own_id:
        raise InvalidInput(f"the name '{name}' is already taken", "name")


def pool_proxy_in(s: Session, pool_id: str, proxy_id: str | None) -> str:
    """A pool-owned repository's proxy (for views): ``proxy_id`` if sent, which must be a
    member, else the pool's first member."""
    pool = get_pool_in(s, pool_id, "proxyPoolId")
    members = list(
        s.scalars(select(Proxy.id).where(Proxy.pool_id == pool.id).order_by(Proxy.host_name))
    )
    if not members:
        raise InvalidInput(f"proxy pool '{pool.name}' has no proxies", "proxyPoolId")
    if proxy_id is None:
        return members[0]
    if proxy_id not in members:
        raise InvalidInput(f"proxy '{proxy_id}' is not in proxy pool '{pool.name}'", "proxyId")
    return proxy_id
