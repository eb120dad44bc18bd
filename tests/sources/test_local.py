"""The Local connector against real directory trees built under ``tmp_path``."""

from __future__ import annotations

import io
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepstone.domain.errors import InvalidInput
from keepstone.sources import local
from keepstone.sources.local import LocalOrganization, LocalUser, SourceItem
from tests.sources.builders import deliver, message, standard_org, write_file


def _chmod_denies_reads() -> bool:
    """False when running as root (or with CAP_DAC_OVERRIDE): chmod 000 then denies nothing."""
    with tempfile.TemporaryDirectory() as temp:
        probe = Path(temp) / "probe"
        probe.write_bytes(b"x")
        probe.chmod(0)
        try:
            probe.read_bytes()
        except PermissionError:
            return True
        return False


CHMOD_DENIES = _chmod_denies_reads()
ROOT_REASON = "running as root: chmod 000 does not deny our reads, so there is no error to see"
FRESH_UNIQUE = re.compile(r"^\d+\.M\d+P\d+R[0-9a-f]{16}\..+$")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return standard_org(tmp_path / "org")


@pytest.fixture
def org(root: Path) -> LocalOrganization:
    return LocalOrganization(root)


def by_key(items: Iterator[SourceItem]) -> dict[str, SourceItem]:
    listed = list(items)
    keys = [item.key for item in listed]
    assert len(keys) == len(set(keys)), "an item was listed twice"
    return {item.key: item for item in listed}


def read(item: SourceItem) -> bytes:
    with item.open() as stream:
        return stream.read()


@pytest.fixture
def restorable(tmp_path: Path) -> Iterator[list[Path]]:
    """Directories chmod-ed by a test, made readable again so tmp_path can be cleaned up."""
    locked: list[Path] = []
    yield locked
    for path in locked:
        path.chmod(0o755)


# ----- users -----


def test_users_are_sorted_directories_with_what_each_has(org: LocalOrganization) -> None:
    assert org.users() == [
        LocalUser("alice", has_mailbox=True, has_onedrive=True),
        LocalUser("bob", has_mailbox=True, has_onedrive=False),
        LocalUser("carol", has_mailbox=False, has_onedrive=True),
        LocalUser("dave", has_mailbox=False, has_onedrive=False),
    ]


def test_a_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        LocalOrganization(tmp_path / "nowhere").users()


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a/b", "../alice", "x\0"])
def test_user_names_that_are_not_users_are_refused_at_call_time(
    org: LocalOrganization, name: str
) -> None:
    with pytest.raises(InvalidInput):
        org.mailbox_items(name)  # raised before iterating: the caller sees it immediately
    with pytest.raises(InvalidInput):
        org.onedrive_items(name)


def test_a_user_with_neither_tree_has_no_items(org: LocalOrganization) -> None:
    assert list(org.mailbox_items("dave")) == []
    assert list(org.onedrive_items("dave")) == []
    assert org.mail_folders("dave") == []
    with pytest.raises(FileNotFoundError):
        list(org.mailbox_items("nobody"))


# ----- mail -----


def test_mail_folders_start_with_inbox_and_decode_modified_utf7(org: LocalOrganization) -> None:
    # ".notmuch" (no cur/new) and Dovecot's files are not folders.
    assert org.mail_folders("alice") == [
        "Inbox",
        "Archive",
        "Archive/2024",
        "Entwürfe",
        "Reçus/Données",
        "Sent",
    ]
    assert org.mail_folders("bob") == ["Inbox"]


def test_every_message_is_listed_once_with_key_folder_and_flags(org: LocalOrganization) -> None:
    items = list(org.mailbox_items("alice"))
    seen = {
        item.key: (item.path, item.meta["folder_dir"], item.meta["flags"], item.meta["subject"])
        for item in items
    }
    assert len(seen) == len(items)
    assert seen == {
        "alice/mail/1000.M1P1.host": ("Inbox", "", "S", "Inbox read"),
        "alice/mail/1002.M1P1.host": ("Inbox", "", "RS", "Answered"),
        "alice/mail/1001.M1P1.host": ("Inbox", "", "", "Inbox new"),
        "alice/mail/3000.M1P1.host": ("Archive", ".Archive", "", "Archived"),
        "alice/mail/3100.M1P1.host": ("Archive/2024", ".Archive.2024", "FS", "Old"),
        "alice/mail/4000.M1P1.host": ("Entwürfe", ".Entw&APw-rfe", "D", "Entwurf über"),
        "alice/mail/4100.M1P1.host": ("Reçus/Données", ".Re&AOc-us.Donn&AOk-es", "S", "Reçu"),
        "alice/mail/2000.M1P1.host": ("Sent", ".Sent", "S", "Sent one"),
    }
    # Deterministic order: folders as mail_folders lists them, cur before new, names sorted.
    assert [item.key for item in items] == list(seen)
    assert [item.key for item in org.mailbox_items("alice")] == list(seen)


