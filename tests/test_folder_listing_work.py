"""A restore session's folder listing decodes the folder's items, not every item of the trees
that hold them (issue 15 item 3: a folder's first page on a point of 1,000,000 items decoded a
whole tree of 10,000 items: 161 ms on the bench's quiet run, 83 ms of CPU here, 20 ms now)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keepstone.engine import Item, Repository, wire, writer
from keepstone.engine.model import folder_marker, marked_items
from keepstone.services.restores import Browser
from tests.engine.helpers import new_repo, text

FOLDERS = 10

# Folder names a source may hand us: quotes, backslashes, escapes, markup, separators, Unicode.
HOSTILE = [
    'In"box',
    "back\\slash",
    "tab\tand\nnewline",
    "bell\x07",
    "ünïcödé ✓",
    '},{"chunks":[',
    ',"path":"Inbox",',
    "a/b/c",
]


def _item(user: str, kind: str, path: str, n: int, meta: dict[str, object]) -> Item:
    key = f"{user}/{kind}/{n}"
    return Item(key, user, kind, path, 0, float(n), 0o600, meta)


def _point(root: Path, items: list[Item]) -> tuple[Repository, str]:
    repo = new_repo(root)
    run = repo.writer({"job_id": "test"})
    for item in items:
        chunks, size, _ = run.add_file(io.BytesIO(text(item.key, 10)))
        run.add_item(
            Item(
                item.key,
                item.user,
                item.kind,
                item.path,
                size,
                item.mtime,
                item.mode,
                item.meta,
                chunks,
            )
        )
    return repo, run.commit()


def _mailbox(per_folder: int) -> list[Item]:
    """One mailbox: ``FOLDERS`` folders of ``per_folder`` messages, in one tree."""
    return [
        _item("alice", "mail", f"Inbox/Folder {f}", f * per_folder + n, {"subject": f"m{n}"})
        for f in range(FOLDERS)
        for n in range(per_folder)
    ]


def _trees_written_otherwise(monkeypatch: pytest.MonkeyPatch, old: bytes, new: bytes) -> None:
    """Every tree read as another writer would have spaced its JSON: ``old`` made ``new``."""
    real = Repository._tree_blob

    def spaced(self: Repository, snapshot_id: str, position: int) -> tuple[bytes, str]:
        plain, what = real(self, snapshot_id, position)
        return plain.replace(old, new), what

    monkeypatch.setattr(Repository, "_tree_blob", spaced)


def _folder_ids(browser: Browser, owner: str, kind: str) -> dict[str, str]:
    return {f.path: f.id for f in browser.folders(owner, kind)}


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The keys of the items decoded from trees."""
    keys: list[str] = []
    real = Item.from_json.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Item], value: object, what: str) -> Item:
        item: Item = real(cls, value, what)
        keys.append(item.key)
        return item

    monkeypatch.setattr(Item, "from_json", classmethod(counted))
    yield keys


@pytest.mark.parametrize("per_folder", [20, 80], ids=["N", "4N"])
def test_a_folders_listing_decodes_its_own_items_alone(
    tmp_path: Path, per_folder: int, decoded: list[str]
) -> None:
    repo, snapshot = _point(tmp_path, _mailbox(per_folder))
    assert repo.tree_count(snapshot) == 1  # every folder in one tree, as on the bench's point
    browser = Browser(repo, "org", snapshot)
    owner = browser.owners_with("mail")[0].id
    folder = _folder_ids(browser, owner, "mail")["Inbox/Folder 7"]
    decoded.clear()
    listed = browser.contents(owner, "mail", folder)
    assert [i.path for i in listed] == ["Inbox/Folder 7"] * per_folder
    # the folder's items, not the tree's FOLDERS * per_folder (the whole tree before)
    assert len(decoded) == per_folder
    listed.clear()  # the caller's own list: what is kept does not change
    again = browser.contents(owner, "mail", folder)
    assert len(decoded) == per_folder and len(again) == per_folder  # kept: nothing decoded


def test_the_folders_kept_hold_a_bounded_number_of_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Browser, "FOLDER_ITEMS_KEPT", 50)
    repo, snapshot = _point(tmp_path, _mailbox(20))
    browser = Browser(repo, "org", snapshot)
    owner = browser.owners_with("mail")[0].id
    folders = _folder_ids(browser, owner, "mail")
    for n in range(FOLDERS):
        assert len(browser.contents(owner, "mail", folders[f"Inbox/Folder {n}"])) == 20
        assert sum(map(len, browser._folder_items.values())) <= 50
    assert len(browser._folder_items) == 2  # the last two listed


