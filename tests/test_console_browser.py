"""The web console in a real browser (issue 16 item 4): Playwright driving Debian's chromium
headless (``executable_path``; scripts/test installs the package, nothing is downloaded) against
a real ``keepstone serve`` process. One browser per test worker, one server for this module; the
few flows here are what only a browser shows (painting the grid, live progress, htmx polling);
everything else is tested in-process in tests/test_console.py."""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from keepstone.domain.window_text import DASH, week_hour
from tests.console_steps import add_local_organization, log_in, start_a_job_form
from tests.local_org import Organization
from tests.process_helpers import (
    ServerProcess,
    add_job,
    bearer,
    login,
    process_env,
    run_cli,
    start_server,
)
from tests.process_helpers import (
    add_local_organization as api_add_organization,
)

CHROMIUM = shutil.which("chromium")
PASSWORD = "browser test password"
ZONE = "Europe/Berlin"  # the server's zone: the grid's hours are its, with its offset
DEADLINE_MS = 300_000  # generous: the machine is shared and loaded

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """For this module only: Playwright's sync API runs an event loop in the main thread until
    it stops, and a later test's ``asyncio.run`` would find it running."""
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM or "chromium", headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("console-browser")
    env = process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD, KEEPSTONE_TIMEZONE=ZONE)
    started = start_server(folder / "logs", folder / "data", env=env, ready_timeout=300)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    org = Organization(tmp_path_factory.mktemp("console-org") / "acme")
    for user in ("alice", "bob"):
        org.user(user)
        for n in range(3):
            org.mail(user, "", f"Message {n} for {user}")
    org.file("alice", "Documents/plan.txt", b"the plan")
    return org.root


@pytest.fixture
def page(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(DEADLINE_MS)
    opened = context.new_page()
    opened.goto("/")
    log_in(opened, "admin", PASSWORD)
    yield opened
    context.close()


def _cell(page: Page, day: int, hour: int) -> Locator:
    return page.locator(f'#grid input[data-day="{day}"][data-hour="{hour}"]')


def _drag(page: Page, start: Locator, end: Locator) -> None:
    first, last = start.bounding_box(), end.bounding_box()
    assert first is not None and last is not None
    mouse = page.mouse
    mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] / 2)
    mouse.down()
    mouse.move(last["x"] + last["width"] / 2, last["y"] + last["height"] / 2, steps=12)
    mouse.up()


def test_add_an_organization_paint_a_window_watch_a_backup_forge_a_form_and_log_out(
    page: Page, server: ServerProcess, source: Path
) -> None:
    p = page
    add_local_organization(p, "Acme", source)
    assert p.locator("td", has_text="alice").count() == 1

    start_a_job_form(p, "Nightly")
    for hour in (22, 23):  # Monday to Friday, 22:00-24:00, painted down two columns
        _drag(p, _cell(p, 0, hour), _cell(p, 4, hour))
    _drag(p, _cell(p, 0, 0), _cell(p, 0, 0))  # a click that paints, then the keyboard:
    _cell(p, 0, 0).press("Space")
    for _ in range(5):
        p.keyboard.press("ArrowDown")
    p.keyboard.press("ArrowRight")  # Saturday 01:00
    p.keyboard.press("Space")
    p.keyboard.press("Shift+ArrowRight")  # paints 02:00 alike
    summary = f"Mon{DASH}Fri 22:00{DASH}00:00; Sat 01:00{DASH}03:00"
    expect(p.locator("#window-summary")).to_have_text(summary)
    p.get_by_role("button", name="Create job").click()
    p.get_by_role("heading", name="Job Nightly").wait_for()
    job_id = p.url.rsplit("/", 1)[1]

    expected = [False] * 168
    for day in range(5):
        expected[week_hour(day, 22)] = expected[week_hour(day, 23)] = True
    expected[week_hour(5, 1)] = expected[week_hour(5, 2)] = True
    offset = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).utcoffset()
    assert offset is not None
    with httpx.Client(base_url=server.base_url, timeout=60) as api:
        api.headers.update(bearer(login(api, "admin", PASSWORD)))
        settings = api.get(f"/v6/Jobs/{job_id}").json()["schedulePolicy"]
    assert settings["backupWindowEnabled"] is True
    assert settings["backupWindowSettings"]["backupWindow"] == expected
    assert settings["backupWindowSettings"]["minuteOffset"] == offset.total_seconds() // 60

    p.get_by_role("button", name="Start now").click()
    # the page polls the session until it ends: 6 messages and 1 file, all processed
    p.locator("#session-status", has_text="Success").wait_for()
    assert p.locator("#progress-label").inner_text() == "7 items"
    assert re.search(r"alice", p.locator(".log").inner_text())

    # A forged form changes nothing; a session ended elsewhere sends a polling page to login.
    # (Part of the same test: one server and one browser page for the whole module, whatever
    # worker runs it.)
    p.get_by_role("link", name="Nightly").click()
    p.locator('form[action$="/disable"] input[name=csrf]').evaluate("e => e.value = 'forged'")
    p.get_by_role("button", name="Disable").click()
    p.get_by_text("security token is missing or stale").wait_for()
    p.goto("/")  # the dashboard polls its running sessions
    other = p.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Log out").click()
    other.get_by_role("heading", name="Log in").wait_for()
    p.get_by_role("heading", name="Log in").wait_for()  # sent there by its poll


