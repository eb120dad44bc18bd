"""S3Store against a real S3 server (moto): the engine's object-store contract, multipart, paging,
conditional writes, retries through the fault proxy, and a whole repository on S3."""

from __future__ import annotations

import os
import stat
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.engine import ObjectExists, ObjectNotFound, Repository, RepositoryCorrupt
from keepstone.engine.s3location import (
    MiB,
    S3Tuning,
    S3Unavailable,
    check_bucket,
    check_folder,
    check_service_point,
)
from keepstone.engine.s3store import S3Store
from tests.engine.helpers import (
    CHEAP_KDF,
    PASSWORD,
    SMALL_CHUNKS,
    backup,
    small_options,
    text,
)
from tests.s3_faults import Fault, FaultProxy
from tests.s3_server import FAST, MotoServer, moto, new_store, s3_store

__all__ = ["moto", "s3_store"]  # fixtures


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    relay = FaultProxy(moto.url)
    try:
        yield relay
    finally:
        relay.close()


def test_put_get_range_size_exists(s3_store: S3Store) -> None:
    s3_store.put("packs/ab/abcdef", b"0123456789")
    assert s3_store.get("packs/ab/abcdef") == b"0123456789"
    assert s3_store.get_range("packs/ab/abcdef", 3, 4) == b"3456"
    assert s3_store.size("packs/ab/abcdef") == 10
    assert s3_store.exists("packs/ab/abcdef")
    with pytest.raises(RepositoryCorrupt):
        s3_store.get_range("packs/ab/abcdef", 8, 4)
    with pytest.raises(RepositoryCorrupt):
        s3_store.get_range("packs/ab/abcdef", 20, 4)


def test_put_never_overwrites(s3_store: S3Store) -> None:
    s3_store.put("config", b"first")
    with pytest.raises(ObjectExists):
        s3_store.put("config", b"second")
    assert s3_store.get("config") == b"first"


def test_list_delete_and_missing(s3_store: S3Store) -> None:
    for name in ("index/b", "index/a", "packs/00/x", "packs/01/y", "snapshots/s"):
        s3_store.put(name, b"")
    assert s3_store.list("index/") == ["index/a", "index/b"]
    assert s3_store.list("packs/01") == ["packs/01/y"]
    s3_store.delete("index/a")
    assert s3_store.list("index/") == ["index/b"]
    for call in (s3_store.get, s3_store.delete, s3_store.size):
        with pytest.raises(ObjectNotFound):
            call("index/a")
    assert not s3_store.exists("index/a")


def test_folder_confines_the_repository(moto: MotoServer) -> None:
    first = new_store(moto.url, folder="one")
    second = S3Store(replace(first.location, folder="two"), FAST)
    first.put("config", b"1")
    second.put("config", b"2")
    assert first.get("config") == b"1" and second.get("config") == b"2"
    assert first.list("") == ["config"]


def test_bad_names_are_refused(s3_store: S3Store) -> None:
    for name in ["", "/etc/passwd", "../x", "a/../b", "tmp/x", "a//b", ".x"]:
        with pytest.raises(InvalidInput):
            s3_store.put(name, b"x")
    assert s3_store.list("") == []


@pytest.mark.parametrize(("count", "pages"), [(25, 3), (100, 10)])
def test_listing_is_paged(moto: MotoServer, count: int, pages: int) -> None:
    """Pages of ``list_page_size`` keys (S3's 1,000, here 10): requests grow linearly."""
    store = new_store(moto.url, tuning=replace(FAST, list_page_size=10))
    names = [f"index/{i:05d}" for i in range(count)]
    for name in names:
        store.put(name, b"")
    store.put("packs/00/other", b"")
    calls: list[str] = []
    store._client.meta.events.register(
        "before-call.s3.ListObjectsV2", lambda **_: calls.append("list")
    )
    assert store.list("index/") == names
    assert len(calls) == pages


