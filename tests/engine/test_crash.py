"""Crash safety: SIGKILL a process that backs up, forgets and prunes, at random instants; the
repository must verify, every snapshot must restore, and the next backup must succeed."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from keepstone.engine import LocalStore, Repository

from .child import content_of
from .helpers import backup, new_repo, small_options

CHILD = str(Path(__file__).with_name("child.py"))
RUNS = 24


def _kill_after(root: Path, seed: str, delay: float) -> None:
    child = subprocess.Popen(
        [sys.executable, CHILD, "crash", str(root), seed], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        child.wait()
        child.stdout.close()


def _check(root: Path, run: int) -> None:
    repo = Repository.open(LocalStore(root), options=small_options())
    report = repo.verify()
    assert report.ok, (run, report)
    for info in repo.snapshots():
        for item in repo.items(info.id):
            assert b"".join(repo.read(item)) == content_of(item.key), (run, item.key)
    key = f"parent/{run}"
    snapshot_id = backup(repo, {key: content_of(key)})
    assert b"".join(repo.read(next(repo.items(snapshot_id)))) == content_of(key)


def test_sigkill_at_random_points(tmp_path: Path) -> None:
    new_repo(tmp_path)
    rng = random.Random(20260610)
    for run in range(RUNS):
        _kill_after(tmp_path, f"run{run}", rng.uniform(0.0, 0.5))
        _check(tmp_path, run)
    assert Repository.open(LocalStore(tmp_path)).snapshots()