def test_a_mail_item_describes_its_file(org: LocalOrganization, root: Path) -> None:
    items = by_key(org.mailbox_items("alice"))
    item = items["alice/mail/4000.M1P1.host"]
    path = root / "alice" / "Mail" / ".Entw&APw-rfe" / "cur" / "4000.M1P1.host:2,D"
    st_ = path.stat()
    assert (item.user, item.kind, item.source_path) == ("alice", "mail", path)
    assert (item.size, item.mtime, item.mode) == (
        st_.st_size,
        st_.st_mtime,
        stat.S_IMODE(st_.st_mode),
    )
    # The unique name, then what a rewrite changes (a rename for new flags changes none of it).
    assert item.change_token == f"4000.M1P1.host:{st_.st_size}:{st_.st_mtime_ns}:{st_.st_ino}"
    assert item.meta == {
        "folder_dir": ".Entw&APw-rfe",
        "file_name": "4000.M1P1.host:2,D",
        "flags": "D",
        "subject": "Entwurf über",
        "from": "Alice <alice@example.test>",
        "to": "Bob <bob@example.test>",
        "date": "Wed, 10 Jun 2026 10:00:00 +0000",
    }
    assert read(item) == path.read_bytes()
    in_new = items["alice/mail/1001.M1P1.host"]
    assert in_new.meta["file_name"] == "1001.M1P1.host"
    assert in_new.source_path == root / "alice" / "Mail" / "new" / "1001.M1P1.host"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            b"Subject: a long\r\n\tfolded subject\r\nFrom: x@y\r\n\r\nTo: not a header\r\n",
            {"subject": "a long\tfolded subject", "from": "x@y", "to": "", "date": ""},
            id="folded, absent, and a header-like body line",
        ),
        pytest.param(
            b"subject: lf only\nTO: =?utf-8?q?J=C3=BCrgen?= <j@x>\n\nbody\n",
            {"subject": "lf only", "from": "", "to": "Jürgen <j@x>", "date": ""},
            id="LF line ends, case-insensitive names, encoded word",
        ),
        pytest.param(
            "Subject: raw UTF-8 ünïcödé\r\nSubject: second\r\n\r\n".encode(),
            {"subject": "raw UTF-8 ünïcödé", "from": "", "to": "", "date": ""},
            id="raw 8-bit header, first occurrence wins",
        ),
        pytest.param(
            b"Subject: =?x-unknown?q?abc?=\r\n\r\n",
            {"subject": "=?x-unknown?q?abc?=", "from": "", "to": "", "date": ""},
            id="undecodable encoded word kept verbatim",
        ),
        pytest.param(
            b"\r\nSubject: this is the body\r\n",
            {"subject": "", "from": "", "to": "", "date": ""},
            id="no headers at all",
        ),
        pytest.param(
            b"X-Filler: " + b"f" * (70 * 1024) + b"\r\nSubject: too far\r\n\r\n",
            {"subject": "", "from": "", "to": "", "date": ""},
            id="headers beyond 64 KiB are not parsed",
        ),
    ],
)
def test_header_meta(tmp_path: Path, raw: bytes, expected: dict[str, str]) -> None:
    deliver(tmp_path / "u" / "Mail", "", "1.M1P1.h", raw, "S")
    [item] = LocalOrganization(tmp_path).mailbox_items("u")
    assert {name: item.meta[name] for name in expected} == expected


