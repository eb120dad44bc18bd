"""Content restores byte for byte, whatever its size, kind, stream type or encryption."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepstone.engine import ChunkerParams, Item, LocalStore, Repository
from keepstone.engine.chunker import Chunker

from .helpers import (
    PASSWORD,
    SMALL_CHUNKS,
    backup,
    new_repo,
    pseudo_random,
    restore,
    text,
)

MiB = 1024 * 1024


def _files() -> dict[str, bytes]:
    return {
        "alice/empty": b"",
        "alice/one": b"x",
        "alice/small-random": pseudo_random("small", 700),
        "alice/small-text": text("small", 900),
        "bob/random": pseudo_random("big", 3 * MiB + 17),
        "bob/text": text("big", 2 * MiB + 5),
        "bob/zeros": bytes(MiB),
    }


@pytest.mark.parametrize("password", [None, PASSWORD], ids=["plain", "encrypted"])
@pytest.mark.parametrize("chunker", [SMALL_CHUNKS, None], ids=["small-chunks", "default-chunks"])
def test_round_trip(tmp_path: Path, password: str | None, chunker: ChunkerParams | None) -> None:
    files = _files()
    repo = new_repo(tmp_path, password, chunker=chunker or ChunkerParams())
    snapshot_id = backup(repo, files)
    reopened = Repository.open(LocalStore(tmp_path), password)
    assert reopened.encrypted is (password is not None)
    assert restore(reopened, snapshot_id) == files
    [info] = reopened.snapshots()
    assert (info.id, info.item_count, info.size) == (
        snapshot_id,
        len(files),
        sum(map(len, files.values())),
    )
    assert info.tags == {"job_id": "test"} and info.parent is None
    assert reopened.verify().ok


def test_items_keep_their_metadata_and_order(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    writer = repo.writer({"job_id": "j"}, parent=None)
    folder = Item("alice/mail", "alice", "folder", "/alice/mail", 0, 1.5, 0o755, {"x": None})
    writer.add_item(folder)
    chunks, size, _ = writer.add_file(b"mail body")
    mail = Item("alice/mail/1", "alice", "mail", "/m", size, 2.0, 0o600, {"s": "é"}, chunks)
    writer.add_item(mail)
    snapshot_id = writer.commit()
    assert list(repo.items(snapshot_id)) == [folder, mail]
    second = repo.writer({}, parent=snapshot_id).commit()
    parents = {info.id: info.parent for info in repo.snapshots()}
    assert parents == {snapshot_id: None, second: snapshot_id}
    assert list(repo.items(second)) == []


def test_trees_split_into_bounded_blobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keepstone.engine import writer as writer_module

    monkeypatch.setattr(writer_module, "TREE_MAX_ITEMS", 7)
    repo = new_repo(tmp_path)
    files = {f"u/{i}": f"content {i}".encode() for i in range(30)}
    snapshot_id = backup(repo, files)
    assert restore(repo, snapshot_id) == files
    assert len(repo._snapshot(snapshot_id).trees) == 5  # 7 + 7 + 7 + 7 + 2


class ReadOnly(io.RawIOBase):
    """A stream with only read() (RawIOBase's readinto is not implemented): short reads too."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, self._step) if size >= 0 else self._step)


def test_streams_with_only_read_and_short_reads(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    data = pseudo_random("stream", 200_000)
    writer = repo.writer({})
    from_bytes = writer.add_file(data)
    from_stream = writer.add_file(ReadOnly(data, 3001))
    assert from_stream[:2] == from_bytes[:2] and from_stream[2] == 0


def test_small_input_is_one_chunk_and_empty_has_none(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, chunker=ChunkerParams())
    writer = repo.writer({})
    assert len(writer.add_file(pseudo_random("s", 256 * 1024))[0]) == 1
    assert writer.add_file(b"") == ((), 0, 0)
    writer.abort()


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=60_000),
    step=st.integers(min_value=1, max_value=20_000),
)
def test_stream_cuts_equal_whole_buffer_cuts(data: bytes, step: int) -> None:
    chunker = Chunker(ChunkerParams(min_size=64, avg_size=256, max_size=1024))
    whole = [bytes(c) for c in chunker.chunks(data)]
    streamed = [bytes(c) for c in chunker.chunks(ReadOnly(data, step))]
    assert streamed == whole
    assert b"".join(whole) == data
