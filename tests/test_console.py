"""The web console in-process (issue 16 item 2): login, the session cookie, CSRF, expiry and
logout; the dashboard; the job form and its backup-window grid; sessions; roles. Pages call the
same services as the API, so what they change is checked through the API."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone import console
from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.console.admin_pages import AUDIT_SHOWN
from keepstone.domain.jobs import SessionStatus
from keepstone.domain.window_text import DASH, week_hour
from keepstone.services import audit, auth, runs
from keepstone.services.context import Context
from tests import listing_rows as bulk
from tests.conftest import ADMIN_PASSWORD, READER_PASSWORD, Api
from tests.work import catalog_work

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def console_login(client: TestClient, user: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    """Log the client's browser in; returns the CSRF token of its session."""
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf": csrf_of(form.text), "username": user, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def test_the_pages_take_their_place_in_the_app_at_the_first_console_request(
    ctx: Context,
) -> None:
    """A new app holds ``console.Pages`` where the console's routers go (the pages are imported
    at the first request for one); that request gets its page, and the routers are then in that
    very place, so the app's order of routes is what it always was."""
    app = create_app(ctx)
    routes = app.router.routes
    at = next(n for n, route in enumerate(routes) if isinstance(route, console.Pages))
    after = routes[at + 1 :]
    with TestClient(app, base_url="https://testserver") as fresh:
        assert fresh.get("/api/jobs").status_code == 401  # an API request leaves them alone
        assert any(isinstance(route, console.Pages) for route in routes)
        form = fresh.get("/login")
        assert form.status_code == 200 and 'autocomplete="current-password"' in form.text
        assert fresh.get("/no-such-page").status_code == 404
        unknown = fresh.get("/jobs/x/no-such-page", follow_redirects=False)
        assert unknown.status_code == 404, unknown.text
    assert not any(isinstance(route, console.Pages) for route in routes)
    assert create_app(ctx).url_path_for("console-static", path="console.css") == (
        "/console/static/console.css"  # a name asked for before any console request
    )
    # (the request under /api put the EM dialect's routes in, before the console's place)
    end = len(routes) - len(after)
    placed = [getattr(route, "original_router", None) for route in routes[end - 7 : end]]
    assert placed == console._routers() and len(placed) == 7
    assert routes[end:] == after


