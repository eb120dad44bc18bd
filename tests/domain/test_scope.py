from __future__ import annotations

from typing import Any

from keepstone.domain.jobs import BackupType
from keepstone.domain.scope import Parts, ScopeUser, resolve_scope

USERS = [ScopeUser("alice", "id-a"), ScopeUser("bob", "id-b"), ScopeUser("carol", "id-c")]
BOTH, MAIL, DRIVE = Parts(True, True), Parts(True, False), Parts(False, True)


def scope(
    kind: BackupType, selected: list[dict[str, Any]], excluded: list[dict[str, Any]]
) -> dict[str, Parts]:
    return resolve_scope(kind, selected, excluded, USERS)


def test_entire_organization_takes_everyone() -> None:
    assert scope(BackupType.ENTIRE_ORGANIZATION, [], []) == {
        "alice": BOTH,
        "bob": BOTH,
        "carol": BOTH,
    }


def test_exclusions_remove_users_or_parts() -> None:
    excluded = [
        {"type": "User", "user": {"id": "id-b"}},
        {"type": "User", "user": {"name": "carol"}, "oneDrive": True},
    ]
    assert scope(BackupType.ENTIRE_ORGANIZATION, [], excluded) == {"alice": BOTH, "carol": MAIL}


def test_selected_items_take_only_what_they_name() -> None:
    selected = [
        {"type": "User", "user": {"id": "id-a"}, "mailbox": True, "oneDrive": False},
        {"type": "User", "user": {"displayName": "bob"}},
    ]
    assert scope(BackupType.SELECTED_ITEMS, selected, []) == {"alice": MAIL, "bob": BOTH}


def test_partial_organization_covers_every_user_for_its_parts() -> None:
    selected = [{"type": "PartialOrganization", "oneDrive": True}]
    excluded = [{"type": "User", "user": {"id": "id-c"}}]
    assert scope(BackupType.SELECTED_ITEMS, selected, excluded) == {"alice": DRIVE, "bob": DRIVE}


def test_items_of_other_types_or_unknown_users_select_nothing() -> None:
    selected = [{"type": "Group", "group": {"id": "g"}}, {"type": "User", "user": {"id": "nobody"}}]
    assert scope(BackupType.SELECTED_ITEMS, selected, []) == {}