# ---- Restore ------------------------------------------------------------------------------------

OPERATOR_PASSWORD = "operator browser password"
BIG_MAILBOX = 30_000


@dataclass(frozen=True)
class RestoreWorld:
    root: Path  # the organization the restores write into
    org_id: str
    other_id: str
    messages: dict[str, bytes]  # alice's, by subject


def _maildir(root: Path, user: str, messages: dict[str, bytes]) -> None:
    """Messages in ``user``'s Inbox, written one call each (30,000 take about a second)."""
    folder = root / user / "Mail"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for n, data in enumerate(messages.values()):
        (folder / "cur" / f"17900{n:05d}.M{n}P1.host:2,S").write_bytes(data)


def _message(n: int, subject: str) -> bytes:
    return (
        f"From: sender{n}@example.test\r\nTo: user@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{n}@restore.example.test>\r\n\r\nBody {n}\r\n"
    ).encode()


def _backed_up(api: httpx.Client, name: str, root: Path, repository_id: str) -> str:
    org_id = api_add_organization(api, name, root)
    job = add_job(api, org_id, f"{name} backup", repository_id)
    assert api.post(f"/v2/Jobs/{job}/Action", json={"start": None}).status_code == 200
    deadline = time.monotonic() + DEADLINE_MS / 1000
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not (runs and runs[0]["status"] == "Success"):
        time.sleep(0.2)
        runs = api.get(f"/v2/Jobs/{job}/JobSessions").json()
    assert runs and runs[0]["status"] == "Success", runs
    return org_id


