"""OneDrive backup through the real executor (``proxy.backup.Backup``, a real repository) with a
connector that reads only drives, against the strict fake Graph: every stored file's bytes are
the fake's, incremental runs follow adds, changes, renames, moves and deletes, a delta reset is a
full re-read merged by id, expired URLs, cut downloads and corrupt bodies are handled, and the
requests are counted."""

from __future__ import annotations

import pytest

from keepstone.sources.connector import Skipped
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.drive_backup import SPILL_BYTES, DriveBackup
from keepstone.sources.graph.errors import GraphSyncStateLost
from keepstone.sources.graph.settings import GraphEndpoints
from tests.graph.drive_fixtures import (
    Runs,
    Tenancy,
    add_user,
    expected,
    fill,
    runs,
    server,
    tenancy,
)
from tests.graph_fake.onedrive import download_faults

__all__ = ["runs", "server", "tenancy"]


@pytest.mark.parametrize("count", [10, 40])
def test_first_backup_stores_every_file_byte_for_byte_at_one_request_per_file(
    runs: Runs, count: int
) -> None:
    user, drive = add_user(runs, "adele")
    fill(drive, runs, count)
    session = runs.run()
    assert session["status"] == "Success", runs.log(session)
    assert runs.files(user) == expected(drive)
    folders = {
        i.meta["item_id"]: i.path
        for i, _ in runs.stored().values()
        if i.key.startswith(f"{user.name}/graph-drive-folder/")
    }
    assert sorted(folders.values()) == [
        "Documents",
        "Documents/Projects",
        "Documents/Projects/Été 2024",
    ]
    # 1 drive + 1 delta page (500 a page) + 1 download per file; no per-file metadata GET
    assert runs.counts["graph"] == 2 and runs.counts["download"] == count
    item = next(i for i, _ in runs.stored().values() if i.path == "Documents/file 1.bin")
    assert item.meta["source"] == "graph" and item.meta["quick_xor_hash"]
    assert item.meta["change_token"] == item.meta["ctag"] and item.mode == 0o644