def test_login_sets_a_strict_httponly_secure_cookie_and_is_audited(
    client: TestClient, ctx: Context
) -> None:
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=%2F"
    form = client.get("/login")
    assert form.status_code == 200 and 'autocomplete="current-password"' in form.text
    assert "script-src 'self';" in form.headers["content-security-policy"]
    wrong = client.post(
        "/login",
        data={"csrf": csrf_of(form.text), "username": "admin", "password": "not it!!"},
        follow_redirects=False,
    )
    assert wrong.status_code == 401 and "the user name or password is incorrect" in wrong.text
    right = client.post(
        "/login",
        data={"csrf": csrf_of(form.text), "username": "admin", "password": ADMIN_PASSWORD},
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == "/"
    cookie = right.headers["set-cookie"].lower()
    assert "keepstone_console=" in cookie
    assert all(flag in cookie for flag in ("httponly", "samesite=strict", "secure", "path=/"))
    events = audit.events(ctx, limit=2)
    assert [(e.action, e.outcome, e.dialect) for e in events] == [
        ("Login", "Success", "console"),
        ("Login", "Failure", "console"),
    ]
    assert client.get("/").status_code == 200


def test_the_login_form_needs_its_own_token(client: TestClient) -> None:
    client.get("/login")
    refused = client.post(
        "/login", data={"username": "admin", "password": ADMIN_PASSWORD}, follow_redirects=False
    )
    assert refused.status_code == 403 and "security token" in refused.text
    assert "keepstone_console" not in refused.headers.get("set-cookie", "")


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, api: Api, job: dict[str, Any]
) -> None:
    token = console_login(client)
    refused = client.post(f"/jobs/{job['id']}/disable", data={}, follow_redirects=False)
    assert refused.status_code == 403 and "security token" in refused.text
    forged = client.post(f"/jobs/{job['id']}/disable", data={"csrf": "x" * 64})
    assert forged.status_code == 403
    assert api.get(f"/v6/Jobs/{job['id']}").json()["isEnabled"] is True
    done = client.post(f"/jobs/{job['id']}/disable", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303
    assert api.get(f"/v6/Jobs/{job['id']}").json()["isEnabled"] is False
    page = client.get(done.headers["location"])
    assert '<dd id="next-run">—</dd>' in page.text  # a disabled job has no next run, at once


def test_the_session_expires_after_15_idle_minutes(client: TestClient, clock: ManualClock) -> None:
    console_login(client)
    clock.advance(timedelta(minutes=14))
    assert client.get("/").status_code == 200  # a use restarts the idle clock
    clock.advance(timedelta(minutes=15, seconds=1))
    expired = client.get("/jobs", follow_redirects=False)
    assert expired.status_code == 303
    assert expired.headers["location"].startswith("/login?next=%2Fjobs&why=")
    polled = client.get("/fragments/running", headers={"HX-Request": "true"})
    assert polled.status_code == 204 and polled.headers["hx-redirect"].startswith("/login")


def test_logout_ends_the_session(client: TestClient, ctx: Context) -> None:
    token = console_login(client)
    cookie = client.cookies.get("keepstone_console")
    out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert audit.events(ctx, limit=1)[0].action == "Logout"
    client.cookies.set("keepstone_console", cookie or "")  # a copy of the cookie is dead too
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_dashboard_shows_jobs_running_sessions_failures_repositories_and_proxies(
    client: TestClient, ctx: Context, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    failed = runs.start_job(ctx, job["id"], "test")
    assert failed is not None
    with ctx.db.write() as s:
        row = runs.get_session_in(s, failed.id)
        runs.finish_in(s, row, SessionStatus.FAILED, "the source went away", ctx.clock.now())
    running = runs.start_job(ctx, job["id"], "test")
    assert running is not None
    with ctx.db.write() as s:
        row = runs.get_session_in(s, running.id)
        row.status, row.progress = SessionStatus.RUNNING.value, 42
    console_login(client)
    page = client.get("/").text
    assert f'href="/jobs/{job["id"]}"' in page and "test_job" in page
    assert f'href="/sessions/{failed.id}"' in page and "the source went away" in page
    assert "42 items" in page and 'hx-trigger="every 2s"' in page
    assert repo["name"] in page and ("Online" in page or "Offline" in page)
    fragment = client.get("/fragments/running")
    assert (
        fragment.status_code == 200 and "42 items" in fragment.text and "<html" not in fragment.text
    )
    log = client.get(f"/sessions/{failed.id}").text
    assert "Failed" in log and "the source went away" in log


def _job_form(csrf: str, repo_id: str, cells: list[int], **changes: str) -> dict[str, Any]:
    return {
        "csrf": csrf,
        "name": "nightly",
        "description": "made in the console",
        "repositoryId": repo_id,
        "proxyId": "",
        "backupType": "EntireOrganization",
        "type": "Daily",
        "dailyType": "Workdays",
        "dailyTime": "22:30",
        "periodicallyEvery": "Hours1",
        "backupWindowEnabled": "1",
        "window": [str(c) for c in cells],
        "minuteOffset": "60",
        "retryEnabled": "1",
        "retryNumber": "2",
        "retryWaitInterval": "15",
    } | changes


def test_a_job_made_in_the_form_has_the_painted_window_as_the_api_says(
    client: TestClient, api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    csrf = console_login(client)
    nights = [week_hour(day, hour) for day in range(5) for hour in (22, 23)]
    mornings = [week_hour(day, hour) for day in range(1, 6) for hour in range(6)]
    form = _job_form(csrf, repo["id"], nights + mornings, organizationId=org["id"])
    created = client.post("/jobs/new", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    job_id = created.headers["location"].rsplit("/", 1)[1]
    body = api.get(f"/v6/Jobs/{job_id}").json()
    window = body["schedulePolicy"]["backupWindowSettings"]
    expected = [False] * 168
    for cell in nights + mornings:
        expected[cell] = True
    assert window["backupWindow"] == expected and window["minuteOffset"] == 60
    assert body["schedulePolicy"]["dailyType"] == "Workdays"
    assert body["schedulePolicy"]["dailyTime"] == "22:30:00"
    assert (
        body["schedulePolicy"]["retryNumber"] == 2 and body["description"] == "made in the console"
    )
    page = client.get(f"/jobs/{job_id}").text
    assert "Mon-Fri 22:00-06:00".replace("-", DASH) in page
    assert page.count('name="window"') == 168 and page.count("checked") >= len(nights + mornings)


def test_the_form_refuses_with_the_apis_messages_and_keeps_what_was_typed(
    client: TestClient, api: Api, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    csrf = console_login(client)
    form = _job_form(csrf, repo["id"], [24], retryNumber="1000")
    refused = client.post(f"/jobs/{job['id']}", data=form)
    put = api.put(f"/v6/Jobs/{job['id']}", {"schedulePolicy": {"retryNumber": 1000}})
    assert refused.status_code == 400 and put.status_code == 400
    message = put.json()["message"]
    assert message in refused.text.replace("&#39;", "'")
    assert 'value="1000"' in refused.text and 'value="nightly"' in refused.text
    empty = client.post(f"/jobs/{job['id']}", data=_job_form(csrf, repo["id"], []))
    assert "allows no hour at all while backupWindowEnabled is true" in empty.text
    assert api.get(f"/v6/Jobs/{job['id']}").json()["name"] == "test_job"  # nothing changed


def test_the_window_summary_follows_the_grid(client: TestClient) -> None:
    console_login(client)
    cells = [("window", str(week_hour(day, 0))) for day in (5, 6)]
    cells += [("window", str(week_hour(day, h))) for day in (5, 6) for h in range(1, 24)]
    text = client.get(
        "/fragments/window-summary", params=[("backupWindowEnabled", "1"), *cells]
    ).text
    assert f"Sat{DASH}Sun all day" in text


def test_start_and_stop_from_the_job_page(
    client: TestClient, api: Api, job: dict[str, Any]
) -> None:
    csrf = console_login(client)
    started = client.post(f"/jobs/{job['id']}/start", data={"csrf": csrf}, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"].startswith("/sessions/")
    session_page = client.get(started.headers["location"]).text
    assert "Queued" in session_page and "/stop" in session_page
    again = client.post(f"/jobs/{job['id']}/start", data={"csrf": csrf})
    assert again.status_code == 409 and "is already running" in again.text
    stopped = client.post(f"/jobs/{job['id']}/stop", data={"csrf": csrf}, follow_redirects=False)
    assert stopped.status_code == 303
    sessions = api.get(f"/v6/Jobs/{job['id']}/JobSessions").json()["results"]
    assert sessions[0]["status"] == "Stopped"


def test_a_read_only_user_sees_but_cannot_change(
    client: TestClient, ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    csrf = console_login(client, "reader", READER_PASSWORD)
    page = client.get(f"/jobs/{job['id']}").text
    assert "test_job" in page and "Start now" not in page and "<fieldset disabled" in page
    refused = client.post(f"/jobs/{job['id']}/disable", data={"csrf": csrf})
    assert refused.status_code == 403 and "ReadOnly role" in refused.text
    assert api.get(f"/v6/Jobs/{job['id']}").json()["isEnabled"] is True


def test_a_missing_job_is_a_404_page(client: TestClient) -> None:
    console_login(client)
    missing = client.get("/jobs/no-such-job")
    assert missing.status_code == 404 and "<main" in missing.text


PAGE_ROWS = 25


@pytest.mark.parametrize("path", ["/jobs", "/sessions", "/"])
def test_console_pages_cost_the_same_for_n_and_4n_rows(
    client: TestClient, ctx: Context, job: dict[str, Any], path: str
) -> None:
    """A page reads its page of rows, never the whole set: the same statements and rows for a
    catalog of N and of 4N jobs and sessions."""
    console_login(client)
    n = 2 * PAGE_ROWS
    owners = [job["id"], *bulk.copies_of_job(ctx, job["id"], n - 1)]
    bulk.add_sessions(ctx, owners, n)
    client.get(path)  # warm: the logon session's use is recorded at most once a second

    def work() -> tuple[int, int]:
        with catalog_work(ctx) as counted:
            assert client.get(path).status_code == 200
        return counted.count, counted.rows_loaded

    small = work()
    bulk.copies_of_job(ctx, job["id"], 3 * n, prefix="more")
    bulk.add_sessions(ctx, owners, 3 * n, start=n)
    large = work()
    assert small == large
    assert small[1] <= 2 * (PAGE_ROWS + 1) + 10


def test_an_organization_added_in_the_console_is_the_apis_with_its_users(
    client: TestClient, api: Api, tmp_path: Any
) -> None:
    csrf = console_login(client)
    root = tmp_path / "org"
    (root / "alice" / "cur").mkdir(parents=True)
    form = {"csrf": csrf, "type": "Local", "name": "Branch office", "description": "", "path": ""}
    refused = client.post("/organizations/new", data=form)
    sent = {"type": "Local", "name": "Branch office", "localSettings": {"path": ""}}
    from_api = api.post("/v6/Organizations", sent)
    assert refused.status_code == 400 and from_api.status_code == 400
    assert from_api.json()["message"] in refused.text.replace("&#39;", "'")
    added = client.post(
        "/organizations/new", data=form | {"path": str(root)}, follow_redirects=False
    )
    assert added.status_code == 303, added.text
    org_id = added.headers["location"].rsplit("/", 1)[1]
    assert api.get(f"/v6/Organizations/{org_id}").json()["name"] == "Branch office"
    page = client.get(f"/organizations/{org_id}").text
    assert "<td>alice</td>" in page
    assert "Branch office" in client.get("/organizations").text


def test_sessions_are_filtered_and_a_session_is_stopped_and_run_again(
    client: TestClient, ctx: Context, job: dict[str, Any]
) -> None:
    csrf = console_login(client)
    owners = [job["id"], *bulk.copies_of_job(ctx, job["id"], 1)]
    bulk.add_sessions(ctx, owners, 4)
    other = owners[1]
    every = client.get("/sessions").text
    assert every.count('href="/sessions/') == 4
    assert client.get("/sessions?status=Failed").text.count('href="/sessions/') == 0
    mine = client.get(f"/sessions?job={job['id']}").text
    assert mine.count('href="/sessions/') == 2 and f'value="{job["id"]}"' in mine
    refused = client.get("/sessions?status=Lost")
    assert "status &#39;Lost&#39; is not a session status" in refused.text
    started = runs.start_job(ctx, other, "test")
    assert started is not None
    stop = client.post(f"/sessions/{started.id}/stop", data={"csrf": csrf})
    assert stop.status_code == 200 and "Stopped" in stop.text  # after the redirect
    again = client.post(
        f"/sessions/{started.id}/retry", data={"csrf": csrf}, follow_redirects=False
    )
    assert again.status_code == 303 and again.headers["location"] != f"/sessions/{started.id}"
    assert "Queued" in client.get(again.headers["location"]).text


def test_repositories_and_the_audit_trail(
    client: TestClient, ctx: Context, repo: dict[str, Any]
) -> None:
    console_login(client)
    repositories = client.get("/repositories").text
    assert repo["name"] in repositories and "<meter" in repositories
    trail = client.get("/audit").text
    assert "<td>Login</td>" in trail and "console" in trail
    assert "Older events" not in trail


def test_the_audit_trail_pages_back_by_key(client: TestClient, ctx: Context) -> None:
    console_login(client)
    for n in range(2 * AUDIT_SHOWN + 5):
        audit.record(ctx, audit.Entry(audit.AuditAction.LOGIN, f"user{n:03}"))
    seen: list[str] = []
    path: str | None = "/audit"
    costs: list[tuple[int, int]] = []
    for _ in range(5):  # three pages; a listing that does not move on must not loop forever
        if path is None:
            break
        with catalog_work(ctx) as counted:
            answer = client.get(path)
        assert answer.status_code == 200
        costs.append((counted.count, counted.rows_loaded))
        seen += re.findall(r"<td>(user\d{3})</td>", answer.text)
        older = re.search(r'href="(/audit\?before=\d+)"', answer.text)
        path = older.group(1) if older else None
    assert seen == [f"user{n:03}" for n in reversed(range(2 * AUDIT_SHOWN + 5))]
    assert costs[0] == costs[1]  # a deeper page costs what the first does
    for bad in ("x", "\u00b2", "1" * 19, "-1"):
        refused = client.get("/audit", params={"before": bad})
        assert refused.status_code == 400 and "before" in refused.text
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    client.cookies.clear()
    console_login(client, "reader", READER_PASSWORD)
    assert "Audit trail" not in client.get("/").text
    refused = client.get("/audit")
    assert refused.status_code == 403 and "may not read the audit trail" in refused.text