@pytest.fixture(scope="module")
def restore_world(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> RestoreWorld:
    """Two backed-up Local organizations: "Restore Co" (alice, and "archive" with a 30,000-message
    Inbox, one of them the needle) and "Other Co" (carol); a user "operator" with no global role
    and a Restore role on "Restore Co"."""
    base = tmp_path_factory.mktemp("console-restore")
    root, other = base / "restoreco", base / "otherco"
    mine = {s: _message(n, s) for n, s in enumerate(("Quarterly plan", "Code review", "Lunch"))}
    _maildir(root, "alice", mine)
    archive = {
        f"Archived message {n:05d}": _message(n, f"Archived message {n:05d}")
        for n in range(BIG_MAILBOX - 1)
    }
    archive["Needle in the archive"] = _message(BIG_MAILBOX, "Needle in the archive")
    _maildir(root, "archive", archive)
    _maildir(other, "carol", {"Carol's secret": _message(1, "Carol's secret")})
    with httpx.Client(base_url=server.base_url, timeout=120) as api:
        api.headers.update(bearer(login(api, "admin", PASSWORD)))
        repository = api.get("/v2/BackupRepositories").json()[0]["id"]
        org_id = _backed_up(api, "Restore Co", root, repository)
        other_id = _backed_up(api, "Other Co", other, repository)
        assert server.data_dir is not None
        added = run_cli(
            "admin",
            "user",
            "add",
            "operator",
            "--role",
            "None",
            "--password",
            OPERATOR_PASSWORD,
            "--data-dir",
            str(server.data_dir),
        )
        assert added.returncode == 0, added.stderr
        role = {
            "name": "Restore Co restorers",
            "access": "Restore",
            "operators": [{"type": "User", "user": {"name": "operator"}}],
        }
        created = api.post(f"/v8/Organizations/{org_id}/RbacRoles", json=role)
        assert created.status_code == 201, created.text
    return RestoreWorld(root, org_id, other_id, mine)


def _open_mailbox(p: Page, org_id: str, owner: str) -> None:
    p.goto(f"/restore?organization={org_id}")
    p.get_by_role("button", name="Open").first.click()
    p.get_by_role("link", name=owner, exact=True).click()
    p.get_by_role("link", name="Inbox", exact=True).click()


def test_restore_a_message_to_another_folder_and_download_a_zip(
    page: Page, restore_world: RestoreWorld
) -> None:
    p, world = page, restore_world
    _open_mailbox(p, world.org_id, "alice")
    p.get_by_label("Select Code review").check()
    p.get_by_label("Elsewhere:").check()
    p.get_by_label("Target folder").fill("Restored")
    p.get_by_label("When an item is already there").select_option("skip")
    p.get_by_role("button", name="Restore", exact=True).click()
    # the progress page polls the put-back until it ends
    expect(p.locator("#restore-state")).to_have_text("Done")
    assert p.locator("#restore-message").inner_text() == "Restored 1 items (0 skipped, 0 failed)"
    restored = list((world.root / "alice" / "Mail").glob(".Restored/cur/*"))
    assert [path.read_bytes() for path in restored] == [world.messages["Code review"]]

    p.get_by_role("link", name="Back to the restore session").click()
    p.get_by_role("link", name="alice", exact=True).click()
    p.get_by_role("link", name="Inbox", exact=True).click()
    p.get_by_label("Select Quarterly plan").check()
    p.get_by_label("Select Lunch").check()
    with p.expect_download() as download:
        p.get_by_role("button", name="Download the selected items as a zip").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        got = {name.rsplit("/", 1)[-1]: archive.read(name) for name in archive.namelist()}
    assert got == {
        "Quarterly plan.eml": world.messages["Quarterly plan"],
        "Lunch.eml": world.messages["Lunch"],
    }


def test_a_restore_operator_sees_only_its_organization(
    browser: Browser, server: ServerProcess, restore_world: RestoreWorld
) -> None:
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(DEADLINE_MS)
    p = context.new_page()
    p.goto("/")
    log_in(p, "operator", OPERATOR_PASSWORD, landing="Restore")
    nav = p.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link").all_inner_texts() == ["Restore"]
    organizations = p.get_by_label("Organization").locator("option").all_inner_texts()
    assert organizations == ["any", "Restore Co"]
    assert (
        p.get_by_text("Other Co").count() == 0 and p.get_by_text("Restore Co backup").count() >= 1
    )
    p.goto(f"/restore?organization={restore_world.other_id}")
    p.get_by_text("No restore point.").wait_for()
    assert p.goto("/jobs").status == 403  # type: ignore[union-attr]
    _open_mailbox(p, restore_world.org_id, "alice")
    assert p.get_by_label("Select Code review").count() == 1
    context.close()


def test_a_30000_message_mailbox_is_paged_and_searched_on_the_server(
    page: Page, restore_world: RestoreWorld
) -> None:
    p = page
    loaded: list[int] = []
    p.on("response", lambda r: loaded.append(len(r.body())) if "/owners/" in r.url else None)
    _open_mailbox(p, restore_world.org_id, "archive")
    rows = p.locator("tr.item")
    assert rows.count() == 25 and p.get_by_role("link", name="Next page").count() == 1
    first = rows.first.inner_text()
    p.get_by_role("link", name="Next page").click()
    p.wait_for_url("**page=2**")
    assert rows.count() == 25 and rows.first.inner_text() != first
    p.get_by_label("Subject or sender").fill("needle")
    p.get_by_role("button", name="Search").click()
    p.get_by_role("heading", name="Found (1)").wait_for()
    assert rows.count() == 1 and "Needle in the archive" in rows.first.inner_text()
    # every page the browser loaded is one page of rows, never the 30,000 of the mailbox
    assert loaded and max(loaded) < 64_000, loaded


# ---- accessibility and layout: every main page, at a desktop's size and a phone's ------------

VIEWPORTS: list[ViewportSize] = [{"width": 1280, "height": 800}, {"width": 390, "height": 844}]
# Roles a person operates: each needs an accessible name (a label, aria-label or its text).
OPERATED = {"button", "link", "textbox", "checkbox", "radio", "combobox", "listbox"}
OPERATED |= {"spinbutton", "searchbox", "slider", "switch", "menuitem", "tab"}
LANDMARKS = ("banner", "navigation", "main")
FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]"


