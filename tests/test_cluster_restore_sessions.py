"""A restore session is answered from the catalog on every server: one stopped through another
server (its row changed, this process's cache of the session's items not told) is refused here,
although this process still holds the session's items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from keepstone.proxy.worker import ProxyWorker
from keepstone.services import restores
from keepstone.services.context import Context
from keepstone.store.tables import RestoreSession
from tests.backup.test_backup_restore import explore
from tests.conftest import Api
from tests.local_org import api, backup_proxy, org_job, organization, run_job

__all__ = ["api", "backup_proxy", "org_job", "organization"]  # fixtures


def test_a_session_stopped_on_another_server_is_refused_here(
    ctx: Context, api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    run_job(api, org_job, backup_proxy)
    session = explore(api, org_job)
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    assert api.get(base).status_code == 200  # this server now holds the session's items
    with ctx.db.write() as s:  # what POST .../Action {"stop"} on the other server writes
        stopped = update(RestoreSession).where(RestoreSession.id == session)
        s.execute(stopped.values(state="Stopped"))
    assert session in restores._browsers  # still cached in this process
    refused = api.get(base)
    assert refused.status_code == 409, refused.text
    assert "stopped" in refused.text
