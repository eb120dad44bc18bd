"""A restore of many items holds one tree's items at a time, whatever the point's size (issue 15:
the bench's full restore held every item of the point as objects, several times its trees)."""

from __future__ import annotations

import io
import weakref
from pathlib import Path

import pytest

from keepstone.domain.scope import stable_user_id
from keepstone.engine import Item, Repository, writer
from keepstone.services.restores import Browser
from tests.engine.helpers import item_for, new_repo, text

TREE_ITEMS = 10


class _Tree(list[Item]):
    """A tree's items as the repository hands them out, so the test can see which are alive."""


def _point(root: Path, per_user: int) -> tuple[Repository, str]:
    """Three users' items interleaved (as parallel users are), so every tree mixes users."""
    repo = new_repo(root)
    run = repo.writer({"job_id": "test"})
    for n in range(per_user):
        for user in ("alice", "bob", "carol"):
            chunks, size, _ = run.add_file(io.BytesIO(text(f"{user}{n}", 100 + n)))
            run.add_item(item_for(f"{user}/m{n}", chunks, size, kind="mail"))
    return repo, run.commit()


def _trees_alive_while_walking(
    repo: Repository, snapshot: str, users: list[str] | None
) -> tuple[int, int, Browser]:
    """(items walked, the most trees alive at once during the walk, the browser)."""
    trees: list[weakref.ref[_Tree]] = []
    read = repo.tree_items

    def tracked(snapshot_id: str, position: int) -> list[Item]:
        tree = _Tree(read(snapshot_id, position))
        trees.append(weakref.ref(tree))
        return tree

    repo.tree_items = tracked  # type: ignore[method-assign]
    browser = Browser(repo, "org", snapshot)
    walked = most = 0
    for _item in browser.each_item(users):
        walked += 1
        most = max(most, sum(tree() is not None for tree in trees))
    return walked, most, browser


@pytest.mark.parametrize("per_user", [20, 80], ids=["N", "4N"])
def test_walking_a_point_holds_one_tree_for_n_and_4n_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_user: int
) -> None:
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", TREE_ITEMS)
    repo, snapshot = _point(tmp_path / "repo", per_user)
    walked, most, browser = _trees_alive_while_walking(repo, snapshot, None)
    assert walked == 3 * per_user
    assert most == 1  # 6 or 24 trees in the point: one at a time, none kept
    assert not browser._trees  # browsing's cache is left alone
    walked, most, _ = _trees_alive_while_walking(repo, snapshot, ["bob"])
    assert (walked, most) == (per_user, 1)


def test_walking_gives_what_listing_gives_in_snapshot_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", TREE_ITEMS)
    repo, snapshot = _point(tmp_path / "repo", 15)
    browser = Browser(repo, "org", snapshot)
    assert list(browser.each_item()) == list(repo.items(snapshot))
    assert list(browser.each_item(["carol"])) == browser.items_of_user("carol")
    assert list(browser.each_item(["bob", "alice"])) == [
        i for i in repo.items(snapshot) if i.user in ("alice", "bob")
    ]
    assert list(browser.each_item(["nobody"])) == []


def test_walking_as_a_scoped_viewer_gives_only_the_owners_it_reaches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", TREE_ITEMS)
    repo, snapshot = _point(tmp_path / "repo", 5)
    bob = stable_user_id("org", "bob")
    view = Browser(repo, "org", snapshot).limited_to(lambda owner: owner == bob)
    assert {i.user for i in view.each_item()} == {"bob"}
    assert list(view.each_item(["alice", "carol"])) == []
