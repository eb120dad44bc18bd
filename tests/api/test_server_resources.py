"""What the JSON dialect says about the server itself: its licence, its proxy's load, the restore
portal settings and the RBAC roles, each with the values Keepstone knows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

from keepstone.proxy.load import LoadMonitor, memory_percent
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog
from keepstone.services.context import Context
from tests.conftest import BASE_URL, Api
from tests.local_org import Organization, api, backup_proxy, org_job, organization, run_job

__all__ = ["api", "backup_proxy", "org_job", "organization"]  # fixtures


def test_the_licence_is_valid_unlimited_and_counts_the_users_backed_up(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker, ctx: Context
) -> None:
    before = api.get("/v8/License").json()
    assert before["usedNumber"] == 0
    run_job(api, org_job, backup_proxy)
    licence = api.get("/v8/License").json()
    assert licence == {
        "licenseID": catalog.installation_id(ctx),
        "email": "",
        "status": "Valid",
        "type": "Community",
        "licensedTo": "Keepstone",
        "totalNumber": 2**31 - 1,
        "usedNumber": 2,  # alice and bob
        "newNumber": 0,
        "supportID": "",
        "licenseExpires": None,
        "gracePeriodExpires": None,
        "package": "",
    }
    v6 = api.get("/v6/License").json()
    assert v6["expirationDate"] is None and "licenseExpires" not in v6
    assert v6["usedNumber"] == 2 and v6["contactPerson"] == ""
    assert api.get("/v5/License").status_code == 404  # the spec has it from v6


def test_v8_proxies_report_the_cpu_and_memory_use_of_their_host(
    api: Api, worker: ProxyWorker
) -> None:
    worker.beat()  # the built-in proxy's heartbeat reports its host's load to its row
    (proxy,) = api.get("/v8/Proxies").json()["results"]
    assert 0.0 <= proxy["cpuUsagePercent"] <= 100.0
    measured = memory_percent()
    assert measured is not None
    # the same host, read a moment apart
    assert abs(proxy["memoryUsagePercent"] - measured) < 10.0
    assert api.get(f"/v8/Proxies/{proxy['id']}").json()["cpuUsagePercent"] is not None
    assert "cpuUsagePercent" not in api.get("/v7/Proxies").json()[0]  # a v8 property


def _proc(folder: Path, busy: int, idle: int, total_kb: int, available_kb: int) -> Path:
    folder.mkdir(exist_ok=True)
    user, system = busy // 2, busy - busy // 2
    (folder / "stat").write_text(f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n")
    (folder / "meminfo").write_text(
        f"MemTotal:       {total_kb} kB\nMemFree:         1 kB\nMemAvailable:   {available_kb} kB\n"
    )
    return folder


def test_cpu_use_is_the_busy_share_between_two_readings(tmp_path: Path) -> None:
    proc = _proc(tmp_path / "proc", busy=1000, idle=9000, total_kb=1000, available_kb=250)
    monitor = LoadMonitor(proc)
    _proc(proc, busy=1300, idle=9700, total_kb=1000, available_kb=250)  # 300 busy of 1000
    monitor.sample()
    assert monitor.current().cpu_percent == 30.0
    assert monitor.current().memory_percent == 75.0
    _proc(proc, busy=1300, idle=9700, total_kb=1000, available_kb=500)  # no tick has passed
    monitor.sample()
    assert monitor.current().cpu_percent == 30.0  # the last figure stands
    assert monitor.current().memory_percent == 50.0


def test_without_proc_the_load_is_unknown(tmp_path: Path) -> None:
    load = LoadMonitor(tmp_path / "nothing").current()
    assert (load.cpu_percent, load.memory_percent) == (None, None)


def test_the_restore_portal_settings_say_it_is_off_and_where_it_would_be(api: Api) -> None:
    assert api.get("/v8/RestorePortalSettings").json() == {
        "applicationId": "00000000-0000-0000-0000-000000000000",
        "msalAuthorityUri": "",
        "isEnabled": False,
        "restorePortalUri": BASE_URL,
    }
    assert "restorePortalUri" not in api.get("/v6/RestorePortalSettings").json()  # v7 on


def _statements(ctx: Context, read: Callable[[], Any]) -> int:
    """How many SQL statements ``read`` runs against the catalog."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = ctx.db._reader
    event.listen(engine, "before_cursor_execute", count)
    try:
        read()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_roles_and_the_licence_cost_the_same_few_statements_for_many_organizations(
    api: Api, ctx: Context, tmp_path: Path
) -> None:
    def add(first: int, last: int) -> None:
        for n in range(first, last):
            root = tmp_path / f"org{n}"
            Organization(root).user("alice")
            created = api.post(
                "/v2/Organizations",
                {"type": "Local", "name": root.name, "localSettings": {"path": str(root)}},
            )
            assert created.status_code == 200, created.text

    def cost() -> int:
        return _statements(ctx, lambda: api.get("/v8/RbacRoles")) + _statements(
            ctx, lambda: api.get("/v8/License")
        )

    add(0, 3)
    few = cost()
    add(3, 12)
    assert cost() == few  # no statement per organization
