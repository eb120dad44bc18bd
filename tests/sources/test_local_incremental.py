"""The Local connector's incremental shortcuts (issue 15): an unchanged Maildir folder is skipped
whole, an unchanged message or file is handed over as its previous JSON, and every change the
shortcuts could hide is still seen: flags, new and removed messages, a file rewritten in place
with its size and mtime put back, a renamed folder, a directory whose mtime was put back, a
clock set back. Counted in listings, opened files and decoded items, never in time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from keepstone.engine import Item, wire
from keepstone.sources import connector, local_state
from keepstone.sources.confined import Directory
from keepstone.sources.connector import CarriedBlock, PreviousPoint, SourceItem
from keepstone.sources.local import SETTLED_NS, LocalOrganization
from tests.local_org import Organization

SETTLED = 10 * SETTLED_NS


@dataclass
class Run:
    """One backup of a user as the executor records it (content is not stored here: items get
    no chunks), and how the connector gave the items."""

    records: dict[str, bytes] = field(default_factory=dict)
    carried: set[str] = field(default_factory=set)  # keys handed over as previous JSON
    given: dict[str, SourceItem] = field(default_factory=dict)  # to be carried or read

    def previous(self) -> PreviousPoint:
        point = PreviousPoint.of_records(
            (key, key.split("/", 1)[0], record) for key, record in self.records.items()
        )
        point.check_chunks_with(lambda ids: True)
        return point

    def messages(self) -> dict[str, dict[str, Any]]:
        """Every message and file recorded, decoded, by key (state items left out)."""
        decoded = {key: wire.loads(record, key) for key, record in self.records.items()}
        return {key: value for key, value in decoded.items() if value["kind"] != "folder"}


def backup(
    root: Path, previous: PreviousPoint | None = None, clock: Callable[[], int] | None = None
) -> Run:
    later = clock or (lambda: max_time(root) + SETTLED)
    org = LocalOrganization(root, clock_ns=later)
    org.start([], previous or PreviousPoint())
    run = Run()
    for part in ("mailbox", "onedrive"):
        for item in org.items("alice", part):
            if isinstance(item, CarriedBlock):
                for record, _size, _mtime in item.records:
                    key = wire.loads(record, "record")["key"]
                    run.records[key] = record
                    run.carried.add(key)
                continue
            meta = {**item.meta, "change_token": item.change_token}
            stored = Item(item.key, item.user, item.kind, item.path, item.size, item.mtime,
                          item.mode, meta)  # fmt: skip
            run.records[item.key] = wire.dumps(stored.to_json())
            run.given[item.key] = item
    return run


def max_time(root: Path) -> int:
    """The newest time anything below ``root`` carries: a clock past it has settled them."""
    newest = 0
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    return newest


@dataclass
class Work:
    listings: list[str] = field(default_factory=list)  # Maildir cur/new listed
    opened: list[str] = field(default_factory=list)
    decoded: int = 0
    largest: int = 0  # bytes of the largest record decoded (what is decoded at once)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    counts = Work()
    entries, open_fd, decode = Directory.entries, Directory.open_fd, connector.item_of_record

    def counting_entries(self: Directory) -> list[os.DirEntry[str]]:
        if self.path.endswith(("/cur", "/new")):
            counts.listings.append(self.path)
        return entries(self)

    def counting_open(self: Directory, name: str) -> tuple[int, os.stat_result]:
        counts.opened.append(self.below(name))
        return open_fd(self, name)

    def counting_decode(record: bytes, key: str, what: str) -> Item:
        counts.decoded += 1
        counts.largest = max(counts.largest, len(record))
        return decode(record, key, what)

    monkeypatch.setattr(Directory, "entries", counting_entries)
    monkeypatch.setattr(Directory, "open_fd", counting_open)
    monkeypatch.setattr(connector, "item_of_record", counting_decode)
    yield counts


def mailbox(root: Path, messages: int) -> Organization:
    org = Organization(root)
    org.user("alice")
    for n in range(messages):
        org.mail("alice", ("", ".Sent", ".Archive.2024")[n % 3], f"Message {n}")
    org.file("alice", "Documents/plan.txt", b"the plan\n" * 100)
    org.file("alice", "Documents/old/notes.txt", b"notes\n" * 100)
    return org


@pytest.mark.parametrize("messages", [12, 48])
def test_an_unchanged_mailbox_is_carried_without_listing_opening_or_decoding_a_message(
    tmp_path: Path, work: Work, messages: int
) -> None:
    """Work of an unchanged incremental for N and 4N messages: no Maildir listing, no file
    opened, only the folders' state items decoded (the same count for both), every message
    and file handed over as its previous JSON."""
    org = mailbox(tmp_path / "org", messages)
    first = backup(org.root)
    assert len(first.messages()) == messages + 2
    work.listings.clear()
    work.opened.clear()
    work.decoded = 0
    second = backup(org.root, first.previous())
    assert work.listings == [] and work.opened == []
    # One state item per Maildir folder (3) and per drive directory (3), each decoded once.
    assert work.decoded == 6
    # The state items are carried too: the Maildir folders' because their stamps are the same,
    # the drive directories' because their files are.
    assert second.given == {}
    assert second.carried == second.records.keys()
    assert second.records == first.records  # the very same JSON: the same trees


def test_a_changed_folder_hands_over_what_did_not_change_and_gives_what_did(
    tmp_path: Path, work: Work
) -> None:
    org = mailbox(tmp_path / "org", 9)
    first = backup(org.root)
    cur = org.root / "alice" / "Mail" / "cur"
    reflagged, removed, *_ = sorted(cur.iterdir())
    reflagged.rename(reflagged.with_name(reflagged.name.split(":2,")[0] + ":2,FRS"))
    removed.unlink()
    new = org.mail("alice", "", "Just arrived")
    work.listings.clear()
    work.opened.clear()
    second = backup(org.root, first.previous())
    # Only the Inbox is listed; only the new message is opened (its headers).
    assert sorted(work.listings) == ["alice/Mail/cur", "alice/Mail/new"]
    assert [Path(name).name for name in work.opened] == [new.name]
    key = "alice/mail/" + reflagged.name.split(":2,")[0]
    gone = "alice/mail/" + removed.name.split(":2,")[0]
    new_key = "alice/mail/" + new.name.split(":2,")[0]
    given = {k for k in second.given if "-folder/" not in k}
    assert given == {key, new_key}
    assert second.given[key].meta["flags"] == "FRS"
    assert gone not in second.records
    # The Sent and Archive folders and the drive did not change: their state items are carried
    # as they were; the Inbox's is given anew.
    unchanged = {k for k in first.records if "-folder/" in k} - {"alice/mail-folder/."}
    assert second.carried == (first.messages().keys() - {key, gone}) | unchanged


def test_a_file_rewritten_in_place_with_its_size_and_mtime_put_back_is_given_again(
    tmp_path: Path,
) -> None:
    """A drive directory is never skipped whole: its mtime does not change when a file in it
    is rewritten, and ``touch -r``-like tools put the file's own mtime back; its ctime cannot
    be put back, and it is part of the change token."""
    org = mailbox(tmp_path / "org", 3)
    plan = org.root / "alice" / "OneDrive" / "Documents" / "plan.txt"
    first = backup(org.root)
    before = plan.stat()
    plan.write_bytes(b"THE PLAN\n" * 100)  # same size
    os.utime(plan, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (plan.stat().st_size, plan.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    second = backup(org.root, first.previous())
    assert [k for k in second.given if "-folder/" not in k] == ["alice/drive/Documents/plan.txt"]


def test_a_maildir_whose_mtime_was_put_back_is_listed_again(tmp_path: Path, work: Work) -> None:
    """A delivery whose directory mtime ends up as it was (a clock set back to the same tick,
    or ``touch -r``): the ctime still moved, and the stamp holds it."""
    org = mailbox(tmp_path / "org", 6)
    cur = org.root / "alice" / "Mail" / ".Sent" / "cur"
    first = backup(org.root)
    before = cur.stat()
    new = org.mail("alice", ".Sent", "Late")
    os.utime(cur, ns=(before.st_atime_ns, before.st_mtime_ns))
    work.listings.clear()
    second = backup(org.root, first.previous())
    assert "alice/Mail/.Sent/cur" in work.listings
    assert "alice/mail/" + new.name.split(":2,")[0] in second.given


def test_a_stamp_not_settled_or_ahead_of_the_clock_is_not_trusted(
    tmp_path: Path, work: Work
) -> None:
    """A folder listed within ``SETTLED_NS`` of its last change, or whose times are ahead of
    the clock (the clock was set back), is listed again next time rather than skipped."""
    org = mailbox(tmp_path / "org", 6)
    newest = max_time(org.root)
    for clock in (newest + SETTLED_NS // 2, newest - 3600 * 10**9):
        first = backup(org.root, clock=lambda at=clock: at)
        work.listings.clear()
        second = backup(org.root, first.previous())
        assert len(work.listings) == 6  # cur and new of the three folders
        # Listed, each message still carried; the folders' state given anew (a stamp now).
        assert {k for k in second.carried if "-folder/" not in k} == first.messages().keys()
        assert {k for k in second.given if "/mail-folder/" in k} == {
            k for k in first.records if "/mail-folder/" in k
        }


def test_a_renamed_folder_gives_its_messages_under_the_new_name(tmp_path: Path) -> None:
    org = mailbox(tmp_path / "org", 6)
    first = backup(org.root)
    mail = org.root / "alice" / "Mail"
    (mail / ".Archive.2024").rename(mail / ".Old")
    second = backup(org.root, first.previous())
    moved = {k for k, v in first.messages().items() if v["path"] == "Archive/2024"}
    assert moved and moved <= second.given.keys()
    assert {second.given[k].path for k in moved} == {"Old"}
    assert {second.given[k].meta["folder_dir"] for k in moved} == {".Old"}
    assert "alice/mail-folder/.Old" in second.records
    assert "alice/mail-folder/.Archive.2024" not in second.records


def test_an_item_stored_while_it_changed_is_given_again(tmp_path: Path) -> None:
    """The executor records such an item with an empty change token: its state entry still
    names the token, but the record does not hold it, so it is not handed over."""
    org = mailbox(tmp_path / "org", 3)
    first = backup(org.root)
    key = "alice/drive/Documents/plan.txt"
    value = wire.loads(first.records[key], key)
    value["meta"]["change_token"] = ""
    first.records[key] = wire.dumps(value)
    second = backup(org.root, first.previous())
    assert key in second.given and key not in second.carried


PAGE = 4  # entries per state page in the paging test


def _paged_backups(root: Path, messages: int, work: Work) -> tuple[Run, Run, Run, int, int]:
    """A first backup of an Inbox of ``messages``, a second after a delivery into ``new/``
    (the folder is listed: its state is looked up page by page), a third with nothing changed
    (the folder is skipped whole: its pages carried as they were). Returns the runs, the items
    decoded by the second and the largest record it decoded."""
    org = Organization(root)
    org.user("alice")
    for n in range(messages):
        org.mail("alice", "", f"Message {n}")
    first = backup(org.root)
    (org.root / "alice" / "Mail" / "new" / "1790000000.M1P2.late").write_bytes(
        b"Subject: late\n\nhello\n"
    )
    work.decoded = work.largest = 0
    second = backup(org.root, first.previous())
    decoded, largest = work.decoded, work.largest
    third = backup(org.root, second.previous())
    return first, second, third, decoded, largest


def test_a_folder_state_is_paged_and_read_a_page_at_a_time(
    tmp_path: Path, work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: a Maildir folder's state is written in pages of at most ``PAGE_ENTRIES``
    entries (a million-message folder is not one item of 100 MB), and read a page at a time:
    for N and 4N messages the state items grow as N / K, the bytes decoded at once stay the
    same, and every unchanged message is still carried."""
    monkeypatch.setattr(local_state, "PAGE_ENTRIES", PAGE)
    results = {}
    for messages in (12, 48):
        first, second, third, decoded, largest = _paged_backups(
            tmp_path / str(messages), messages, work
        )
        pages = {k for k in first.records if k.startswith("alice/mail-folder-page/")}
        assert len(pages) == messages // PAGE
        head = wire.loads(first.records["alice/mail-folder/."], "head")["meta"]
        assert head["pages"] == messages // PAGE and head["version"] == 2
        for run in (second, third):
            assert first.messages().keys() <= run.carried  # every old message carried
        # The listed folder decoded its head and each page once (the three drive
        # directories' heads besides), and the new message was given.
        assert decoded == 1 + messages // PAGE + 3
        assert "alice/mail/1790000000.M1P2.late" in second.given
        # Nothing changed: the pages are carried as their JSON, only the heads decoded.
        assert {k for k in third.records if "-page/" in k} <= third.carried
        assert third.records == second.records
        results[messages] = largest
    # The largest record decoded at once is a page, whatever the folder's size.
    assert results[48] <= results[12] * 1.2


