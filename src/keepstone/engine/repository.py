"""The public face of a repository: create, open, back up, list, restore, check, clean up."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator

import structlog

from keepstone.domain.errors import InvalidInput
from keepstone.engine import maintenance
from keepstone.engine.chunker import Chunker, ChunkerParams
from keepstone.engine.config import CONFIG, RepoConfig
from keepstone.engine.context import SNAPSHOT_PREFIX, RepoContext
from keepstone.engine.errors import (
    NotARepository,
    ObjectExists,
    ObjectNotFound,
    PasswordRequired,
    RepositoryCorrupt,
    RepositoryExists,
    SnapshotNotFound,
    UnsupportedFormat,
    WrongPassword,
)
from keepstone.engine.heap import freeze_long_lived
from keepstone.engine.index import BlobLocation
from keepstone.engine.keys import KdfCost, MasterKey, make_key_file, open_key_file
from keepstone.engine.locks import Lock
from keepstone.engine.model import (
    FolderSummary,
    Item,
    ItemRecord,
    PruneReport,
    Snapshot,
    SnapshotInfo,
    VerifyReport,
    cut_tree_records,
    marked_items,
    parse_tree,
    window_items,
)
from keepstone.engine.options import Options
from keepstone.engine.pack import TREE
from keepstone.engine.read_ahead import read_items
from keepstone.engine.store import ObjectStore
from keepstone.engine.user_records import UserRecords
from keepstone.engine.verify import verify
from keepstone.engine.writer import BackupWriter, parse_chunk_id

log = structlog.get_logger(__name__)

KEY_PREFIX = "keys/"


class Repository:
    """An open repository. Safe to share between threads; any number of processes may open the
    same repository at once (see docs/repository-format.md, "Concurrency")."""

    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx
        self._snapshots: dict[str, Snapshot] = {}  # snapshot objects never change: cache them
        self._snapshots_mutex = threading.Lock()

    @classmethod
    def init(
        cls,
        store: ObjectStore,
        password: str | None = None,
        *,
        kdf_cost: KdfCost | None = None,
        chunker: ChunkerParams | None = None,
        options: Options | None = None,
    ) -> Repository:
        """Create a repository, encrypted when a password is given."""
        options = options or Options()
        if password == "":
            raise InvalidInput("an empty password protects nothing: pass None for no encryption")
        if store.exists(CONFIG):
            raise RepositoryExists("this store already holds a repository")
        config = RepoConfig(options.random_bytes(32).hex(), password is not None)
        if chunker is not None:
            config = RepoConfig(config.id, config.encrypted, chunker)
        Chunker(config.chunker)  # refuse bad parameters before anything is written
        master = None
        if password is not None:
            master = MasterKey.generate(options.random_bytes)
            cost = kdf_cost or KdfCost()
            now = options.clock.now()
            key = make_key_file(master, config.id, password, cost, options.random_bytes, now)
            RepoContext(store, config, master, options).put_hashed(KEY_PREFIX, key)
        try:
            store.put(CONFIG, config.to_bytes())  # last: without it, there is no repository
        except ObjectExists:
            raise RepositoryExists("this store already holds a repository") from None
        return cls(RepoContext(store, config, master, options))

    @classmethod
    def open(
        cls,
        store: ObjectStore,
        password: str | None = None,
        *,
        options: Options | None = None,
        load_index: bool = True,
    ) -> Repository:
        """Open the repository in ``store``. Without ``load_index`` the index is loaded at the
        first read that needs it: browsing a snapshot reads its trees from the places the
        snapshot records, and never needs it."""
        options = options or Options()
        try:
            config = RepoConfig.parse(store.get(CONFIG))
        except ObjectNotFound:
            raise NotARepository("there is no repository here (no config object)") from None
        key_names = store.list(KEY_PREFIX)
        master = None
        if config.encrypted:
            master = _unlock(store, key_names, password or None, config.id)
        elif key_names:
            raise RepositoryCorrupt("config says unencrypted, but the repository has keys")
        elif password:
            raise WrongPassword("this repository is not encrypted: open it without a password")
        ctx = RepoContext(store, config, master, options)
        if load_index:
            ctx.refresh_index()
        return cls(ctx)

    @property
    def id(self) -> str:
        return self._ctx.config.id

    @property
    def encrypted(self) -> bool:
        return self._ctx.config.encrypted

    def writer(self, tags: dict[str, str], parent: str | None = None) -> BackupWriter:
        """Start a backup run; it holds a shared lock until ``commit`` or ``abort``."""
        # A run's collections walk only what the run makes. Before the writer exists: one
        # frozen with the rest would never be collected if it were dropped unfinished, and
        # its finalizer (which releases its lock and its spool) would never run.
        freeze_long_lived()
        lock = Lock.acquire(self._ctx.store, self._ctx.codec, self._ctx.options, exclusive=False)
        try:
            self._ctx.refresh_index()  # a prune may have run since open: forget its packs
        except BaseException:
            lock.release()
            raise
        return BackupWriter(self._ctx, lock, tags, parent)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every readable snapshot, oldest first; unreadable ones are left out (see verify)."""
        ids = self._ctx.snapshot_ids()
        with self._snapshots_mutex:
            for gone in self._snapshots.keys() - set(ids):
                del self._snapshots[gone]
        infos = []
        for snapshot_id in ids:
            try:
                infos.append(self._snapshot(snapshot_id).info)
            except SnapshotNotFound:
                continue  # forgotten meanwhile
            except (RepositoryCorrupt, UnsupportedFormat) as e:
                log.warning("engine.snapshot_unreadable", snapshot=snapshot_id, error=e.message)
        return sorted(infos, key=lambda info: (info.time, info.id))

    def items(self, snapshot_id: str) -> Iterator[Item]:
        """The items of a snapshot, in the order they were added."""
        trees = self._snapshot(snapshot_id).trees  # raises now, not at the first next()
        return (item for tree in trees for item in self._ctx.load_tree(tree))

    def item_records(self, snapshot_id: str) -> Iterator[ItemRecord]:
        """The items of a snapshot as (key, user, stored JSON), in the order they were added:
        what an incremental keeps of its previous point (``model.item_of_record`` decodes one;
        a writer's ``add_item`` takes the JSON back for an item that did not change)."""
        snapshot = self._snapshot(snapshot_id)
        cut: list[list[ItemRecord]] = []
        for tree in snapshot.trees:
            records = cut_tree_records(self._ctx.read_blob(bytes.fromhex(tree)))
            if records is None:
                break
            cut.append(records)
        else:
            if sum(map(len, cut)) == snapshot.info.item_count:
                return (record for records in cut for record in records)
        # A tree not canonical, or a separator inside an item: each tree decoded to cut it.
        del cut
        trees = snapshot.trees
        return (record for tree in trees for record in self._ctx.load_tree_records(tree))

    def user_records(self, snapshot_id: str) -> UserRecords | None:
        """The snapshot's records a user at a time (called with a user name, that user's
        ``item_records``), or None when the snapshot cannot be read so: then ``item_records``."""
        return UserRecords.of(self._ctx, self._snapshot(snapshot_id))

    def folders(self, snapshot_id: str) -> tuple[FolderSummary, ...] | None:
        """The snapshot's folder summary, read from the snapshot object alone (None for a
        snapshot written before summaries existed)."""
        return self._snapshot(snapshot_id).folders

    def tree_count(self, snapshot_id: str) -> int:
        return len(self._snapshot(snapshot_id).trees)

    def tree_items(self, snapshot_id: str, position: int) -> list[Item]:
        """The items of the snapshot's tree at ``position`` (one tree blob read)."""
        plain, what = self._tree_blob(snapshot_id, position)
        return parse_tree(plain, what)

    def marked_tree_items(
        self, snapshot_id: str, position: int, marker: bytes
    ) -> list[Item] | None:
        """The items of the tree at ``position`` whose JSON holds ``marker``, the others left
        undecoded (``model.marked_items``); None when the tree must be decoded whole."""
        plain, what = self._tree_blob(snapshot_id, position)
        return marked_items(plain, marker, what)

    def tree_window(
        self, snapshot_id: str, position: int, count: int, start: int, stop: int
    ) -> list[Item] | None:
        """Items ``start`` to ``stop`` of the tree at ``position``, which holds ``count`` items,
        the others left undecoded (``model.window_items``); None when the tree must be decoded
        whole."""
        plain, what = self._tree_blob(snapshot_id, position)
        return window_items(plain, count, start, stop, what)

    def _tree_blob(self, snapshot_id: str, position: int) -> tuple[bytes, str]:
        """The plaintext of the snapshot's tree at ``position`` and what to call it: from where
        the snapshot says it was stored, else (moved by a prune, or no place recorded) where the
        index says it is."""
        snapshot = self._snapshot(snapshot_id)
        tree = snapshot.trees[position]
        what = f"tree {tree}"
        place = None if snapshot.places is None else snapshot.places[position]
        if place is not None:
            pack, offset, length, raw_length = place
            where = BlobLocation(pack, TREE, offset, length, raw_length)
            try:
                return self._ctx.read_at(bytes.fromhex(tree), where), what
            except (ObjectNotFound, RepositoryCorrupt):
                pass  # not there any more: the index knows where it went
        return self._ctx.read_blob(bytes.fromhex(tree)), what

    def read(self, item: Item) -> Iterator[bytes]:
        """The item's content, one checked chunk at a time."""
        blob_ids = [parse_chunk_id(c) for c in item.chunks]
        return (self._ctx.read_blob(blob_id) for blob_id in blob_ids)

    def read_many(self, items: Iterable[Item]) -> Iterator[tuple[Item, Iterator[bytes]]]:
        """Each item with its content (as ``read`` gives it), in order, while a few threads
        read the next chunks ahead: for restores of many items. Consume an item's content
        before asking for the next item."""
        return read_items(items, self._ctx.read_blobs, self._chunk_size, parse_chunk_id)

    def _chunk_size(self, blob_id: bytes) -> int:
        return self._ctx.index.raw_length(blob_id)

    def verify(
        self, *, read_data: bool = True, progress: Callable[[int, int], None] | None = None
    ) -> VerifyReport:
        return verify(self._ctx, read_data=read_data, progress=progress)

    def forget(self, snapshot_ids: Iterable[str]) -> None:
        """Delete snapshot objects (their data goes at the next prune)."""
        ids = list(snapshot_ids)
        missing = [i for i in ids if not self._ctx.store.exists(SNAPSHOT_PREFIX + _checked(i))]
        if missing:
            raise SnapshotNotFound(f"no snapshot {', '.join(missing)}")
        for snapshot_id in ids:
            with contextlib.suppress(ObjectNotFound):  # forgotten by someone else meanwhile
                self._ctx.store.delete(SNAPSHOT_PREFIX + snapshot_id)
            with self._snapshots_mutex:
                self._snapshots.pop(snapshot_id, None)

    def prune(self) -> PruneReport:
        return maintenance.prune(self._ctx)

    def rebuild_index(self) -> None:
        maintenance.rebuild_index(self._ctx)

    def _snapshot(self, snapshot_id: str) -> Snapshot:
        with self._snapshots_mutex:
            cached = self._snapshots.get(snapshot_id)
        if cached is None:
            cached = self._ctx.load_snapshot(snapshot_id)
            with self._snapshots_mutex:
                self._snapshots[snapshot_id] = cached
        return cached


def _checked(snapshot_id: str) -> str:
    if len(snapshot_id) != 64 or not all(c in "0123456789abcdef" for c in snapshot_id):
        raise SnapshotNotFound(f"no snapshot {snapshot_id!r}")
    return snapshot_id


def _unlock(store: ObjectStore, key_names: list[str], password: str | None, repo: str) -> MasterKey:
    if password is None:
        raise PasswordRequired(f"repository {repo[:8]} is encrypted: a password is needed")
    for name in key_names:
        try:
            master = open_key_file(store.get(name), name, password, repo)
        except (ObjectNotFound, RepositoryCorrupt, UnsupportedFormat) as e:
            log.warning("engine.key_unreadable", name=name, error=str(e))
            continue
        if master is not None:
            return master
    raise WrongPassword(f"wrong password for repository {repo[:8]}")
