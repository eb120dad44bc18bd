"""A snapshot's item records read one user at a time (what an incremental keeps of its previous
point while it backs that user up), so a run holds one user's records, not the whole point's."""

from __future__ import annotations

from collections import defaultdict

from keepstone.engine.context import RepoContext
from keepstone.engine.model import (
    ItemRecord,
    Snapshot,
    cut_tree_records,
    tree_piece_count,
    tree_records,
)


class UserRecords:
    """The records of one user: the trees the folder summary names for that user, cut (or
    decoded, for a tree whose pieces cannot be read without it), that user's records kept."""

    def __init__(self, ctx: RepoContext, snapshot: Snapshot) -> None:
        assert snapshot.folders is not None
        self._ctx = ctx
        self._trees = snapshot.trees
        self._positions: dict[str, set[int]] = defaultdict(set)
        self._counts: dict[str, int] = defaultdict(int)
        for folder in snapshot.folders:
            self._positions[folder.user].update(folder.trees)
            self._counts[folder.user] += folder.count
        # The tree cut last: users follow each other in a snapshot's trees, so the next user
        # starts in it (a tree holds a few users): each tree is cut once, one held at a time.
        self._last: tuple[int, dict[str, list[ItemRecord]]] | None = None

    @classmethod
    def of(cls, ctx: RepoContext, snapshot: Snapshot) -> UserRecords | None:
        """None when the snapshot cannot be read a user at a time: no folder summary (written
        before they existed), a tree not canonical, or a separator inside an item (the pieces
        of all trees, counted one tree at a time, do not add up to the snapshot's items)."""
        if snapshot.folders is None:
            return None
        if sum(f.count for f in snapshot.folders) != snapshot.info.item_count:
            return None
        pieces = 0
        for tree in snapshot.trees:
            count = tree_piece_count(ctx.read_blob(bytes.fromhex(tree)))
            if count is None:
                return None
            pieces += count
        return cls(ctx, snapshot) if pieces == snapshot.info.item_count else None

    def __call__(self, user: str) -> list[ItemRecord]:
        """``user``'s records in the order they were added. A summary that disagrees with the
        trees (fewer records found than it counts) costs a read of every tree, never an item."""
        positions = sorted(self._positions.get(user, ()))
        records = [r for p in positions for r in self._tree(p).get(user, ())]
        if len(records) != self._counts.get(user, 0):
            everywhere = range(len(self._trees))
            records = [r for p in everywhere for r in self._tree(p).get(user, ())]
        return records

    def _tree(self, position: int) -> dict[str, list[ItemRecord]]:
        """The tree's records by user, in their order (a tree holds a few users: each is
        asked for its own, not for a pass over the whole tree)."""
        last = self._last  # one read: connectors may load other users from their threads
        if last is not None and last[0] == position:
            return last[1]
        self._last = None  # not held while the next one is read
        tree = self._trees[position]
        plain = self._ctx.read_blob(bytes.fromhex(tree))
        cut = cut_tree_records(plain)
        by_user: dict[str, list[ItemRecord]] = defaultdict(list)
        for record in cut if cut is not None else tree_records(plain, f"tree {tree}"):
            by_user[record[1]].append(record)
        self._last = (position, by_user)
        return by_user
