"""Real backups of a real Local organization through the API, and restores compared byte by byte."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.local_org import Organization, run_job


def explore(api: Api, job: dict[str, Any], when: str | None = None, kind: str = "vex") -> str:
    body = {"explore": {"dateTime": when, "type": kind} if when else {"type": kind}}
    response = api.post(f"/v2/Jobs/{job['id']}/Action", body)
    assert response.status_code == 200, response.text
    session_id: str = response.json()["id"]
    return session_id


def everything_in(api: Api, session: str) -> dict[str, bytes]:
    """Every item of a restore session, saved through the API, keyed like Organization.contents."""
    found: dict[str, bytes] = {}
    base = f"/v2/RestoreSessions/{session}/Organization"
    for collection, listing, kind in (
        ("Mailboxes", "Items", "mail"),
        ("OneDrives", "Documents", "file"),
    ):
        for owner in api.rows(f"{base}/{collection}?limit=1000"):
            page = api.get(f"{base}/{collection}/{owner['id']}/{listing}?limit=1000").json()
            for entry in page["results"]:
                saved = api.post(f"{base}/{collection}/{owner['id']}/{listing}/{entry['id']}/save")
                assert saved.status_code == 200, saved.text
                found[_key(owner["name"], kind, entry)] = saved.content
    return found


def _key(user: str, kind: str, entry: dict[str, Any]) -> str:
    if kind == "file":
        return f"{user}/OneDrive/{entry['path']}"
    return f"{user}/Mail/{entry['folder']}/{entry['subject']}"


def by_subject(organization: Organization) -> dict[str, bytes]:
    """The organization's contents keyed the way everything_in keys them."""
    result: dict[str, bytes] = {}
    folders = {"": "Inbox", ".Sent": "Sent", ".Archive.2024": "Archive/2024"}
    for path, data in organization.contents().items():
        user, area, *rest = path.split("/")
        if area == "OneDrive":
            result[path] = data
            continue
        folder = folders["" if rest[0] in ("cur", "new") else rest[0]]
        subject = next(line for line in data.decode().splitlines() if line.startswith("Subject: "))
        result[f"{user}/Mail/{folder}/{subject.removeprefix('Subject: ')}"] = data
    return result


