"""A user of a Local organization who can write only in ``<root>/<user>`` must not make the
server read or write anything outside the root: links at every level, a linked user directory,
links to the server's own secrets, and directories swapped for links while a backup or a
put-back runs. Real files, real backups through the proxy, real restores through the API."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from tests.backup.test_backup_restore import everything_in, explore
from tests.conftest import Api
from tests.local_org import Organization, message, run_job

CANARY = b"CANARY: outside the organization, never to be read"
SWAPS = 20_000  # a racing swapper gives up after this many rounds, if not stopped before


def run_later(
    api: Api, job: dict[str, Any], proxy: ProxyWorker, clock: ManualClock
) -> dict[str, Any]:
    """Another run, a little later (sessions are listed by time: the newest first)."""
    clock.advance(timedelta(minutes=10))
    return run_job(api, job, proxy)


def tree_state(top: Path) -> dict[str, tuple[str, bytes, int]]:
    """Everything under ``top``, byte for byte, links not followed: (kind, content, mode)."""
    found: dict[str, tuple[str, bytes, int]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            relative = str(path.relative_to(top))
            if path.is_symlink():
                found[relative] = ("link", os.fsencode(os.readlink(path)), st.st_mode)
            elif path.is_dir():
                found[relative] = ("dir", b"", st.st_mode)
            else:
                found[relative] = ("file", path.read_bytes(), st.st_mode)
    return found


def outside_copy(organization: Organization, target: str) -> Path:
    """A directory outside the root shaped like ``target`` (so a restore that followed a link
    would write into it), every file replaced by a canary."""
    outside = organization.root.parent / "outside" / target.replace("/", "_")
    shutil.copytree(organization.root / target, outside)
    for path in outside.rglob("*"):
        if path.is_file():
            path.write_bytes(CANARY + b" " + path.name.encode())
    (outside / "canary.txt").write_bytes(CANARY)
    if (outside / "cur").is_dir():  # a mail folder: a canary message too
        (outside / "cur" / "1.M1P1.canary:2,S").write_bytes(message(99, "canary", CANARY.decode()))
    return outside


def swap_for_link(path: Path, outside: Path) -> None:
    path.rename(path.with_name(path.name + ".real"))
    path.symlink_to(outside, target_is_directory=True)


def holds_no_canary(contents: dict[str, bytes]) -> bool:
    return not any(CANARY in data for data in contents.values())


def warnings_of(api: Api, session: dict[str, Any]) -> list[str]:
    """The session's per-user warnings (its closing summary left out)."""
    items = api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()
    return [i["title"] for i in items if i["title"].startswith("[Warning] User ")]


def summary_of(api: Api, session: dict[str, Any], user: str) -> str:
    """The user's closing log line: what was read and what was carried over."""
    items = api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()
    title: str = next(i["title"] for i in items if i["title"].startswith(f"[Success] User {user}:"))
    return title.removeprefix(f"[Success] User {user}: ")


def owner_id(api: Api, session: str, collection: str, name: str) -> str:
    owners = api.rows(f"/v2/RestoreSessions/{session}/Organization/{collection}")
    found: str = next(o["id"] for o in owners if o["name"] == name)
    return found


def put_back_everything(api: Api, session: str, user: str, policy: str) -> list[Any]:
    """Put back the user's mailbox and OneDrive; the two responses."""
    base = f"/v2/RestoreSessions/{session}/Organization"
    return [
        api.post(
            f"{base}/{collection}/{owner_id(api, session, collection, user)}/restore",
            {"collisionPolicy": policy},
        )
        for collection in ("Mailboxes", "OneDrives")
    ]


LINKED = ["alice/OneDrive", "alice/Mail", "alice/Mail/cur", "alice/Mail/.Sent"]


