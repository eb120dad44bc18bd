"""Client scripts written the way monitoring tools are (``tests/clients/``), run unchanged against a
real ``keepstone serve`` over a catalog the real engine made (``tests/contract/em_catalog.py``):
their output and exit status must tell what the catalog holds."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.clients import vb365_sdk
from tests.conftest import ADMIN_PASSWORD
from tests.contract.em_catalog import FAILED_JOB, JOBS, Catalog, made_catalog
from tests.process_helpers import ServerProcess, process_env, start_server

HERE = Path(__file__).resolve().parent
SCRIPT_TIMEOUT = 120.0


@dataclass
class Served:
    server: ServerProcess
    catalog: Catalog


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("clients")
    # made in the last hour, so that a client's "last 24 hours" sees every run
    with made_catalog(root, datetime.now(UTC) - timedelta(hours=1)) as (_, made):
        pass
    server = start_server(
        root / "logs", root / "data", env=process_env(KEEPSTONE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    )
    try:
        yield Served(server, made)
    finally:
        server.stop()


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, env=process_env()
    )


def test_the_nagios_style_check_names_the_failed_job(served: Served) -> None:
    assert shutil.which("jq"), "jq is missing: scripts/test installs it"
    done = _run(
        "bash", str(HERE / "em_monitor.sh"), served.server.base_url, "admin", ADMIN_PASSWORD
    )
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 2, shown
    summary, *details = done.stdout.splitlines()
    assert summary.startswith(f"CRITICAL - last run failed: {FAILED_JOB};"), shown
    assert f"{len(JOBS)} job(s) ran in the last 24 hours" in summary, shown
    assert f"sessions={len(served.catalog.sessions)}" in summary, shown
    for repository in served.catalog.repositories:
        assert re.search(
            rf"{re.escape(repository['name'].replace(' ', '_'))}_used_percent=\d+%", summary
        ), shown
    # one line per session: backup server (Links[0].Name), job, result, creation time
    assert len(details) == len(served.catalog.sessions), shown
    servers = {line.split("\t")[0] for line in details}
    assert len(servers) == 1 and servers != {"null"} and "" not in servers, shown
    results = sorted(line.split("\t")[2] for line in details)
    assert results == sorted(
        "Failed" if not users else "Success" for users in served.catalog.users_per_session.values()
    ), shown
    assert not done.stderr, shown


def test_the_influx_collector_that_makes_its_token_from_the_session_id_reads_everything(
    served: Served,
) -> None:
    assert shutil.which("jq"), "jq is missing: scripts/test installs it"
    done = _run(
        "bash", str(HERE / "em_influx_lines.sh"), served.server.base_url, "admin", ADMIN_PASSWORD
    )
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0 and not done.stderr, shown
    lines = done.stdout.splitlines()
    made = served.catalog
    measurements = [line.split(",", 1)[0].split(" ", 1)[0] for line in lines]
    assert measurements.count("em_repository") == len(made.repositories), shown
    assert measurements.count("em_job_session") == len(made.sessions), shown
    assert measurements.count("em_task_session") == made.task_sessions, shown
    assert "null" not in done.stdout, shown
    [overview] = [line for line in lines if line.startswith("em_overview ")]
    assert "backupServers=1," in overview, shown
    runs = [line for line in lines if line.startswith("em_job_session,")]
    # the job's name with its spaces escaped, the result, a duration and a time in seconds
    failed_job = FAILED_JOB.replace(" ", "\\ ")
    assert any(
        line.startswith(f"em_job_session,job={failed_job},result=Failed ") for line in runs
    ), shown
    tags = r"em_job_session,(?:[^ \\]|\\ )+"
    assert all(re.fullmatch(rf"{tags} duration=\d+ \d{{10}}", line) for line in runs), shown


def test_the_prometheus_style_collector_reads_everything(served: Served) -> None:
    done = _run(
        sys.executable,
        str(HERE / "em_collector.py"),
        served.server.base_url,
        "admin",
        ADMIN_PASSWORD,
    )
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, shown
    metrics = dict(_metrics(done.stdout))
    made = served.catalog
    assert metrics['veeam_em_objects{list="/api/jobs"}'] == len(made.jobs), shown
    assert metrics['veeam_em_objects{list="/api/backupSessions"}'] == len(made.sessions), shown
    assert metrics['veeam_em_objects{list="/api/repositories"}'] == len(made.repositories), shown
    assert metrics['veeam_em_objects{list="/api/restorePoints"}'] == len(made.restore_points)
    assert metrics['veeam_em_objects{list="/api/backupTaskSessions"}'] == made.task_sessions
    results = [v for k, v in metrics.items() if k.startswith("veeam_em_backup_session_result{")]
    assert sorted(results) == sorted(
        2.0 if not users else 0.0 for users in made.users_per_session.values()
    ), shown
    failed = [
        k for k, v in metrics.items() if k.startswith("veeam_em_backup_session_result{") and v == 2
    ]
    assert [f'job="{FAILED_JOB}"' in k for k in failed] == [True], shown
    assert all('server=""' not in k for k in metrics), shown
    for repository in made.repositories:
        key = f'veeam_em_repository_capacity_bytes{{repository="{repository["name"]}"}}'
        assert metrics[key] > 0, shown
    assert metrics['veeam_em_sessions_last_24h{result="Failed"}'] == 1, shown
    assert metrics['veeam_em_sessions_last_24h{result="Success"}'] == len(made.sessions) - 1
    assert metrics["veeam_em_collector_entities_read"] >= len(made.jobs) + len(made.sessions)


def test_the_vb365_check_reads_jobs_sessions_and_the_license(served: Served) -> None:
    assert shutil.which("jq"), "jq is missing: scripts/test installs it"
    done = _run(
        "bash", str(HERE / "vb365_check.sh"), served.server.base_url, "admin", ADMIN_PASSWORD
    )
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    # VB365 calls a run stopped before it started "Stopped" (EM calls it Failed): a warning.
    assert done.returncode == 1, shown
    assert done.stdout.startswith(f"WARNING - last session warned or stopped: {FAILED_JOB};"), shown
    assert f"jobs={len(JOBS)} sessions={len(served.catalog.sessions)}" in done.stdout, shown
    licensed = {user for users in served.catalog.users_per_session.values() for user in users}
    assert f"licensed_users={len(licensed)}" in done.stdout, shown
    # a perpetual licence has no expiry (the spec lets licenseExpires be null)
    assert re.search(r"license Valid until (never|\d{4}-\d\d-\d\dT)", done.stdout), shown
    assert not done.stderr, shown


# Reads a monitor makes, which veeam-365 must turn into its models (in v6, v7 and v8, and the
# sync state from v7 and the health report from v8, where the vendor added them), by the names
# of the SDK's modules.
MUST_PARSE = {
    version: (
        "service_instance_get",
        "license_get",
        "organization_get",
        "organization_get_by_id",
        "organization_licensing_information_get_license_count",
        "licensed_user_get",
        "backup_repository_get_repositories",
        "backup_repository_get_repositories_by_id",
        "proxy_get_proxies",
        "proxy_get_proxy",
        "job_get",
        "job_get_by_id",
        "job_get_selected_items",
        "job_session_get",
        "job_session_get_by_id",
        "job_session_log_get_batch_by_session_id",
        "restore_point_get_restore_point",
        "restore_session_get_page",
        *(("organization_sync_get_state",) if version != "v6" else ()),
        *(("health_get",) if version == "v8" else ()),
    )
    for version in vb365_sdk.VERSIONS
}


def test_the_veeam_365_sdk_reads_every_answer_it_is_given(served: Served) -> None:
    token = httpx.post(
        f"{served.server.base_url}/v8/Token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
    ).json()["access_token"]
    reads = list(vb365_sdk.read_everything(served.server.base_url, token))
    unread = [r for r in reads if r.outcome not in ("parsed", "not served", "refused")]
    assert not unread, "\n".join(f"{r.version} {r.url}: {r.outcome}" for r in unread)
    parsed = {(r.version, r.operation) for r in reads if r.outcome == "parsed"}
    missing = [
        (v, name) for v, names in MUST_PARSE.items() for name in names if (v, name) not in parsed
    ]
    assert not missing, missing


def _metrics(text: str) -> Iterator[tuple[str, float]]:
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        yield name, float(value)
