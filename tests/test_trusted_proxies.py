"""``keepstone serve --trusted-proxy`` (and ``$KEEPSTONE_TRUSTED_PROXIES``) as a real process:
``X-Forwarded-For`` names the client only when the peer is a configured proxy, so the login guard
keys on the real client behind a reverse proxy and on the peer otherwise. (That the guard keys on
that address is proven, on a manual clock, in tests/api/test_login_guard.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.process_helpers import READY_TIMEOUT, process_env, run_cli, start_server

ADMIN_PASSWORD = "admin password 1"


def attempt(client: httpx.Client, password: str, forwarded_for: str) -> int:
    response = client.post(
        "/v2/Token",
        data={"grant_type": "password", "username": "admin", "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


def login_addresses(data_dir: Path) -> list[str]:
    """The address column of the audit trail's login events (the guard's key), oldest first."""
    with sqlite3.connect(data_dir / "keepstone.db") as db:
        rows = db.execute("SELECT address FROM audit_events WHERE action = 'Login' ORDER BY id")
        return [row[0] for row in rows]


def test_forwarded_for_is_believed_only_from_configured_proxies(tmp_path: Path) -> None:
    env = process_env(KEEPSTONE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    trusted_env = env | {"KEEPSTONE_TRUSTED_PROXIES": "10.9.0.0/16, 127.0.0.0/8"}
    servers = {  # started together, then awaited: three first starts cost about one
        "plain": start_server(tmp_path / "plain", tmp_path / "plain", env=env, wait=False),
        "flag": start_server(
            tmp_path / "flag",
            tmp_path / "flag",
            "--trusted-proxy",
            "127.0.0.1",
            env=env,
            wait=False,
        ),
        "env": start_server(tmp_path / "env", tmp_path / "env", env=trusted_env, wait=False),
    }
    try:
        for server in servers.values():
            server.wait_ready(READY_TIMEOUT)
        for server in servers.values():
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                assert attempt(client, "a wrong guess", "198.51.100.66, 203.0.113.5") == 400
                assert attempt(client, ADMIN_PASSWORD, "192.0.2.1") == 200
    finally:
        for server in servers.values():
            server.stop()
    assert login_addresses(tmp_path / "plain") == ["127.0.0.1", "127.0.0.1"]
    for name in ("flag", "env"):  # the right-most address the trusted proxy did not add itself
        assert login_addresses(tmp_path / name) == ["203.0.113.5", "192.0.2.1"], name
    listing = run_cli("admin", "audit", "--data-dir", str(tmp_path / "flag"))
    assert "203.0.113.5" in listing.stdout and "192.0.2.1" in listing.stdout


def test_a_malformed_trusted_proxy_is_refused(tmp_path: Path) -> None:
    result = run_cli(
        "serve", "--trusted-proxy", "not-an-address", "--data-dir", str(tmp_path / "data")
    )
    assert result.returncode == 2
    assert "not-an-address" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