def test_only_the_header_block_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = message(body="x" * (4 * 1024 * 1024))
    deliver(tmp_path / "u" / "Mail", "", "1.M1P1.h", big, "S")
    deliver(tmp_path / "u" / "Mail", "", "2.M1P1.h", b"Subject: s\r\n" + b"y" * (1 << 20))
    read_bytes: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        read_bytes.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    items = list(LocalOrganization(tmp_path).mailbox_items("u"))
    assert [item.size for item in items] == [len(big), 12 + (1 << 20)]
    assert items[1].meta["subject"] == "s"  # no blank line: parsed from the first 64 KiB only
    assert read_bytes[0] <= 8 * 1024  # one small read finds the end of the headers
    assert sum(read_bytes) <= read_bytes[0] + local.HEADER_LIMIT


def test_a_moved_message_keeps_its_key(org: LocalOrganization, root: Path) -> None:
    before = by_key(org.mailbox_items("alice"))["alice/mail/1000.M1P1.host"]
    mail = root / "alice" / "Mail"
    os.rename(mail / "cur" / "1000.M1P1.host:2,S", mail / ".Sent" / "cur" / "1000.M1P1.host:2,S")
    after = by_key(org.mailbox_items("alice"))["alice/mail/1000.M1P1.host"]
    assert (after.path, after.meta["folder_dir"]) == ("Sent", ".Sent")
    assert after.change_token == before.change_token


def test_reflagging_or_reading_a_new_message_keeps_key_and_token(
    org: LocalOrganization, root: Path
) -> None:
    before = by_key(org.mailbox_items("alice"))
    cur, new = root / "alice" / "Mail" / "cur", root / "alice" / "Mail" / "new"
    os.rename(cur / "1000.M1P1.host:2,S", cur / "1000.M1P1.host:2,FRS")
    os.rename(new / "1001.M1P1.host", cur / "1001.M1P1.host:2,S")  # a client read it
    after = by_key(org.mailbox_items("alice"))
    assert after.keys() == before.keys()
    for key in ("alice/mail/1000.M1P1.host", "alice/mail/1001.M1P1.host"):
        assert after[key].change_token == before[key].change_token
    assert after["alice/mail/1000.M1P1.host"].meta["flags"] == "FRS"
    assert after["alice/mail/1001.M1P1.host"].meta["flags"] == "S"


def test_a_message_caught_in_two_folders_is_listed_once(org: LocalOrganization, root: Path) -> None:
    mail = root / "alice" / "Mail"
    os.link(mail / "cur" / "1000.M1P1.host:2,S", mail / ".Sent" / "cur" / "1000.M1P1.host:2,S")
    items = by_key(org.mailbox_items("alice"))
    assert items["alice/mail/1000.M1P1.host"].path == "Inbox"
    assert len(items) == 8


def test_opening_a_message_reflagged_since_the_scan_still_works(
    org: LocalOrganization, root: Path
) -> None:
    item = by_key(org.mailbox_items("alice"))["alice/mail/1000.M1P1.host"]
    cur = root / "alice" / "Mail" / "cur"
    data = (cur / "1000.M1P1.host:2,S").read_bytes()
    os.rename(cur / "1000.M1P1.host:2,S", cur / "1000.M1P1.host:2,ST")
    assert read(item) == data
    (cur / "1000.M1P1.host:2,ST").unlink()
    with pytest.raises(FileNotFoundError):
        item.open()


def test_mailbox_items_stream(org: LocalOrganization, root: Path) -> None:
    items = org.mailbox_items("alice")
    first = next(items)
    # Lazy: a folder not yet reached is listed only when the scan gets there.
    deliver(root / "alice" / "Mail", ".Sent", "7000.M1P1.host", message("late"), "S")
    rest = [item.key for item in items]
    assert first.key == "alice/mail/1000.M1P1.host"
    assert rest[-2:] == ["alice/mail/2000.M1P1.host", "alice/mail/7000.M1P1.host"]


# ----- OneDrive -----


def test_onedrive_lists_regular_files_depth_first_in_name_order(org: LocalOrganization) -> None:
    items = list(org.onedrive_items("alice"))
    # No directories, no symlinks (one of them points outside the tree), no FIFO.
    assert [item.path for item in items] == [
        ".config/settings.ini",
        "Documents/Projekte 2024/Übersicht (final).md",
        "Documents/empty.txt",
        "Photos/été/plage #1.jpg",
        "report.txt",
    ]
    assert [item.key for item in items] == [f"alice/drive/{item.path}" for item in items]
    assert [item.path for item in org.onedrive_items("carol")] == ["notes.txt"]