def test_a_state_written_before_pages_is_still_read(tmp_path: Path, work: Work) -> None:
    """A version 1 state (one item, every entry) is read as a head without pages: its
    messages are carried, and the state is written again in pages."""
    org = mailbox(tmp_path / "org", 9)
    first = backup(org.root)
    for key, record in list(first.records.items()):
        value = wire.loads(record, key)
        if value["kind"] == "folder":
            del value["meta"]["pages"]
            value["meta"]["version"] = 1
            first.records[key] = wire.dumps(value)
    work.listings.clear()
    second = backup(org.root, first.previous())
    assert work.listings == []  # the stamps of version 1 are trusted as well
    assert first.messages().keys() <= second.carried
    heads = [wire.loads(r, k)["meta"] for k, r in second.records.items() if "-folder/" in k]
    assert {head["version"] for head in heads} == {2}


@pytest.mark.parametrize("messages", [12, 48])
def test_a_changed_folder_carries_each_unchanged_message_once_and_decodes_none(
    tmp_path: Path, work: Work, messages: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work in a changed Maildir folder (a delivery) for N and 4N messages: the new message is
    the only one opened, each unchanged one is looked up once in the previous point and handed
    over undecoded; the only records decoded are the state heads (one per directory)."""
    org = Organization(tmp_path / "org")
    org.user("alice")
    for n in range(messages):
        org.mail("alice", "", f"Message {n}")
    first = backup(org.root)
    new = org.mail("alice", "", "Just arrived")
    carries: list[str] = []
    carry = PreviousPoint.carry

    def counting_carry(self: PreviousPoint, key: str, change_token: str) -> Any:
        carries.append(key)
        return carry(self, key, change_token)

    monkeypatch.setattr(PreviousPoint, "carry", counting_carry)
    work.opened.clear()
    work.decoded = 0
    second = backup(org.root, first.previous())
    assert [Path(name).name for name in work.opened] == [new.name]
    assert work.decoded == len([key for key in first.records if "-folder/" in key])  # heads
    states = [key for key in first.records if "-folder/" in key]
    assert sorted(key for key in carries if "/mail/" in key) == sorted(first.messages())
    assert len(carries) <= messages + len(states)  # the other directories' state as it was
    assert second.carried >= set(first.messages())
