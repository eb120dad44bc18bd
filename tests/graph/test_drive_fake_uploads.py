"""The fake's OneDrive writes refuse what Graph refuses (graph.md §1.5, §6.2): bad names, conflict
behaviours, the upload host's rules (no token, 320 KiB multiples, order, expiry, commit
clashes), the upload byte budget, and a refused request changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.graph.fake_client import advance, client, graph_code
from tests.graph.test_fake_drive import Files
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.uploads import uploads

UNIT = 320 * 1024


class Writes(Files):
    """The fake drive test's tenant, user, drive and token, with the write calls."""

    def __init__(self, fake: FakeGraph, http: httpx.Client) -> None:
        super().__init__(fake, http)
        self.base = f"{self.base}/items"

    def put(self, name: str, content: bytes, behaviour: str | None = None) -> httpx.Response:
        query = f"?@microsoft.graph.conflictBehavior={behaviour}" if behaviour else ""
        return self.http.put(
            f"{self.base}/root:/{name}:/content{query}", headers=self.headers, content=content
        )

    def session(self, target: str, **item: Any) -> str:
        answer = self.http.post(
            f"{self.base}/root:/{target}:/createUploadSession",
            headers=self.headers,
            json={"item": item} if item else {},
        )
        assert answer.status_code == 200, answer.text
        url: str = answer.json()["uploadUrl"]
        assert not url.startswith(self.fake.graph_url)  # another host, as *.sharepoint.com
        return url

    def fragment(self, url: str, first: int, data: bytes, total: int, **headers: str) -> Any:
        last = first + len(data) - 1
        return self.http.put(
            url, headers={"Content-Range": f"bytes {first}-{last}/{total}"} | headers, content=data
        )

    def names(self) -> dict[str, bytes]:
        return {i.name: i.content for i in self.drive.children(self.drive.root.id)}


@pytest.fixture
def writes(graph_fake: FakeGraph) -> Iterator[Writes]:
    with client(graph_fake) as http:
        yield Writes(graph_fake, http)


@pytest.mark.parametrize("name", ["a:b", "..", " lead", "x" * 256, "ctl%01"])
def test_names_onedrive_refuses_are_a_400_and_write_nothing(writes: Writes, name: str) -> None:
    answer = writes.put(name, b"x")
    assert graph_code(answer) == (400, "invalidRequest") and "name" in answer.text
    assert writes.names() == {}


def test_simple_upload_conflict_behaviours(writes: Writes) -> None:
    assert writes.put("a.txt", b"one").status_code == 201
    assert graph_code(writes.put("A.TXT", b"two", "fail")) == (409, "nameAlreadyExists")
    assert writes.put("a.txt", b"two", "rename").json()["name"] == "a 1.txt"
    replaced = writes.put("a.txt", b"three", "replace")
    assert replaced.status_code == 200
    assert writes.names() == {"a.txt": b"three", "a 1.txt": b"two"}
    assert graph_code(writes.put("a.txt", b"x", "merge")) == (400, "invalidRequest")


def test_children_creates_folders_fail_by_default(writes: Writes) -> None:
    url = f"{writes.base}/root/children"
    made = writes.http.post(url, headers=writes.headers, json={"name": "Docs", "folder": {}})
    assert made.status_code == 201 and "folder" in made.json()
    again = writes.http.post(url, headers=writes.headers, json={"name": "Docs", "folder": {}})
    assert graph_code(again) == (409, "nameAlreadyExists")
    found = writes.http.get(f"{writes.base}/root:/Docs", headers=writes.headers)
    assert found.json()["id"] == made.json()["id"]
    not_folder = writes.http.post(url, headers=writes.headers, json={"name": "f", "file": {}})
    assert graph_code(not_folder)[0] == 400


def test_upload_session_rules(writes: Writes) -> None:
    total = 3 * UNIT + 10
    data = bytes(range(256)) * (total // 256) + bytes(total % 256)
    url = writes.session("big.bin", name="big.bin")
    with_token = writes.fragment(url, 0, data[:UNIT], total, **writes.headers)
    assert with_token.status_code == 401
    assert graph_code(writes.fragment(url, 0, data[: UNIT + 1], total))[0] == 400  # not 320 KiB
    assert graph_code(writes.fragment(url, UNIT, data[UNIT : 2 * UNIT], total)) == (
        416,
        "invalidRange",
    )  # out of order
    first = writes.fragment(url, 0, data[:UNIT], total)
    assert first.status_code == 202 and first.json()["nextExpectedRanges"] == [f"{UNIT}-"]
    assert writes.fragment(url, 0, data[:UNIT], total).status_code == 416  # overlap
    assert writes.http.get(url).json()["nextExpectedRanges"] == [f"{UNIT}-"]
    last = writes.fragment(url, UNIT, data[UNIT:], total)  # the last may be any length
    assert last.status_code == 201 and writes.names() == {"big.bin": data}
    assert writes.http.get(url).status_code == 404  # the session ended with the commit


def test_a_name_clash_under_fail_is_409_at_the_commit_and_sessions_expire(writes: Writes) -> None:
    assert writes.put("taken.txt", b"old").status_code == 201
    url = writes.session("taken.txt", **{"@microsoft.graph.conflictBehavior": "fail"})
    assert graph_code(writes.fragment(url, 0, b"new", 3)) == (409, "nameAlreadyExists")
    assert writes.names() == {"taken.txt": b"old"}
    cancelled = writes.session("cancelled.txt")
    assert writes.http.delete(cancelled).status_code == 204
    assert writes.http.get(cancelled).status_code == 404
    late = writes.session("late.txt")
    advance(writes.fake, uploads(writes.fake.state).session_lifetime_seconds)
    assert graph_code(writes.fragment(late, 0, b"x", 1)) == (404, "itemNotFound")


def test_the_upload_byte_budget_answers_429_with_retry_after(writes: Writes) -> None:
    book = uploads(writes.fake.state)
    book.budget_bytes, book.budget_window = 1000, 300
    assert writes.put("a.bin", b"a" * 800).status_code == 201
    over = writes.put("b.bin", b"b" * 300)
    assert graph_code(over) == (429, "activityLimitReached")
    assert 0 < int(over.headers["Retry-After"]) <= 301
    assert "b.bin" not in writes.names()  # a refused request changes nothing
    advance(writes.fake, 301)
    assert writes.put("b.bin", b"b" * 300).status_code == 201


def test_patch_sets_file_system_dates_only(writes: Writes) -> None:
    made = writes.put("d.txt", b"d").json()
    url = f"{writes.base}/{made['id']}"
    stamp = "2020-01-02T03:04:05Z"
    body = {"fileSystemInfo": {"lastModifiedDateTime": stamp}}
    patched = writes.http.patch(url, headers=writes.headers, json=body)
    assert patched.json()["fileSystemInfo"]["lastModifiedDateTime"] == stamp
    refused = writes.http.patch(url, headers=writes.headers, json={"name": "other"})
    assert graph_code(refused) == (400, "invalidRequest")