@pytest.mark.parametrize("target", LINKED)
def test_a_directory_swapped_for_a_link_is_neither_read_nor_written(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
    target: str,
) -> None:
    first = run_job(api, org_job, backup_proxy)
    assert first["status"] == "Success"
    outside = outside_copy(organization, target)
    swap_for_link(organization.root / target, outside)
    before = tree_state(outside.parent)

    second = run_later(api, org_job, backup_proxy, clock)
    assert second["status"] == "Warning", api.get(f"/v2/JobSessions/{second['id']}/LogItems").json()
    warnings = warnings_of(api, second)
    assert any(
        w.startswith("[Warning] User alice: cannot be read") and "symbolic link" in w
        for w in warnings
    ), warnings
    saved = everything_in(api, explore(api, org_job))
    assert holds_no_canary(saved)
    assert "bob/OneDrive/notes.md" in saved  # everyone else is in the restore point
    assert any(key.startswith("alice/") for key in saved)  # and the rest of alice

    # Put everything of the first restore point back, overwriting: nothing lands outside.
    older = min(api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json(), key=_time)
    session = explore(api, org_job, older["backupTime"])
    answers = put_back_everything(api, session, "alice", "overwrite")
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    assert sum(a.json()["failedItemsCount"] for a in answers) >= 1
    assert tree_state(outside.parent) == before
    events = api.get(f"/v6/RestoreSessions/{session}/Events").json()["results"]
    assert any("symbolic link" in str(event) for event in events), events


def _time(point: dict[str, Any]) -> str:
    stamp: str = point["backupTime"]
    return stamp