def test_a_file_item_describes_its_file(org: LocalOrganization, root: Path) -> None:
    items = by_key(org.onedrive_items("alice"))
    item = items["alice/drive/report.txt"]
    path = root / "alice" / "OneDrive" / "report.txt"
    st_ = path.stat()
    assert (item.user, item.kind, item.source_path, item.size) == ("alice", "file", path, 17)
    assert (item.mtime, item.mode) == (1_700_000_000.5, stat.S_IMODE(st_.st_mode))
    assert item.meta == {"inode": st_.st_ino}
    assert item.change_token == f"17:{st_.st_mtime_ns}:{st_.st_ino}:{st_.st_ctime_ns}"
    assert read(item) == b"quarterly report\n"
    empty = items["alice/drive/Documents/empty.txt"]
    assert (empty.size, read(empty)) == (0, b"")


def test_change_tokens_follow_content_changes(org: LocalOrganization, root: Path) -> None:
    drive = root / "alice" / "OneDrive"
    before = {item.key: item.change_token for item in org.onedrive_items("alice")}
    # Edited: new size and mtime.
    write_file(drive, "Documents/empty.txt", b"now with text")
    # Replaced by another file of the same size and mtime: only the inode tells. The new file
    # is made while the old one exists, so the two inodes must differ.
    report = drive / "report.txt"
    old = report.stat()
    replacement = write_file(drive, ".replacement", b"QUARTERLY REPORT\n")
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(replacement, report)
    # Touched only: a new mtime.
    settings_ini = drive / ".config" / "settings.ini"
    os.utime(settings_ini, ns=(0, settings_ini.stat().st_mtime_ns + 1_000_000_000))
    after = {item.key: item.change_token for item in org.onedrive_items("alice")}
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {
        "alice/drive/Documents/empty.txt",
        "alice/drive/report.txt",
        "alice/drive/.config/settings.ini",
    }
    assert report.stat().st_ino != old.st_ino


# ----- failures stay with their user -----


def test_a_mail_directory_replaced_by_a_file_fails_only_that_user(
    org: LocalOrganization, root: Path
) -> None:
    mail = root / "bob" / "Mail"
    for sub in ("cur", "new", "tmp"):
        for path in (mail / sub).iterdir():
            path.unlink()
        (mail / sub).rmdir()
    mail.rmdir()
    mail.write_text("not a mailbox")
    # Still reported as having a mailbox, so the error surfaces instead of the mail vanishing.
    assert LocalUser("bob", True, False) in org.users()
    with pytest.raises(NotADirectoryError):
        list(org.mailbox_items("bob"))
    with pytest.raises(NotADirectoryError):
        org.mail_folders("bob")
    assert len(list(org.mailbox_items("alice"))) == 8


def test_a_drive_folder_replaced_by_a_file_fails_only_that_user(
    org: LocalOrganization, root: Path
) -> None:
    drive = root / "carol" / "OneDrive"
    (drive / "notes.txt").unlink()
    drive.rmdir()
    drive.write_text("not a drive")
    assert LocalUser("carol", False, True) in org.users()
    with pytest.raises(NotADirectoryError):
        list(org.onedrive_items("carol"))
    assert len(list(org.onedrive_items("alice"))) == 5


def test_an_unreadable_user_directory_fails_only_that_user(
    org: LocalOrganization, root: Path, restorable: list[Path]
) -> None:
    (root / "bob").chmod(0)
    restorable.append(root / "bob")
    users = org.users()  # listing the organization itself still works
    assert [user.name for user in users] == ["alice", "bob", "carol", "dave"]
    assert len(list(org.mailbox_items("alice"))) == 8
    if not CHMOD_DENIES:
        pytest.skip(ROOT_REASON)
    # Unknown is not absent: bob is listed with both trees so that his iterators raise.
    assert users[1] == LocalUser("bob", True, True)
    with pytest.raises(PermissionError):
        list(org.mailbox_items("bob"))
    with pytest.raises(PermissionError):
        list(org.onedrive_items("bob"))


