"""An Office 365 user's id as the vendor lists it (its Entra object id and on-premises GUID, 72
characters) is kept as a task's, a log item's, a licensed user's and an RBAC item's id on every
catalog (before migration 0035 PostgreSQL refused it: VARCHAR(36) and (64), so every run of an
Office 365 organization failed at its first user there)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from keepstone.domain.jobs import SessionStatus
from keepstone.services import licensing, runs, task_sessions
from keepstone.services.context import Context, new_id
from keepstone.services.m365_directory import vendor_id
from keepstone.store.tables import LogItem, RbacItem, RbacRole
from tests.postgres_server import PostgresServer
from tests.store.postgres_columns import before_and_after

ENTRA_ID = "8f7c3c0e-2b1d-4a8e-9f0a-1c2d3e4f5a6b"
ON_PREMISES = "3d2c1b0a-9e8f-4d7c-8b6a-5f4e3d2c1b0a"
USER_IDS = {
    ("task_sessions", "object_id"),
    ("log_items", "subject_id"),
    ("licensed_users", "user_id"),
    ("rbac_items", "item_id"),
}


def test_an_office_365_users_id_is_kept_whole_by_its_task_log_licence_and_role(
    ctx: Context, job: dict[str, Any], org: dict[str, Any]
) -> None:
    user = (vendor_id(ENTRA_ID, ON_PREMISES), "adele.vance@contoso.example")
    assert len(user[0]) == 72
    session = runs.start_job(ctx, job["id"], "an Office 365 user")
    assert session is not None
    task = task_sessions.start(ctx, session.id, user)
    task_sessions.finish(ctx, task, SessionStatus.SUCCESS, task_sessions.UserTally(items=3))
    runs.add_log(ctx, session.id, SessionStatus.SUCCESS, "Processing finished", user)
    role = RbacRole(
        id=new_id(),
        organization_id=org["id"],
        name="helpdesk",
        role_type="SpecificObjects",
        access="Restore",
        created_at=ctx.clock.now(),
    )
    item = RbacItem(role_id=role.id, excluded=False, item_id=user[0], name=user[1], display_name="")
    with ctx.db.write() as s:
        s.add(role)
        s.flush()
        s.add(item)

    (view,) = task_sessions.tasks_of(ctx, session.id)
    assert view.task.object_id == user[0]
    with ctx.db.read() as s:
        logged = s.scalars(select(LogItem.subject_id).where(LogItem.session_id == session.id))
        assert user[0] in set(logged)
        assert s.scalar(select(RbacItem.item_id).where(RbacItem.role_id == role.id)) == user[0]
    assert [u.id for u in licensing.licensed_users(ctx)] == [user[0]]


@pytest.mark.postgresql_catalog
def test_a_postgresql_catalog_of_revision_0034_widens_its_user_ids(
    catalog_kind: str, request: pytest.FixtureRequest
) -> None:
    server: PostgresServer = request.getfixturevalue("postgres")
    before, after = before_and_after(server, "0034", "character_maximum_length", USER_IDS)
    assert before == {
        ("task_sessions", "object_id"): 36,
        ("log_items", "subject_id"): 36,
        ("licensed_users", "user_id"): 36,
        ("rbac_items", "item_id"): 64,
    }
    assert after == dict.fromkeys(USER_IDS, 100)
