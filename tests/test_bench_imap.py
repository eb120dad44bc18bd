"""Smoke test of the IMAP benchmark's generator and options (the benchmark itself is run by hand:
``uv run python bench/imap.py --small``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import imap  # noqa: E402
import mailgen  # noqa: E402

SCALE = 0.01


def write(root: Path) -> tuple[mailgen.MailStats, dict[str, bytes]]:
    maildirs = {user: root / user / "Maildir" for user in mailgen.users()}
    stats = mailgen.MailSet(SCALE, 7).write(maildirs)
    files = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("cur/*")) if p.is_file()
    }
    return stats, files


def test_the_mailbox_set_is_reproducible_and_dovecot_ready(tmp_path: Path) -> None:
    stats, files = write(tmp_path / "a")
    again, same = write(tmp_path / "b")
    assert files == same  # same scale and seed: the same names and bytes
    assert stats.messages == len(files) == 50 + 10 * 10
    assert stats.by_user[mailgen.BIG_USER] == 50
    assert stats.bytes == sum(map(len, files.values())) == again.bytes
    for name, data in files.items():
        sizes = re.search(r",S=(\d+),W=(\d+):2,([A-Za-z]*)$", name)
        assert sizes is not None, name
        assert int(sizes[1]) == len(data)
        assert int(sizes[2]) == len(data) + data.count(b"\n")  # RFC822.SIZE with CRLF
        assert list(sizes[3]) == sorted(sizes[3], key=lambda c: (c.islower(), c))
        assert b"\r" not in data and b"\nMessage-ID: <" in data
    inbox = tmp_path / "a" / "user01" / "Maildir"
    assert (inbox / "dovecot-keywords").read_text() == "0 $Forwarded\n"
    assert (inbox / ".Projets.&AMk-t&AOk-" / "maildirfolder").exists()
    assert (inbox / ".Sent" / "cur").is_dir() and (inbox / ".Trash" / "cur").is_dir()


def test_mailing_list_copies_are_identical_across_mailboxes(tmp_path: Path) -> None:
    stats, files = write(tmp_path)
    listed = [data for data in files.values() if b"\nList-Id: <announce." in data]
    assert stats.list_copies == len(listed) > 0
    assert len(set(listed)) < len(listed)  # some list message reached several mailboxes


def test_small_is_a_tenth_and_excludes_scale() -> None:
    assert imap.parse_args(["--small"]).scale == 0.1
    assert imap.parse_args([]).scale == 1.0
    assert imap.parse_args(["--scale", "0.5", "--skip-keepstone"]).skip_keepstone
    with pytest.raises(SystemExit):
        imap.parse_args(["--small", "--scale", "2"])
    with pytest.raises(SystemExit):
        imap.parse_args(["--scale", "0"])