def test_an_unreadable_message_or_drive_folder_is_skipped_and_reported(
    root: Path, restorable: list[Path]
) -> None:
    (root / "alice" / "Mail" / ".Sent" / "cur" / "2000.M1P1.host:2,S").chmod(0)
    (root / "alice" / "OneDrive" / "Photos").chmod(0)
    restorable.append(root / "alice" / "OneDrive" / "Photos")
    if not CHMOD_DENIES:
        pytest.skip(ROOT_REASON)
    skipped: list[local.Skipped] = []
    org = LocalOrganization(root, on_skip=skipped.append)
    assert len(list(org.mailbox_items("alice"))) == 7  # one bad item, not a failed mailbox
    assert "Photos/été/plage #1.jpg" not in [item.path for item in org.onedrive_items("alice")]
    reported = [(s.path, s.reason) for s in skipped]
    assert ("alice/Mail/.Sent/cur/2000.M1P1.host:2,S", "Permission denied") in reported
    assert ("alice/OneDrive/Photos", "Permission denied") in reported


# ----- restoring messages -----


def test_a_restored_message_is_found_again_with_the_same_bytes(tmp_path: Path) -> None:
    org = LocalOrganization(tmp_path)
    data = message("Restored ✓", body="back again\n")
    written = org.restore_message(
        "erin", "Projekte/Überblick 2024", data, "SR", "42.M7P7.h", "skip"
    )
    folder = tmp_path / "erin" / "Mail" / ".Projekte.&ANw-berblick 2024"
    assert written == folder / "cur" / "42.M7P7.h:2,RS"
    assert {p.name for p in folder.iterdir()} == {"cur", "new", "tmp", "maildirfolder"}
    assert list((folder / "tmp").iterdir()) == []
    assert org.mail_folders("erin") == ["Inbox", "Projekte/Überblick 2024"]
    [item] = org.mailbox_items("erin")
    assert (item.key, item.path, item.meta["flags"]) == (
        "erin/mail/42.M7P7.h",
        "Projekte/Überblick 2024",
        "RS",
    )
    assert item.meta["subject"] == "Restored ✓"
    assert read(item) == data


def test_restoring_into_the_inbox_from_a_stream_without_a_unique_name(tmp_path: Path) -> None:
    org = LocalOrganization(tmp_path)
    data = message("streamed")
    written = org.restore_message("erin", "Inbox", io.BytesIO(data), "", None, "overwrite")
    assert written is not None and written.parent == tmp_path / "erin" / "Mail" / "cur"
    unique, _, info = written.name.partition(":")
    assert FRESH_UNIQUE.match(unique) and info == "2,"
    [item] = org.mailbox_items("erin")
    assert (item.path, item.key, read(item)) == ("Inbox", f"erin/mail/{unique}", data)


def test_restore_message_collisions(org: LocalOrganization, root: Path) -> None:
    inbox = root / "alice" / "Mail"
    original = (inbox / "new" / "1001.M1P1.host").read_bytes()
    data = message("the restored copy")

    assert org.restore_message("alice", "Inbox", data, "S", "1001.M1P1.host", "skip") is None
    assert (inbox / "new" / "1001.M1P1.host").read_bytes() == original

    kept = org.restore_message("alice", "inbox", data, "S", "1001.M1P1.host", "keepBoth")
    assert kept is not None and FRESH_UNIQUE.match(kept.name.partition(":")[0])
    assert (inbox / "new" / "1001.M1P1.host").read_bytes() == original

    # Overwrite replaces the message whatever its flags or subdirectory were.
    over = org.restore_message("alice", "Inbox", data, "SF", "1001.M1P1.host", "overwrite")
    assert over == inbox / "cur" / "1001.M1P1.host:2,FS"
    assert not (inbox / "new" / "1001.M1P1.host").exists()
    inbox_items = [i for i in org.mailbox_items("alice") if i.path == "Inbox"]
    assert [read(i) for i in inbox_items if i.key == "alice/mail/1001.M1P1.host"] == [data]
    assert len(inbox_items) == 4

    # The same unique name in another folder is no collision.
    sent = org.restore_message("alice", "Sent", data, "S", "1001.M1P1.host", "skip")
    assert sent == inbox / ".Sent" / "cur" / "1001.M1P1.host:2,S"


