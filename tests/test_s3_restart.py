"""An S3 server that goes away mid-backup and comes back (``rclone serve s3``, on disk): the
store's retries carry the run across the gap, and the repository verifies afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from keepstone.engine import Repository
from keepstone.engine.s3location import S3Location, S3Unavailable
from keepstone.engine.s3store import S3Store
from tests.engine.helpers import CHEAP_KDF, PASSWORD, SMALL_CHUNKS, backup, small_options, text
from tests.s3_server import ACCESS_KEY, FAST, REGION, SECRET_KEY, RcloneServer, running_rclone

# Long enough to outlast a restart (about a second here), short enough to fail a dead server.
PATIENT = replace(FAST, attempts=12, backoff_base=0.05, backoff_cap=1.0)


@pytest.fixture
def rclone(tmp_path: Path) -> Iterator[RcloneServer]:
    with running_rclone(tmp_path / "s3") as server:
        yield server


def _store(server: RcloneServer) -> S3Store:
    location = S3Location(server.url, REGION, "keepstone", "repo", ACCESS_KEY, SECRET_KEY)
    store = S3Store(location, PATIENT)
    store.ensure_bucket()
    return store


def test_a_backup_survives_an_s3_restart(rclone: RcloneServer) -> None:
    store = _store(rclone)
    repo = Repository.init(
        store, PASSWORD, kdf_cost=CHEAP_KDF, chunker=SMALL_CHUNKS, options=small_options()
    )
    first = backup(repo, {"u/a": text("a", 100_000)})
    rclone.stop()
    restarted = threading.Timer(0.5, rclone.start)
    restarted.start()
    try:
        second = backup(repo, {"u/a": text("a", 100_000), "u/b": text("b", 300_000)})
    finally:
        restarted.join()
    assert store.retries > 0  # the gap was met and ridden out
    again = Repository.open(_store(rclone), PASSWORD, options=small_options())
    assert [s.id for s in again.snapshots()] == [first, second]
    assert again.verify().ok
    assert (rclone.root / "keepstone" / "repo" / "config").is_file()  # on disk, not in memory


def test_a_dead_s3_server_fails_the_run_clearly(rclone: RcloneServer) -> None:
    store = S3Store(replace(_store(rclone).location), replace(PATIENT, attempts=3))
    repo = Repository.init(store, None, chunker=SMALL_CHUNKS, options=small_options())
    rclone.stop()
    with pytest.raises(Exception) as raised:
        backup(repo, {"u/a": text("a", 50_000)})
    chain = [raised.value, raised.value.__cause__, raised.value.__context__]
    assert any(isinstance(e, S3Unavailable) for e in chain) or "3 attempts" in str(raised.value)
