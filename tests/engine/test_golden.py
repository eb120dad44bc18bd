"""Golden tests: they pin the format of docs/repository-format.md byte for byte.

A failure here means the on-disk format changed. If that is intended, bump the format version
and write a reader for version 1; never just update the constants. (One legitimate exception:
a new zstd release, or a new level in ``codec.ZSTD_LEVEL``, which the config records, may
compress differently. Readers are unaffected; then only the hashes of objects holding compressed
data change, with the config's level and the offsets behind a compressed blob, and the decode
tests below still pass.)
"""

from __future__ import annotations

import base64
import io
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import zstandard
from argon2.low_level import Type, hash_secret_raw
from blake3 import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keepstone.clock import ManualClock
from keepstone.engine import ChunkerParams, Item, KdfCost, LocalStore, Options, Repository
from keepstone.engine.chunker import Chunker

from .helpers import pseudo_random, text

START = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
MAIL = b"From: alice@example.test\r\nSubject: hello\r\n\r\nHello, Bob!\r\n"
TAGS = {"job_id": "job-1", "organization_id": "org-1", "session_id": "session-1"}


class CountingRandom:
    """Deterministic stand-in for os.urandom: BLAKE3's output stream of a fixed seed."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._position = 0

    def __call__(self, size: int) -> bytes:
        out = blake3(self._seed).digest(length=size, seek=self._position)
        self._position += size
        return out


def golden_options() -> Options:
    return Options(
        clock=ManualClock(START),
        random_bytes=CountingRandom(b"keepstone golden"),
        hostname="golden-host",
        pid=4242,
    )


def chunker_input() -> bytes:
    return pseudo_random("keepstone chunker golden", 20 * 1024 * 1024)


def golden_files() -> dict[str, tuple[str, bytes]]:
    return {
        "alice/mail/.Sent/1700000000.M1P1.host": ("mail", MAIL),
        "alice/docs/empty.txt": ("file", b""),
        "alice/docs/random.bin": ("file", pseudo_random("golden random", 300 * 1024)),
        "alice/docs/text.txt": ("file", text("golden text", 100 * 1024)),
    }


def build(root: Path, password: str | None) -> dict[str, bytes]:
    """A repository from fixed inputs, clock and randomness: every object, and the lock."""
    store = LocalStore(root)
    options = golden_options()
    kdf = KdfCost(time_cost=1, memory_cost=1024, parallelism=1)
    repo = Repository.init(store, password, kdf_cost=kdf, options=options)
    writer = repo.writer(TAGS)
    [lock] = store.list("locks/")
    objects = {lock: store.get(lock)}
    writer.add_item(Item("alice/docs", "alice", "folder", "/alice/docs", 0, 1.7e9, 0o755))
    for key, (kind, content) in golden_files().items():
        chunks, size, _ = writer.add_file(content)
        meta = {"change_token": "t-" + key[-3:]}
        writer.add_item(Item(key, "alice", kind, "/" + key, size, 1.7e9, 0o600, meta, chunks))
    writer.commit()
    objects.update((name, store.get(name)) for name in store.list(""))
    return objects


CUTS = [
    725530, 2418275, 2530614, 1238437, 446664, 777605, 2362097, 830463, 2373791, 1108327,
    1713478, 1243526, 1244648, 1364507, 593558,
]  # fmt: skip

# Every name but config is the BLAKE3 of the object's bytes, so these lists pin every byte.
PLAIN_OBJECTS = [
    "config",
    "index/fc1fb347decf9e4989d1c8a6ae64c431fd91df56c3067fe6b4ce8e685c6b2e84",
    "locks/1031c70d8848285cb81e8bb85c23f041c50ab0c00642f6b6c7de152023ec6e5a",
    "packs/93/93ed21b0a27932f0695028cdda1364f53c239c8e2cf22f3eb14ec2a1d7d0814f",
    "snapshots/4a6b33e2c46eed9c6f22c89612ef62ce361173946543b5afe9988123aaf10631",
]
PLAIN_CONFIG = (
    b'{"chunker":{"algorithm":"fastcdc-2020","avg_size":1048576,"max_size":8388608,'
    b'"min_size":262144,"normalized_chunking":1},"compression":{"algorithm":"zstd","level":2},'
    b'"encrypted":false,"hash":"blake3-256",'
    b'"id":"38b20ccc92e276714a3349bb4db9ab33f3a992c4fd46d68a65b9b8e9d0af4494","version":1}'
)
ENCRYPTED_OBJECTS = [
    "config",
    "index/7ef17f072910e2634e68f8186bde765ce6eaa2ab93d8d77ffb934cbe8df8162e",
    "keys/02172e4a9b385b6a4bcef1111bfb99471eb67f3632336facac4fb6b2649f7f63",
    "locks/5876e06eb892d6dfa81004a9d433b1b2e0fe0533087ac47297bc580e541606f6",
    "packs/c5/c5764bef01748cbff83cd40db9344db03ef28ab62140020fce590c03fd04fd7c",
    "snapshots/819d1ea0a90b60a95d5c157728d2e3bb9fa7c70ad3fc196a73974df685ee86e7",
]
ENCRYPTED_CONFIG_HASH = "963545adeb910276d6f05705fd6de9c987feacc75806a086d5d5f3abf6ac7fbe"
MAIL_ID = "60c80c5acfec5ad77c8bd29ca7b77fcb01f1629bd3a933ca97d54e1ea0a90372"
RANDOM_ID = "7f8c71b7dd8c7c922c7e174002b8f697aba0af923d76f32d6dd3c673c0003566"
TEXT_ID = "59147179ad7e5c418bf15194392ce33c525f6ab52be6b0b4dc82522b8f28d978"
TREE_ID = "62187d792a1079a2be4383b6365e0cf60757c4bc7d243535a96d30344e70084a"


def test_chunk_cut_points() -> None:
    data = chunker_input()
    chunker = Chunker(ChunkerParams())
    assert [len(c) for c in chunker.chunks(data)] == CUTS
    assert [len(c) for c in chunker.chunks(io.BytesIO(data))] == CUTS


def _check_names(objects: dict[str, bytes]) -> None:
    for name, data in objects.items():
        if name != "config":
            assert name.rsplit("/", 1)[1] == blake3(data).hexdigest(), name


def test_unencrypted_objects(tmp_path: Path) -> None:
    objects = build(tmp_path, None)
    _check_names(objects)
    assert sorted(objects) == PLAIN_OBJECTS
    assert objects["config"] == PLAIN_CONFIG


def test_encrypted_objects(tmp_path: Path) -> None:
    objects = build(tmp_path, "golden password")
    _check_names(objects)
    assert sorted(objects) == ENCRYPTED_OBJECTS
    assert blake3(objects["config"]).hexdigest() == ENCRYPTED_CONFIG_HASH


# -- the layouts, decoded by hand from the documentation rather than by the engine ------------


def _unwrap(envelope: bytes) -> bytes:
    flag, body = envelope[0], envelope[1:]
    assert flag in (0, 1)
    return body if flag == 0 else zstandard.ZstdDecompressor().decompress(body)


def _named(objects: dict[str, bytes], prefix: str) -> tuple[str, bytes]:
    [(name, data)] = [(n, d) for n, d in objects.items() if n.startswith(prefix)]
    return name, data


def test_unencrypted_layout_as_documented(tmp_path: Path) -> None:
    objects = build(tmp_path, None)
    pack_name, pack = _named(objects, "packs/")
    (header_length,) = struct.unpack("<I", pack[-4:])
    header = _unwrap(pack[-4 - header_length : -4])
    assert header[0] == 1
    entries = list(struct.iter_unpack("<BIII32s", header[1:]))
    assert [(t, o, n, r, i.hex()) for t, o, n, r, i in entries] == [
        (0, 0, 58, 57, MAIL_ID),
        (0, 58, 307201, 307200, RANDOM_ID),
        (0, 307259, 31561, 102400, TEXT_ID),
        (1, 338820, 389, 1084, TREE_ID),
    ]
    blobs = {i.hex(): _unwrap(pack[o : o + n]) for _, o, n, _, i in entries}
    assert blobs[MAIL_ID] == MAIL and blake3(MAIL).hexdigest() == MAIL_ID
    for blob_id, plain in blobs.items():
        assert blake3(plain).hexdigest() == blob_id
    tree = json.loads(blobs[TREE_ID])
    assert [item["key"] for item in tree] == ["alice/docs", *golden_files()]
    assert tree[1] == {
        "chunks": [MAIL_ID],
        "key": "alice/mail/.Sent/1700000000.M1P1.host",
        "kind": "mail",
        "meta": {"change_token": "t-ost"},
        "mode": 0o600,
        "mtime": 1.7e9,
        "path": "/alice/mail/.Sent/1700000000.M1P1.host",
        "size": len(MAIL),
        "user": "alice",
    }

    _, index = _named(objects, "index/")
    plain_index = _unwrap(index)
    assert plain_index[:5] == b"\x01" + struct.pack("<I", 1)
    assert plain_index[5:37].hex() == pack_name.rsplit("/", 1)[1]
    rows = list(struct.iter_unpack("<32sBIIII", plain_index[37:]))
    assert [(i.hex(), t, o, n, r, p) for i, t, o, n, r, p in rows] == [
        (i.hex(), t, o, n, r, 0) for t, o, n, r, i in entries
    ]

    _, snapshot = _named(objects, "snapshots/")
    assert _unwrap(snapshot) == (
        b'{"folders":[["alice","folder","/alice/docs",1,1700000000.0,[0]],'
        b'["alice","mail","/alice/mail/.Sent/1700000000.M1P1.host",1,1700000000.0,[0]],'
        b'["alice","file","/alice/docs",3,1700000000.0,[0]]],'
        b'"item_count":5,"parent":null,"size":409657,"tags":{"job_id":"job-1",'
        b'"organization_id":"org-1","session_id":"session-1"},'
        b'"time":"2026-06-10T10:00:00.000000+00:00",'
        b'"tree_places":[["' + pack_name.rsplit("/", 1)[1].encode() + b'",338820,389,1084]],'
        b'"trees":["' + TREE_ID.encode() + b'"],"version":1}'
    )
    _, lock = _named(objects, "locks/")
    assert _unwrap(lock) == (
        b'{"exclusive":false,"hostname":"golden-host","nonce":"7e396ce311ab6eeef703906fcec90fb5",'
        b'"pid":4242,"time":"2026-06-10T10:00:00.000000+00:00","version":1}'
    )


def test_encrypted_layout_as_documented(tmp_path: Path) -> None:
    objects = build(tmp_path, "golden password")
    config = json.loads(objects["config"])
    _, key_file = _named(objects, "keys/")
    key = json.loads(key_file)
    kdf = key["kdf"]
    assert (key["version"], kdf["algorithm"], kdf["version"]) == (1, "argon2id", 19)
    kek = hash_secret_raw(
        b"golden password",
        base64.b64decode(kdf["salt"]),
        kdf["time_cost"],
        kdf["memory_cost"],
        kdf["parallelism"],
        32,
        Type.ID,
    )
    sealed = base64.b64decode(key["data"])
    master = json.loads(AESGCM(kek).decrypt(sealed[:12], sealed[12:], None))
    assert master["repository"] == config["id"] and master["version"] == 1
    assert 0 < master["chunker_seed"] < 2**63
    aead = AESGCM(base64.b64decode(master["data_key"]))
    id_key = base64.b64decode(master["id_key"])

    def open_envelope(envelope: bytes) -> bytes:
        return _unwrap(aead.decrypt(envelope[:12], envelope[12:], None))

    _, snapshot = _named(objects, "snapshots/")
    [tree_id] = json.loads(open_envelope(snapshot))["trees"]
    _, pack = _named(objects, "packs/")
    (header_length,) = struct.unpack("<I", pack[-4:])
    header = open_envelope(pack[-4 - header_length : -4])
    for _, offset, length, raw_length, blob_id in struct.iter_unpack("<BIII32s", header[1:]):
        plain = open_envelope(pack[offset : offset + length])
        assert len(plain) == raw_length
        assert blake3(plain, key=id_key).digest() == blob_id
        assert blake3(plain).digest() != blob_id  # keyed: ids say nothing without the key
        if blob_id.hex() == tree_id:
            assert json.loads(plain)[1]["key"] == "alice/mail/.Sent/1700000000.M1P1.host"