def _unnamed_controls(page: Page) -> list[str]:
    """The operated nodes of the page's accessibility tree (Chromium's, through the DevTools
    protocol: the names a screen reader would speak) that have no name."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    unnamed = []
    for node in nodes:
        role = node.get("role", {}).get("value", "")
        if node.get("ignored") or role not in OPERATED:
            continue
        if not str(node.get("name", {}).get("value", "")).strip():
            unnamed.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return unnamed


def _landmarks(page: Page) -> set[str]:
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    return {node.get("role", {}).get("value", "") for node in nodes} & set(LANDMARKS)


def _layout_problems(page: Page, path: str, signed_in: bool) -> list[str]:
    problems = [f"{path}: no name: {n}" for n in _unnamed_controls(page)]
    wanted = set(LANDMARKS) if signed_in else {"banner", "main"}
    problems += [f"{path}: no {m} landmark" for m in sorted(wanted - _landmarks(page))]
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        widest = page.evaluate(
            "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth).map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 3)"
        )
        problems.append(f"{path}: {widths[0]} px wide in a {widths[1]} px window: {widest}")
    positive = page.evaluate(
        "[...document.querySelectorAll('[tabindex]')].filter(e => e.tabIndex > 0).length"
    )
    if positive:
        problems.append(f"{path}: {positive} positive tabindex (breaks the reading order)")
    first = page.evaluate(
        "s => { const e = document.querySelector(s); return [e.className, e.hash]; }", FOCUSABLE
    )
    if first != ["skip", "#main"]:
        problems.append(f"{path}: the first focusable element is {first}, not the skip link")
    elif page.evaluate("document.activeElement === document.body"):
        page.keyboard.press("Tab")  # the first stop is the skip link, and it lands in <main>
        page.keyboard.press("Enter")
        if page.evaluate("document.activeElement.id") != "main":
            problems.append(f"{path}: the skip link does not move the focus to <main>")
    elif not page.evaluate("document.getElementById('main').contains(document.activeElement)"):
        problems.append(f"{path}: the page puts the focus outside <main>")
    return problems


def test_every_main_page_is_named_landmarked_fits_a_phone_and_stays_on_the_server(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    org = Organization(tmp_path / "a11y")
    org.user("carol")
    with httpx.Client(base_url=server.base_url, timeout=60) as api:
        api.headers.update(bearer(login(api, "admin", PASSWORD)))
        body = {"type": "Local", "name": "Layout", "localSettings": {"path": str(org.root)}}
        org_id = api.post("/v6/Organizations", json=body).json()["id"]
        repo_id = api.get("/v6/BackupRepositories").json()[0]["id"]
        job = {"name": "Layout job", "backupType": "EntireOrganization", "repositoryId": repo_id}
        job_id = api.post(f"/v6/Organizations/{org_id}/Jobs", json=job).json()["id"]
        assert api.post(f"/v6/Jobs/{job_id}/start").status_code < 300
        run = api.get(f"/v6/Jobs/{job_id}/JobSessions").json()["results"][0]["id"]
    paths = [
        "/",
        "/organizations",
        "/organizations/new",
        f"/organizations/{org_id}",
        "/jobs",
        f"/jobs/{job_id}",
        f"/jobs/new?organization={org_id}",
        "/sessions",
        f"/sessions/{run}",
        "/restore",
        "/repositories",
        "/users",
        f"/roles/new?organization={org_id}",
        "/audit",
    ]
    host = server.base_url.split("://", 1)[1]
    outside: list[str] = []
    served: list[str] = []
    problems: list[str] = []
    for viewport in VIEWPORTS:
        context = browser.new_context(base_url=server.base_url, viewport=viewport)
        context.set_default_timeout(DEADLINE_MS)

        def guard(route: Any) -> None:
            if route.request.url.split("://", 1)[-1].split("/", 1)[0] == host:
                served.append(route.request.url)
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        try:
            page = context.new_page()
            page.goto("/login")
            size = f"{viewport['width']}x{viewport['height']}"
            problems += [f"{size} {p}" for p in _layout_problems(page, "/login", False)]
            log_in(page, "admin", PASSWORD)
            for path in paths:
                answer = page.goto(path)
                assert answer is not None and answer.status == 200, path
                page.get_by_role("heading", level=1).wait_for()
                problems += [f"{size} {p}" for p in _layout_problems(page, path, True)]
        finally:
            context.close()
    assert problems == [], "\n".join(problems)
    assert outside == []
    assert len(served) > 2 * len(paths)  # the guard saw every page and its assets
