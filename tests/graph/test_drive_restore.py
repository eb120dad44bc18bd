"""OneDrive restore (``put_back_files``) against the strict fake Graph: small files by simple
upload and large ones by upload session, byte for byte with their dates, resumed after a cut,
each collision policy, into another user's drive and under a folder, hostile names kept inside
the target folder, and the requests counted for N and 4N files."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.engine import Item
from keepstone.sources.graph import drive_restore
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.drive_restore import put_back_files
from keepstone.sources.targets import ChunkReader, Collision, Outcome, Placement
from tests.graph.drive_fixtures import (
    Runs,
    Tenancy,
    add_user,
    drive_files,
    drive_path,
    fill,
    runs,
    server,
    tenancy,
)
from tests.graph_fake.drive import Drive
from tests.graph_fake.uploads import uploads

__all__ = ["runs", "server", "tenancy"]

UNIT = 320 * 1024
WHEN = datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture(autouse=True)
def small_fragments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions from 1 MiB, in 640 KiB fragments: several fragments without big test files."""
    monkeypatch.setattr(drive_restore, "SIMPLE_LIMIT", 1 << 20)
    monkeypatch.setattr(drive_restore, "CHUNK", 2 * UNIT)


def graph_item(user: str, path: str, content: bytes, **meta: Any) -> Item:
    name = path.rsplit("/", 1)[-1]
    stamp = WHEN.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Item(
        key=f"{user}/graph-drive/{path}",
        user=user,
        kind="file",
        path=path,
        size=len(content),
        mtime=WHEN.timestamp(),
        mode=0o644,
        meta={"source": "graph", "name": name, "created": stamp, "modified": stamp} | meta,
    )


def reader(contents: dict[str, bytes]) -> Callable[[Item], BinaryIO]:
    return lambda item: io.BytesIO(contents[item.key])


def put(
    tenancy: Tenancy,
    user: GraphUser,
    items: list[Item],
    contents: dict[str, bytes],
    where: Placement,
) -> list[Outcome]:
    with tenancy.client() as client:
        return list(put_back_files(client, user, items, reader(contents), where))


def by_path(drive: Drive) -> dict[str, bytes]:
    return dict(drive_files(drive).values())


def dates(drive: Drive, path: str) -> dict[str, Any]:
    item = next(i for i in drive.items.values() if drive_path(drive, i) == path)
    info: dict[str, Any] = item.to_json(drive)["fileSystemInfo"]
    return info


