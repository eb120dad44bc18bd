"""The Office365 organization cache: the tenant's users, groups (with members), sites and teams,
one catalog row per object, refreshed by a sync (the create, ``POST /Organizations/{id}/Sync``,
and the scheduler every :data:`SYNC_INTERVAL`), and the sync's state as the vendor reports it.

A sync reads each part of the directory whole (``sources.graph.directory``) and replaces that
part's rows in one transaction, so a listing never sees half a sync; a part Graph refuses (the
application lacks ``Group.Read.All`` or ``Sites.Read.All``) keeps its previous rows and makes the
sync's result ``Error`` naming what failed, while the other parts are still refreshed. Only one
sync of an organization runs at a time; background syncs run on their own threads.

The directory is a source's data, and hostile: an object whose key (an id, a sign-in name, a
site's URL) the catalogs cannot keep as it is and alike (longer than its column, or holding NUL
or a lone surrogate: ``domain.text.storable``) is skipped, and the sync's result names how many;
an optional property too long for its column is dropped. One bad object never fails the sync:
a value longer than its column (which PostgreSQL refuses) or a lone surrogate (which neither
catalog encodes) once failed it whole, and the organization then had no users to back up.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import String, delete, func, insert, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import NotFound
from keepstone.domain.text import storable
from keepstone.services.context import Context
from keepstone.store.tables import (
    M365Group,
    M365GroupMember,
    M365Site,
    M365SyncState,
    M365User,
    Organization,
)

# Microsoft Graph's modules (and httpx under them) are imported by a sync, not with the cache:
# a server imports this module at its start, for the scheduler and the API, and needs them only
# when an Office365 organization is synced.
if TYPE_CHECKING:
    from keepstone.services.leadership import Fence
    from keepstone.sources.graph import directory
    from keepstone.sources.graph.access import GraphAccess, GraphUser
    from keepstone.sources.graph.client import GraphClient
    from keepstone.sources.graph.directory import Counter

    Reader = Callable[[Context, str, GraphClient, Counter], str | None]
    AccessOf = Callable[[Context, Organization], GraphAccess]

log = structlog.get_logger(__name__)
OFFICE365 = "Office365"
SYNC_INTERVAL = timedelta(hours=1)  # the periodic sync: new users appear within the hour
FULL = "Full"


# ---- reading the cache ------------------------------------------------------------------------


def vendor_id(graph_id: str, onprem_guid: str) -> str:
    """The vendor's id of a user or group: the Entra object id followed by the on-premises
    GUID, zeros for a cloud-only object (graph.md §5.2)."""
    return f"{graph_id}{onprem_guid}"


def cached_users(ctx: Context, org_id: str) -> list[M365User]:
    return page_cached_users(ctx, org_id)


def page_cached_users(
    ctx: Context, org_id: str, offset: int = 0, limit: int | None = None, search: str = ""
) -> list[M365User]:
    """The cached users by name (those whose name contains ``search``), a window or all."""
    query = select(M365User).where(M365User.organization_id == org_id)
    if search:
        query = query.where(func.lower(M365User.name).contains(search.lower(), autoescape=True))
    query = query.order_by(M365User.name, M365User.graph_id).offset(offset).limit(limit)
    with ctx.db.read() as s:
        return list(s.scalars(query))


def graph_user(row: M365User) -> GraphUser:
    from keepstone.sources.graph.access import GraphUser

    return GraphUser(
        name=row.name,
        graph_id=row.graph_id,
        display_name=row.display_name,
        kind=row.kind,
        has_mailbox=row.has_mailbox,
        has_archive=row.has_archive,
        has_onedrive=row.has_onedrive,
    )


def vendor_user_ids(ctx: Context, org_id: str) -> dict[str, str]:
    """user name -> the vendor's id of the user, as ``/Organizations/{id}/Users`` lists it and a
    job item names it (``user.id``): what ``domain.scope.ScopeUser.id`` must be for an Office365
    organization's users."""
    return {row.name: vendor_id(row.graph_id, row.onprem_guid) for row in cached_users(ctx, org_id)}


def graph_users(ctx: Context, org_id: str) -> list[GraphUser]:
    return [graph_user(row) for row in cached_users(ctx, org_id)]


def find_user(ctx: Context, org_id: str, user_id: str) -> M365User:
    """A cached user by the vendor's id, its bare Entra id, or its name (UPN)."""
    key = user_id.strip().lower()
    with ctx.db.read() as s:
        rows = s.scalars(
            select(M365User).where(
                M365User.organization_id == org_id,
                (M365User.graph_id == key[:36]) | (M365User.name == key),
            )
        )
        for row in rows:
            if key in (vendor_id(row.graph_id, row.onprem_guid), row.graph_id, row.name):
                return row
    raise NotFound(f"organization '{org_id}' has no user '{user_id}'")


