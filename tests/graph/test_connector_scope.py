"""What an Office365 job selects: the In-Place Archive only where an item says
``archiveMailbox``, and users named by the vendor's ids (the Entra object id followed by the
on-premises GUID)."""

from __future__ import annotations

from typing import Any

from keepstone.domain.jobs import BackupType
from keepstone.domain.scope import Parts, ScopeUser, resolve_scope

OBJECT = "221fecc1-95f3-4da8-8ed2-101143dc117a"
VENDOR = OBJECT + "00000000-0000-0000-0000-000000000000"
ADELE = ScopeUser("adele@contoso.test", "stable-a", OBJECT)
BOB = ScopeUser("bob@contoso.test", "stable-b", "5b1a0f0e-0000-4000-8000-000000000001")


def test_the_archive_is_taken_only_where_an_item_selects_it() -> None:
    selected: list[dict[str, Any]] = [
        {"type": "User", "user": {"id": VENDOR}, "mailbox": True, "archiveMailbox": True},
        {"type": "User", "user": {"name": "bob@contoso.test"}},
    ]
    assert resolve_scope(BackupType.SELECTED_ITEMS, selected, [], [ADELE, BOB]) == {
        "adele@contoso.test": Parts(True, False, True),
        "bob@contoso.test": Parts(True, True, False),
    }
    entire = resolve_scope(BackupType.ENTIRE_ORGANIZATION, [], [], [ADELE])
    assert entire == {"adele@contoso.test": Parts(True, True, False)}


def test_an_archive_alone_and_its_exclusion() -> None:
    only = [{"type": "PartialOrganization", "archiveMailbox": True}]
    excluded = [{"type": "User", "id": VENDOR, "archiveMailbox": True}]
    assert resolve_scope(BackupType.SELECTED_ITEMS, only, excluded, [ADELE, BOB]) == {
        "bob@contoso.test": Parts(False, False, True)
    }


def test_a_vendor_id_names_its_user_and_no_other() -> None:
    selected = [{"type": "User", "user": {"id": VENDOR}}]
    assert set(resolve_scope(BackupType.SELECTED_ITEMS, selected, [], [ADELE, BOB])) == {
        "adele@contoso.test"
    }
    nobody = ScopeUser("carol@contoso.test", "stable-c")  # no object id: no prefix match
    assert (
        resolve_scope(BackupType.SELECTED_ITEMS, [{"type": "User", "id": ""}], [], [nobody]) == {}
    )