def test_multipart_for_large_objects(moto: MotoServer) -> None:
    tuning = S3Tuning(multipart_threshold=5 * MiB, part_size=5 * MiB, backoff_base=0.005)
    store = new_store(moto.url, tuning=tuning)
    calls: list[str] = []
    store._client.meta.events.register(
        "before-call.s3.UploadPart", lambda **_: calls.append("part")
    )
    parts = [bytes([i]) * (3 * MiB) for i in range(4)]  # 12 MiB in pieces not aligned to parts
    store.put_parts("packs/00/big", parts)
    assert len(calls) == 3  # 5 + 5 + 2 MiB
    assert store.get("packs/00/big") == b"".join(parts)
    assert store.get_range("packs/00/big", 3 * MiB - 2, 4) == b"\x00\x00\x01\x01"
    with pytest.raises(ObjectExists):
        store.put_parts("packs/00/big", [b"x" * (6 * MiB)])
    assert store.size("packs/00/big") == 12 * MiB
    uploads = store._client.list_multipart_uploads(Bucket=store.location.bucket)
    assert not uploads.get("Uploads")  # the refused one left nothing behind


@pytest.mark.parametrize("pieces", [1, 24], ids=["one PUT", "multipart"])
def test_a_spool_holds_its_object_in_a_file_until_it_is_stored(
    moto: MotoServer, pieces: int
) -> None:
    """A pack being filled holds no memory: its pieces go to an unnamed temporary file of mode
    0600, read back at commit (whole for one PUT, a part at a time for a multipart upload)."""
    tuning = S3Tuning(multipart_threshold=5 * MiB, part_size=5 * MiB, backoff_base=0.005)
    store = new_store(moto.url, tuning=tuning)
    spool = store.open_spool()
    held_in = os.fstat(spool._file.fileno())  # type: ignore[union-attr]
    assert (held_in.st_nlink, stat.S_IMODE(held_in.st_mode)) == (0, 0o600)  # no name, private
    tracemalloc.start()
    try:
        for n in range(pieces):
            spool.write([b"%d" % n, bytes([n]) * (512 * 1024)])
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 256 * 1024  # a MemorySpool held every piece: 12 MiB for 24
    spool.commit("packs/00/spooled")
    expected = b"".join(b"%d" % n + bytes([n]) * (512 * 1024) for n in range(pieces))
    assert store.get("packs/00/spooled") == expected
    with pytest.raises(ValueError, match="already committed"):
        spool.write([b"more"])
    taken = store.open_spool()
    taken.write([b"other bytes"])
    with pytest.raises(ObjectExists):
        taken.commit("packs/00/spooled")
    assert store.get("packs/00/spooled") == expected
    uploads = store._client.list_multipart_uploads(Bucket=store.location.bucket)
    assert not uploads.get("Uploads")


def test_multipart_completion_is_conditional(moto: MotoServer) -> None:
    """Two writers race for one name: the second completion is refused, not an overwrite."""
    tuning = S3Tuning(multipart_threshold=5 * MiB, part_size=5 * MiB, backoff_base=0.005)
    store = new_store(moto.url, tuning=tuning)
    original = store.exists
    store.exists = lambda name: False  # type: ignore[method-assign]  # skip the early check
    store.put_parts("packs/00/race", [b"a" * (6 * MiB)])
    with pytest.raises(ObjectExists):
        store.put_parts("packs/00/race", [b"b" * (6 * MiB)])
    store.exists = original  # type: ignore[method-assign]
    assert store.get_range("packs/00/race", 0, 1) == b"a"


@pytest.mark.parametrize("kind", ["503", "500"])
def test_server_errors_are_retried(moto: MotoServer, proxy: FaultProxy, kind: str) -> None:
    store = new_store(moto.url)
    via = S3Store(replace(store.location, service_point=proxy.url), FAST)
    proxy.add(Fault(kind, method="PUT", times=3))
    proxy.add(Fault(kind, method="GET", times=2))
    via.put("config", b"data")
    assert via.get("config") == b"data"
    assert proxy.injected[kind] == 5
    assert via.retries == 5


def test_a_lost_put_answer_is_not_a_conflict(moto: MotoServer, proxy: FaultProxy) -> None:
    """The PUT lands but its answer is cut: the retry meets its own object and succeeds."""
    store = new_store(moto.url)
    via = S3Store(replace(store.location, service_point=proxy.url), FAST)
    proxy.add(Fault("reset", method="PUT", before_answer=True))
    via.put("snapshots/a", b"mine")
    assert store.get("snapshots/a") == b"mine"
    assert via.retries == 1
    with pytest.raises(ObjectExists):  # a real conflict still is one
        via.put("snapshots/a", b"theirs")