def test_a_folders_listing_is_the_whole_trees_listing_whatever_the_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile folder and file names, items whose meta holds another folder's marker or the
    separator between items (a false cut, which sends the tree to be decoded whole), files at a
    drive's root: every folder lists what decoding its trees whole lists."""
    items: list[Item] = []
    for n, name in enumerate(HOSTILE):
        for kind, path in (("mail", name), ("file", f"{name}/doc {n}.txt")):
            meta: dict[str, object] = {
                "note": wire.dumps(name).decode(),
                "nested": [{}, {"chunks": [], "path": HOSTILE[(n + 1) % len(HOSTILE)]}],
            }
            items += [_item(user, kind, path, n, meta) for user in ("alice", 'b"ob')]
        items.append(_item("alice", "file", f"root {n}.txt", n, {}))
    items.append(
        _item("alice", "mail", "Inbox", 99, {"x": folder_marker("mail", 'In"box').decode()})
    )
    repo, snapshot = _point(tmp_path, items)
    browser = Browser(repo, "org", snapshot)

    def listings() -> dict[tuple[str, str, str], list[Item]]:
        listed = {}
        for owner in browser.owners_with("mail") + browser.owners_with("file"):
            for kind in ("mail", "file"):
                for path, folder in _folder_ids(browser, owner.id, kind).items():
                    listed[owner.id, kind, path] = browser.contents(owner.id, kind, folder)
        return listed

    marked = listings()
    monkeypatch.setattr(Browser, "_marked", lambda *_args: None)
    browser = Browser(repo, "org", snapshot)  # nothing kept: every folder read whole
    assert marked == listings()
    assert sum(map(len, marked.values())) >= 4 * len(HOSTILE)  # not all empty


def test_marked_items_decline_a_tree_they_cannot_cut() -> None:
    """A marked piece that is not a whole item (the separator inside an item's meta) or a tree
    not in the canonical shape is left to be decoded whole."""
    tricky = _item("bob", "mail", "Inbox", 1, {"a": [{}, {"chunks": []}], "b": "Inbox"})
    plain = wire.dumps([tricky.to_json(), _item("bob", "mail", "Inbox", 2, {}).to_json()])
    marker = folder_marker("mail", "Inbox")
    assert marker is not None
    assert marked_items(plain, marker, "tree") is None  # the false cut falls in a marked item
    assert marked_items(plain[1:], marker, "tree") is None
    other = wire.dumps([_item("bob", "mail", "Sent", 3, {}).to_json(), tricky.to_json()])
    assert marked_items(other, folder_marker("mail", "Sent") or b"", "tree") == [
        _item("bob", "mail", "Sent", 3, {})
    ]
    assert folder_marker("file", ".") is None  # a drive's root: nothing common to mark


