"""End to end through the API when Graph is unkind: Outlook and SharePoint throttling with injected
500/503/504 and connection resets (the run completes, every item exactly once, no request before
its Retry-After: the fake counts premature ones), a forced delta reset (410) on every folder and
the drive, a mailbox deleted between runs, and the application's secret revoked after create."""

from __future__ import annotations

from datetime import timedelta

from keepstone.clock import SystemClock
from tests.graph.fake_client import advance
from tests.graph.org_fixtures import SECRET, _org_fake, _org_server, org_env, sqlite_text
from tests.graph.test_e2e_backup import E2E, Point, change_everything, e2e
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.sharepoint import ResourceUnitLimits
from tests.graph_fake.throttle import Limits

__all__ = ["_org_fake", "_org_server", "e2e", "org_env"]


def assert_saved_is(e2e: E2E, point: Point) -> None:
    """The point as saved: every message and file exactly once, byte for byte."""
    session = e2e.explore(point)
    assert sorted(e2e.saved(session, "Mailboxes", "Items").values()) == point.mime
    assert sorted(e2e.saved(session, "OneDrives", "Documents").values()) == sorted(
        point.files.values()
    )


def test_throttling_and_faults_lose_nothing_and_never_retry_early(e2e: E2E) -> None:
    state = e2e.tenant.fake.state
    # Real time on both sides: the client waits out Retry-After on its own clock. A drive's
    # first run costs 6 RU (drive, delta without token, 3 downloads): over 3 RU in any 3 s.
    state.clock = SystemClock()
    state.throttle.limits = Limits(requests=12, window=timedelta(seconds=2))
    state.resource_units.limits = ResourceUnitLimits(per_minute=3, minute=timedelta(seconds=3))
    faults = state.faults
    rules = [
        faults.add(FaultRule(r"/\$value$", 503, every=3, retry_after=1)),
        faults.add(FaultRule(r"/messages/delta$", 504, every=4)),
        faults.add(FaultRule(r"/mailFolders$", 500, every=3)),
        faults.add(FaultRule(r"/_download/", "reset", every=2, limit=2)),
    ]
    first = e2e.run()
    assert first["status"] == "Success", e2e.log(first)
    change_everything(e2e.tenant)
    second = e2e.run()
    assert second["status"] == "Success", e2e.log(second)
    assert all(rule.fired > 0 for rule in rules), [(r.pattern, r.fired) for r in rules]
    assert state.throttle.refused > 0 and state.resource_units.refused > 0
    assert state.throttle.premature == 0
    assert state.resource_units.premature == 0
    assert faults.premature == []
    state.throttle.limits = Limits(enabled=False)
    state.resource_units.limits = ResourceUnitLimits(enabled=False)
    faults.rules.clear()
    for point in e2e.points:
        assert_saved_is(e2e, point)


def test_a_forced_delta_reset_rereads_without_duplicates(e2e: E2E) -> None:
    assert e2e.run()["status"] == "Success"
    change_everything(e2e.tenant)
    with e2e.tenant.fake.state.lock:
        adele = e2e.tenant.mailboxes["adele"]
        for folder_id in list(adele.folders):
            adele.invalidate_delta(folder_id)
        e2e.tenant.drive.invalidate_delta()
    after = e2e.run()
    assert after["status"] == "Success", e2e.log(after)
    assert_saved_is(e2e, e2e.points[-1])


def test_a_mailbox_deleted_between_runs_is_a_warning(e2e: E2E) -> None:
    assert e2e.run()["status"] == "Success"
    state = e2e.tenant.fake.state
    with state.lock:
        del state.mailboxes[e2e.tenant.users["bob"].id]
    after = e2e.run()
    assert after["status"] == "Warning", e2e.log(after)
    assert any("bob" in line for line in e2e.log(after))
    assert_saved_is(e2e, e2e.points[-1])  # adele's mail and files are whole


def test_a_secret_revoked_after_create_fails_the_run_cleanly(e2e: E2E) -> None:
    assert e2e.run()["status"] == "Success"
    with e2e.tenant.fake.state.lock:
        e2e.tenant.app.secrets.clear()
    advance(e2e.tenant.fake, 3600)  # any token the server still holds has expired
    after = e2e.run()
    said = " ".join(e2e.log(after))
    # The run fails (and the job's retry policy queues it again): no item, no crash.
    assert after["status"] in ("Failed", "Queued"), said
    assert "AADSTS7000215" in said, said
    assert SECRET not in said
    assert SECRET not in sqlite_text(e2e.env.data_dir)
