"""Several writers at once, in threads and in processes: all commit, all restore, and finished
data of one is not stored again by the next."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from keepstone.engine import BackupWriter, LocalStore, Repository

from .child import content_of
from .helpers import item_for, new_repo, pseudo_random, restore, small_options

CHILD = str(Path(__file__).with_name("child.py"))


def _store(writer: BackupWriter, keys: list[str]) -> None:
    for key in keys:
        chunks, size, _ = writer.add_file(content_of(key))
        writer.add_item(item_for(key, chunks, size))


def _expected(keys: list[str]) -> dict[str, bytes]:
    return {key: content_of(key) for key in keys}


def test_one_writer_many_threads(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    writer = repo.writer({})
    keys = [f"t/{i % 12}" for i in range(48)]  # the same files from several threads at once
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda k: (k, writer.add_file(content_of(k))), keys))
    for key, (chunks, size, _) in results[:12]:
        writer.add_item(item_for(key, chunks, size))
    stats = writer.stats
    total_chunks = sum(len(chunks) for _, (chunks, _, _) in results)
    assert stats.chunks_new + stats.chunks_dedup == total_chunks
    assert stats.bytes_new == sum(len(content_of(f"t/{i}")) for i in range(12))
    snapshot_id = writer.commit()
    assert restore(repo, snapshot_id) == _expected(keys[:12])


def test_two_writers_in_threads(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    shared = [f"shared/{i}" for i in range(6)]
    keys = {"a": shared + [f"a/{i}" for i in range(6)], "b": shared + [f"b/{i}" for i in range(6)]}
    barrier = threading.Barrier(2)
    snapshots: dict[str, str] = {}

    def run(tag: str) -> None:
        writer = repo.writer({"tag": tag})
        barrier.wait()
        _store(writer, keys[tag])
        snapshots[tag] = writer.commit()

    threads = [threading.Thread(target=run, args=(tag,)) for tag in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reopened = Repository.open(LocalStore(tmp_path))
    for tag, snapshot_id in snapshots.items():
        assert restore(reopened, snapshot_id) == _expected(keys[tag])
    assert reopened.verify().ok
    again = reopened.writer({})
    _store(again, keys["a"] + keys["b"])
    assert again.stats.bytes_new == 0
    again.commit()


def test_a_later_writer_dedups_against_a_finished_one(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    other = Repository.open(LocalStore(tmp_path))  # another open: its own in-memory index
    first = repo.writer({})
    _store(first, ["x/1", "x/2"])
    first.abort()  # a stopped run keeps its finished chunks
    second = other.writer({})  # opened before: refreshes its index when the run starts
    _store(second, ["x/1", "x/2", "x/3"])
    assert second.stats.bytes_new == len(content_of("x/3"))
    second.commit()


def test_writer_sees_data_finished_while_it_runs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    other = Repository.open(LocalStore(tmp_path), options=small_options())
    late = other.writer({})
    late.add_file(pseudo_random("filler", 100_000))  # uploads: looks for new index files
    early = repo.writer({})
    _store(early, ["y/1"])
    early.commit()
    late.add_file(pseudo_random("filler2", 100_000))  # another upload, another look
    chunks, _, stored = late.add_file(content_of("y/1"))
    assert stored == 0 and late.known(chunks)
    late.commit()


def _spawn(root: Path, tag: str, count: int, shared: int) -> subprocess.Popen[str]:
    args = [sys.executable, CHILD, "backup", str(root), tag, str(count), str(shared)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def _result(child: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    lines = out.splitlines()
    assert lines[0] == "ready"
    result: dict[str, object] = json.loads(lines[1])
    return result


def test_two_writers_in_processes(tmp_path: Path) -> None:
    new_repo(tmp_path)
    children = {tag: _spawn(tmp_path, tag, 8, 8) for tag in ("p", "q")}
    results = {tag: _result(child) for tag, child in children.items()}
    repo = Repository.open(LocalStore(tmp_path))
    shared = [f"shared/{i}" for i in range(8)]
    for tag, result in results.items():
        expected = _expected(shared + [f"{tag}/{i}" for i in range(8)])
        assert restore(repo, str(result["snapshot"])) == expected
    assert repo.verify().ok
    # A third process, after both: only its own files are new.
    third = _result(_spawn(tmp_path, "r", 4, 8))
    stats = third["stats"]
    assert isinstance(stats, dict)
    assert stats["bytes_new"] == sum(len(content_of(f"r/{i}")) for i in range(4))
