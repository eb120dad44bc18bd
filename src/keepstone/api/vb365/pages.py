"""Lists of the JSON dialect: bare arrays in old versions, the vendor's page envelope in new ones.

A page is ``{offset, limit, setId, totalCount, results, _links}`` with first/prev/self/next links.
``setId`` names a snapshot of the listed set: a client that passes it back pages through the same
results even while the catalog changes underneath (the vendor's "cached request").

Large collections (jobs, sessions, log items, restore points and sessions, events) are paged by
the catalog (:func:`query_listing`): a page reads its rows and one count, whatever the set's size;
their snapshot is a *pin* (a creation cutoff, a last sequence number) that the service's queries
apply, and the set's count is kept with it. Small collections are still listed whole
(:func:`listing`).
"""

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Query, Request

from keepstone.api import public_url
from keepstone.api.vb365.versions import RELATIVE_LINKS_SINCE, ApiVersion, version_of
from keepstone.domain.errors import InvalidInput

DEFAULT_LIMIT, MAX_LIMIT = 30, 10_000
MAX_OFFSET = 2**31 - 1  # the specs' offset is an int32


@dataclass(frozen=True)
class PageRequest:
    offset: int
    limit: int | None  # None: not sent (bare arrays then list everything)
    set_id: str | None

    @property
    def size(self) -> int:
        return self.limit or DEFAULT_LIMIT


def page_request(
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    setId: Annotated[str | None, Query()] = None,
) -> PageRequest:
    if setId is not None:
        try:
            setId = str(uuid.UUID(setId))
        except ValueError:
            raise InvalidInput(f"'{setId}' is not a set id (a UUID)", "setId") from None
    return PageRequest(offset, limit, setId)


Paging = Annotated[PageRequest, Depends(page_request)]


class PageSets:
    """Recently listed sets by id; bounded in number and age, so memory stays small."""

    def __init__(self, capacity: int = 256, ttl: timedelta = timedelta(minutes=30)) -> None:
        self._sets: OrderedDict[str, tuple[datetime, Any]] = OrderedDict()
        self._capacity, self._ttl = capacity, ttl
        self._lock = threading.Lock()

    def remember(self, collection: str, snapshot: Any, now: datetime) -> str:
        set_id = str(uuid.uuid4())
        with self._lock:
            self._sets[set_id] = (now, (collection, snapshot))
            while len(self._sets) > self._capacity:
                self._sets.popitem(last=False)
        return set_id

    def recall(self, collection: str, set_id: str, now: datetime) -> Any:
        with self._lock:
            entry = self._sets.get(set_id)
            if entry is None or now - entry[0] > self._ttl or entry[1][0] != collection:
                raise InvalidInput(
                    f"set '{set_id}' is unknown or expired here; list again without setId",
                    "setId",
                )
            return entry[1][1]

    def snapshot(
        self, collection: str, set_id: str | None, take: Callable[[], Any], now: datetime
    ) -> tuple[str, Any]:
        """The set a page request reads: the one it names, or a new one ``take`` captures."""
        if set_id is not None:
            return set_id, self.recall(collection, set_id, now)
        snapshot = take()
        return self.remember(collection, snapshot, now), snapshot


def page_sets(request: Request) -> PageSets:
    sets: PageSets = request.app.state.page_sets
    return sets


def envelope(
    request: Request, results: list[Any], paging: PageRequest, total: int, set_id: str
) -> dict[str, Any]:
    """The vendor's page: the results plus links to the first, previous, this and next page."""
    offset, limit = paging.offset, paging.size
    kept = _filters(request)
    # paths from v6, absolute URLs before, as every other link (versions.RELATIVE_LINKS_SINCE)
    relative = version_of(request.scope["path"]) >= RELATIVE_LINKS_SINCE
    base = request.url.path if relative else public_url.base_url(request) + request.url.path

    def at(start: int) -> dict[str, str]:
        query = [*kept, ("offset", str(start)), ("limit", str(limit)), ("setId", set_id)]
        return {"href": f"{base}?{urlencode(query)}"}

    links = {"first": at(0), "self": at(offset)}
    if offset > 0:
        links["prev"] = at(max(0, offset - limit))
    if offset + limit < total:
        links["next"] = at(offset + limit)
    return {
        "offset": offset,
        "limit": limit,
        "setId": set_id,
        "totalCount": total,
        "results": results,
        "_links": links,
    }


MAX_ENDS = 64  # page boundaries a set remembers (a client walks pages in order)