def test_backup_change_backup_and_restore_every_point_byte_for_byte(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    first = run_job(api, org_job, backup_proxy)
    assert first["status"] == "Success", api.get(f"/v2/JobSessions/{first['id']}/LogItems").json()
    assert first["statistics"]["processedObjects"] == 9
    assert not first["statistics"]["processingRate"].startswith("0 B/s")  # even a fast run
    state_one = by_subject(organization)

    # Change everything a user changes: new, edited, re-flagged, moved and deleted items.
    clock.advance(timedelta(hours=1))
    organization.mail("alice", "", "Brand new")
    inbox = organization.root / "alice/Mail/cur"
    lunch = next(p for p in inbox.iterdir() if p.read_bytes().find(b"Subject: Lunch?") >= 0)
    lunch.rename(lunch.with_name(lunch.name.split(":2,")[0] + ":2,FS"))  # re-flagged
    report = next(p for p in inbox.iterdir() if b"Quarterly report" in p.read_bytes())
    report.rename(organization.root / "alice/Mail/.Archive.2024/cur" / report.name)  # moved
    next((organization.root / "bob/Mail/cur").iterdir()).unlink()  # deleted
    organization.file("alice", "Documents/plan.txt", b"the new plan\n" * 900)  # edited
    organization.file("alice", "Documents/new.bin", size=200_000)  # new
    (organization.root / "alice/OneDrive/empty.txt").unlink()  # deleted
    (organization.root / "bob/OneDrive/notes.md").rename(organization.root / "bob/OneDrive/n.md")
    second = run_job(api, org_job, backup_proxy)
    assert second["status"] == "Success"
    titles = [i["title"] for i in api.get(f"/v2/JobSessions/{second['id']}/LogItems").json()]
    alice = next(t for t in titles if t.startswith("[Success] User alice:"))
    # Not read again: the cat photo, the re-flagged, the moved and two untouched messages.
    assert alice.startswith("[Success] User alice: 5 messages, 3 files (5 unchanged)")
    state_two = by_subject(organization)

    points = api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()
    assert len(points) == 2 and all(p["isExchange"] and p["isOneDrive"] for p in points)
    older = min(points, key=lambda p: p["backupTime"])
    assert everything_in(api, explore(api, org_job, older["backupTime"])) == state_one
    assert everything_in(api, explore(api, org_job)) == state_two


def test_mail_browsing_and_the_zip_of_several_items(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    run_job(api, org_job, backup_proxy)
    session = explore(api, org_job)
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    mailboxes = {m["name"]: m for m in api.rows(base)}
    assert set(mailboxes) == {"alice", "bob"}
    alice = mailboxes["alice"]["id"]
    folders = {f["path"]: f for f in api.rows(f"{base}/{alice}/Folders?limit=1000")}
    assert set(folders) == {"Inbox", "Sent", "Archive", "Archive/2024"}
    inbox = api.get(f"{base}/{alice}/Items?folderId={folders['Inbox']['id']}").json()
    assert inbox["totalCount"] == 2 and {i["subject"] for i in inbox["results"]} == {
        "Quarterly report",
        "Lunch?",
    }
    page = api.get(f"{base}/{alice}/Items?limit=1&offset=1").json()
    assert (page["totalCount"], len(page["results"])) == (4, 1)
    assert set(page["_links"]) == {"first", "prev", "self", "next"}
    ids = [i["id"] for i in inbox["results"]]
    archive = api.post(f"{base}/{alice}/Items/save", {"ids": ids})
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        assert sorted(opened.namelist()) == ["Inbox/Lunch_.eml", "Inbox/Quarterly report.eml"]
    single = api.post(f"{base}/{alice}/Items/{ids[0]}/save")
    assert single.headers["content-type"] == "message/rfc822"
    assert "attachment" in single.headers["content-disposition"]


def test_restore_to_the_original_place_and_to_another_user(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    run_job(api, org_job, backup_proxy)
    before = organization.contents()
    sent = organization.root / "alice/Mail/.Sent/cur"
    for path in sent.iterdir():
        path.unlink()
    (organization.root / "alice/OneDrive/Documents/plan.txt").write_bytes(b"scribbled over")
    session = explore(api, org_job)
    base = f"/v2/RestoreSessions/{session}/Organization"
    alice_mail = next(m for m in api.rows(f"{base}/Mailboxes") if m["name"] == "alice")
    restored = api.post(f"{base}/Mailboxes/{alice_mail['id']}/restore", {"collisionPolicy": "skip"})
    assert restored.status_code == 200, restored.text
    assert restored.json()["restoredItemsCount"] == 1  # the deleted sent message
    assert restored.json()["skippedItemsCount"] == 3  # the rest was still there
    # and under the vendor's names for an Exchange restore (RESTItemsRestoreStatistics)
    assert (restored.json()["createdItemsCount"], restored.json()["mergedItemsCount"]) == (1, 0)
    alice_drive = next(d for d in api.rows(f"{base}/OneDrives") if d["name"] == "alice")
    overwrite = api.post(
        f"{base}/OneDrives/{alice_drive['id']}/restore", {"collisionPolicy": "overwrite"}
    )
    assert overwrite.json()["restoredItemsCount"] == 3
    kept = api.post(f"{base}/OneDrives/{alice_drive['id']}/restore", {"collisionPolicy": "skip"})
    # a OneDrive restore's own names (RESTItemRestoreStatistics): all there, unchanged
    assert {
        name: kept.json()[name]
        for name in ("totalItemsCount", "restoredItemsCount", "skippedItemsByNoChangesCount")
    } == {"totalItemsCount": 3, "restoredItemsCount": 0, "skippedItemsByNoChangesCount": 3}
    assert organization.contents() == before

    copied = api.post(
        f"{base}/Mailboxes/{alice_mail['id']}/restoreTo",
        {"userName": "bob", "folder": "Restored from alice"},
    )
    assert copied.json()["restoredItemsCount"] == 4
    restored_dir = organization.root / "bob/Mail/.Restored from alice/cur"
    assert len(list(restored_dir.iterdir())) == 4
    stats = api.get(f"/v2/RestoreSessions/{session}").json()["statistics"]
    assert stats["restored"] == 1 + 3 + 4 and stats["skipped"] == 3 + 3


def test_a_user_that_cannot_be_read_gives_a_warning_and_the_rest_continues(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    broken = organization.root / "bob/Mail/cur"  # a damaged Maildir: its cur/ is a file
    for path in broken.iterdir():
        path.unlink()
    broken.rmdir()
    broken.write_text("not a directory")
    session = run_job(api, org_job, backup_proxy)
    assert session["status"] == "Warning"
    titles = [i["title"] for i in api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()]
    assert any(t.startswith("[Warning] User bob: cannot be read") for t in titles)
    assert any(t.startswith("[Success] User alice:") for t in titles)
    assert len(api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()) == 1


def test_organization_users_are_discovered(api: Api, org_job: dict[str, Any]) -> None:
    org = org_job["organization"]
    users = api.get(f"/v2/Organizations/{org['id']}/Users").json()
    assert [u["name"] for u in users] == ["alice", "bob"]
    assert all(len(u["id"]) == 36 for u in users)


def test_selected_items_back_up_only_what_they_select(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    org = org_job["organization"]
    bob = next(
        u for u in api.get(f"/v2/Organizations/{org['id']}/Users").json() if u["name"] == "bob"
    )
    assert (
        api.put(
            f"/v2/Jobs/{org_job['id']}",
            {
                "backupType": "SelectedItems",
                "selectedItems": [
                    {"type": "User", "user": {"id": bob["id"]}, "mailbox": True, "oneDrive": False}
                ],
            },
        ).status_code
        == 200
    )
    session = run_job(api, org_job, backup_proxy)
    assert session["statistics"]["processedObjects"] == 1
    explored = explore(api, org_job)
    base = f"/v2/RestoreSessions/{explored}/Organization"
    assert [m["name"] for m in api.rows(f"{base}/Mailboxes")] == ["bob"]
    assert api.rows(f"{base}/OneDrives") == []


def test_explore_forms_stop_and_copy_to(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    run_job(api, org_job, backup_proxy)
    v8 = api.post(f"/v8/Jobs/{org_job['id']}/explore", {"type": "Veod"})
    assert v8.status_code == 201 and v8.json()["type"] == "Veod"
    assert v8.json()["_links"]["self"]["href"].startswith("/v8/restoresessions/")  # v6 on: paths
    org = org_job["organization"]
    by_org = api.post(f"/v2/Organizations/{org['id']}/explore", {"dateTime": "2026.06.10 10:00:00"})
    assert by_org.status_code == 200 and by_org.json()["state"] == "Working"
    too_early = api.post(f"/v2/Organizations/{org['id']}/explore", {"dateTime": "2020-01-01"})
    assert too_early.status_code == 404 and "no restore point" in too_early.json()["message"]
    bad_time = api.post(f"/v2/Jobs/{org_job['id']}/explore", {"dateTime": "yesterday"})
    assert bad_time.status_code == 400 and "dateTime" in bad_time.json()["message"]

    session = by_org.json()["id"]
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    bob = next(m for m in api.rows(base) if m["name"] == "bob")
    copied = api.post(f"{base}/{bob['id']}/copyTo", {"userName": "alice", "folder": "From Bob"})
    assert copied.json()["restoredItemsCount"] == 1
    assert len(list((organization.root / "alice/Mail/.From Bob/cur").iterdir())) == 1
    assert (
        api.post(f"{base}/{bob['id']}/restoreTo", {}).status_code == 400
    )  # restoreTo needs a target

    stopped = api.post(f"/v2/RestoreSessions/{session}/stop")
    assert stopped.json()["state"] == "Stopped" and stopped.json()["endTime"] is not None
    assert api.get(base).status_code == 409  # a stopped session serves nothing more
    listed = {s["id"]: s["state"] for s in api.rows("/v2/RestoreSessions?limit=1000")}
    assert listed[session] == "Stopped" and listed[v8.json()["id"]] == "Working"


def test_a_running_put_back_publishes_its_counts_as_it_goes(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    monkeypatch: Any,
) -> None:
    from keepstone.services import restores

    seen: list[dict[str, int]] = []
    publish = restores._add_statistics

    def watched(ctx: Any, session_id: str, counts: Any) -> None:
        publish(ctx, session_id, counts)
        seen.append(dict(api.get(f"/v2/RestoreSessions/{session_id}").json()["statistics"]))

    monkeypatch.setattr(restores, "PROGRESS_EVERY_SECONDS", 0)  # publish after every item
    monkeypatch.setattr(restores, "_add_statistics", watched)
    run_job(api, org_job, backup_proxy)
    session = explore(api, org_job)
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    alice = next(m for m in api.rows(base) if m["name"] == "alice")
    api.post(f"{base}/{alice['id']}/restoreTo", {"userName": "bob", "folder": "Copy"})
    assert [s["restored"] for s in seen] == [1, 2, 3, 4, 4]  # moving, then the final total
