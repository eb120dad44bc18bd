"""``confined``: every component reached from its parent's descriptor, never through a link,
never across a mount; files written by rename inside their directory. Real directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from keepstone.sources.confined import ConfinedRoot, Refused
from keepstone.sources.local import LocalOrganization, Skipped
from tests.sources.builders import standard_org


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "root" / "a" / "b").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"secret")
    return tmp_path


@pytest.mark.parametrize("linked", ["a", "a/b"])
def test_a_link_at_any_level_is_refused_and_never_written_through(tree: Path, linked: str) -> None:
    target = tree / "root" / linked
    target.rename(target.with_name("moved"))
    target.symlink_to(tree / "outside", target_is_directory=True)
    root = ConfinedRoot(tree / "root")
    with pytest.raises(Refused, match=f"{linked} is a symbolic link"):
        root.walk(linked.split("/"))
    with pytest.raises(Refused):
        root.walk([*linked.split("/"), "c"], create=True)
    assert sorted(p.name for p in (tree / "outside").iterdir()) == ["secret"]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x\0"])
def test_a_component_that_is_not_a_name_is_refused(tree: Path, name: str) -> None:
    with pytest.raises(Refused):
        ConfinedRoot(tree / "root").walk(["a", name])


def test_a_mount_point_is_refused(tmp_path: Path) -> None:
    """``/proc`` is another file system than ``/`` on every Linux: a real mount crossing."""
    if os.stat("/proc").st_dev == os.stat("/").st_dev:
        pytest.skip("/proc is not a separate mount here")
    with pytest.raises(Refused, match="another file system"):
        ConfinedRoot(Path("/")).walk(["proc"])
    skipped: list[Skipped] = []
    users = LocalOrganization(Path("/"), on_skip=skipped.append).users()
    assert "proc" not in [user.name for user in users]
    assert (
        Skipped("proc", "proc", "is on another file system (a mount point), not a user directory")
        in skipped
    )


def test_files_are_opened_without_following_links_or_blocking_on_fifos(tree: Path) -> None:
    b = tree / "root" / "a" / "b"
    (b / "link").symlink_to(tree / "outside" / "secret")
    os.mkfifo(b / "fifo")
    (b / "plain").write_bytes(b"plain")
    with ConfinedRoot(tree / "root").walk(["a", "b"]) as directory:
        with pytest.raises(Refused, match="symbolic link"):
            directory.open_file("link")
        with pytest.raises(Refused, match="not a regular file"):
            directory.open_file("fifo")  # refused at once: never waits for a writer
        with directory.open_file("plain") as opened:
            assert opened.read() == b"plain" and not opened.changed(5)


def test_writing_replaces_a_link_never_its_target_and_drops_setuid(tree: Path) -> None:
    b = tree / "root" / "a" / "b"
    (b / "name").symlink_to(tree / "outside" / "secret")
    with ConfinedRoot(tree / "root").walk(["a", "b"]) as directory:
        directory.write_file("name", b"restored", mode=0o104755, mtime=1_600_000_000.0)
        with pytest.raises(Refused):
            (b / "marker").symlink_to(tree / "outside" / "made-by-touch")
            directory.touch("marker")
    assert (tree / "outside" / "secret").read_bytes() == b"secret"
    assert sorted(p.name for p in (tree / "outside").iterdir()) == ["secret"]
    written = (b / "name").lstat()
    assert stat.S_ISREG(written.st_mode) and stat.S_IMODE(written.st_mode) == 0o755
    assert written.st_mtime == 1_600_000_000.0
    assert not [p for p in b.iterdir() if p.name.startswith(".keepstone-")]


def test_scans_report_what_they_skip(tmp_path: Path) -> None:
    root = standard_org(tmp_path / "org")
    (root / "mallory").symlink_to(root / "alice", target_is_directory=True)
    (root / "alice" / "Mail" / ".Linked").symlink_to(root / "alice" / "Mail" / ".Sent")
    skipped: list[Skipped] = []
    org = LocalOrganization(root, on_skip=skipped.append)
    assert [user.name for user in org.users()] == ["alice", "bob", "carol", "dave"]
    list(org.mailbox_items("alice"))
    list(org.onedrive_items("alice"))
    assert [(s.user, s.path, s.reason) for s in skipped] == [
        ("mallory", "mallory", "is a symbolic link, not a user directory"),
        ("alice", "alice/Mail/.Linked", "is a symbolic link, not followed"),
        ("alice", "alice/OneDrive/a-fifo", "is not a regular file"),
        ("alice", "alice/OneDrive/link-outside", "is a symbolic link, not followed"),
        ("alice", "alice/OneDrive/link-to-report.txt", "is a symbolic link, not followed"),
    ]


def test_a_user_name_that_is_not_utf8_is_not_a_user(tmp_path: Path) -> None:
    root = standard_org(tmp_path / "org")
    os.mkdir(os.path.join(os.fsencode(root), b"j\xfcrgen"))
    skipped: list[Skipped] = []
    org = LocalOrganization(root, on_skip=skipped.append)
    assert "jürgen" not in [user.name for user in org.users()]
    assert [(s.user, s.reason) for s in skipped] == [
        ("j\ufffdrgen", "is not a valid UTF-8 name, so not a user")
    ]
