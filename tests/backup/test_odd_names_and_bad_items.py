"""Names are data and one bad item never fails a run: names that are not UTF-8 are backed up and
put back byte for byte, Maildir++ folder names that decode to ``..`` or ``/`` come back as the
same directories, and an unreadable, vanishing, growing or special file is one warning while
everything else reaches the restore point. Real backups, real restores through the API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.sources.confined import Directory
from tests.backup.test_backup_restore import everything_in, explore
from tests.backup.test_confinement import (
    put_back_everything,
    run_later,
    summary_of,
    warnings_of,
)
from tests.conftest import Api
from tests.local_org import Organization, message, run_job

CAFE = b"caf\xe9.txt"  # Latin-1, not UTF-8
RESUME = b"r\xe9sum\xe9s"


def raw(path: Path) -> bytes:
    return os.fsencode(path)


def write_raw(directory: Path, name: bytes, data: bytes) -> bytes:
    """A file whose name is the exact bytes ``name`` under ``directory``; its full path."""
    full = os.path.join(raw(directory), name)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as out:
        out.write(data)
    return full


def raw_tree(top: Path) -> dict[bytes, bytes]:
    """Every file under ``top`` by its exact relative name in bytes."""
    found: dict[bytes, bytes] = {}
    for dirpath, _, filenames in os.walk(raw(top)):
        for name in filenames:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as source:
                found[os.path.relpath(full, raw(top))] = source.read()
    return found


def no_lone_surrogates(text: str) -> bool:
    return "\\ud" not in text.lower() and all(not "\ud800" <= c <= "\udfff" for c in text)


# ----- names that are not UTF-8 -----


def test_names_that_are_not_utf8_are_backed_up_and_put_back_byte_for_byte(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    drive = organization.root / "alice" / "OneDrive"
    write_raw(drive, CAFE, b"un caf\xc3\xa9\n")
    write_raw(drive, RESUME + b"/" + CAFE, b"in a directory named in Latin-1\n")
    write_raw(drive, b"caf\xe8.txt", b"another name that shows the same\n")
    mail = organization.root / "alice" / "Mail"
    write_raw(mail, b"cur/1780000077.M1P1.h\xf4te:2,S", message(77, "from a Latin-1 host"))
    for sub in (b"cur", b"new", b"tmp"):
        os.makedirs(os.path.join(raw(mail), b".Caf\xe9", sub))
    write_raw(mail, b".Caf\xe9/cur/1780000078.M1P1.host:2,S", message(78, "in a Latin-1 folder"))
    before = raw_tree(organization.root / "alice")

    session = run_job(api, org_job, backup_proxy)
    assert session["status"] == "Success", warnings_of(api, session)
    restore_session = explore(api, org_job)
    base = f"/v2/RestoreSessions/{restore_session}/Organization"
    for path in ("/OneDrives", "/Mailboxes"):
        for owner in api.rows(base + path):
            listing = "Documents" if path == "/OneDrives" else "Items"
            page = api.get(f"{base}{path}/{owner['id']}/{listing}?limit=100")
            assert page.status_code == 200 and no_lone_surrogates(page.text)
    saved = everything_in(api, restore_session)
    assert saved["alice/OneDrive/caf\ufffd.txt"] in (
        b"un caf\xc3\xa9\n",
        b"another name that shows the same\n",
    )
    assert saved["alice/OneDrive/r\ufffdsum\ufffds/caf\ufffd.txt"] == (
        b"in a directory named in Latin-1\n"
    )

    shutil.rmtree(organization.root / "alice")
    (organization.root / "alice").mkdir()
    answers = put_back_everything(api, restore_session, "alice", "skip")
    assert [a.json()["failedItemsCount"] for a in answers] == [0, 0], [a.text for a in answers]
    after = raw_tree(organization.root / "alice")
    assert {k: v for k, v in after.items() if not k.endswith(b"/maildirfolder")} == before


def test_a_name_that_is_not_utf8_does_not_stop_the_next_run_or_other_users(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    """Today's failure: the whole organization's run failed on every retry. Now the name is an
    ordinary item, and an unchanged one is carried over by the next run."""
    write_raw(organization.root / "bob" / "OneDrive", CAFE, b"bob's coffee")
    first = run_job(api, org_job, backup_proxy)
    assert first["status"] == "Success"
    second = run_later(api, org_job, backup_proxy, clock)
    assert second["status"] == "Success"
    assert summary_of(api, second, "bob") == "1 messages, 2 files (3 unchanged), 0 B read, 0 B new"
    assert len(api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()) == 2


# ----- Maildir++ folder names that decode to ".." or hold "/" -----


def test_folder_names_decoding_to_dots_or_slashes_come_back_as_the_same_directories(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    mail = organization.root / "alice" / "Mail"
    odd = {".&AC4ALg-": "parent?", ".&AC8-": "slash", ".a&AC8-b": "a-slash-b", ".x.&AC4ALg-": "x"}
    for dir_name, subject in odd.items():
        for sub in ("cur", "new", "tmp"):
            (mail / dir_name / sub).mkdir(parents=True)
        organization.mail("alice", dir_name, subject)
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    session = explore(api, org_job)
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    alice = next(m for m in api.rows(base) if m["name"] == "alice")
    paths = {f["path"] for f in api.rows(f"{base}/{alice['id']}/Folders?limit=1000")}
    # Shown as written: never ".." or an extra level.
    assert {"&AC4ALg-", "&AC8-", "a&AC8-b", "x/&AC4ALg-"} <= paths
    before = organization.contents()
    outside_before = sorted(p.name for p in organization.root.parent.iterdir())

    for dir_name in odd:  # the same mailbox, its odd folders emptied
        for message_file in (mail / dir_name / "cur").iterdir():
            message_file.unlink()
    restored = api.post(f"{base}/{alice['id']}/restore", {"collisionPolicy": "skip"})
    assert restored.json()["restoredItemsCount"] == len(odd), restored.text
    assert organization.contents() == before

    shutil.rmtree(mail)  # an emptied mailbox
    restored = api.post(f"{base}/{alice['id']}/restore", {"collisionPolicy": "skip"})
    assert restored.json()["failedItemsCount"] == 0, restored.text
    assert organization.contents() == before
    assert sorted(p.name for p in organization.root.parent.iterdir()) == outside_before
    assert sorted(p.name for p in (organization.root / "alice").iterdir()) == ["Mail", "OneDrive"]

    # Into a folder named by the client: a "." inside a name is encoded, never a level.
    copied = api.post(
        f"{base}/{alice['id']}/restoreTo", {"userName": "bob", "folder": "v1.2/notes"}
    )
    assert copied.status_code == 200 and copied.json()["failedItemsCount"] == 0
    assert (organization.root / "bob" / "Mail" / ".v1&AC4-2.notes" / "cur").is_dir()


# ----- one bad item never fails a run -----


def fault_at_open(
    monkeypatch: pytest.MonkeyPatch, name: str, fault: Callable[[int], None], nth: int = 1
) -> None:
    """Run ``fault`` (given the directory descriptor) just before the ``nth`` real ``open`` of
    a file called ``name``: a vanishing file, reproduced at the exact moment, by the kernel."""
    real_open = os.open
    seen = [0]

    def opening(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if path == name and dir_fd is not None:
            seen[0] += 1
            if seen[0] == nth:
                fault(dir_fd)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", opening)


def fault_after_opened(
    monkeypatch: pytest.MonkeyPatch, target: Path, fault: Callable[[Path], object]
) -> None:
    """Run ``fault`` on ``target`` right after the reader took its status at open: the file
    changes while it is being read."""
    real_fstat = os.fstat
    done = [False]

    def fstat(fd: int) -> os.stat_result:
        found = real_fstat(fd)
        if not done[0] and os.readlink(f"/proc/self/fd/{fd}") == str(target):
            done[0] = True
            fault(target)
        return found

    monkeypatch.setattr(os, "fstat", fstat)


def assert_one_warning_and_the_rest_kept(
    api: Api, job: dict[str, Any], session: dict[str, Any], expected: list[str], words: str
) -> dict[str, bytes]:
    assert session["status"] == "Warning"
    warnings = warnings_of(api, session)
    assert len(warnings) == 1 and words in warnings[0], warnings
    assert warnings[0].startswith("[Warning] User alice:")
    saved = everything_in(api, explore(api, job))
    for key in expected:
        assert key in saved, key
    return saved


EVERYONE_ELSE = [
    "alice/OneDrive/Documents/plan.txt",
    "alice/OneDrive/empty.txt",
    "alice/Mail/Inbox/Quarterly report",
    "bob/OneDrive/notes.md",
    "bob/Mail/Inbox/Hello Bob",
]


def test_a_fifo_is_one_warning(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    os.mkfifo(organization.root / "alice" / "OneDrive" / "Documents" / "pipe")
    session = run_job(api, org_job, backup_proxy)
    assert_one_warning_and_the_rest_kept(
        api, org_job, session, EVERYONE_ELSE, "Documents/pipe: is not a regular file"
    )


def test_a_file_that_vanishes_between_listing_and_reading_is_one_warning(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fault_at_open(monkeypatch, "plan.txt", lambda fd: os.unlink("plan.txt", dir_fd=fd))
    session = run_job(api, org_job, backup_proxy)
    saved = assert_one_warning_and_the_rest_kept(
        api, org_job, session, EVERYONE_ELSE[1:], "OneDrive/Documents/plan.txt"
    )
    assert "alice/OneDrive/Documents/plan.txt" not in saved


def test_a_message_that_vanishes_once_listed_is_kept_whole_with_its_headers(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = next((organization.root / "alice" / "Mail" / ".Sent" / "cur").iterdir())
    content = sent.read_bytes()
    # The scan opens a message once, and the run reads it (content and headers) through that
    # descriptor: expunged right after it was opened, it is still the message that was listed.
    real = Directory.open_fd

    def opening(self: Directory, name: str) -> tuple[int, os.stat_result]:
        opened = real(self, name)
        if name == sent.name:
            os.unlink(name, dir_fd=self.fd)
        return opened

    monkeypatch.setattr(Directory, "open_fd", opening)
    session = run_job(api, org_job, backup_proxy)
    assert warnings_of(api, session) == []
    assert session["status"] == "Success"
    assert everything_in(api, explore(api, org_job))["alice/Mail/Sent/Re: Lunch?"] == content


@pytest.mark.parametrize(
    ("change", "kept"),
    [
        pytest.param(lambda p: p.open("ab").write(b"and more"), b"# notes\nand more", id="grows"),
        pytest.param(lambda p: os.truncate(p, 2), b"# ", id="truncated"),
    ],
)
def test_a_file_changing_while_read_is_kept_with_a_warning_and_read_again_next_time(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    monkeypatch: pytest.MonkeyPatch,
    clock: ManualClock,
    change: Callable[[Path], object],
    kept: bytes,
) -> None:
    notes = organization.root / "bob" / "OneDrive" / "notes.md"
    fault_after_opened(monkeypatch, notes, change)
    session = run_job(api, org_job, backup_proxy)
    assert session["status"] == "Warning"
    warnings = warnings_of(api, session)
    assert len(warnings) == 1 and "notes.md changed while it was read" in warnings[0]
    saved = everything_in(api, explore(api, org_job))
    assert saved["bob/OneDrive/notes.md"] == kept
    assert (
        saved["alice/OneDrive/Documents/plan.txt"]
        == organization.contents()["alice/OneDrive/Documents/plan.txt"]
    )

    monkeypatch.undo()
    second = run_later(api, org_job, backup_proxy, clock)
    assert second["status"] == "Success"
    titles = [i["title"] for i in api.get(f"/v2/JobSessions/{second['id']}/LogItems").json()]
    assert any(
        t.startswith("[Success] User bob: 1 messages, 1 files (1 unchanged)") for t in titles
    )
    assert everything_in(api, explore(api, org_job))["bob/OneDrive/notes.md"] == notes.read_bytes()


# ----- change detection that cannot miss -----


def test_a_file_rewritten_in_place_with_its_old_size_and_times_is_backed_up_again(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    plan = organization.root / "alice" / "OneDrive" / "Documents" / "plan.txt"
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    old = plan.stat()
    new_content = b"THE PLAN\n" * 1000  # the same size
    with plan.open("r+b") as rewrite:  # in place: the same inode
        rewrite.write(new_content)
    os.utime(plan, ns=(old.st_atime_ns, old.st_mtime_ns))  # what touch -r does
    now = plan.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)

    second = run_later(api, org_job, backup_proxy, clock)
    titles = [i["title"] for i in api.get(f"/v2/JobSessions/{second['id']}/LogItems").json()]
    assert any(
        t.startswith("[Success] User alice: 4 messages, 3 files (6 unchanged)") for t in titles
    )
    session = explore(api, org_job)
    assert everything_in(api, session)["alice/OneDrive/Documents/plan.txt"] == new_content

    plan.write_bytes(b"lost")
    drive = next(
        d
        for d in api.rows(f"/v2/RestoreSessions/{session}/Organization/OneDrives")
        if d["name"] == "alice"
    )
    restored = api.post(
        f"/v2/RestoreSessions/{session}/Organization/OneDrives/{drive['id']}/restore",
        {"collisionPolicy": "overwrite"},
    )
    assert restored.status_code == 200 and plan.read_bytes() == new_content
