"""The Graph HTTP client: one TLS context, at most 4 requests in flight per mailbox, the request
budget and the ``Retry-After`` gates of domain/throttle.py asked before every request, bounded
retries with backoff, typed errors, paging and resumable downloads.

Calls are synchronous and thread-safe: the proxy backs up many mailboxes at once on its worker
threads, each thread working on one mailbox (``scope``)."""

from __future__ import annotations

import io
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

import httpx

from keepstone.domain.throttle import APP_SCOPE, Backoff, Discipline
from keepstone.sources.graph.errors import (
    GraphAnswerLost,
    GraphError,
    GraphUnavailable,
    graph_error,
)
from keepstone.sources.graph.settings import GraphEndpoints

MAILBOX_CONCURRENCY = 4  # Outlook's documented limit per app and mailbox (graph.md §2.2)
# Connections kept open: the connector reads 8 parts at once with up to 4 requests each; with
# httpx's default of 20 kept alive, every request beyond them paid a new TLS handshake.
KEPT_CONNECTIONS = 64
CONNECTION_LIMITS = httpx.Limits(
    max_connections=KEPT_CONNECTIONS, max_keepalive_connections=KEPT_CONNECTIONS
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
# Redirects that keep the method and body: an In-Place Archive's expanded folders and their
# messages live in an auxiliary archive, and Graph answers 308 toward it (beta archive mail API).
SAME_METHOD_REDIRECTS = frozenset({307, 308})
GATED_STATUSES = frozenset({429, 503, 504})  # where a Retry-After closes the scope
# transport failures before the request left: sending it again cannot make anything twice
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def retry_after_seconds(value: str | None, date: str | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds, or an HTTP-date taken relative to the
    answer's own ``Date`` (so the local wall clock's error does not matter). None if absent or
    unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        at = parsedate_to_datetime(text)
        now = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None
    if now is None:
        return max(0.0, at.timestamp() - time.time())
    return max(0.0, (at - now).total_seconds())


def inner_retry_after(answer: Mapping[str, Any]) -> float | None:
    """The ``Retry-After`` of one inner ``$batch`` answer, in seconds (None if it names none or
    the answer is not an object with headers)."""
    headers = answer.get("headers")
    if not isinstance(headers, dict):
        return None
    named = {str(k).lower(): str(v) for k, v in headers.items()}
    return retry_after_seconds(named.get("retry-after"))


@dataclass
class PageWalk:
    """The pages of a collection, following ``@odata.nextLink`` verbatim; once exhausted,
    ``delta_link`` holds the final ``@odata.deltaLink`` (None for a plain collection)."""

    client: GraphClient
    url: str
    scope: str
    headers: Mapping[str, str]
    delta_link: str | None = None
    requests: int = 0

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        url: str | None = self.url
        while url is not None:
            page = self.client.get_json(url, scope=self.scope, headers=self.headers)
            self.requests += 1
            value = page.get("value", [])
            if not isinstance(value, list):
                raise GraphError(200, "invalidPage", "a page's value is not a list", None)
            yield [item for item in value if isinstance(item, dict)]
            url = page.get("@odata.nextLink")
            if url is None:
                self.delta_link = page.get("@odata.deltaLink")


@dataclass
class Throttling:
    """What the discipline knows, with its lock and the slots per scope (4 in flight each).
    Graph counts an application's requests together whichever client sends them, so every
    client of one (Graph, tenant, application) in a process shares one (``shared_throttling``):
    a sync's ``Retry-After`` holds a backup's requests to the same scope, and the reverse."""

    discipline: Discipline = field(default_factory=Discipline)
    lock: threading.Lock = field(default_factory=threading.Lock)
    slots: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)


_SHARED: dict[tuple[str, str, str], Throttling] = {}
_SHARED_LOCK = threading.Lock()


def shared_throttling(graph_url: str, tenant: str, client_id: str) -> Throttling:
    """The one ``Throttling`` of an application in a tenant (kept for the process's life: one
    per organization)."""
    key = (graph_url, tenant.lower(), client_id.lower())
    with _SHARED_LOCK:
        return _SHARED.setdefault(key, Throttling())


