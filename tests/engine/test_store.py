"""LocalStore: atomic, never-overwriting puts; ranges; listing."""

from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.engine import LocalStore, ObjectExists, ObjectNotFound, RepositoryCorrupt


def test_put_get_and_range(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("packs/ab/abcdef", b"0123456789")
    assert store.get("packs/ab/abcdef") == b"0123456789"
    assert store.get_range("packs/ab/abcdef", 3, 4) == b"3456"
    assert store.size("packs/ab/abcdef") == 10
    assert store.exists("packs/ab/abcdef")
    with pytest.raises(RepositoryCorrupt):
        store.get_range("packs/ab/abcdef", 8, 4)


def test_put_never_overwrites(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("config", b"first")
    with pytest.raises(ObjectExists):
        store.put("config", b"second")
    assert store.get("config") == b"first"
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary file is gone


def test_list_delete_and_missing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for name in ("index/b", "index/a", "packs/00/x", "packs/01/y", "snapshots/s"):
        store.put(name, b"")
    assert store.list("index/") == ["index/a", "index/b"]
    assert store.list("packs/") == ["packs/00/x", "packs/01/y"]
    assert store.list("packs/01") == ["packs/01/y"]
    assert "tmp" not in "".join(store.list(""))
    store.delete("index/a")
    assert store.list("index/") == ["index/b"]
    for call in (store.get, store.delete, store.size):
        with pytest.raises(ObjectNotFound):
            call("index/a")
    assert not store.exists("index/a")
    assert store.list("locks/") == []


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x", "a/../b", "tmp/x", "a//b", ".x"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        LocalStore(tmp_path).put(name, b"")


def test_root_is_created_on_first_put(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "not" / "yet")
    assert store.list("") == [] and not store.exists("config")
    store.put("config", b"{}")
    assert store.get("config") == b"{}"


def test_a_spool_is_stored_under_the_name_it_learns_last(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    spool = store.open_spool()
    spool.write([b"written ", b"in "])
    spool.write([b"pieces"])
    spool.commit("packs/ab/abcdef")
    assert store.get("packs/ab/abcdef") == b"written in pieces"
    assert list((tmp_path / "tmp").iterdir()) == []
    taken = store.open_spool()
    taken.write([b"other bytes"])
    with pytest.raises(ObjectExists):
        taken.commit("packs/ab/abcdef")
    assert store.get("packs/ab/abcdef") == b"written in pieces"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_spool_dropped_unfinished_closes_its_file_and_removes_it(tmp_path: Path) -> None:
    """A writer abandoned mid-pack drops its spool: no descriptor is left open, no file in
    tmp/ (prune would remove it a day later)."""
    store = LocalStore(tmp_path)
    spools = [store.open_spool() for _ in range(5)]
    for spool in spools:
        spool.write([b"half a pack"])
    assert len(os.listdir(tmp_path / "tmp")) == 5
    assert len(_open_below(tmp_path)) == 5
    del spool, spools
    gc.collect()
    assert os.listdir(tmp_path / "tmp") == []
    assert _open_below(tmp_path) == []


def _open_below(root: Path) -> list[str]:
    """The files below ``root`` this process holds open."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own, closed since
            held.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [path for path in held if path.startswith(f"{root}/")]


@pytest.mark.parametrize("name", ["../x", "tmp/x", "a//b"])
def test_a_spool_given_a_bad_name_stores_nothing_and_leaves_nothing(
    tmp_path: Path, name: str
) -> None:
    store = LocalStore(tmp_path)
    spool = store.open_spool()
    spool.write([b"bytes"])
    with pytest.raises(InvalidInput):
        spool.commit(name)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert store.list("") == []
    spool.discard()  # harmless once spent
