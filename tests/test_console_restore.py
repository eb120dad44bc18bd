"""The console's Restore pages in-process (issue 16, Restore): restore points, a restore session
opened through the API's explore, and browsing its mailboxes and drives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.local_org import backup_proxy
from tests.rbac_world import backed_up
from tests.test_console import console_login

__all__ = ["backup_proxy"]
FOLDER = re.compile(r'folder=([0-9a-f-]+)">Inbox<')
OWNER = re.compile(r'href="(/restore/sessions/[^"?]+/owners/[^"?]+)\?kind=(\w+)">(\w+)<')


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
    refused = client.post("/restore/explore", data={"point": org.point, "kind": "mail"})
    assert refused.status_code == 403
    sessions = len(api.rows("/v8/RestoreSessions"))
    opened = client.post(
        "/restore/explore",
        data={"csrf": csrf, "point": org.point, "kind": "mail"},
        follow_redirects=False,
    )
    assert opened.status_code == 303, opened.text
    assert len(api.rows("/v8/RestoreSessions")) == sessions + 1  # the API's explore, seen there
    mailboxes = client.get(opened.headers["location"]).text
    owners = {name: path for path, kind, name in OWNER.findall(mailboxes)}
    assert set(owners) == {"alice", "bob"}
    alice = client.get(f"{owners['alice']}?kind=mail").text
    (inbox,) = FOLDER.findall(alice)
    assert "secret report" not in alice  # the top holds the folders; the message is in Inbox
    messages = client.get(f"{owners['alice']}?kind=mail&folder={inbox}").text
    assert "alice&#39;s secret report" in messages and "bob" not in messages.split("<main")[-1]
    found = client.get(f"{owners['alice']}?kind=mail&q=SECRET").text
    assert "alice&#39;s secret report" in found
    assert "secret report" not in client.get(f"{owners['alice']}?kind=mail&q=nothing").text
    assert "notes.md" in client.get(f"{owners['alice']}?kind=file&q=NOTES").text
    drive = client.get(f"{owners['alice']}?kind=file").text
    assert "notes.md" in drive
    missing = client.get(f"{owners['alice']}?kind=mail&folder=nowhere")
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert client.get(f"{owners['alice']}?kind=calendar").status_code == 400
    assert client.get("/restore/sessions/unknown?kind=mail").status_code == 404
    bad = client.post("/restore/explore", data={"csrf": csrf, "point": "nope", "kind": "mail"})
    assert bad.status_code == 404
