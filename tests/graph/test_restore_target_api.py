"""Office365 restores through the API (the fake Graph behind the server): a restore point in
the agreed item format put back in place with the organization's stored application, restoreTo
another mailbox and folder with an application the request names (checked first: a refusal is a
400 naming the property, nothing written), and the vendor's legacy credentials refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from keepstone.proxy.backup import facts_of
from keepstone.services import restore_points, vault
from tests.graph import org_fixtures as orgs
from tests.graph.drive_fixtures import drive_files
from tests.graph.org_fixtures import OrgEnv, _org_fake, _org_server, org_env
from tests.graph.restore_fixtures import graph_item, mime, semantic, tree
from tests.graph.test_drive_restore import graph_item as file_item

__all__ = ["_org_fake", "_org_server", "org_env"]
USER = "user000@contoso.onmicrosoft.com"
OTHER = "user001@contoso.onmicrosoft.com"
FILES = {"Docs/plan.txt": b"the plan", "photo.jpg": bytes(range(256)) * 64}
ROLES_WITHOUT_MAIL = frozenset({"User.Read.All", "Organization.Read.All", "Files.ReadWrite.All"})


def _backed_up(
    env: OrgEnv, count: int, placed: Callable[[int], dict[str, Any]] | None = None
) -> tuple[dict[str, Any], str, str]:
    """An organization with a restore point of ``count`` messages of USER (``placed(n)``: the
    folder and metadata of message n), a session on it, and the mailbox's id in the session."""
    tenant = orgs.tenant_with_users(env.fake, 2)
    env.fake.state.add_app(tenant, secret=orgs.SECRET)
    app = next(iter(env.fake.state.apps.values()))
    answer = env.api.post("/v8/Organizations", orgs.org_body(app))
    assert answer.status_code == 201, answer.text
    org = answer.json()
    repo = env.api.get("/v2/BackupRepositories").json()[0]
    repository = vault.open_repository(env.ctx, repo["id"], repo["path"])
    writer = repository.writer({restore_points.TAG_ORGANIZATION: org["id"]})
    for n in range(count):
        chunks, _, _ = writer.add_file(mime(n))
        shape = {"is_read": n % 2 == 0} | (placed(n) if placed else {})
        writer.add_item(replace(graph_item(USER, n, mime(n), **shape), chunks=chunks))
    for path, content in FILES.items():
        chunks, _, _ = writer.add_file(content)
        writer.add_item(replace(file_item(USER, path, content), chunks=chunks))
    snapshot_id = writer.commit(env.ctx.clock.now())
    info = next(s for s in repository.snapshots() if s.id == snapshot_id)
    restore_points.record(env.ctx, repo["id"], facts_of(repository, info))
    session = env.api.post(f"/v8/Organizations/{org['id']}/explore", {}).json()["id"]
    base = f"/v8/RestoreSessions/{session}/Organization/Mailboxes"
    owner = next(m["id"] for m in env.api.rows(base) if m["name"] == USER)
    return org, session, f"{base}/{owner}"


def _user_id(env: OrgEnv, name: str) -> str:
    return next(
        u.id
        for t in env.fake.state.tenants.values()
        for u in t.users.values()
        if u.user_principal_name == name
    )


def _mailbox(env: OrgEnv, name: str) -> Any:
    return env.fake.state.mailboxes[_user_id(env, name)]


def _drive(env: OrgEnv, name: str) -> Any:
    return env.fake.state.drives[_user_id(env, name)]


def test_restore_in_place_with_the_stored_application(org_env: OrgEnv) -> None:
    _, _, mailbox = _backed_up(org_env, 4)
    done = org_env.api.post(f"{mailbox}/restore", {"collisionPolicy": "skip"})
    assert done.status_code == 200, done.text
    assert done.json()["restoredItemsCount"] == 4
    inbox = tree(_mailbox(org_env, USER))["Inbox"]
    assert sorted(semantic(m.mime)["Subject"] for m in inbox) == sorted(
        semantic(mime(n))["Subject"] for n in range(4)
    )
    assert sorted(m.is_read for m in inbox) == [False, False, True, True]
    assert not any(m.is_draft for m in inbox)
    again = org_env.api.post(f"{mailbox}/restore", {"collisionPolicy": "skip"}).json()
    assert (again["restoredItemsCount"], again["skippedItemsCount"]) == (0, 4)
    # the same session's OneDrive, through the same organization target
    drives = mailbox.split("/Mailboxes/")[0] + "/OneDrives"
    drive = next(d["id"] for d in org_env.api.rows(drives) if d["name"] == USER)
    files = org_env.api.post(f"{drives}/{drive}/restoreTo", {"userName": OTHER, "folder": "In"})
    assert files.status_code == 200, files.text
    assert files.json()["restoredItemsCount"] == 2
    assert sorted(drive_files(_drive(org_env, OTHER)).values()) == sorted(
        (f"In/{path}", content) for path, content in FILES.items()
    )


def test_restore_to_with_a_named_application(org_env: OrgEnv) -> None:
    _, _, mailbox = _backed_up(org_env, 3)
    stored = next(iter(org_env.fake.state.apps.values()))
    stored.roles = ROLES_WITHOUT_MAIL  # the stored application may no longer write mail
    tenant = next(iter(org_env.fake.state.tenants.values()))
    named = org_env.fake.state.add_app(tenant)
    _, pfx = orgs.pfx_of(named)
    body = {
        "mailbox": OTHER,
        "folder": "From 000/Restored",
        "applicationId": named.client_id,
        "applicationCertificate": pfx,
        "applicationCertificatePassword": "pfx-pass-Kk3-not-in-any-file",
    }
    failed = org_env.api.post(f"{mailbox}/restoreTo", {"mailbox": OTHER, "folder": "x"})
    assert failed.status_code == 200 and failed.json()["failedItemsCount"] == 3
    done = org_env.api.post(f"{mailbox}/restoreTo", body)
    assert done.status_code == 200, done.text
    assert done.json()["restoredItemsCount"] == 3
    landed = tree(_mailbox(org_env, OTHER))
    assert sorted(landed) == ["From 000/Restored"] and len(landed["From 000/Restored"]) == 3
    assert pfx not in done.text


def test_refused_credentials_are_400s_naming_the_property_and_write_nothing(
    org_env: OrgEnv,
) -> None:
    _, _, mailbox = _backed_up(org_env, 2)
    app = next(iter(org_env.fake.state.apps.values())).client_id
    for body, prop in (
        ({"applicationId": app, "applicationSecret": "wrong"}, "applicationSecret"),
        (
            {"applicationId": app, "applicationCertificate": "bm90IGEgcGZ4"},
            "applicationCertificate",
        ),
        ({"applicationId": app}, "applicationId"),
        (
            {"applicationId": app, "applicationSecret": "x", "applicationCertificate": "eA=="},
            "applicationSecret",
        ),
        ({"userName": USER, "userPassword": "pw"}, "userPassword"),
        ({"applicationSecret": "s"}, "applicationSecret"),
        ({"applicationId": "not-a-guid", "applicationSecret": "s"}, "applicationId"),
    ):
        refused = org_env.api.post(f"{mailbox}/restore", body)
        assert refused.status_code == 400, refused.text
        assert prop in refused.json()["message"] and "wrong" not in refused.text, refused.text
    assert _mailbox(org_env, USER).messages == {}