@dataclass
class GraphClient:
    endpoints: GraphEndpoints
    token: Callable[[], str]  # a valid access token (auth.TokenSource caches until near expiry)
    tls: ssl.SSLContext | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    discipline: Discipline = field(default_factory=Discipline)
    backoff: Backoff = field(default_factory=Backoff)
    gated_attempts: int = 10  # Retry-After answers accepted for one call before giving up
    concurrency: int = MAILBOX_CONCURRENCY
    timeout: float = 60.0
    transport: httpx.BaseTransport | None = None
    throttling: Throttling | None = None  # None: this client's own (see shared_throttling)
    _http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        from keepstone.sources.graph.tls import graph_tls_context

        if self.throttling is None:
            self.throttling = Throttling(self.discipline)
        self.discipline = self.throttling.discipline

        self._http = httpx.Client(
            verify=self.tls or graph_tls_context(),
            timeout=self.timeout,
            follow_redirects=False,
            transport=self.transport,
            limits=CONNECTION_LIMITS,
        )

    def close(self) -> None:
        self._http.close()

    @property
    def _lock(self) -> threading.Lock:
        assert self.throttling is not None  # set by __post_init__
        return self.throttling.lock

    @property
    def _slots(self) -> dict[str, threading.BoundedSemaphore]:
        assert self.throttling is not None
        return self.throttling.slots

    # -- the public calls ---------------------------------------------------------------

    def get_json(
        self, url: str, *, scope: str = APP_SCOPE, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        response = self.request("GET", url, scope=scope, headers=headers)
        try:
            document = response.json()
        except ValueError:
            raise GraphError(response.status_code, "invalidJson", "not JSON", None) from None
        if not isinstance(document, dict):
            raise GraphError(response.status_code, "invalidJson", "not a JSON object", None)
        return document

    def iterate_pages(
        self, url: str, *, scope: str = APP_SCOPE, headers: Mapping[str, str] | None = None
    ) -> PageWalk:
        return PageWalk(self, url, scope, dict(headers or {}))

    def get_bytes(self, url: str, *, scope: str = APP_SCOPE) -> bytes:
        sink = io.BytesIO()
        self.download(url, sink, scope=scope)
        return sink.getvalue()

    def download(self, url: str, sink: BinaryIO, *, scope: str = APP_SCOPE) -> int:
        """Stream ``url`` into ``sink`` (seekable); a connection lost mid-body resumes with
        ``Range: bytes=N-`` from the bytes already written. Returns the byte count."""
        start = sink.tell()
        attempt = 0
        while True:
            written = sink.tell() - start
            headers = {"Range": f"bytes={written}-"} if written else {}
            try:
                with self._stream(url, scope, headers) as response:
                    if written and not _resumes_at(response, written):
                        sink.seek(start)  # the server sent the whole body again
                        sink.truncate()
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
                return sink.tell() - start
            except httpx.TransportError as error:
                self._pause(attempt, error)
                attempt += 1

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str = APP_SCOPE,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        replay: bool = True,
    ) -> httpx.Response:
        """One call with the whole discipline; a 2xx/3xx answer, or a typed GraphError. A 307/308
        is followed (a few times, only to Graph itself: the token never leaves it).
        ``replay=False`` (a create): a connection lost once the request may have reached Graph
        raises :class:`GraphAnswerLost` instead of sending it again, so the caller can look for
        what it made before it makes it twice."""
        attempt = gated = redirects = 0
        while True:
            try:
                response = self._send(method, url, scope, headers, content)
            except httpx.TransportError as error:
                if not replay and not isinstance(error, NOT_SENT):
                    raise GraphAnswerLost(0, "answerLost", str(error), None) from error
                self._pause(attempt, error)
                attempt += 1
                continue
            if response.status_code in SAME_METHOD_REDIRECTS:
                url = self._redirect(response, redirects)
                redirects += 1
                continue
            if response.status_code < 400:
                return response
            status = response.status_code
            if self._gated(scope, response, gated):
                gated += 1
                continue
            if status in RETRY_STATUSES and self.backoff.delay(attempt, 0.0) is not None:
                self._pause(attempt, None)
                attempt += 1
                continue
            raise graph_error(
                status,
                response.content,
                response.headers.get("request-id"),
                response.headers.get("Location"),
            )

    def hold(self, scope: str, seconds: float) -> None:
        """Close ``scope``'s gate for ``seconds``: a ``Retry-After`` named inside a ``$batch``
        answer (whose own status was 200) holds the scope's next requests like an outer one."""
        with self._lock:
            self.discipline.throttled(scope, self.clock(), seconds)

    def _redirect(self, response: httpx.Response, redirects: int) -> str:
        """Where a 307/308 points, if it may be followed: on Graph, within MAX_REDIRECTS."""
        location = response.headers.get("Location")
        if not location:
            raise GraphError(response.status_code, "redirectWithoutLocation", "", None)
        target = str(response.request.url.join(location))
        if not target.startswith(self.endpoints.graph_url + "/"):
            raise GraphError(
                response.status_code, "redirectRefused", "a redirect away from Graph", None
            )
        if redirects >= MAX_REDIRECTS:
            raise GraphError(response.status_code, "tooManyRedirects", target[-80:], None)
        return target

    # -- the discipline -----------------------------------------------------------------

    def _gated(self, scope: str, response: httpx.Response, gated: int) -> bool:
        """Close the scope's gate for a 429/503/504 naming a Retry-After (True: try again once
        it opens); past ``gated_attempts`` such answers the call fails as throttled."""
        wait = retry_after_seconds(
            response.headers.get("Retry-After"), response.headers.get("Date")
        )
        if response.status_code not in GATED_STATUSES or wait is None:
            return False
        if gated >= self.gated_attempts:
            response.read()
            raise graph_error(
                response.status_code, response.content, response.headers.get("request-id")
            )
        with self._lock:
            self.discipline.throttled(scope, self.clock(), wait)
        return True

    def _pause(self, attempt: int, error: Exception | None) -> None:
        delay = self.backoff.delay(attempt, self.jitter())
        if delay is None:
            raise GraphUnavailable(0, "connectionFailed", str(error), None) from error
        self.sleep(delay)

    def _slot(self, scope: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._slots.get(scope)
            if slot is None:
                slot = self._slots[scope] = threading.BoundedSemaphore(self.concurrency)
            return slot

    def _await_turn(self, scope: str) -> None:
        """Sleep until the gates are open and the budget admits one more request for scope."""
        while True:
            with self._lock:
                wait = self.discipline.admit(scope, self.clock())
            if wait <= 0:
                return
            self.sleep(wait)

    def _headers(self, url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        # the token goes to Graph only: a nextLink or downloadUrl elsewhere never gets it
        if url.startswith(self.endpoints.graph_url + "/"):
            headers["Authorization"] = f"Bearer {self.token()}"
        return headers

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
    ) -> httpx.Response:
        absolute = self._absolute(url)
        with self._slot(scope):
            self._await_turn(scope)
            return self._http.request(
                method, absolute, headers=self._headers(absolute, headers), content=content
            )

    @contextmanager
    def _stream(self, url: str, scope: str, headers: Mapping[str, str]) -> Iterator[httpx.Response]:
        """A streamed GET that has passed the discipline: gated and throttled answers are
        waited for here, so a caller only sees a 2xx body or a typed error."""
        gated = redirects = 0
        while True:
            with self._slot(scope):
                self._await_turn(scope)
                absolute = self._absolute(url)
                request = self._http.build_request(
                    "GET", absolute, headers=self._headers(absolute, headers)
                )
                response = self._http.send(request, stream=True)
                try:
                    if response.status_code < 300:
                        yield response
                        return
                    response.read()
                finally:
                    response.close()
            location = response.headers.get("Location")
            if 300 <= response.status_code < 400 and location and redirects < MAX_REDIRECTS:
                url = location  # `/content` answers 302 to the pre-authenticated download URL
                redirects += 1
                continue
            if self._gated(scope, response, gated):
                gated += 1
                continue
            if response.status_code in RETRY_STATUSES:
                raise httpx.RemoteProtocolError(f"transient {response.status_code}")
            raise graph_error(
                response.status_code, response.content, response.headers.get("request-id")
            )

    def _absolute(self, url: str) -> str:
        if url.startswith("/"):
            return self.endpoints.graph_url + url
        if not url.startswith("https://"):
            raise GraphError(0, "invalidUrl", "only https URLs are followed", None)
        return url


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    """Whether a ranged answer continues at ``offset`` (206 with a matching Content-Range)."""
    if response.status_code != 206:
        return False
    content_range = str(response.headers.get("Content-Range", ""))
    return content_range.startswith(f"bytes {offset}-")