def cached_groups(ctx: Context, org_id: str, *, teams: bool = False) -> list[M365Group]:
    query = select(M365Group).where(M365Group.organization_id == org_id)
    if teams:
        query = query.where(M365Group.is_team.is_(True))
    with ctx.db.read() as s:
        return list(s.scalars(query.order_by(M365Group.display_name, M365Group.graph_id)))


def find_group(ctx: Context, org_id: str, group_id: str, *, team: bool = False) -> M365Group:
    key = group_id.strip().lower()
    for row in cached_groups(ctx, org_id, teams=team):
        if key in (vendor_id(row.graph_id, row.onprem_guid), row.graph_id):
            return row
    raise NotFound(f"organization '{org_id}' has no {'team' if team else 'group'} '{group_id}'")


def cached_members(ctx: Context, org_id: str, group_id: str) -> list[M365GroupMember]:
    with ctx.db.read() as s:
        return list(
            s.scalars(
                select(M365GroupMember)
                .where(
                    M365GroupMember.organization_id == org_id,
                    M365GroupMember.group_id == group_id,
                )
                .order_by(M365GroupMember.name, M365GroupMember.member_id)
            )
        )


def cached_sites(ctx: Context, org_id: str) -> list[M365Site]:
    with ctx.db.read() as s:
        return list(
            s.scalars(
                select(M365Site).where(M365Site.organization_id == org_id).order_by(M365Site.url)
            )
        )


def sync_state(ctx: Context, org_id: str) -> M365SyncState:
    with ctx.db.read() as s:
        row = s.get(M365SyncState, org_id)
    return row or M365SyncState(organization_id=org_id)


def sync_states(ctx: Context) -> list[M365SyncState]:
    with ctx.db.read() as s:
        ids = list(
            s.scalars(
                select(Organization.id)
                .where(Organization.type == OFFICE365)
                .order_by(Organization.name)
            )
        )
        kept = {row.organization_id: row for row in s.scalars(select(M365SyncState))}
    return [kept.get(i) or M365SyncState(organization_id=i) for i in ids]


# ---- a sync -----------------------------------------------------------------------------------


@dataclass
class SyncResult:
    counter: Counter
    errors: list[str]


def sync(ctx: Context, org_id: str, access: GraphAccess, *, sharepoint: bool = True) -> SyncResult:
    """Read the directory through ``access`` and replace the cached parts it could read; the
    state says Running meanwhile and the result afterwards. Never raises for Graph's refusals:
    they are the result's errors. One sync of an organization at a time in this process (the
    create's own included): two would each honour only their own ``Retry-After`` and send inside
    the other's, which Graph counts as premature and answers by extending the penalty."""
    with SYNCS.exclusive(org_id):
        return _sync(ctx, org_id, access, sharepoint)


def _sync(ctx: Context, org_id: str, access: GraphAccess, sharepoint: bool) -> SyncResult:
    from keepstone.sources.graph.directory import Counter

    started = ctx.clock.now()
    _set_state(ctx, org_id, current_status="Running", current_type=FULL, current_start=started)
    counter, errors = Counter(), []
    try:
        with access.client() as client:
            for part, read in _parts(sharepoint):
                error = _sync_part(ctx, org_id, client, counter, part, read)
                if error:
                    errors.append(error)
                if error and part == "users" and _fatal(error):
                    break  # the login itself failed: the other parts would fail alike
    except Exception as error:  # a failed sync is a state to report, never a crashed thread
        log.exception("organization sync failed", organization=org_id)
        errors.append(f"sync failed: {type(error).__name__}")
    _finish(ctx, org_id, started, errors)
    return SyncResult(counter, errors)


def _fatal(error: str) -> bool:
    return error.startswith("users: the login service")


def _parts(sharepoint: bool) -> list[tuple[str, Reader]]:
    parts: list[tuple[str, Reader]] = [("users", _sync_users), ("groups", _sync_groups)]
    return [*parts, ("sites", _sync_sites)] if sharepoint else parts


def _sync_part(
    ctx: Context, org_id: str, client: GraphClient, counter: Counter, part: str, read: Reader
) -> str | None:
    from keepstone.sources.graph.errors import GraphError, TokenError

    try:
        skipped = read(ctx, org_id, client, counter)
    except TokenError as error:
        return f"{part}: the login service refused the application: {error.code}"
    except GraphError as error:
        return f"{part}: Graph answered {error.status} {error.code}: {error.message[:200]}"
    return None if skipped is None else f"{part}: {skipped}"


