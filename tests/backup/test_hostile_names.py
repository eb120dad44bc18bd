"""Names are data in saves: items whose folder or file names are paths in disguise (``..`` from
the modified UTF-7 folder ``.&AC4ALg-``, ``/etc`` from ``.&AC8-etc``, ``\\``, drive letters,
control characters, very long names) are backed up for real, then saved as a zip (every entry
one safe path below the archive's root) and with ``keepstone restore save --to DIR`` (nothing
written outside DIR, a link planted inside DIR never followed, nothing overwritten). Names a
filesystem cannot hold (NUL, lone surrogates, ``/`` inside a name) are engine items built
directly. And a save of 25,000 repeated ids costs what one id costs."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

import pytest

from keepstone.engine import Item
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import restores
from keepstone.services.context import Context
from keepstone.services.save_tree import SaveTree
from tests.backup.test_backup_restore import explore
from tests.backup.test_cli_and_concurrency import cli
from tests.conftest import Api
from tests.domain.test_names import is_one_safe_component
from tests.local_org import Organization, run_job

HOSTILE_FOLDERS = {".&AC4ALg-": "..", ".&AC8-etc": "/etc", ".&AC8-etc.&AC4ALg-": "/etc/.."}
HOSTILE_FILES = [
    "..\\..\\evil.txt",
    "C:evil.txt",
    "ctl\x01\x1b[31m.txt",
    "x" * 250 + ".txt",
    " .. ",
    "...",
    "a\\b.txt",  # sanitizes to a_b.txt, as does the next one: both must be kept
    "a_b.txt",
    "..\\/etc/passwd",  # a folder "..\\" holding etc/passwd
]
ALICE_ITEMS = 4 + 3 + len(HOSTILE_FOLDERS) + len(HOSTILE_FILES)  # the fixture's, then these


@pytest.fixture
def hostile(organization: Organization) -> Organization:
    for folder in HOSTILE_FOLDERS:
        for sub in ("cur", "new", "tmp"):
            (organization.root / "alice" / "Mail" / folder / sub).mkdir(parents=True)
        organization.mail("alice", folder, "../../../etc/passwd")
    for name in HOSTILE_FILES:
        organization.file("alice", name, name.encode())
    return organization


def saved_zip(api: Api, session: str, collection: str, listing: str) -> zipfile.ZipFile:
    base = f"/v2/RestoreSessions/{session}/Organization/{collection}"
    [alice] = [o for o in api.rows(base) if o["name"] == "alice"]
    items = api.get(f"{base}/{alice['id']}/{listing}?limit=1000").json()["results"]
    response = api.post(f"{base}/{alice['id']}/{listing}/save", {"ids": [i["id"] for i in items]})
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert len(archive.namelist()) == len(items)
    return archive


def assert_safe_entries(names: list[str]) -> None:
    assert len(set(names)) == len(names), names
    for name in names:
        assert all(is_one_safe_component(part) for part in name.split("/")), name


def test_a_zip_save_of_hostile_names_stays_inside(
    api: Api,
    hostile: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    tmp_path: Path,
) -> None:
    run_job(api, org_job, backup_proxy)
    session = explore(api, org_job)
    mail = saved_zip(api, session, "Mailboxes", "Items")
    files = saved_zip(api, session, "OneDrives", "Documents")
    for archive in (mail, files):
        assert_safe_entries(archive.namelist())
        target = tmp_path / "extracted" / str(id(archive))
        archive.extractall(target)
        extracted = [p for p in target.rglob("*") if p.is_file()]
        assert len(extracted) == len(archive.namelist())
    assert files.read("a_b.txt") in (b"a\\b.txt", b"a_b.txt")
    assert files.read("a_b (2).txt") in (b"a\\b.txt", b"a_b.txt")
    # Folder names that decode to ".." or hold "/" are shown as written (sources.local), so
    # their entries sit in safe folders named like the Maildir++ directories.
    assert {n.split("/")[0] for n in mail.namelist()} >= {"&AC4ALg-", "&AC8-etc"}


def everything_below(root: Path) -> set[Path]:
    found = set()
    for folder, dirs, files in os.walk(root):  # never follows links
        found.update(Path(folder, name) for name in dirs + files)
    return found


def test_cli_save_of_hostile_names_stays_inside_and_never_follows_a_link(
    api: Api,
    hostile: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    run_job(api, org_job, backup_proxy)
    [point] = api.get("/v2/RestorePoints").json()
    out, outside = tmp_path / "saved", tmp_path / "outside"
    (outside / "mail").mkdir(parents=True)
    victim = outside / "victim.txt"
    victim.write_bytes(b"keep me")
    (out / "alice" / "OneDrive").mkdir(parents=True)
    (out / "alice" / "OneDrive" / "empty.txt").symlink_to(victim)
    (out / "alice" / "Mail").symlink_to(outside / "mail", target_is_directory=True)
    before = everything_below(tmp_path) - everything_below(out)

    saved = cli(data_dir, "restore", "save", point["id"], "--user", "alice", "--to", str(out))

    assert saved.exit_code == 0, saved.output
    assert f"Saved {ALICE_ITEMS} items of alice" in saved.output
    assert everything_below(tmp_path) - everything_below(out) == before  # nothing outside
    assert victim.read_bytes() == b"keep me" and not list((outside / "mail").iterdir())
    written = [p for p in everything_below(out) if p.is_file() and not p.is_symlink()]
    assert len(written) == ALICE_ITEMS
    for path in written:
        relative = path.relative_to(out)
        assert all(is_one_safe_component(part) for part in relative.parts), relative
    drive = out / "alice" / "OneDrive"
    assert (drive / "empty (2).txt").read_bytes() == b""
    assert {(drive / "a_b.txt").read_bytes(), (drive / "a_b (2).txt").read_bytes()} == {
        b"a\\b.txt",
        b"a_b.txt",
    }
    assert len(list((out / "alice" / "Mail (2)").rglob("*.eml"))) == 4 + len(HOSTILE_FOLDERS)


# ---- names no filesystem can hold: engine items built directly ------------------------------


def item(kind: str, path: str, subject: str = "s") -> Item:
    meta = {"subject": subject} if kind == "mail" else {}
    return Item(f"k:{kind}:{path}:{subject}", "alice", kind, path, 0, 0.0, 0o600, meta)


UNHOLDABLE = [
    item("file", "a\0b/c\0d.txt"),
    item("file", "\udc80/\udcff.txt"),
    item("file", "/etc/passwd"),
    item("file", "../../x"),
    item("file", "./."),
    item("file", "C:/Windows/system.ini"),
    item("file", "d/" + "é" * 300),
    item("mail", "..", "\0\udc80/../x"),
    item("mail", "/", "a/b\\c"),
    item("mail", "", ""),
]


def test_entry_names_of_unholdable_names_are_safe_and_distinct() -> None:
    names = restores.entry_names(UNHOLDABLE + UNHOLDABLE)
    assert_safe_entries(names)
    assert len(names) == 2 * len(UNHOLDABLE)


def test_a_save_tree_writes_unholdable_names_inside(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "_etc").mkdir(parents=True)
    (root / "_etc" / "passwd").symlink_to(tmp_path / "elsewhere")
    with SaveTree(root) as tree:
        for each in UNHOLDABLE:
            path, out = tree.create(restores.save_parts(each))
            with out:
                out.write(b"x")
            assert root in path.parents
    assert not (tmp_path / "elsewhere").exists()
    assert len([p for p in everything_below(root) if p.is_file() and not p.is_symlink()]) == len(
        UNHOLDABLE
    )


# ---- 25,000 repeated ids ----------------------------------------------------------------------


def python_calls(work: Callable[[], Any], name: str | None = None) -> int:
    """How many Python function calls ``work`` makes (all, or those of functions ``name``):
    a count of work done, which a slow, shared machine cannot blur as timing would."""
    calls = 0

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call" and (name is None or frame.f_code.co_name == name):
            calls += 1

    sys.setprofile(count)
    try:
        work()
    finally:
        sys.setprofile(None)
    return calls


@pytest.fixture
def one_mail(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> Iterator[tuple[str, str, str]]:
    run_job(api, org_job, backup_proxy)
    session = explore(api, org_job)
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    owner = api.rows(base)[0]["id"]
    first = api.get(f"{base}/{owner}/Items?limit=1").json()["results"][0]["id"]
    yield session, owner, first


def test_a_save_of_repeated_ids_is_linear_in_their_number(
    ctx: Context, one_mail: tuple[str, str, str], tmp_path: Path
) -> None:
    session, owner, first = one_mail

    def save(n: int) -> Callable[[], Any]:
        return lambda: restores.write_zip(
            ctx, session, owner, [first] * n, tmp_path / f"{n}.zip", by="test"
        )

    save(1)()  # the session's items are loaded once, before anything is counted
    small, large = python_calls(save(300)), python_calls(save(1200))
    assert large <= 4 * small + 2_000, (small, large)  # quadratic would be about 16 times
    assert python_calls(save(1200), "item") == 1  # each distinct id is looked up once
    with zipfile.ZipFile(tmp_path / "1200.zip") as archive:
        assert len(archive.namelist()) == 1


def test_25000_repeated_ids_over_http_give_one_entry(
    api: Api, one_mail: tuple[str, str, str]
) -> None:
    session, owner, first = one_mail
    base = f"/v8/RestoreSessions/{session}/Organization/Mailboxes/{owner}/Items"
    response = api.post(f"{base}/save", {"ids": [first] * 25_000})
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert [PurePosixPath(n).suffix for n in archive.namelist()] == [".eml"]
