"""The backup repository engine: content-defined chunking, deduplication, compression and
encryption into packs in an object store. The format is docs/repository-format.md."""

from keepstone.engine.chunker import ChunkerParams
from keepstone.engine.errors import (
    BackupFailed,
    NotARepository,
    ObjectExists,
    ObjectNotFound,
    PasswordRequired,
    RepositoryCorrupt,
    RepositoryExists,
    RepositoryLocked,
    SnapshotNotFound,
    UnsupportedFormat,
    WrongPassword,
)
from keepstone.engine.keys import KdfCost
from keepstone.engine.model import (
    FolderSummary,
    Item,
    ItemKind,
    PruneReport,
    SnapshotInfo,
    VerifyReport,
    WriterStats,
    folder_of,
)
from keepstone.engine.options import Options
from keepstone.engine.repository import Repository
from keepstone.engine.store import LocalStore, ObjectStore
from keepstone.engine.writer import BackupWriter

__all__ = [
    "BackupFailed",
    "BackupWriter",
    "ChunkerParams",
    "FolderSummary",
    "Item",
    "ItemKind",
    "KdfCost",
    "LocalStore",
    "NotARepository",
    "ObjectExists",
    "ObjectNotFound",
    "ObjectStore",
    "Options",
    "PasswordRequired",
    "PruneReport",
    "Repository",
    "RepositoryCorrupt",
    "RepositoryExists",
    "RepositoryLocked",
    "SnapshotInfo",
    "SnapshotNotFound",
    "UnsupportedFormat",
    "VerifyReport",
    "WriterStats",
    "WrongPassword",
    "folder_of",
]