def _sync_users(ctx: Context, org_id: str, client: GraphClient, counter: Counter) -> str | None:
    from keepstone.sources.graph import directory

    users: list[directory.DirectoryUser] = []
    known = _known_users(ctx, org_id)  # what a lookup Graph does not answer keeps
    for page in directory.list_users(client, counter):
        users.extend(directory.with_mailboxes_and_drives(client, page, counter, known))
    unique = {u.graph_id: u for u in users}  # a replayed page must not double a row
    rows, skipped = kept_rows(M365User, [_user_row(org_id, u) for u in unique.values()], USER_KEYS)
    _replace(ctx, org_id, [(M365User, rows)])
    return _skipped(skipped, "an id or sign-in name")


def _known_users(ctx: Context, org_id: str) -> dict[str, directory.DirectoryUser]:
    """The cached users as the previous sync found them, by Graph id."""
    from keepstone.sources.graph import directory

    fields = directory.DirectoryUser.__slots__
    return {
        row.graph_id: directory.DirectoryUser(
            **{name: getattr(row, name) for name in fields} | {"licenses": tuple(row.licenses)}
        )
        for row in cached_users(ctx, org_id)
    }


def _user_row(org_id: str, user: directory.DirectoryUser) -> dict[str, Any]:
    row = asdict(user)
    row["licenses"] = list(user.licenses)
    return {"organization_id": org_id, **row}


def _sync_groups(ctx: Context, org_id: str, client: GraphClient, counter: Counter) -> str | None:
    from keepstone.sources.graph import directory

    groups = {g.graph_id: g for g in directory.list_groups(client, counter)}
    members: dict[tuple[str, str], dict[str, Any]] = {}
    for group in groups.values():
        for member in directory.list_members(client, group.graph_id, counter):
            members[(group.graph_id, member.member_id)] = {
                "organization_id": org_id,
                "group_id": group.graph_id,
                **asdict(member),
            }
    group_rows, skipped = kept_rows(
        M365Group, [{"organization_id": org_id, **asdict(g)} for g in groups.values()]
    )
    member_rows, members_skipped = kept_rows(M365GroupMember, list(members.values()))
    _replace(ctx, org_id, [(M365Group, group_rows), (M365GroupMember, member_rows)])
    if members_skipped:
        return _skipped(skipped, "an id", f", members: {members_skipped} skipped")
    return _skipped(skipped, "an id")


def _sync_sites(ctx: Context, org_id: str, client: GraphClient, counter: Counter) -> str | None:
    from keepstone.sources.graph import directory

    sites = {s.graph_id: s for s in directory.list_sites(client, counter)}
    rows, skipped = kept_rows(
        M365Site, [{"organization_id": org_id, **asdict(s)} for s in sites.values()], SITE_KEYS
    )
    _replace(ctx, org_id, [(M365Site, rows)])
    return _skipped(skipped, "an id or URL")


Table = type[M365User] | type[M365Group] | type[M365GroupMember] | type[M365Site]
# Besides each table's primary key, what finds an object: the user's sign-in name (its key in
# Keepstone's jobs, items and restores), the site's URL (how a restore reaches it).
USER_KEYS = frozenset({"name"})
SITE_KEYS = frozenset({"url"})


def kept_rows(
    table: Table, rows: list[dict[str, Any]], keys: frozenset[str] = frozenset()
) -> tuple[list[dict[str, Any]], int]:
    """The rows the catalogs keep as they are and alike, and how many they cannot. A row whose
    key (the table's primary key or one of ``keys``) is not ``storable`` or is longer than its
    column is dropped; any other text that is either becomes None, or drops its row if its
    column requires a value. The lengths are the table's own (SQLite would keep a longer value,
    PostgreSQL refuses it)."""
    columns = table.__table__.columns
    required = {c.name for c in columns if c.primary_key} | keys
    lengths = {c.name: c.type.length for c in columns if isinstance(c.type, String)}
    nullable = {c.name for c in columns if c.nullable}
    kept = []
    for row in rows:
        for name, value in row.items():
            if not isinstance(value, str) or _fits(value, lengths.get(name)):
                continue
            if name in required or name not in nullable:
                break
            row[name] = None
        else:
            kept.append(row)
    return kept, len(rows) - len(kept)


def _fits(text: str, length: int | None) -> bool:
    return storable(text) and (length is None or len(text) <= length)


def _skipped(count: int, what: str, also: str = "") -> str | None:
    """The sync's note about objects the cache could not keep (None: it kept every one)."""
    if not count and not also:
        return None
    return (
        f"{count} skipped{also}: {what} longer than the catalog keeps, "
        "or holding NUL or a lone surrogate"
    )


def _replace(
    ctx: Context, org_id: str, parts: Sequence[tuple[Table, list[dict[str, Any]]]]
) -> None:
    """The organization's rows of each table replaced at once (nothing if it was deleted
    meanwhile): two statements per table, whatever the number of rows."""
    with ctx.db.write() as s:
        if s.get(Organization, org_id) is None:
            return
        for table, rows in parts:
            s.execute(delete(table).where(table.organization_id == org_id))
            if rows:
                s.execute(insert(table), rows)


