"""End to end: back up a real mailbox with the IMAP connector, change it, back it up again, then
wipe it and put each restore point back: every message byte for byte, every flag and date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.imap.conftest import ImapUser, new_user
from tests.imap.test_restore_api import explore_at, mailbox, organization
from tests.imap.test_restore_target import delete_everything, seed_by_name, seeded, snapshot
from tests.imap_server import DovecotServer
from tests.local_org import backup_proxy, run_job

__all__ = ["backup_proxy"]  # the fixture, for this module's tests


def change(user: ImapUser) -> None:
    """New, re-flagged, moved and expunged messages, and a new folder."""
    user.server.seed(user.name, "INBOX", seeded(3, start=300))
    seed_by_name(user, ("Neu", "Ordner"), seeded(2, start=400))
    with user.server.client(user.name) as client:
        client.select_folder("INBOX")
        uids = sorted(client.search("ALL"))
        client.add_flags(uids[:3], [b"\\Flagged", b"$Reviewed"])
        client.remove_flags(uids[3:5], [b"\\Seen"])
        client.move(uids[5:7], "Sent")
        client.delete_messages(uids[7:9])
        client.expunge()


def test_each_restore_point_comes_back_whole(
    api: Api,
    dovecot: DovecotServer,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    alice = new_user(dovecot)
    dovecot.seed(alice.name, "INBOX", seeded(12))
    dovecot.seed(alice.name, "Sent", seeded(3, start=100))
    seed_by_name(alice, ("Projekte", "Données été"), seeded(4, start=200))
    org = organization(api, dovecot, alice)
    job = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {"name": "mail", "repositoryId": repo["id"], "schedulePolicy": {"type": "ManualOnly"}},
    ).json()
    states = []
    for step in range(2):
        if step:
            change(alice)
        clock.advance(timedelta(minutes=5))
        session = run_job(api, job, backup_proxy)
        assert session["status"] == "Success", session
        states.append((clock.now(), snapshot(alice)))
    assert states[0][1] != states[1][1]
    for when, state in states:
        delete_everything(alice)
        explored = explore_at(api, org, when)
        base = f"/v2/RestoreSessions/{explored}/Organization/Mailboxes"
        restored = api.post(f"{base}/{mailbox(api, explored, alice)}/restore", {})
        assert restored.status_code == 200, restored.text
        assert restored.json()["failedItemsCount"] == 0
        assert snapshot(alice) == state