def test_restore_message_sees_changes_made_by_others_between_restores(
    org: LocalOrganization, root: Path
) -> None:
    sent = root / "alice" / "Mail" / ".Sent"
    org.restore_message("alice", "Sent", b"Subject: a\r\n\r\n", "S", "1.M1P1.h", "skip")
    # A client re-flags it at once (possibly within the same directory-mtime tick) ...
    os.rename(sent / "cur" / "1.M1P1.h:2,S", sent / "cur" / "1.M1P1.h:2,ST")
    over = org.restore_message("alice", "Sent", b"Subject: b\r\n\r\n", "S", "1.M1P1.h", "overwrite")
    assert sorted(p.name for p in (sent / "cur").iterdir() if p.name.startswith("1.")) == [
        "1.M1P1.h:2,S"
    ]
    assert over is not None and over.read_bytes() == b"Subject: b\r\n\r\n"
    # ... and another delivers a message: directory mtimes are coarse, so let the clock tick.
    time.sleep(0.05)
    deliver(root / "alice" / "Mail", ".Sent", "2.M1P1.h", b"Subject: c\r\n\r\n")
    assert org.restore_message("alice", "Sent", b"x", "", "2.M1P1.h", "skip") is None


@pytest.mark.parametrize(
    ("folder", "flags", "unique", "collision"),
    [
        ("Inbox", "S", "1.M1P1.h", "replace"),
        ("Inbox", "S:", "1.M1P1.h", "skip"),
        ("Inbox", "S", "../1", "skip"),
        ("Inbox", "S", "1:2,S", "skip"),
        ("Inbox", "S", ".hidden", "skip"),
        ("Inbox", "S", "", "skip"),
        ("../escape", "S", None, "skip"),
        ("a/./b", "S", None, "skip"),
        ("Archive//2024", "S", None, "skip"),
        ("", "S", None, "skip"),
    ],
)
def test_restore_message_refuses_bad_input(
    tmp_path: Path, folder: str, flags: str, unique: str | None, collision: str
) -> None:
    with pytest.raises(InvalidInput):
        LocalOrganization(tmp_path).restore_message("u", folder, b"x", flags, unique, collision)
    assert list(tmp_path.iterdir()) == []  # refused before anything is created


# ----- restoring files -----


def test_a_restored_file_keeps_mode_and_mtime_and_is_found_again(tmp_path: Path) -> None:
    org = LocalOrganization(tmp_path)
    rel = "New/Deep/ünïcode file (1).txt"
    written = org.restore_file("erin", rel, b"payload", 1_600_000_000.25, 0o100640, "skip")
    assert written == tmp_path / "erin" / "OneDrive" / rel
    st_ = written.stat()
    assert stat.S_IMODE(st_.st_mode) == 0o640
    assert st_.st_mtime == pytest.approx(1_600_000_000.25, abs=1e-6)
    assert list(written.parent.iterdir()) == [written]  # no temp file left behind
    [item] = org.onedrive_items("erin")
    assert (item.key, item.mode, read(item)) == (f"erin/drive/{rel}", 0o640, b"payload")


def test_restore_file_collisions(org: LocalOrganization, root: Path) -> None:
    drive = root / "alice" / "OneDrive"
    report = drive / "report.txt"

    assert org.restore_file("alice", "report.txt", b"new", 1.0, 0o600, "skip") is None
    assert report.read_bytes() == b"quarterly report\n"

    first = org.restore_file("alice", "report.txt", io.BytesIO(b"one"), 1.0, 0o600, "keepBoth")
    second = org.restore_file("alice", "report.txt", b"two", 1.0, 0o600, "keepBoth")
    assert first == drive / "report (restored).txt" and first.read_bytes() == b"one"
    assert second == drive / "report (restored 2).txt" and second.read_bytes() == b"two"
    assert report.read_bytes() == b"quarterly report\n"

    over = org.restore_file("alice", "report.txt", b"over", 2_000_000_000.0, 0o604, "overwrite")
    assert over == report and report.read_bytes() == b"over"
    assert (stat.S_IMODE(report.stat().st_mode), report.stat().st_mtime) == (
        0o604,
        2_000_000_000.0,
    )
    names = {p.name for p in drive.iterdir()}
    assert not any(name.endswith(".tmp") for name in names)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Makefile", "Makefile (restored)"),
        (".bashrc", ".bashrc (restored)"),
        ("archive.tar.gz", "archive.tar (restored).gz"),
    ],
)
def test_keep_both_names(tmp_path: Path, name: str, expected: str) -> None:
    org = LocalOrganization(tmp_path)
    org.restore_file("u", f"d/{name}", b"a", 1.0, 0o644, "keepBoth")
    written = org.restore_file("u", f"d/{name}", b"b", 1.0, 0o644, "keepBoth")
    assert written == tmp_path / "u" / "OneDrive" / "d" / expected


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "/etc/passwd", "a/../../escape.txt", "", "a//b", "./a", "a/", "a\0b", ".."],
)
def test_restore_file_refuses_paths_leaving_the_drive(tmp_path: Path, path: str) -> None:
    root = tmp_path / "org"
    root.mkdir()
    with pytest.raises(InvalidInput):
        LocalOrganization(root).restore_file("u", path, b"x", 1.0, 0o644, "overwrite")
    assert list(tmp_path.iterdir()) == [root]
    assert list(root.iterdir()) == []