def _set_state(ctx: Context, org_id: str, fence: Fence | None = None, **values: Any) -> None:
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        _state_in(s, org_id, values)


def _state_in(s: Session, org_id: str, values: dict[str, Any]) -> None:
    if s.get(Organization, org_id) is None:
        return
    row = s.get(M365SyncState, org_id)
    if row is None:
        row = M365SyncState(organization_id=org_id)
        s.add(row)
    for name, value in values.items():
        setattr(row, name, value)


def _finish(ctx: Context, org_id: str, started: datetime, errors: list[str]) -> None:
    _set_state(
        ctx,
        org_id,
        last_type=FULL,
        last_result="Error" if errors else "Success",
        last_start=started,
        last_end=ctx.clock.now(),
        last_error="; ".join(errors)[:2000] if errors else None,
        current_status=None,
        current_type=None,
        current_scheduled=None,
        current_start=None,
    )


# ---- background syncs -------------------------------------------------------------------------


class Syncs:
    """The background syncs of this process: at most one per organization."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}
        self._exclusive: dict[str, threading.RLock] = {}
        self._syncing: collections.Counter[str] = collections.Counter()

    @contextmanager
    def exclusive(self, org_id: str) -> Iterator[None]:
        """Hold ``org_id``'s one sync slot (waiting for a sync already in it); meanwhile
        ``running`` says so, so the scheduler does not start another beside it. The thread
        holding it may take it again (a create holds it from before its organization is
        stored until its first sync has ended)."""
        with self._lock:
            slot = self._exclusive.setdefault(org_id, threading.RLock())
            self._syncing[org_id] += 1
        try:
            with slot:
                yield
        finally:
            with self._lock:
                self._syncing[org_id] -= 1
                if not self._syncing[org_id]:
                    del self._syncing[org_id], self._exclusive[org_id]

    def start(
        self, ctx: Context, org: Organization, access_of: AccessOf, fence: Fence | None = None
    ) -> bool:
        """Queue a sync of ``org`` and start it on a thread; False if one is already running.
        ``fence`` (the leader's) refuses the queuing, and so the sync, unless this server leads."""
        with self._lock:
            running = self._running.get(org.id)
            if running is not None and running.is_alive():
                return False
            _set_state(
                ctx,
                org.id,
                fence,
                current_status="Queued",
                current_type=FULL,
                current_scheduled=ctx.clock.now(),
                current_start=None,
            )
            thread = threading.Thread(
                target=self._run,
                args=(ctx, org, access_of),
                name="keepstone-m365-sync",
                daemon=True,
            )
            self._running[org.id] = thread
            thread.start()
            return True

    def _run(self, ctx: Context, org: Organization, access_of: AccessOf) -> None:
        try:
            access = access_of(ctx, org)
        except Exception as error:  # the vault lost the secrets: say so in the state
            _finish(ctx, org.id, ctx.clock.now(), [f"no credentials: {error}"])
            return
        sync(ctx, org.id, access, sharepoint=bool(org.settings.get("isSharePointOnline", True)))

    def running(self, org_id: str) -> bool:
        """Whether a sync of ``org_id`` is queued or running: a background one or an inline
        one (the create's)."""
        with self._lock:
            thread = self._running.get(org_id)
            inline = self._syncing[org_id] > 0
        return inline or (thread is not None and thread.is_alive())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running syncs; whether all have ended."""
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in threads)


SYNCS = Syncs()


def due_for_sync(ctx: Context) -> list[Organization]:
    """Office365 organizations whose last sync ended more than :data:`SYNC_INTERVAL` ago (or
    never), and none of whose syncs is queued or running. Whether a sync runs is asked after
    the states are read (a create holds its organization's slot from before storing it), and
    the states of the organizations that then look due are read again: a sync records its end
    before it lets the slot go, so one that ended between the read and the question is seen
    to have ended, not taken for one that never ran (a second sync beside the create's)."""
    now = ctx.clock.now()
    with ctx.db.read() as s:
        orgs = list(s.scalars(select(Organization).where(Organization.type == OFFICE365)))
        states = {row.organization_id: row for row in s.scalars(select(M365SyncState))}
    # a Queued/Running state no thread of this process runs was cut short by a restart
    candidates = [
        org for org in orgs if _due(states.get(org.id), now) and not SYNCS.running(org.id)
    ]
    if not candidates:
        return []
    with ctx.db.read() as s:
        again = {
            row.organization_id: row
            for row in s.scalars(
                select(M365SyncState).where(
                    M365SyncState.organization_id.in_([org.id for org in candidates])
                )
            )
        }
    return [org for org in candidates if _due(again.get(org.id), now)]


def _due(state: M365SyncState | None, now: datetime) -> bool:
    last = state.last_end if state is not None else None
    return last is None or now - last >= SYNC_INTERVAL
