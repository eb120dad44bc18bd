"""Deduplication: within a run, across runs, and after an edit that shifts content."""

from __future__ import annotations

from pathlib import Path

from keepstone.engine import ChunkerParams

from .helpers import backup, new_repo, pseudo_random, restore

MiB = 1024 * 1024


def test_same_data_twice_stores_nothing_new(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, chunker=ChunkerParams())
    data = pseudo_random("dedup", 6 * MiB)
    first = repo.writer({})
    _, size, stored = first.add_file(data)
    assert size == len(data) and stored >= len(data)
    again = first.add_file(data)
    assert again[2] == 0  # the same run already has it
    first.commit()
    second = repo.writer({})
    chunks, size, stored = second.add_file(data)
    assert (size, stored) == (len(data), 0)
    assert second.stats.bytes_new == 0 and second.stats.chunks_dedup == len(chunks)
    assert second.known(chunks)
    second.commit()


def test_shifted_copy_reuses_most_chunks(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, chunker=ChunkerParams())
    data = pseudo_random("shift", 24 * MiB)
    shifted = b"inserted at the front" + data
    backup(repo, {"a": data})
    writer = repo.writer({})
    chunks, size, stored = writer.add_file(shifted)
    writer.commit()
    assert size == len(shifted)
    assert stored < 4 * MiB, stored  # only the first chunk or so is new
    assert writer.stats.chunks_dedup >= len(chunks) - 2


def test_dedup_across_encrypted_reopen(tmp_path: Path) -> None:
    from keepstone.engine import LocalStore, Repository

    from .helpers import PASSWORD

    repo = new_repo(tmp_path, PASSWORD)
    files = {"a": pseudo_random("enc", 300_000)}
    first = backup(repo, files)
    reopened = Repository.open(LocalStore(tmp_path), PASSWORD)
    writer = reopened.writer({})
    assert writer.add_file(files["a"])[2] == 0
    writer.abort()
    assert restore(reopened, first) == files