def test_restore_file_does_not_write_through_a_symlink(org: LocalOrganization, root: Path) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    (root / "alice" / "OneDrive" / "out").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput):
        org.restore_file("alice", "out/x.txt", b"x", 1.0, 0o644, "overwrite")
    assert list(outside.iterdir()) == []


def test_restore_file_refuses_unknown_collision_policy(org: LocalOrganization) -> None:
    with pytest.raises(InvalidInput):
        org.restore_file("alice", "x.txt", b"x", 1.0, 0o644, "rename")


# ----- folder name encoding -----


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("Entw&APw-rfe", "Entwürfe"),
        ("&U,BTFw-", "台北"),  # RFC 3501's example
        ("&ZeVnLIqe-", "日本語"),
        ("Tom &- Jerry", "Tom & Jerry"),
        ("&2D3eAA-", "😀"),  # a surrogate pair
    ],
)
def test_modified_utf7_examples(encoded: str, decoded: str) -> None:
    assert local._mutf7_decode(encoded) == decoded
    assert local._mutf7_encode(decoded) == encoded


@pytest.mark.parametrize("bad", ["&", "&AB", "&A-", "&$$-", "&2D0-"])
def test_invalid_modified_utf7_folder_names_are_kept_as_they_are(bad: str) -> None:
    assert local._folder_path(f".{bad}.x") == f"{bad}/x"


@given(st.text())
def test_modified_utf7_round_trips(text: str) -> None:
    encoded = local._mutf7_encode(text)
    assert all(" " <= char <= "~" for char in encoded)
    assert local._mutf7_decode(encoded) == text


folder_part = st.text(
    # No surrogates; "." inside a name is encoded, so it round-trips too.
    st.characters(codec="utf-8", exclude_characters="/\0"),
    min_size=1,
    max_size=10,  # three parts must still fit one 255-byte directory name once encoded
).filter(lambda part: part.casefold() != "inbox" and part not in (".", ".."))


@settings(max_examples=25)
@given(st.lists(folder_part, min_size=1, max_size=3))
def test_any_restorable_folder_name_comes_back_the_same(parts: list[str]) -> None:
    folder = "/".join(parts)
    with tempfile.TemporaryDirectory() as temp:
        org = LocalOrganization(Path(temp))
        org.restore_message("u", folder, b"Subject: s\r\n\r\n", "S", None, "skip")
        assert org.mail_folders("u") == ["Inbox", folder]
        assert [item.path for item in org.mailbox_items("u")] == [folder]


def test_a_scan_joins_no_path_per_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An item's ``source_path`` is joined only when asked (nothing in a run asks): a scan of N
    or 4N messages and files makes as many pathlib joins, one per directory (it made one more
    per item)."""
    joins: list[int] = []
    real = Path.__truediv__

    def counting(self: Path, other: str) -> Path:
        joins.append(1)
        return real(self, other)

    counts = []
    for n in (10, 40):
        root = tmp_path / f"org{n}"
        for i in range(n):
            deliver(root / "alice" / "Mail", "", f"{1000 + i}.M1P1.host", message(f"m{i}"), "S")
            write_file(root / "alice" / "OneDrive", f"d/f{i}.txt", b"x")
        org = LocalOrganization(root)
        monkeypatch.setattr(Path, "__truediv__", counting)
        items = [*org.mailbox_items("alice"), *org.onedrive_items("alice")]
        monkeypatch.undo()
        assert len(items) == 2 * n
        counts.append(len(joins))
        joins.clear()
        paths = {item.source_path for item in items}  # still where each was found
        assert root / "alice" / "Mail" / "cur" / "1000.M1P1.host:2,S" in paths
        assert root / "alice" / "OneDrive" / "d" / f"f{n - 1}.txt" in paths
    assert counts[0] == counts[1]
