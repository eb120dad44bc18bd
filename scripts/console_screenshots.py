"""Regenerate the console's screenshots in docs/console/ (shown in docs/console.md).

    uv run --locked python scripts/console_screenshots.py

Starts a real ``keepstone serve`` on a temporary data directory with a small Local
organization, makes a job through the console's own forms, runs it once, restores a message
from it, adds a user and an organization role, and photographs the main pages (the Restore
pages among them) with Debian's chromium (Playwright, ``executable_path``; nothing is
downloaded) at 1280 x 800, and the dashboard at a phone's 390 x 844.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.console_steps import add_local_organization, log_in, start_a_job_form  # noqa: E402
from tests.local_org import Organization  # noqa: E402
from tests.process_helpers import process_env, start_server  # noqa: E402

OUT = ROOT / "docs" / "console"
PASSWORD = "screenshot password"
DEADLINE_MS = 300_000


def _source(root: Path) -> Path:
    org = Organization(root / "acme")
    for user in ("alice", "bob", "carol"):
        org.user(user)
        for n in range(4):
            org.mail(user, "", f"Weekly report {n}")
    org.file("alice", "Documents/plan.txt", b"the plan")
    return org.root


def _shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)


def _tour(page: Page, source: Path) -> None:
    page.goto("/")
    _shoot(page, "login")
    log_in(page, "admin", PASSWORD)
    add_local_organization(page, "Acme", source)
    _shoot(page, "organization")
    start_a_job_form(page, "Nightly mail")
    for day in range(5):  # workday nights, 22:00-06:00
        for hour in (22, 23):
            page.locator(f'#grid input[data-day="{day}"][data-hour="{hour}"]').click()
        for hour in range(6):
            page.locator(f'#grid input[data-day="{day + 1}"][data-hour="{hour}"]').click()
    page.locator("#window-summary", has_text="22:00").wait_for()
    page.get_by_role("button", name="Create job").click()
    page.get_by_role("heading", name="Job Nightly mail").wait_for()
    page.locator("#window").scroll_into_view_if_needed()
    _shoot(page, "job")
    page.get_by_role("button", name="Start now").click()
    page.locator("#session-status", has_text="Success").wait_for()
    _shoot(page, "session")
    page.goto("/")
    _shoot(page, "dashboard")
    page.goto("/jobs")
    _shoot(page, "jobs")
    page.goto("/sessions")
    _shoot(page, "sessions")
    _restore_tour(page)
    _users_and_roles(page)


def _restore_tour(page: Page) -> None:
    """The Restore pages: points by day, a mailbox's folder, a message, a put-back's progress."""
    page.goto("/restore")
    _shoot(page, "restore-points")
    page.get_by_role("button", name="Open").first.click()
    page.get_by_role("link", name="alice", exact=True).click()
    page.get_by_role("link", name="Inbox", exact=True).click()
    page.get_by_label("Select Weekly report 1").check()
    _shoot(page, "restore-mailbox")
    page.get_by_role("link", name="Weekly report 2").click()
    _shoot(page, "restore-message")
    page.get_by_role("link", name="Back to the mailbox").click()
    page.get_by_role("link", name="Inbox", exact=True).click()
    page.get_by_label("Select Weekly report 1").check()
    page.get_by_label("Elsewhere:").check()
    page.get_by_label("Target folder").fill("Restored")
    page.get_by_role("button", name="Restore", exact=True).click()
    page.locator("#restore-state", has_text="Done").wait_for()
    _shoot(page, "restore-progress")


def _users_and_roles(page: Page) -> None:
    """A restore operator added on the users page, then given Acme's help desk role."""
    page.goto("/organizations/new")
    page.get_by_label("Microsoft 365").check()
    page.locator("#tenant").scroll_into_view_if_needed()
    _shoot(page, "organization-m365")
    page.goto("/users")
    page.get_by_label("User name").fill("olivia")
    page.get_by_label("Password (at least 8 characters)").fill("olivia's password")
    page.get_by_label("Global role", exact=True).select_option("None")
    page.get_by_role("button", name="Add user").click()
    page.get_by_role("button", name="New role").click()
    page.get_by_label("Name", exact=True).fill("Help desk")
    page.get_by_label("Description").fill("restores mail for the help desk's callers")
    page.get_by_label("olivia").check()
    page.get_by_label("The selected users").check()
    page.get_by_label("Select alice").check()
    page.get_by_label("Select bob").check()
    page.get_by_role("button", name="Create role").click()
    page.get_by_role("heading", name="Role Help desk").wait_for()
    _shoot(page, "role")
    page.goto("/users")
    _shoot(page, "users")


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keepstone-screenshots-") as work:
        folder = Path(work)
        env = process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD)
        server = start_server(folder / "logs", folder / "data", env=env, ready_timeout=300)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(
                    executable_path=chromium, headless=True, args=["--no-sandbox"]
                )
                desktop = browser.new_context(
                    base_url=server.base_url, viewport={"width": 1280, "height": 800}
                )
                desktop.set_default_timeout(DEADLINE_MS)
                _tour(desktop.new_page(), _source(folder))
                phone = browser.new_context(
                    base_url=server.base_url,
                    viewport={"width": 390, "height": 844},
                    device_scale_factor=1,
                    storage_state=desktop.storage_state(),
                )
                page = phone.new_page()
                page.goto("/")
                _shoot(page, "dashboard-phone")
                browser.close()
        finally:
            server.stop()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
