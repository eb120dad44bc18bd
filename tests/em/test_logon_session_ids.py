"""A logon session's ``SessionId`` and its token: what monitoring scripts in wide use rely on, and
what keeps the ``SessionId`` a secret of its holder (``services.auth.logon_token``).

Jorgedlcruz's Grafana collectors for Enterprise Manager (``veeam_enterprisemanager.sh`` and its
kin) log on, read ``SessionId`` from the JSON body and send ``base64(SessionId)`` as their
``X-RestSvcSessionId`` header and cookie, as Enterprise Manager's tokens are; Keepstone answered
them 401 ("the logon session is not valid") before the token was made that way."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import structlog
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from keepstone.api.plumbing import HIDDEN, loggable_path
from keepstone.services import auth
from keepstone.services.context import Context
from keepstone.store.tables import AuditEvent
from tests.conftest import ADMIN_PASSWORD, READER_PASSWORD, Api, catalog_text
from tests.em.conftest import Em, N, basic

OPERATOR_PASSWORD = "operator password"


def _log_on(client: TestClient, user: str, password: str) -> tuple[str, str]:
    """(the header's token, the body's SessionId), as a JSON client reads them."""
    answer = client.post(
        "/api/sessionMngr/?v=latest",
        headers=basic(user, password) | {"Accept": "application/json", "Content-Length": "0"},
    )
    assert answer.status_code == 201, answer.text
    client.cookies.clear()  # the tests' clients share one jar; each request says who it is
    session_id = answer.json()["SessionId"]
    assert answer.headers["location"].endswith(f"/api/logonSessions/{session_id}")
    return answer.headers["X-RestSvcSessionId"], session_id


def _as_collectors_send_it(session_id: str) -> dict[str, str]:
    """The headers of jorgedlcruz's collectors: the token made from the body's SessionId, as a
    header and as a cookie, and an Accept for JSON."""
    derived = base64.b64encode(session_id.encode()).decode()
    return {
        "Accept": "application/json",
        "X-RestSvcSessionId": derived,
        "Cookie": f"X-RestSvcSessionId={derived}",
        "Content-Length": "0",
    }


def test_a_client_that_makes_its_token_from_the_session_id_is_logged_on(
    client: TestClient,
) -> None:
    token, session_id = _log_on(client, "admin", ADMIN_PASSWORD)
    assert token == base64.b64encode(session_id.encode()).decode()
    headers = _as_collectors_send_it(session_id)
    for path in (
        "/api/reports/summary/overview",
        "/api/reports/summary/job_statistics",
        "/api/repositories?format=Entity",
        "/api/backupServers?format=Entity",
        "/api/backupSessions?format=Entity",
        "/api/backupTaskSessions?format=Entity",
    ):
        answered = client.get(path, headers=headers)
        assert answered.status_code == 200, (path, answered.text)
    mine = client.get(f"/api/logonSessions/{session_id}", headers=headers).json()
    assert (mine["SessionId"], mine["UserName"]) == (session_id, "admin")
    assert client.delete(f"/api/logonSessions/{session_id}", headers=headers).status_code == 204
    assert client.get("/api/backupServers", headers=headers).status_code == 401


def test_a_session_id_is_kept_in_no_table_no_log_and_no_audit_entry(
    client: TestClient, ctx: Context, data_dir: Path
) -> None:
    with structlog.testing.capture_logs() as logs:
        token, session_id = _log_on(client, "admin", ADMIN_PASSWORD)
        em = Em(client, token)
        assert em.xml("GET", f"/api/logonSessions/{session_id}") is not None
        assert em.request("GET", f"/api/logonSessions/{session_id}/nothing").status_code == 404
    kept = catalog_text(ctx, data_dir)  # SQLite's file and WAL byte for byte, or every row
    assert hashlib.sha256(token.encode()).hexdigest() in kept  # the session's row is read
    assert session_id not in kept and token not in kept
    paths = [line["path"] for line in logs if line.get("event") == "request"]
    assert paths == [
        "/api/sessionMngr/",
        f"/api/logonSessions/{HIDDEN}",
        f"/api/logonSessions/{HIDDEN}/nothing",
    ]
    assert session_id not in repr(logs) and token not in repr(logs)


def test_others_see_a_session_by_its_row_id_which_is_no_credential(
    client: TestClient, ctx: Context
) -> None:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    reader_token, reader_id = _log_on(client, "reader", READER_PASSWORD)
    admin = Em(client, _log_on(client, "admin", ADMIN_PASSWORD)[0])
    listed = {
        s.findtext("e:UserName", namespaces=N): s.findtext("e:SessionId", namespaces=N)
        for s in admin.xml("GET", "/api/logonSessions").findall("e:LogonSession", N)
    }
    seen_as = listed["reader"]
    assert seen_as and seen_as != reader_id
    for guessed in (seen_as, base64.b64encode(seen_as.encode()).decode()):
        refused = client.get("/api/jobs", headers={"X-RestSvcSessionId": guessed})
        assert refused.status_code == 401
    # the reader lists its own session by the SessionId it was given
    reader = Em(client, reader_token)
    [own] = reader.xml("GET", "/api/logonSessions").findall("e:LogonSession", N)
    assert own.findtext("e:SessionId", namespaces=N) == reader_id
    # an administrator reads and ends it by the id it was shown, and sees whose it is
    shown = admin.xml("GET", f"/api/logonSessions/{seen_as}")
    assert shown.findtext("e:UserName", namespaces=N) == "reader"
    assert shown.findtext("e:SessionId", namespaces=N) == seen_as
    assert reader.request("GET", f"/api/logonSessions/{seen_as}").status_code == 200
    assert admin.request("DELETE", f"/api/logonSessions/{seen_as}").status_code == 204
    assert reader.request("GET", "/api/jobs").status_code == 401


def test_an_operators_request_for_its_session_is_audited_without_the_id(
    client: TestClient, ctx: Context, api: Api, org: dict[str, Any]
) -> None:
    auth.add_user(ctx, "operator", OPERATOR_PASSWORD, auth.Role.NONE)
    role = {"name": "desk", "operators": [{"type": "User", "user": {"name": "operator"}}]}
    created = api.post(f"/v8/Organizations/{org['id']}/RbacRoles", role | {"access": "ReadOnly"})
    assert created.status_code == 201, created.text
    token, session_id = _log_on(client, "operator", OPERATOR_PASSWORD)
    Em(client, token).request("GET", f"/api/logonSessions/{session_id}")
    with ctx.db.read() as s:
        details = [entry.details for entry in s.scalars(select(AuditEvent))]
    paths = [d["path"] for d in details if d and "path" in d]
    assert f"/api/logonSessions/{HIDDEN}" in paths
    assert session_id not in repr(details)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1))
def test_only_a_logon_sessions_id_is_hidden_in_a_logged_path(segment: str) -> None:
    for prefix in ("/api/logonSessions/", "/API/LOGONSESSIONS/", "/api/logonsessions/"):
        assert loggable_path(prefix + segment) == prefix + HIDDEN
        assert loggable_path(f"{prefix}{segment}/x") == f"{prefix}{HIDDEN}/x"
    for other in (f"/api/jobs/{segment}", f"/v8/RestoreSessions/{segment}", "/api/logonSessions"):
        assert loggable_path(other) == other