def test_incremental_follows_adds_changes_renames_moves_and_deletes(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    fill(drive, runs, 12)
    assert runs.run()["status"] == "Success"
    state = runs.tenancy.fake.state
    now = runs.tenancy.now()
    by_name = {i.name: i for i in drive.items.values()}
    with state.lock:
        drive.add("new.txt", now, b"brand new", by_name["Projects"])
        drive.change(by_name["file 0.bin"].id, now, content=b"changed")
        drive.change(by_name["Projects"].id, now, name="Projets")  # renames the subtree
        drive.change(by_name["file 4.bin"].id, now, parent_id=drive.root.id)  # moved
        drive.delete(by_name["file 3.bin"].id)
        drive.delete(by_name["Été 2024"].id)  # a folder and its files
    runs.tenancy.transport and runs.tenancy.transport.reset()
    session = runs.run()
    assert session["status"] == "Success", runs.log(session)
    assert runs.files(user) == expected(drive)
    paths = {p for p, _ in runs.files(user).values()}
    assert "Documents/Projets/new.txt" in paths and "file 4.bin" in paths
    assert not any("Été" in p for p in paths)
    # 1 drive + 1 delta page; only the new and the changed file are downloaded
    assert runs.counts["graph"] == 2 and runs.counts["download"] == 2


def test_a_child_listed_before_its_parent_gets_its_path(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    assert runs.run()["status"] == "Success"
    now = runs.tenancy.now()
    with runs.tenancy.fake.state.lock:
        parent = drive.add("Parent", now)
        child = drive.add("child.txt", now, b"child", drive.add("Sub", now, parent=parent))
        drive.change(parent.id, now, name="Renamed parent")  # now after its children in delta
    assert runs.run()["status"] == "Success"
    stored = runs.files(user)
    assert stored.get(child.id) == ("Renamed parent/Sub/child.txt", b"child"), runs.stored()


def test_a_delta_reset_is_a_full_reread_merged_by_id(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    fill(drive, runs, 9)
    assert runs.run()["status"] == "Success"
    now = runs.tenancy.now()
    with runs.tenancy.fake.state.lock:
        drive.add("after reset.txt", now, b"x")
        drive.delete(next(i for i in drive.items.values() if i.name == "file 2.bin").id)
        drive.invalidate_delta()
    runs.tenancy.transport and runs.tenancy.transport.reset()
    session = runs.run()
    assert session["status"] == "Success", runs.log(session)
    stored = [i for i, _ in runs.stored().values() if i.kind == "file"]
    assert len(stored) == len({i.key for i in stored}) == len(expected(drive))
    assert runs.files(user) == expected(drive)
    # drive, the 410, the fresh enumeration its Location names (one page); unchanged files
    # carried by cTag, one download
    assert runs.counts["graph"] == 3 and runs.counts["download"] == 1
    assert drive.resyncs_followed == 1  # the Location's nextLink, not a start from scratch


def test_a_resync_asking_to_upload_differences_warns_of_what_is_no_longer_listed(
    runs: Runs,
) -> None:
    """resyncChangesUploadDifferences: a backup uploads nothing; the drive is what the service
    lists, and the files it stopped listing are named in one warning (earlier points keep
    them)."""
    user, drive = add_user(runs, "adele")
    fill(drive, runs, 6)
    assert runs.run()["status"] == "Success"
    with runs.tenancy.fake.state.lock:
        for name in ("file 1.bin", "file 4.bin"):
            drive.delete(next(i for i in drive.items.values() if i.name == name).id)
        drive.invalidate_delta("resyncChangesUploadDifferences")
    assert runs.tenancy.transport is not None
    runs.tenancy.transport.reset()
    session = runs.run()
    assert session["status"] == "Warning", runs.log(session)
    assert any("upload" in t and "2 file(s)" in t for t in runs.log(session)), runs.log(session)
    assert runs.files(user) == expected(drive)
    assert runs.counts["download"] == 0 and drive.resyncs_followed == 1


def test_only_a_graph_location_is_followed() -> None:
    """A 410's Location elsewhere (or none) is not followed: the listing starts without a
    token on Graph itself."""
    client = GraphClient(GraphEndpoints("https://graph.example", "https://login.example"), str)
    backup = DriveBackup(client, GraphUser("u", "id", "u"), [], lambda _: None)

    def gone(location: str | None) -> GraphSyncStateLost:
        return GraphSyncStateLost(410, "resyncRequired", "", None, location=location)

    try:
        assert backup._resync_url(gone("https://graph.example/v1.0/x?token=1")) is not None
        for elsewhere in ("https://graph.example.evil/x", "http://graph.example/x", "/x", None):
            assert backup._resync_url(gone(elsewhere)) is None
        assert backup._resync_url(None) is None
    finally:
        client.close()


def test_expired_urls_are_asked_again_and_cut_downloads_resume(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    fill(drive, runs, 6)
    faults = download_faults(runs.tenancy.fake.state)
    faults.expire, faults.truncate = 2, 2
    session = runs.run()
    assert session["status"] == "Success", runs.log(session)
    assert runs.files(user) == expected(drive)
    # 2 fresh URLs (GET item) and their downloads; 2 cut bodies resumed with Range
    assert runs.counts["graph"] == 2 + 2 and runs.counts["download"] == 6 + 2 + 2
    assert runs.tenancy.transport is not None
    ranged = [h for m, p, h in runs.tenancy.transport.headers if "range" in h]
    assert len(ranged) == 2 and all(h["range"].endswith("-") for h in ranged)
    downloads = [h for _, p, h in runs.tenancy.transport.headers if p.startswith("/_download/")]
    assert downloads and not any("authorization" in h for h in downloads)  # no token leaves


def test_a_corrupt_body_is_downloaded_again_then_never_stored(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    now = runs.tenancy.now()
    with runs.tenancy.fake.state.lock:
        good = drive.add("good.bin", now, b"g" * 1000)
    faults = download_faults(runs.tenancy.fake.state)
    faults.corrupt = 1
    assert runs.run()["status"] == "Success"
    assert runs.files(user) == expected(drive)  # the second download was right

    with runs.tenancy.fake.state.lock:
        bad = drive.add("bad.bin", now, b"b" * 1000)
    faults.corrupt = 2
    session = runs.run()
    assert session["status"] == "Warning"
    assert any("bad.bin" in t and "quickXorHash" in t for t in runs.log(session))
    assert set(runs.files(user)) == {good.id}  # never a corrupt item stored
    session = runs.run()  # the delta no longer names it: retried from the state item
    assert session["status"] == "Success", runs.log(session)
    assert runs.files(user) == expected(drive) and bad.id in runs.files(user)


def test_a_user_without_a_drive_is_a_per_user_warning(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    fill(drive, runs, 3)
    nobody, _ = runs.tenancy.add_user("nodrive", drive=False)
    runs.users.append(GraphUser(nobody.name, nobody.graph_id, "nodrive", has_mailbox=False))
    session = runs.run()
    assert session["status"] == "Warning"
    assert any("nodrive" in t and "no OneDrive" in t for t in runs.log(session))
    assert runs.files(user) == expected(drive)


def test_a_large_file_streams_through_a_spill_on_disk(tenancy: Tenancy) -> None:
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    content = bytes(range(256)) * ((SPILL_BYTES + 1000) // 256)
    with tenancy.fake.state.lock:
        drive.add("big.bin", tenancy.now(), content)
    skipped: list[Skipped] = []
    with tenancy.client() as client:
        items = DriveBackup(client, user, [], skipped.append).items()
        big = next(i for i in items if i.kind == "file")
        with big.open() as stream:
            assert getattr(stream, "_rolled", False)  # on disk, not held in memory
            assert stream.read() == content
        rest = list(items)  # the state item comes once the download is done
    assert [i.key for i in rest] == [f"{user.name}/graph-drive-state"] and not skipped


def test_a_run_without_changes_costs_two_requests_and_reads_nothing(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    fill(drive, runs, 30)
    assert runs.run()["status"] == "Success"
    first = runs.files(user)
    assert runs.tenancy.transport is not None
    runs.tenancy.transport.reset()
    session = runs.run()
    assert session["status"] == "Success"
    assert runs.files(user) == first
    assert runs.counts["graph"] == 2 and runs.counts["download"] == 0  # the drive, one delta
    assert any("30 files (30 unchanged)" in t for t in runs.log(session))
