"""Steps through the console in a browser (Playwright), shared by the browser tests and
scripts/console_screenshots.py."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page


def log_in(page: Page, user: str, password: str, landing: str = "Dashboard") -> None:
    """From the login page the browser was sent to, to the dashboard (a restore operator's
    landing page is Restore)."""
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name=landing, exact=True).wait_for()


def add_local_organization(page: Page, name: str, root: Path) -> None:
    """Through the Organizations page, to the new organization's page."""
    page.get_by_role("link", name="Organizations").click()
    page.get_by_role("link", name="Add an organization").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Directory on the server").fill(str(root))
    page.get_by_role("button", name="Add organization").click()
    page.get_by_role("heading", name=f"Organization {name}").wait_for()


def start_a_job_form(page: Page, name: str) -> None:
    """From an organization's page: a new job's form with its name, the default repository,
    and a backup window allowing no hour yet."""
    page.get_by_role("link", name="New job for this organization").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Repository").select_option(label="Default Backup Repository")
    page.get_by_label("Run only inside the window").check()
    page.get_by_role("button", name="Allow no hour").click()