def test_a_body_cut_mid_stream_is_read_again(moto: MotoServer, proxy: FaultProxy) -> None:
    store = new_store(moto.url)
    store.put("packs/00/p", bytes(range(256)) * 400)
    via = S3Store(replace(store.location, service_point=proxy.url), FAST)
    proxy.add(Fault("reset", method="GET", times=2))
    assert via.get("packs/00/p") == bytes(range(256)) * 400
    assert via.retries == 2


def test_a_stalled_answer_times_out_and_is_retried(moto: MotoServer, proxy: FaultProxy) -> None:
    store = new_store(moto.url)
    store.put("config", b"x")
    tuning = S3Tuning(read_timeout=0.5, backoff_base=0.005, backoff_cap=0.05)
    via = S3Store(replace(store.location, service_point=proxy.url), tuning)
    proxy.add(Fault("delay", method="GET", seconds=3.0))
    assert via.get("config") == b"x"
    assert via.retries == 1


def test_retries_are_bounded(moto: MotoServer, proxy: FaultProxy) -> None:
    store = new_store(moto.url)
    tuning = S3Tuning(attempts=3, backoff_base=0.005, backoff_cap=0.05)
    via = S3Store(replace(store.location, service_point=proxy.url), tuning)
    proxy.add(Fault("503", method="PUT", times=10))
    with pytest.raises(S3Unavailable) as raised:
        via.put("config", b"x")
    assert "3 attempts" in raised.value.message
    assert not store.exists("config")


def test_backoff_grows_and_is_capped(moto: MotoServer, proxy: FaultProxy) -> None:
    store = new_store(moto.url)
    waits: list[float] = []
    tuning = S3Tuning(backoff_base=0.01, backoff_cap=0.04, sleep=waits.append)
    via = S3Store(replace(store.location, service_point=proxy.url), tuning)
    proxy.add(Fault("503", method="PUT", times=5))
    via.put("config", b"x")
    assert len(waits) == 5
    assert all(0 <= w <= 0.04 for w in waits)


def test_repository_backup_restore_verify_prune_on_s3(s3_store: S3Store) -> None:
    repo = Repository.init(
        s3_store, PASSWORD, kdf_cost=CHEAP_KDF, chunker=SMALL_CHUNKS, options=small_options()
    )
    files = {"u/a": text("a", 200_000), "u/b": text("b", 50_000)}
    first = backup(repo, files)
    second = backup(repo, {"u/a": files["u/a"]})
    again = Repository.open(s3_store, PASSWORD, options=small_options())
    assert [s.id for s in again.snapshots()] == [first, second]
    restored = {i.key: b"".join(again.read(i)) for i in again.items(first)}
    assert restored == files
    assert again.verify().ok
    again.forget([first])
    assert again.prune().freed_bytes > 0
    assert again.verify().ok
    assert [s.id for s in Repository.open(s3_store, PASSWORD).snapshots()] == [second]


def test_service_point_rules() -> None:
    assert check_service_point("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    assert check_service_point("http://localhost:9000") == "http://localhost:9000"
    assert check_service_point("http://[::1]:9000") == "http://[::1]:9000"
    assert check_service_point("https://s3.example.com") == "https://s3.example.com"
    for bad in ("http://s3.example.com", "ftp://x", "https://u:p@s3.example.com", "s3.example"):
        with pytest.raises(InvalidInput, match="servicePoint"):
            check_service_point(bad)


def test_bucket_and_folder_rules() -> None:
    assert check_bucket("my-bucket.1") == "my-bucket.1"
    for bad in ("ab", "Upper", "-x-bucket", "a..b", "x" * 64, "bad_name"):
        with pytest.raises(InvalidInput):
            check_bucket(bad)
    assert check_folder("/keepstone/prod/") == "keepstone/prod"
    for bad in ("../x", "a/./b", ".hidden"):
        with pytest.raises(InvalidInput):
            check_folder(bad)
