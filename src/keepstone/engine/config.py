"""The ``config`` object: what a reader must know before it can read anything else."""

from __future__ import annotations

from dataclasses import dataclass, field

from keepstone.engine import wire
from keepstone.engine.chunker import ChunkerParams
from keepstone.engine.codec import ZSTD_LEVEL
from keepstone.engine.errors import RepositoryCorrupt

CONFIG = "config"


@dataclass(frozen=True)
class RepoConfig:
    id: str
    encrypted: bool
    chunker: ChunkerParams = field(default_factory=ChunkerParams)

    def to_bytes(self) -> bytes:
        return wire.dumps(
            {
                "version": wire.FORMAT_VERSION,
                "id": self.id,
                "encrypted": self.encrypted,
                "chunker": self.chunker.to_json(),
                "compression": {"algorithm": "zstd", "level": ZSTD_LEVEL},
                "hash": "blake3-256",
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> RepoConfig:
        document = wire.load_object(data, CONFIG)
        wire.parse_id(document.get("id"), CONFIG)
        if document.get("hash") != "blake3-256":
            raise RepositoryCorrupt("config names an unknown hash")
        if not isinstance(document.get("compression"), dict):
            raise RepositoryCorrupt("config names no compression")
        encrypted = document.get("encrypted")
        if not isinstance(encrypted, bool):
            raise RepositoryCorrupt("config does not say whether the repository is encrypted")
        return cls(str(document["id"]), encrypted, ChunkerParams.from_json(document.get("chunker")))
