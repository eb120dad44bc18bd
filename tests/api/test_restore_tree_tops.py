"""A restore session's trees read as the vendor's docs describe them: ``parentId`` names the
folder whose subfolders or documents are listed, ``parentId=null`` the top of the tree (the
top-level folders, a drive's root documents), and no ``parentId`` everything (v5's
get_onedrives_id_folders.html); a OneDrive's documents take ``parentId`` as the spec names it."""

from __future__ import annotations

from typing import Any

from keepstone.proxy.worker import ProxyWorker
from tests.backup.test_backup_restore import explore
from tests.conftest import Api
from tests.local_org import api, backup_proxy, org_job, organization, run_job

__all__ = ["api", "backup_proxy", "org_job", "organization"]  # fixtures


def _names(api: Api, path: str) -> set[str]:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return {row["name"] for row in response.json()["results"]}


def test_parent_id_null_is_the_top_of_the_tree(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    run_job(api, org_job, backup_proxy)
    drive_session = explore(api, org_job, kind="veod")
    drives = f"/v6/RestoreSessions/{drive_session}/Organization/OneDrives"
    alice = next(d["id"] for d in api.rows(drives) if d["name"] == "alice")
    base = f"{drives}/{alice}"
    assert _names(api, f"{base}/Folders") == {"Documents", "Photos"}
    assert _names(api, f"{base}/Folders?parentId=null") == {"Documents"}
    documents = next(f["id"] for f in api.rows(f"{base}/Folders") if f["name"] == "Documents")
    photos = next(f["id"] for f in api.rows(f"{base}/Folders") if f["name"] == "Photos")
    assert _names(api, f"{base}/Folders?parentID={documents}") == {"Photos"}  # any case
    assert _names(api, f"{base}/Documents") == {"plan.txt", "cat.jpg", "empty.txt"}
    assert _names(api, f"{base}/Documents?parentId=null") == {"empty.txt"}
    assert _names(api, f"{base}/Documents?parentId={documents}") == {"plan.txt"}
    assert _names(api, f"{base}/Documents?folderId={photos}") == {"cat.jpg"}  # the older name
    both = api.get(f"{base}/Documents?parentId={documents}&folderId={photos}")
    assert both.status_code == 400 and "parentId" in both.json()["message"]

    mail_session = explore(api, org_job)
    mailboxes = f"/v6/RestoreSessions/{mail_session}/Organization/Mailboxes"
    alice_mail = next(m["id"] for m in api.rows(mailboxes) if m["name"] == "alice")
    every = _names(api, f"{mailboxes}/{alice_mail}/Folders")
    top = _names(api, f"{mailboxes}/{alice_mail}/Folders?parentId=null")
    assert "2024" in every - top and "Archive" in top
