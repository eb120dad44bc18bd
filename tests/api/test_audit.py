"""The audit trail: one row per login (success or failure, user, address, dialect), logout,
revocation, explore, save and put-back, written by the services; ``AuditItems`` for
administrators only; the access log's ``user=`` field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from keepstone.api.app import create_app
from keepstone.cli.main import app
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import audit, auth
from keepstone.services.context import Context
from keepstone.store.tables import AuditEvent, LogonSession
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api
from tests.em.conftest import basic
from tests.local_org import Organization, backup_proxy, org_job, organization, run_job

__all__ = ["backup_proxy", "org_job", "organization"]  # fixtures

ADDRESS = "192.0.2.44"


@pytest.fixture
def remote(ctx: Context) -> TestClient:
    """A client at a known address."""
    return TestClient(create_app(ctx), base_url=BASE_URL, client=(ADDRESS, 40000))


def only(ctx: Context, action: str) -> AuditEvent:
    found = [e for e in audit.events(ctx, limit=1000) if e.action == action]
    assert len(found) == 1, [(e.action, e.user_name, e.details) for e in found]
    return found[0]


def test_logins_of_both_dialects_are_audited(ctx: Context, remote: TestClient) -> None:
    form = {"grant_type": "password", "username": "admin"}
    assert remote.post("/v2/Token", data=form | {"password": "wrong guess"}).status_code == 400
    assert remote.post("/v2/Token", data=form | {"password": ADMIN_PASSWORD}).status_code == 200
    em = "/api/sessionMngr/?v=latest"
    assert remote.post(em, headers=basic("mallory", "wrong guess")).status_code == 401
    assert remote.post(em, headers=basic("admin", ADMIN_PASSWORD)).status_code == 201
    logins = [
        (e.user_name, e.outcome, e.address, e.dialect)
        for e in reversed(audit.events(ctx))
        if e.action == "Login"
    ]
    assert logins == [
        ("admin", "Failure", ADDRESS, "vb365"),
        ("admin", "Success", ADDRESS, "vb365"),
        ("mallory", "Failure", ADDRESS, "em"),
        ("admin", "Success", ADDRESS, "em"),
    ]


def test_logouts_are_audited(ctx: Context, remote: TestClient) -> None:
    issued = remote.post(
        "/v2/Token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
    ).json()
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    assert remote.post("/v8/Token/logout", headers=headers).status_code == 204
    logout = only(ctx, "Logout")
    assert (logout.user_name, logout.address, logout.dialect) == ("admin", ADDRESS, "vb365")
    assert logout.details["revokedTokens"] == 2

    logon = remote.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    session = logon.headers["Location"].split("/api/", 1)[1]
    token = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    assert remote.delete(f"/api/{session}", headers=token).status_code == 204
    em_logout = [e for e in audit.events(ctx) if e.action == "Logout" and e.dialect == "em"]
    # by its row id: its SessionId is a credential, kept nowhere (tests/em/test_logon_session_ids)
    with ctx.db.read() as s:
        ended = s.scalars(select(LogonSession.id).where(LogonSession.ended_at.is_not(None))).all()
    assert [e.details["logonSession"] for e in em_logout] == ended
    assert session.rsplit("/", 1)[1] not in ended


def test_refresh_token_reuse_is_audited(ctx: Context, client: TestClient) -> None:
    first = client.post(
        "/v2/Token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
    ).json()
    for _ in range(2):
        client.post(
            "/v2/Token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
    reuse = only(ctx, "RefreshTokenReuse")
    assert (reuse.user_name, reuse.outcome) == ("admin", "Failure")
    # The login's live tokens: its first access token and the pair rotated from the replayed one.
    assert reuse.details["revokedTokens"] == 3


def test_revocations_are_audited_with_who_and_whom(ctx: Context) -> None:
    auth.add_user(ctx, "temp", "temp password", auth.Role.READ_ONLY)
    auth.revoke_tokens(ctx, "temp", by="alice (keepstone CLI)")
    auth.set_password(ctx, "temp", "other password", by="alice (keepstone CLI)")
    auth.remove_user(ctx, "temp", by="alice (keepstone CLI)")
    found = [(e.action, e.user_name, e.subject, e.dialect) for e in audit.events(ctx)]
    assert found == [
        ("UserRemoval", "alice (keepstone CLI)", "temp", "cli"),
        ("PasswordChange", "alice (keepstone CLI)", "temp", "cli"),
        ("RevokeTokens", "alice (keepstone CLI)", "temp", "cli"),
    ]


def test_explore_save_and_put_back_are_audited(
    ctx: Context,
    api: Api,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    organization: Organization,
) -> None:
    run_job(api, org_job, backup_proxy)
    org_id = org_job["organization"]["id"]
    session = api.post(f"/v8/Organizations/{org_id}/explore", {"type": "Vex"}).json()
    base = f"/v8/RestoreSessions/{session['id']}/organization/mailboxes"
    alice = next(m for m in api.get(base).json()["results"] if m["name"] == "alice")
    items = api.get(f"{base}/{alice['id']}/items").json()["results"]
    ids = [i["id"] for i in items[:2]]
    assert api.post(f"{base}/{alice['id']}/items/{ids[0]}/save").status_code == 200
    assert api.post(f"{base}/{alice['id']}/items/save", {"ids": ids}).status_code == 200
    assert api.post(f"{base}/{alice['id']}/items/restore", {"ids": ids}).status_code == 200
    moved = {"ids": ids[:1], "userName": "bob", "folder": "From Alice"}
    assert api.post(f"{base}/{alice['id']}/items/restoreTo", moved).status_code == 200

    trail = list(reversed(audit.events(ctx, organization_id=org_id)))
    assert [e.action for e in trail] == ["Explore", "Save", "Save", "Restore", "Restore"]
    assert {e.user_name for e in trail} == {"admin"}
    assert {e.details["restoreSession"] for e in trail} == {session["id"]}
    point = trail[0].details["restorePoint"]
    assert point and {e.details["restorePoint"] for e in trail} == {point}
    explored, one, zipped, in_place, elsewhere = trail
    assert (explored.subject, explored.details["type"]) == (None, "Vex")
    assert (one.subject, one.details["to"], one.details["items"]) == ("alice", "download", 1)
    assert one.details["item"]
    assert (zipped.details["to"], zipped.details["items"]) == ("zip download", 2)
    assert (in_place.details["to"], in_place.details["items"]) == ("alice", 2)
    assert (elsewhere.details["to"], elsewhere.details["items"]) == ("bob/From Alice", 1)


def test_audit_items_list_whose_data_was_acted_on_for_administrators_only(
    ctx: Context,
    api: Api,
    reader: Api,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
) -> None:
    run_job(api, org_job, backup_proxy)
    org_id = org_job["organization"]["id"]
    assert api.get(f"/v8/Organizations/{org_id}/AuditItems").json() == []
    session = api.post(f"/v8/Organizations/{org_id}/explore", {"type": "Veod"}).json()
    drives = f"/v8/RestoreSessions/{session['id']}/organization/onedrives"
    bob = next(o for o in api.get(drives).json()["results"] if o["name"] == "bob")
    doc = api.get(f"{drives}/{bob['id']}/documents").json()["results"][0]
    assert api.post(f"{drives}/{bob['id']}/documents/{doc['id']}/save").status_code == 200

    items = api.get(f"/v8/Organizations/{org_id}/AuditItems").json()
    assert [(i["type"], i["user"]["name"], i["id"]) for i in items] == [("User", "bob", bob["id"])]
    refused = reader.get(f"/v8/Organizations/{org_id}/AuditItems")
    assert refused.status_code == 403 and "audit" in refused.json()["message"]
    assert (
        api.get(f"/v8/Organizations/{'0' * 8}-0000-0000-0000-{'0' * 12}/AuditItems").status_code
        == 404
    )


def test_the_access_log_names_the_authenticated_user(api: Api, client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        api.get("/v2/Jobs")
        client.get("/v2/Jobs")  # no token: no user
        client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    requests = [(e["path"], e.get("user")) for e in logs if e["event"] == "request"]
    assert requests == [("/v2/Jobs", "admin"), ("/v2/Jobs", None), ("/api/sessionMngr/", "admin")]


def test_restore_commands_of_the_cli_are_audited(
    ctx: Context,
    api: Api,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    run_job(api, org_job, backup_proxy)
    [point] = api.get("/v2/RestorePoints").json()
    out = tmp_path / "saved"
    for args in (
        ["save", point["id"], "--user", "alice", "--to", str(out)],
        ["put-back", point["id"], "--user", "bob", "--collision", "skip"],
    ):
        result = CliRunner().invoke(app, ["restore", *args, "--data-dir", str(data_dir)])
        assert result.exit_code == 0, result.output

    trail = list(reversed(audit.events(ctx, organization_id=org_job["organization"]["id"])))
    assert [(e.action, e.subject, e.dialect) for e in trail] == [
        ("Explore", None, "cli"),
        ("Save", "alice", "cli"),
        ("Explore", None, "cli"),
        ("Restore", "bob", "cli"),  # bob's mail
        ("Restore", "bob", "cli"),  # bob's files
    ]
    assert all(e.user_name.endswith("(keepstone CLI)") for e in trail)
    saved = trail[1]
    assert (saved.details["to"], saved.details["items"]) == (str(out / "alice"), 7)
    assert saved.details["restorePoint"] == point["id"]
