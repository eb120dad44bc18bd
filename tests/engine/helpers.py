"""Shared helpers of the engine tests: small chunks, cheap keys, deterministic content."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from blake3 import blake3

from keepstone.engine import ChunkerParams, Item, KdfCost, LocalStore, Options, Repository

# Small chunks so that kilobytes already make several of them: fast tests, many code paths.
SMALL_CHUNKS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
CHEAP_KDF = KdfCost(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery staple"


def small_options(**overrides: object) -> Options:
    """Small packs, each spooled in several pieces, and an index file per pack: crashes and
    prunes meet many object boundaries."""
    values: dict[str, object] = {
        "pack_size": 64 * 1024,
        "spool_piece": 16 * 1024,
        "index_every": 1,
        "index_refresh": 0.0,
    }
    values.update(overrides)
    return Options(**values)  # type: ignore[arg-type]


def new_repo(
    root: Path,
    password: str | None = None,
    *,
    chunker: ChunkerParams | None = SMALL_CHUNKS,
    options: Options | None = None,
) -> Repository:
    return Repository.init(
        LocalStore(root),
        password,
        kdf_cost=CHEAP_KDF,
        chunker=chunker,
        options=options or small_options(),
    )


def pseudo_random(seed: str, size: int) -> bytes:
    """Incompressible but reproducible bytes (BLAKE3's extendable output)."""
    return blake3(seed.encode()).digest(length=size)


def text(seed: str, size: int) -> bytes:
    """Compressible, reproducible bytes that do not repeat (so they do not self-deduplicate)."""
    words = [pseudo_random(f"{seed}/{i}", 6).hex()[: 3 + i % 7] for i in range(512)]
    stream = pseudo_random(seed, size)
    out = bytearray()
    for i in range(0, size, 2):
        out += words[int.from_bytes(stream[i : i + 2], "little") % 512].encode() + b" "
        if len(out) >= size:
            break
    return bytes(out[:size])


def item_for(key: str, chunks: tuple[str, ...], size: int, kind: str = "file") -> Item:
    return Item(
        key=key,
        user=key.split("/", 1)[0],
        kind=kind,
        path="/" + key,
        size=size,
        mtime=1_700_000_000.5,
        mode=0o644,
        meta={"source": "test", "n": [1, 2]},
        chunks=chunks,
    )


def backup(repo: Repository, files: Mapping[str, bytes], tags: dict[str, str] | None = None) -> str:
    """One run storing ``files`` (key -> content) as items; the snapshot id."""
    writer = repo.writer(tags or {"job_id": "test"})
    for key, content in files.items():
        chunks, size, _ = writer.add_file(io.BytesIO(content))
        writer.add_item(item_for(key, chunks, size))
    return writer.commit()


def restore(repo: Repository, snapshot_id: str) -> dict[str, bytes]:
    return {item.key: b"".join(repo.read(item)) for item in repo.items(snapshot_id)}
