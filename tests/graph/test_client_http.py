"""The Graph client's discipline against a scripted local HTTPS server: Retry-After per scope,
retries, connection resets, concurrency per mailbox, paging, errors and resumed downloads.
An injected clock and sleeper stand in for time, so no test sleeps for real."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from keepstone.domain.throttle import APP_SCOPE, Backoff, Discipline
from keepstone.sources.graph.client import GraphClient, retry_after_seconds
from keepstone.sources.graph.errors import (
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphSyncStateLost,
    GraphThrottled,
    GraphUnavailable,
)
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from tests.graph.client_helpers import RESET, Answer, FakeTime, Scripted, Seen, scripted_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    with scripted_server(tmp_path_factory.mktemp("http")) as running:
        yield running


def _client(server: Scripted, time_: FakeTime | None = None, **kwargs: object) -> GraphClient:
    tls = graph_tls_context({"SSL_CERT_FILE": str(server.ca_pem)})
    timing: dict[str, object] = {}
    if time_ is not None:
        timing = {"clock": time_.clock, "sleep": time_.sleep, "jitter": lambda: 0.5}
    return GraphClient(GraphEndpoints(server.url), lambda: "tok", tls, **timing, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def fake_time(server: Scripted) -> FakeTime:
    server.clock[0] = 1000.0
    return FakeTime(server.clock)


def test_retry_after_closes_the_mailbox_until_its_instant(
    server: Scripted, fake_time: FakeTime
) -> None:
    answers = iter(
        [
            Answer.json(
                {"error": {"code": "ApplicationThrottled", "message": "x"}},
                429,
                **{"Retry-After": "30"},
            )
        ]
    )
    server.serve(lambda seen: next(answers, Answer.json({"ok": seen.path})))
    client = _client(server, fake_time)
    assert client.get_json("/v1.0/users/a/messages", scope="a") == {"ok": "/v1.0/users/a/messages"}
    first, retry = server.seen
    assert retry.at >= first.at + 30  # the retry waited for the whole Retry-After
    client.get_json("/v1.0/users/b/messages", scope="b")  # another mailbox is not held
    assert server.seen[-1].at == retry.at
    assert first.headers["authorization"] == "Bearer tok"


def test_a_gate_holds_every_request_of_its_scope(server: Scripted, fake_time: FakeTime) -> None:
    server.serve(lambda seen: Answer.json({}))
    client = _client(server, fake_time)
    client.discipline.throttled("a", fake_time.clock(), 120)
    client.discipline.throttled(APP_SCOPE, fake_time.clock(), 10)
    start = fake_time.clock()
    client.get_json("/v1.0/users/b", scope="b")  # the app gate holds every mailbox
    assert server.seen[-1].at >= start + 10
    client.get_json("/v1.0/users/a", scope="a")
    assert server.seen[-1].at >= start + 120


def test_a_later_shorter_retry_after_does_not_shorten_the_gate(
    server: Scripted, fake_time: FakeTime
) -> None:
    discipline = Discipline()
    discipline.throttled("a", 0, 60)
    discipline.throttled("a", 1, 5)
    assert discipline.admit("a", 10) == pytest.approx(50)


def test_503_without_retry_after_is_retried_with_backoff(
    server: Scripted, fake_time: FakeTime
) -> None:
    answers = iter([Answer(503), Answer(502)])
    server.serve(lambda seen: next(answers, Answer.json({"value": []})))
    client = _client(server, fake_time, backoff=Backoff(base=2, cap=60, attempts=3))
    assert client.get_json("/v1.0/users") == {"value": []}
    assert len(server.seen) == 3
    assert fake_time.sleeps == [1.5, 3.0]  # equal jitter at 0.5: ceilings 2 and 4


def test_a_connection_reset_is_retried(server: Scripted, fake_time: FakeTime) -> None:
    answers = iter([RESET, RESET])
    server.serve(lambda seen: next(answers, Answer.json({"id": "u1"})))
    client = _client(server, fake_time)
    assert client.get_json("/v1.0/users/u1") == {"id": "u1"}
    assert len(server.seen) == 3 and len(fake_time.sleeps) == 2


def test_retries_are_bounded(server: Scripted, fake_time: FakeTime) -> None:
    server.serve(lambda seen: RESET)
    client = _client(server, fake_time, backoff=Backoff(attempts=2))
    with pytest.raises(GraphUnavailable):
        client.get_json("/v1.0/users")
    assert len(server.seen) == 3
    server.serve(lambda seen: Answer(429, {"Retry-After": "1"}))
    client = _client(server, fake_time, gated_attempts=3)
    with pytest.raises(GraphThrottled):
        client.get_json("/v1.0/users", scope="a")
    assert len(server.seen) == 4
    assert all(b.at >= a.at + 1 for a, b in zip(server.seen, server.seen[1:], strict=False))


def test_errors_are_typed_with_code_message_and_request_id(
    server: Scripted, fake_time: FakeTime
) -> None:
    body = {
        "error": {
            "code": "SyncStateNotFound",
            "message": "gone",
            "innerError": {"request-id": "r-1"},
        }
    }
    cases = [
        (410, GraphSyncStateLost),
        (404, GraphNotFound),
        (401, GraphAuthError),
        (400, GraphError),
    ]
    for status, kind in cases:
        server.serve(lambda seen, status=status: Answer.json(body, status))
        with pytest.raises(kind) as raised:
            _client(server, fake_time).get_json("/v1.0/users/x/messages/delta")
        assert (raised.value.status, raised.value.code) == (status, "SyncStateNotFound")
        assert raised.value.request_id == "r-1" and raised.value.message == "gone"
    server.serve(lambda seen: Answer(400, body=b"<html>not json</html>"))
    with pytest.raises(GraphError) as raised:
        _client(server, fake_time).get_json("/v1.0/users")
    assert raised.value.code == "http400"


def test_five_concurrent_calls_on_one_mailbox_never_exceed_four(server: Scripted) -> None:
    lock = threading.Condition()
    state = {"now": 0, "max": 0, "started": 0}

    def handle(seen: Seen) -> Answer:
        with lock:
            state["now"] += 1
            state["started"] += 1
            state["max"] = max(state["max"], state["now"])
            lock.notify_all()
            # hold until four are in flight (or a generous deadline), so a fifth would show
            lock.wait_for(lambda: state["now"] >= 4 or state["started"] > 4, timeout=60)
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return Answer.json({})

    server.serve(handle)
    client = _client(server)
    with ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda _: client.get_json("/v1.0/users/a", scope="a"), range(5)))
    assert len(server.seen) == 5
    assert state["max"] == 4


def _pages(server: Scripted, pages: int) -> None:
    def handle(seen: Seen) -> Answer:
        query = parse_qs(urlsplit(seen.path).query)
        n = int(query.get("$skiptoken", ["0"])[0])
        document: dict[str, object] = {"value": [{"id": f"m{n}"}] if n % 3 else []}
        if n + 1 < pages:
            document["@odata.nextLink"] = (
                f"{server.url}/v1.0/users/a/messages/delta?$skiptoken={n + 1}"
            )
        else:
            document["@odata.deltaLink"] = f"{server.url}/v1.0/users/a/messages/delta?$deltatoken=z"
        return Answer.json(document)

    server.serve(handle)


@pytest.mark.parametrize("pages", [5, 20])
def test_pages_are_followed_to_the_delta_link_one_request_each(
    server: Scripted, fake_time: FakeTime, pages: int
) -> None:
    _pages(server, pages)
    walk = _client(server, fake_time).iterate_pages(
        "/v1.0/users/a/messages/delta", scope="a", headers={"Prefer": "odata.maxpagesize=1"}
    )
    items = [item["id"] for page in walk for item in page]
    assert items == [f"m{n}" for n in range(pages) if n % 3]  # empty pages are walked past
    assert walk.delta_link == f"{server.url}/v1.0/users/a/messages/delta?$deltatoken=z"
    assert walk.requests == len(server.seen) == pages  # N pages cost N requests, no more
    assert all(s.headers["prefer"] == "odata.maxpagesize=1" for s in server.seen)


def test_the_token_never_leaves_for_another_host(server: Scripted, fake_time: FakeTime) -> None:
    server.serve(lambda seen: Answer(200, body=b"data"))
    client = GraphClient(
        GraphEndpoints("https://graph.invalid"),
        lambda: "tok",
        graph_tls_context({"SSL_CERT_FILE": str(server.ca_pem)}),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    assert client.get_bytes(f"{server.url}/download?tempauth=x") == b"data"
    assert "authorization" not in server.seen[0].headers
    with pytest.raises(GraphError, match="https"):
        client.get_json("http://plain.invalid/v1.0/users")


@pytest.mark.parametrize("honours_range", [True, False])
def test_a_download_cut_short_resumes_with_a_range(
    server: Scripted, fake_time: FakeTime, honours_range: bool
) -> None:
    content = bytes(range(256)) * 400
    cuts = iter([40_000, 70_000])

    def handle(seen: Seen) -> Answer:
        wanted = seen.headers.get("range")
        start = int(wanted.removeprefix("bytes=").removesuffix("-")) if wanted else 0
        cut = next(cuts, None)  # the first two answers break off mid-body
        if wanted is None or not honours_range:
            return Answer(200, {}, content, cut_at=cut)
        total = len(content)
        headers = {"Content-Range": f"bytes {start}-{total - 1}/{total}"}
        return Answer(206, headers, content[start:], cut_at=None if cut is None else cut - start)

    server.serve(handle)
    assert _client(server, fake_time).get_bytes("/v1.0/drives/d/items/i/content") == content
    ranges = [s.headers.get("range") for s in server.seen]
    if honours_range:
        assert ranges == [None, "bytes=40000-", "bytes=70000-"]
    else:  # each whole body replaced what was written before
        assert ranges == [None, "bytes=40000-", "bytes=70000-"]


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_seconds("17") == 17.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    date = "Thu, 03 Dec 2026 08:00:00 GMT"
    assert retry_after_seconds("Thu, 03 Dec 2026 08:00:30 GMT", date) == 30.0


def test_content_follows_its_redirect_to_the_download_url(
    server: Scripted, fake_time: FakeTime
) -> None:
    def handle(seen: Seen) -> Answer:
        if seen.path.endswith("/content"):
            return Answer(302, {"Location": f"{server.url}/download?tempauth=t"})
        return Answer(200, {}, b"file bytes")

    server.serve(handle)
    assert _client(server, fake_time).get_bytes("/v1.0/drives/d/items/i/content") == b"file bytes"
    assert [s.path for s in server.seen] == [
        "/v1.0/drives/d/items/i/content",
        "/download?tempauth=t",
    ]


def test_an_inner_batch_retry_after_is_read_whatever_its_shape() -> None:
    """Inner $batch answers are data: a header in any case, an HTTP-date, or no usable headers
    never raise (drive restore used to parse it with float() and fail on a date)."""
    from keepstone.sources.graph.client import inner_retry_after

    assert inner_retry_after({"headers": {"Retry-After": "3"}}) == 3.0
    assert inner_retry_after({"headers": {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}}) > 0
    assert inner_retry_after({"headers": {"Retry-After": "soon"}}) is None
    assert inner_retry_after({"headers": "Retry-After: 3"}) is None
    assert inner_retry_after({}) is None