def _filters(request: Request) -> list[tuple[str, str]]:
    """The request's query less its paging: what the listing shows."""
    return [
        (k, v)
        for k, v in parse_qsl(request.url.query, keep_blank_values=True)
        if k.lower() not in ("offset", "limit", "setid")
    ]


def _listed(request: Request) -> str:
    return f"{request.url.path}?{urlencode(sorted(_filters(request)))}"


@dataclass(frozen=True, slots=True)
class PinnedSet:
    """A catalog-paged set: what pins it (passed to the queries), its count when listed, and
    the keys of the last row of the pages it served, by the listing (path and filters: a
    client may pass a set's id with other filters) and the offset that follows each page."""

    pin: Any
    total: int
    ends: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def end_before(self, listed: str, offset: int) -> tuple[Any, ...] | None:
        with self.lock:
            return self.ends.get((listed, offset)) if offset else None

    def remember_end(self, listed: str, offset: int, key: tuple[Any, ...]) -> None:
        with self.lock:
            self.ends.pop((listed, offset), None)
            self.ends[listed, offset] = key
            while len(self.ends) > MAX_ENDS:
                del self.ends[next(iter(self.ends))]


@dataclass(frozen=True, slots=True)
class Continuation:
    """How a set's next page continues from the previous page's last row (keyset paging):
    ``key(row)`` is a row's sort key, ``page(pin, after, limit)`` the window after a key."""

    key: Callable[[Any], tuple[Any, ...]]
    page: Callable[[Any, tuple[Any, ...], int], Sequence[Any]]


def query_listing(
    request: Request,
    api: ApiVersion,
    collection: str,
    pin: Callable[[], Any],
    page: Callable[[Any, int, int | None, int | None], Sequence[Any]],
    count: Callable[[Any], int],
    render: Callable[[Sequence[Any]], list[dict[str, Any]]],
    paging: PageRequest,
    now: datetime,
    continuation: Continuation | None = None,
) -> Any:
    """A collection paged in the catalog: ``pin()`` captures the set (``None`` pins nothing),
    ``page(pin, offset, limit, total)`` reads one window of it (``limit`` None: to the end;
    ``total``, the set's size when known, lets a deep window be read from the set's end), and
    ``count(pin)`` its size, once per set (a page named by ``setId`` reuses the count).

    With a ``continuation``, a page that follows a page the set served (the client walking
    the set's ``next`` links) continues from that page's last row instead of skipping
    ``offset`` rows: the same rows, since the set is pinned, at the cost of the first page."""
    if not api.pages(collection):
        return render(page(None, paging.offset, paging.limit, None))

    def take() -> PinnedSet:
        pinned = pin()
        return PinnedSet(pinned, count(pinned))

    set_id, pinned = page_sets(request).snapshot(collection, paging.set_id, take, now)
    offset, size = paging.offset, paging.size
    listed = _listed(request)
    after = pinned.end_before(listed, offset) if continuation is not None else None
    if continuation is not None and after is not None:
        rows = continuation.page(pinned.pin, after, size)
    else:
        rows = page(pinned.pin, offset, size, pinned.total)
    if continuation is not None and len(rows) == size and offset + size < pinned.total:
        pinned.remember_end(listed, offset + size, continuation.key(rows[-1]))
    return envelope(request, render(rows), paging, pinned.total, set_id)


def listing(
    request: Request,
    api: ApiVersion,
    collection: str,
    rows: Callable[[], Sequence[Any]],
    render: Callable[[Any], dict[str, Any]],
    paging: PageRequest,
    now: datetime,
) -> Any:
    """A whole collection listed in memory, answered as this version lists ``collection``.
    ``rows()`` gives a list (copied: the set kept must not change) or an immutable sequence
    read a window at a time (``restores.OwnerItems``), kept as it is: a page reads its own
    window of it."""
    if not api.pages(collection):
        everything = _kept(rows())
        end = None if paging.limit is None else paging.offset + paging.limit
        return [render(row) for row in everything[paging.offset : end]]

    def take() -> Sequence[Any]:
        return _kept(rows())

    set_id, snapshot = page_sets(request).snapshot(collection, paging.set_id, take, now)
    window = snapshot[paging.offset : paging.offset + paging.size]
    return envelope(request, [render(row) for row in window], paging, len(snapshot), set_id)


def _kept(rows: Sequence[Any]) -> Sequence[Any]:
    return list(rows) if isinstance(rows, list) else rows
