"""A backup process for the multi-process tests: ``python child.py MODE ROOT ARGS...``.

Modes:
  backup ROOT TAG COUNT SHARED   one run of COUNT own files and SHARED shared ones; prints stats
  crash ROOT SEED                runs, forgets and prunes in a loop until killed (or 40 runs)
Content is a function of the item key (``content_of``), so the parent can check any restore.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from keepstone.engine import LocalStore, Repository
from tests.engine.helpers import item_for, pseudo_random, small_options


def content_of(key: str) -> bytes:
    size = int.from_bytes(pseudo_random("size:" + key, 4), "little") % 40_000
    return pseudo_random(key, size)


def run_backup(
    repo: Repository, keys: list[str], tags: dict[str, str]
) -> tuple[str, dict[str, int]]:
    writer = repo.writer(tags)
    for key in keys:
        chunks, size, _ = writer.add_file(content_of(key))
        writer.add_item(item_for(key, chunks, size))
    return writer.commit(), asdict(writer.stats)


def backup_mode(root: Path, tag: str, count: int, shared: int) -> None:
    repo = Repository.open(LocalStore(root), options=small_options())
    keys = [f"shared/{i}" for i in range(shared)] + [f"{tag}/{i}" for i in range(count)]
    print("ready", flush=True)
    snapshot_id, stats = run_backup(repo, keys, {"tag": tag})
    print(json.dumps({"snapshot": snapshot_id, "stats": stats}), flush=True)


def crash_mode(root: Path, seed: str) -> None:
    repo = Repository.open(LocalStore(root), options=small_options())
    print("ready", flush=True)
    for run in range(40):
        keys = [f"shared/{i}" for i in range(run % 4)] + [f"{seed}/{run}/{i}" for i in range(6)]
        run_backup(repo, keys, {"seed": seed})
        if run % 3 == 2:
            snapshots = repo.snapshots()
            repo.forget(s.id for s in snapshots[: len(snapshots) // 2])
            repo.prune()


if __name__ == "__main__":
    mode, root = sys.argv[1], Path(sys.argv[2])
    if mode == "backup":
        backup_mode(root, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "crash":
        crash_mode(root, sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