def test_a_single_item_put_back_through_a_link_is_a_400_naming_the_path(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    run_job(api, org_job, backup_proxy)
    outside = outside_copy(organization, "alice/OneDrive/Documents")
    swap_for_link(organization.root / "alice/OneDrive/Documents", outside)
    before = tree_state(outside)
    session = explore(api, org_job)
    drive = owner_id(api, session, "OneDrives", "alice")
    base = f"/v2/RestoreSessions/{session}/Organization/OneDrives/{drive}/Documents"
    plan = next(
        d for d in api.get(f"{base}?limit=100").json()["results"] if d["name"] == "plan.txt"
    )
    answer = api.post(f"{base}/{plan['id']}/restore", {"collisionPolicy": "overwrite"})
    assert answer.status_code == 400, answer.text
    assert "alice/OneDrive/Documents is a symbolic link" in answer.json()["message"]
    assert tree_state(outside) == before


def test_a_user_directory_that_is_a_link_is_not_a_user(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    outside = outside_copy(organization, "bob")
    (organization.root / "mallory").symlink_to(outside, target_is_directory=True)
    before = tree_state(outside)
    org = org_job["organization"]
    users = api.get(f"/v2/Organizations/{org['id']}/Users").json()
    assert [u["name"] for u in users] == ["alice", "bob"]

    session = run_job(api, org_job, backup_proxy)
    assert session["status"] == "Warning"
    assert any("mallory" in w and "symbolic link" in w for w in warnings_of(api, session))
    saved = everything_in(api, explore(api, org_job))
    assert holds_no_canary(saved) and not any(key.startswith("mallory/") for key in saved)

    restore_session = explore(api, org_job)
    bob = owner_id(api, restore_session, "OneDrives", "bob")
    answer = api.post(
        f"/v2/RestoreSessions/{restore_session}/Organization/OneDrives/{bob}/restoreTo",
        {"userName": "mallory"},
    )
    assert answer.status_code == 400 and "mallory" in answer.json()["message"]
    assert tree_state(outside) == before


def test_links_to_the_servers_secrets_anywhere_in_the_tree_are_not_backed_up(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    data_dir: Path,
    clock: ManualClock,
) -> None:
    run_job(api, org_job, backup_proxy)  # an encrypted repository would write its secret too
    secret_files = [data_dir / "keepstone.db", *sorted((data_dir / "secrets").glob("*"))]
    secret_files = [path for path in secret_files if path.is_file()]
    (data_dir / "secrets").mkdir(exist_ok=True)
    planted = data_dir / "secrets" / "repository-planted"
    planted.write_bytes(CANARY + b" secret password")
    secret_files.append(planted)
    places = [
        "alice/OneDrive",
        "alice/OneDrive/Documents",
        "alice/Mail/cur",
        "alice/Mail/new",
        "alice/Mail/.Sent/cur",
    ]
    for n, place in enumerate(places):
        for m, secret in enumerate(secret_files):
            name = f"17{n}{m}.M1P1.secret:2,S" if "Mail" in place else f"secret-{m}"
            (organization.root / place / name).symlink_to(secret)
    (organization.root / "alice" / "secrets").symlink_to(data_dir / "secrets")
    session = run_later(api, org_job, backup_proxy, clock)
    assert session["status"] == "Warning"
    saved = everything_in(api, explore(api, org_job))
    secrets = [path.read_bytes() for path in secret_files]
    assert not any(data == secret for data in saved.values() for secret in secrets)
    assert holds_no_canary(saved)
    warnings = warnings_of(api, session)
    assert len(warnings) == len(places) * len(secret_files), "\n".join(warnings)


# ----- races: a directory swapped for a link and back while the server works -----


class Swapper:
    """Keeps swapping directories for links to outside and back, until stopped or SWAPS."""

    def __init__(self, pairs: list[tuple[Path, Path]]) -> None:
        self.pairs = pairs
        self.swaps = 0
        self.moved_aside = 0
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.done.is_set() and self.swaps < SWAPS:
                for path, outside in self.pairs:
                    self._flip(path, outside)
                self.swaps += 1
        except BaseException as error:  # handed to the test in __exit__
            self.error = error

    def _flip(self, path: Path, outside: Path) -> None:
        """Real directory -> link to outside, or back: each state lasts until the next flip.
        A put-back may make the directory anew in a gap: that one is moved aside."""
        real = path.with_name(path.name + ".real")
        if path.is_symlink():
            path.unlink()
            self._place(path, lambda: real.rename(path))
        else:
            path.rename(real)
            self._place(path, lambda: path.symlink_to(outside, target_is_directory=True))

    def _place(self, path: Path, make: Callable[[], object]) -> None:
        for _ in range(100):
            try:
                make()
                return
            except OSError:  # EEXIST or ENOTEMPTY: a restore made the directory in the gap
                self.moved_aside += 1
                path.rename(path.with_name(f"{path.name}.made-{self.moved_aside}"))
        raise AssertionError(f"{path} kept coming back")

    def __enter__(self) -> Swapper:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()
        if self.error is not None:
            raise self.error
        for path, outside in self.pairs:
            if path.is_symlink():
                self._flip(path, outside)


def many_items(organization: Organization) -> None:
    for n in range(150):
        organization.file("alice", f"Documents/many/file-{n:03d}.txt", f"file {n}\n".encode())
        organization.mail("alice", ".Sent", f"sent {n}")


def racing_pairs(organization: Organization, *targets: str) -> Iterator[tuple[Path, Path]]:
    for target in targets:
        yield organization.root / target, outside_copy(organization, target)


def test_a_put_back_racing_a_swapper_writes_nothing_outside(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    many_items(organization)
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    pairs = list(racing_pairs(organization, "alice/OneDrive/Documents", "alice/Mail/.Sent"))
    before = tree_state(organization.root.parent / "outside")
    session = explore(api, org_job)
    with Swapper(pairs) as swapper:
        answers = put_back_everything(api, session, "alice", "overwrite")
    assert swapper.swaps > 0
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    assert tree_state(organization.root.parent / "outside") == before


def test_a_backup_racing_a_swapper_reads_nothing_outside(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    many_items(organization)
    pairs = list(racing_pairs(organization, "alice/OneDrive", "alice/Mail/cur", "alice/Mail/.Sent"))
    with Swapper(pairs) as swapper:
        session = run_job(api, org_job, backup_proxy)
    assert swapper.swaps > 0
    assert session["status"] in ("Success", "Warning")
    assert holds_no_canary(everything_in(api, explore(api, org_job)))


def test_the_outside_helpers_see_a_change(tmp_path: Path) -> None:
    """The byte-for-byte comparison the tests above rely on notices one written file."""
    (tmp_path / "d").mkdir()
    before = tree_state(tmp_path)
    (tmp_path / "d" / "x").write_bytes(b"x")
    assert tree_state(tmp_path) != before
