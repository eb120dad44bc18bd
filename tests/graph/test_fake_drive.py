"""The fake's OneDrive: drive delta (paging, parents by id, `deleted`), download URLs with an
expiring `tempauth`, Range, `/content` 302, and quickXorHash against published vectors."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.graph.fake_client import advance, bearer, client, graph_code
from tests.graph_fake.drive import Drive
from tests.graph_fake.quickxor import quickxorhash
from tests.graph_fake.server import FakeGraph

SECRET = "s3cret"
SELECT = "id,name,parentReference,file,folder,deleted,size,content.downloadUrl"


class Files:
    def __init__(self, fake: FakeGraph, http: httpx.Client) -> None:
        state = fake.state
        tenant = state.add_tenant("contoso.onmicrosoft.com")
        self.user = state.add_user(tenant, "adele")
        self.drive: Drive = state.add_drive(self.user)
        self.fake, self.http = fake, http
        self.headers = bearer(http, fake, state.add_app(tenant, secret=SECRET), SECRET)
        self.base = f"{fake.graph_url}/v1.0/drives/{self.drive.id}"

    def get(self, url: str, **headers: str) -> httpx.Response:
        return self.http.get(url, headers=self.headers | headers)

    def round(self, url: str) -> tuple[list[dict[str, Any]], str, int]:
        entries: list[dict[str, Any]] = []
        requests = 0
        while True:
            answer = self.get(url)
            requests += 1
            assert answer.status_code == 200, answer.text
            entries += answer.json()["value"]
            if "@odata.deltaLink" in answer.json():
                return entries, answer.json()["@odata.deltaLink"], requests
            url = answer.json()["@odata.nextLink"]

    def advance(self, seconds: int) -> None:
        advance(self.fake, seconds)


@pytest.fixture
def files(graph_fake: FakeGraph) -> Any:
    with client(graph_fake) as http:
        yield Files(graph_fake, http)


def test_user_drive_and_missing_mysite(files: Files, graph_fake: FakeGraph) -> None:
    drive = files.get(f"{graph_fake.graph_url}/v1.0/users/{files.user.id}/drive").json()
    assert drive["id"] == files.drive.id and drive["driveType"] == "business"
    tenant = next(iter(graph_fake.state.tenants.values()))
    nobody = graph_fake.state.add_user(tenant, "nodrive")
    missing = files.get(f"{graph_fake.graph_url}/v1.0/users/{nobody.id}/drive")
    assert graph_code(missing) == (404, "ResourceNotFound")


@pytest.mark.parametrize("count", [30, 120])
def test_delta_pages_items_parents_first_without_paths(files: Files, count: int) -> None:
    now = files.fake.state.clock.now()
    with files.fake.state.lock:
        folder = files.drive.add("Docs", now)
        made = [files.drive.add(f"f{n}.bin", now, bytes([n]) * n, folder) for n in range(count)]
    entries, _, requests = files.round(f"{files.base}/root/delta?$select={SELECT}&$top=25")
    assert requests == -(-(count + 2) // 25)
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)) == count + 2
    assert ids[:2] == [files.drive.root.id, folder.id]  # parents before children
    by_id = {e["id"]: e for e in entries}
    assert all("path" not in e["parentReference"] for e in entries)
    assert by_id[made[3].id]["parentReference"]["id"] == folder.id
    assert by_id[made[3].id]["file"]["hashes"]["quickXorHash"] == quickxorhash(bytes([3]) * 3)
    assert "@microsoft.graph.downloadUrl" in by_id[made[3].id]
    plain = files.round(f"{files.base}/root/delta?$select=id,name")[0]
    assert all("@microsoft.graph.downloadUrl" not in e for e in plain)


def test_delta_reports_renames_and_deletes_by_facet(files: Files) -> None:
    now = files.fake.state.clock.now()
    with files.fake.state.lock:
        folder = files.drive.add("Docs", now)
        inner = files.drive.add("a.txt", now, b"a", folder)
        kept = files.drive.add("b.txt", now, b"b")
    _, link, _ = files.round(f"{files.base}/items/root/delta?$select={SELECT}")
    with files.fake.state.lock:
        files.drive.change(kept.id, now, name="renamed.txt")
        files.drive.change(kept.id, now, content=b"bb")
        files.drive.delete(folder.id)
    entries, link, _ = files.round(link)
    assert [e["id"] for e in entries] == [kept.id, inner.id, folder.id]
    assert entries[0]["name"] == "renamed.txt" and entries[0]["size"] == 2
    for gone in entries[1:]:
        assert gone["deleted"] == {"state": "deleted"} and "name" not in gone
    assert entries[1]["parentReference"]["id"] == folder.id
    assert files.round(link)[0] == []
    latest = files.round(f"{files.base}/root/delta?token=latest")
    assert latest[0] == [] and latest[2] == 1
    forged = files.get(f"{files.base}/root/delta?token=forged")
    assert graph_code(forged) == (400, "invalidRequest")


def test_download_url_range_expiry_and_content_redirect(files: Files) -> None:
    body = bytes(range(256)) * 40
    with files.fake.state.lock:
        item = files.drive.add("big.bin", files.fake.state.clock.now(), body)
    url = files.get(f"{files.base}/items/{item.id}").json()["@microsoft.graph.downloadUrl"]
    whole = files.http.get(url)  # no Authorization: the URL is pre-authenticated
    assert whole.status_code == 200 and whole.content == body
    part = files.http.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == body[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(body)}"
    tail = files.http.get(url, headers={"Range": "bytes=10000-"})
    assert tail.status_code == 206 and tail.content == body[10000:]
    beyond = files.http.get(url, headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(body)}"
    tampered = url.replace("tempauth=", "tempauth=A")
    assert files.http.get(tampered).status_code == 401
    redirect = files.get(f"{files.base}/items/{item.id}/content")
    assert redirect.status_code == 302
    assert files.http.get(redirect.headers["Location"]).content == body
    files.advance(3600)
    expired = files.http.get(url)
    assert graph_code(expired) == (401, "unauthenticated")


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
        ("2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="),
        ("DWAAX5/CIfrmErgZa8ot6ZraeSbu", "LR2Z0PjuRYGKQB/mhQAuMrAGZbQ="),
    ],
)
def test_quickxorhash_matches_published_vectors(data: str, digest: str) -> None:
    # Vectors from rclone's quickxorhash tests, checked there against Microsoft's C# reference.
    assert quickxorhash(base64.b64decode(data)) == digest


def test_quickxorhash_folds_inputs_longer_than_the_register() -> None:
    data = bytes((n * 7 + 3) % 256 for n in range(1000))
    register = 0
    for index, byte in enumerate(data):  # the unfolded definition, byte by byte
        shift = (index * 11) % 160
        register ^= ((byte << shift) | (byte >> (160 - shift))) & ((1 << 160) - 1)
    digest = bytearray(register.to_bytes(20, "little"))
    for i, b in enumerate(len(data).to_bytes(8, "little")):
        digest[12 + i] ^= b
    assert quickxorhash(data) == base64.b64encode(bytes(digest)).decode()


def test_reset_delta_state_gives_410_with_a_restart_location(files: Files) -> None:
    now = files.fake.state.clock.now()
    with files.fake.state.lock:
        for n in range(5):
            files.drive.add(f"f{n}", now, b"x")
    first = files.get(f"{files.base}/root/delta?$top=2").json()
    _, delta_link, _ = files.round(f"{files.base}/root/delta")
    with files.fake.state.lock:
        files.drive.invalidate_delta()
    gones = [files.get(stale) for stale in (first["@odata.nextLink"], delta_link)]
    for gone in gones:
        assert graph_code(gone) == (410, "resyncRequired")
        assert gone.json()["error"]["innerError"]["code"] == "resyncChangesApplyDifferences"
        # "a new nextLink that starts a fresh delta enumeration from scratch"
        assert gone.headers["Location"].startswith(f"{files.base}/root/delta?token=")
    page = files.get(gones[0].headers["Location"]).json()
    assert len(page["value"]) == 2 and "@odata.nextLink" in page  # the stale link's $top=2
    restarted, _, _ = files.round(gone.headers["Location"])
    assert len(restarted) == 6  # the root and five files, each once
    assert files.drive.resyncs_followed == 2


def test_a_resync_can_ask_to_upload_differences(files: Files) -> None:
    _, delta_link, _ = files.round(f"{files.base}/root/delta?$select=id,name")
    with files.fake.state.lock:
        files.drive.invalidate_delta("resyncChangesUploadDifferences")
    gone = files.get(delta_link)
    assert graph_code(gone) == (410, "resyncRequired")
    assert gone.json()["error"]["innerError"]["code"] == "resyncChangesUploadDifferences"
    restarted, _, _ = files.round(gone.headers["Location"])
    assert [set(e) for e in restarted] == [{"id", "name"}]  # the frozen $select carried over


def test_old_rounds_are_forgotten_so_memory_stays_bounded(files: Files) -> None:
    with files.fake.state.lock:
        files.drive.add("f", files.fake.state.clock.now(), b"x")
    first = files.get(f"{files.base}/root/delta?$top=1").json()
    for _ in range(8):
        files.round(f"{files.base}/root/delta")
    assert len(files.fake.state.delta_rounds) == 8
    assert graph_code(files.get(first["@odata.nextLink"])) == (410, "resyncRequired")