def test_a_tree_written_otherwise_is_listed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tree whose JSON is spaced (another writer's) holds no marker: the count the folder
    summary gives shows the items missed, and the trees are decoded whole."""
    repo, snapshot = _point(tmp_path, _mailbox(5))
    _trees_written_otherwise(monkeypatch, b',"path":', b', "path":')
    browser = Browser(repo, "org", snapshot)
    owner = browser.owners_with("mail")[0].id
    folder = _folder_ids(browser, owner, "mail")["Inbox/Folder 3"]
    assert repo.marked_tree_items(snapshot, 0, folder_marker("mail", "Inbox/Folder 3") or b"") == []
    assert [i.key for i in browser.contents(owner, "mail", folder)] == [
        f"alice/mail/{n}" for n in range(15, 20)
    ]


PAGE = 5


@pytest.mark.parametrize("per_folder", [20, 80], ids=["N", "4N"])
def test_an_owners_page_decodes_its_own_items_alone(
    tmp_path: Path, per_folder: int, decoded: list[str]
) -> None:
    """Every item of a mailbox (no folder), read a page at a time (``OwnerItems``): in a tree
    holding that mailbox alone, a page decodes its own items whatever the tree's size (every
    item of the tree before)."""
    items = _mailbox(per_folder)
    repo, snapshot = _point(tmp_path, items)
    browser = Browser(repo, "org", snapshot)
    owner = browser.owners_with("mail")[0].id
    decoded.clear()
    listed = browser.owner_items(owner, "mail")
    assert len(listed) == len(items) and not decoded  # counted from the folder summaries
    middle = len(items) // 2
    for start in (0, middle, len(items) - PAGE):
        decoded.clear()
        page = [i.key for i in items[start : start + PAGE]]
        assert [i.key for i in listed[start : start + PAGE]] == page
        assert decoded == page


def _owner_listings(browser: Browser) -> dict[tuple[str, str], list[list[Item]]]:
    """Each owner's items of each kind: every window of 3 (and one past the end), each item
    by index (from either end), and all of them iterated."""
    listed = {}
    for owner in browser.owners_with("mail") + browser.owners_with("file"):
        for kind in ("mail", "file"):
            every = browser.owner_items(owner.id, kind)
            total = len(every)
            windows = [every[start : start + 3] for start in range(total + 1)]
            singles = [[every[n] for n in range(total)], [every[-n] for n in range(1, total + 1)]]
            listed[owner.id, kind] = [*windows, *singles, list(every), every[::2]]
    return listed


@pytest.mark.parametrize(
    ("tree_items", "grouped"),
    [(7, False), (10_000, False), (16, True), (8, True), (5, True)],
    ids=["mixed-trees", "one-tree", "a-tree-per-owner-kind", "two-per-owner-kind", "straddling"],
)
def test_an_owners_pages_are_its_whole_listing_whatever_the_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree_items: int, grouped: bool
) -> None:
    """Three users' mail and files, with hostile names and a meta holding the separator between
    items (a false cut: that tree is decoded whole), added kind by kind or mixed, in trees of
    one owner and kind (read a window at a time), of several, or cut anywhere (an owner and a
    folder across trees): every window, index and iteration of every owner's items is what
    decoding its trees whole lists (``contents`` without a folder)."""
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", tree_items)
    items: list[Item] = []
    for user in ("alice", 'b"ob', "carol"):
        mail, files = [], []
        for n, name in enumerate(HOSTILE):
            meta: dict[str, object] = {"subject": name}
            if user == "carol" and n == 3:
                meta["nested"] = [{}, {"chunks": [], "path": name}]  # the separator, in a meta
            mail.append(_item(user, "mail", name, n, meta))
            files.append(_item(user, "file", f"{name}/f", n, {}))
        mail += [_item(user, "mail", "Inbox", 100 + n, {}) for n in range(8)]
        files += [_item(user, "file", f"root {n}", 100 + n, {}) for n in range(8)]
        items += (
            mail + files if grouped else [i for pair in zip(mail, files, strict=True) for i in pair]
        )
    repo, snapshot = _point(tmp_path, items)
    windows: list[bool] = []
    real = Repository.tree_window

    def tried(self: Repository, *args: Any) -> list[Item] | None:
        found = real(self, *args)
        windows.append(found is not None)
        return found

    monkeypatch.setattr(Repository, "tree_window", tried)
    paged = _owner_listings(Browser(repo, "org", snapshot))
    if grouped:  # trees of one owner and kind are cut (carol's false cut: decoded whole)
        assert True in windows and False in windows
    else:
        assert not windows  # no tree of one owner and kind alone: each read whole

    def whole(self: Browser, owner_id: str, kind: str) -> list[Item]:
        return self.contents(owner_id, kind, None)

    monkeypatch.setattr(Browser, "owner_items", whole)
    assert paged == _owner_listings(Browser(repo, "org", snapshot))
    assert all(paged[key][-2] for key in paged)  # none empty


def test_an_owners_tree_written_otherwise_is_listed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tree not in the canonical shape (spaced JSON, another writer's) cannot be cut into
    its items: the page is read from the tree decoded whole."""
    items = _mailbox(5)
    repo, snapshot = _point(tmp_path, items)
    _trees_written_otherwise(monkeypatch, b"},{", b"}, {")
    browser = Browser(repo, "org", snapshot)
    owner = browser.owners_with("mail")[0].id
    assert repo.tree_window(snapshot, 0, len(items), 0, PAGE) is None
    assert [i.key for i in browser.owner_items(owner, "mail")[12:17]] == [
        i.key for i in items[12:17]
    ]