def test_a_backup_put_back_in_place_is_byte_for_byte_with_its_dates(runs: Runs) -> None:
    user, drive = add_user(runs, "adele")
    fill(drive, runs, 9)
    now = runs.tenancy.now()
    with runs.tenancy.fake.state.lock:
        big = drive.add("big.bin", now, bytes(range(256)) * (5 * UNIT // 256 + 7))
    before = by_path(drive)
    assert runs.run()["status"] == "Success"
    stored = [i for i, _ in runs.stored().values() if i.kind == "file"]
    with runs.tenancy.fake.state.lock:
        for item in list(drive.children(drive.root.id)):
            drive.delete(item.id)
    repo = runs.repository()
    with runs.tenancy.client() as client:
        outcomes = list(
            put_back_files(
                client,
                user,
                stored,
                lambda item: ChunkReader(iter(repo.read(item))),
                Placement(user.name, None, Collision.SKIP),
            )
        )
    assert all(o.restored and o.error is None for o in outcomes)
    assert len(outcomes) == len(stored)
    assert by_path(drive) == before
    stamp = big.modified.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert dates(drive, "big.bin")["lastModifiedDateTime"] == stamp
    assert dates(drive, "Documents/file 1.bin")["lastModifiedDateTime"] == stamp


@pytest.mark.parametrize("count", [10, 40])
def test_small_files_cost_one_request_each_plus_one_batch_per_twenty(
    tenancy: Tenancy, count: int
) -> None:
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    items = [graph_item(user.name, f"Docs/f{n}.txt", b"x" * n) for n in range(count)]
    contents = {i.key: b"x" * n for n, i in enumerate(items)}
    outcomes = put(tenancy, user, items, contents, Placement(user.name, None, Collision.SKIP))
    assert sum(o.restored for o in outcomes) == count
    assert by_path(drive) == {f"Docs/f{n}.txt": b"x" * n for n in range(count)}
    assert dates(drive, "Docs/f3.txt")["createdDateTime"] == "2024-02-03T04:05:06Z"
    assert tenancy.transport is not None
    counts = tenancy.transport.counts
    # the drive, one folder, one PUT per file, one $batch of dates per 20 files
    assert counts["graph"] == 1 + 1 + count + -(-count // 20)
    assert counts["PUT graph"] == count


def test_a_large_file_goes_by_session_in_order_without_the_token_and_resumes_after_a_cut(
    tenancy: Tenancy,
) -> None:
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    content = bytes(range(251)) * (7 * UNIT // 251) + b"tail"
    item = graph_item(user.name, "big.bin", content)
    uploads(tenancy.fake.state).cut = 1
    outcomes = put(
        tenancy, user, [item], {item.key: content}, Placement(user.name, None, Collision.SKIP)
    )
    assert outcomes[0].restored, outcomes[0].why
    assert by_path(drive) == {"big.bin": content}
    assert dates(drive, "big.bin")["lastModifiedDateTime"] == "2024-02-03T04:05:06Z"
    assert tenancy.transport is not None
    sent = [(m, h) for m, p, h in tenancy.transport.headers if p.startswith("/_upload/")]
    assert not any("authorization" in h for _, h in sent)
    ranges = [h["content-range"] for m, h in sent if m == "PUT"]
    fragments = -(-len(content) // (2 * UNIT))
    # one fragment cut (half kept), re-sent whole by the client (416), then its rest
    assert len(ranges) == fragments + 2
    assert [m for m, _ in sent].count("GET") == 1  # nextExpectedRanges asked once


@pytest.mark.parametrize("large", [False, True])
def test_each_collision_policy(tenancy: Tenancy, large: bool) -> None:
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    size = 3 * UNIT if large else 100
    old, new = b"o" * size, b"n" * size
    with tenancy.fake.state.lock:
        kept = drive.add("report.txt", tenancy.now(), old)
    item = graph_item(user.name, "report.txt", new)
    contents = {item.key: new}

    skipped = put(tenancy, user, [item], contents, Placement(user.name, None, Collision.SKIP))
    assert skipped[0].restored is False and skipped[0].error is None
    assert by_path(drive) == {"report.txt": old}

    both = put(tenancy, user, [item], contents, Placement(user.name, None, Collision.KEEP_BOTH))
    assert both[0].restored
    assert by_path(drive) == {"report.txt": old, "report 1.txt": new}

    replaced = put(tenancy, user, [item], contents, Placement(user.name, None, Collision.OVERWRITE))
    assert replaced[0].restored
    assert by_path(drive) == {"report.txt": new, "report 1.txt": new}
    assert drive.items[kept.id].content == new  # the same item, new content


def test_restore_to_another_users_drive_under_a_folder_from_another_source(
    tenancy: Tenancy,
) -> None:
    adele, _ = tenancy.add_user("adele")
    bob, bobs = tenancy.add_user("bob")
    assert bobs is not None
    with tenancy.fake.state.lock:
        bobs.add("Restored", tenancy.now())  # exists already: used, not duplicated
    local = Item(
        key=f"{adele.name}/onedrive/Notes/todo.md",
        user=adele.name,
        kind="file",
        path="Notes/todo.md",
        size=5,
        mtime=WHEN.timestamp(),
        mode=0o644,
        meta={},  # from a Local organization: name from the path, dates from mtime
    )
    outcomes = put(
        tenancy,
        bob,
        [local],
        {local.key: b"to do"},
        Placement(bob.name, "Restored/adele", Collision.SKIP),
    )
    assert outcomes[0].restored, outcomes[0].why
    assert by_path(bobs) == {"Restored/adele/Notes/todo.md": b"to do"}
    assert dates(bobs, "Restored/adele/Notes/todo.md")["lastModifiedDateTime"] == (
        "2024-02-03T04:05:06Z"
    )
    assert sum(1 for i in bobs.items.values() if i.name == "Restored") == 1


def test_hostile_names_never_escape_the_target_folder(tenancy: Tenancy) -> None:
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    hostile = ["..", "a/b", "ctl\x01\x1fname", "x" * 400 + ".txt", "CON", " spaced ", 'q"*:<>?|']
    items = [
        graph_item(user.name, f"../{n}/{name}", name.encode(), name=name)
        for n, name in enumerate(hostile)
    ]
    items.append(graph_item(user.name, "../../../etc/passwd", b"root", name="passwd"))
    contents = {i.key: i.meta["name"].encode() for i in items}
    outcomes = put(
        tenancy, user, items, contents, Placement(user.name, "../../safe", Collision.SKIP)
    )
    assert all(o.restored for o in outcomes), [o.why for o in outcomes]
    paths = by_path(drive)
    assert len(paths) == len(items)
    assert all(p.startswith("_../_../safe/") for p in paths)
    assert sorted(paths.values()) == sorted(contents.values())
    top = {i.name for i in drive.children(drive.root.id)}
    assert top == {"_.."}  # nothing but the sanitised target folder at the top


def test_a_user_without_a_drive_is_refused_before_anything_is_written(tenancy: Tenancy) -> None:
    nobody, _ = tenancy.add_user("nodrive", drive=False)
    item = graph_item(nobody.name, "a.txt", b"a")
    with tenancy.client() as client, pytest.raises(InvalidInput, match="OneDrive"):
        put_back_files(
            client,
            nobody,
            [item],
            reader({item.key: b"a"}),
            Placement(nobody.name, None, Collision.SKIP),
        )
