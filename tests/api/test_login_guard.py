"""One login guard for both dialects: ``POST /vN/Token`` and ``POST /api/sessionMngr/`` count
attempts per (user name, address) and per user name, before hashing; a success clears only its
own key; delays grow, nobody is locked out; Argon2 work is capped; ``X-Forwarded-For`` is read
only from trusted proxies. Each client below is a TestClient with its own peer address."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from keepstone.api.app import create_app
from keepstone.api.client_address import parse_networks
from keepstone.api.em.xml import NS as EM_NAMESPACE
from keepstone.clock import ManualClock
from keepstone.services import auth
from keepstone.services.context import Context
from keepstone.services.login_guard import PAIR_FREE, USER_FREE, USER_MAX_DELAY, LoginGuard
from keepstone.store.tables import AuditEvent
from tests.conftest import ADMIN_PASSWORD, BASE_URL, READER_PASSWORD
from tests.em.conftest import basic

ATTACKER = "198.51.100.66"


def client_at(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, base_url=BASE_URL, client=(address, 40000))


def token(client: TestClient, user: str, password: str, **headers: str) -> httpx.Response:
    return client.post(
        "/v2/Token",
        data={"grant_type": "password", "username": user, "password": password},
        headers=headers,
    )


def em_logon(client: TestClient, user: str, password: str) -> httpx.Response:
    return client.post("/api/sessionMngr/?v=latest", headers=basic(user, password))


def test_em_logon_is_throttled_after_wrong_passwords(ctx: Context) -> None:
    client = client_at(create_app(ctx), ATTACKER)
    statuses = [em_logon(client, "admin", f"guess {n}").status_code for n in range(15)]
    assert statuses == [401] * PAIR_FREE + [429] * (15 - PAIR_FREE)
    refused = em_logon(client, "admin", ADMIN_PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = etree.fromstring(refused.content)
    assert error.tag == f"{{{EM_NAMESPACE}}}Error" and error.get("StatusCode") == "429"
    assert "retry in" in (error.get("Message") or "")


def test_both_dialects_share_one_count(ctx: Context) -> None:
    client = client_at(create_app(ctx), ATTACKER)
    for n in range(PAIR_FREE):
        assert em_logon(client, "admin", f"guess {n}").status_code == 401
    assert token(client, "admin", ADMIN_PASSWORD).status_code == 429


def test_a_read_only_success_does_not_reset_an_attack_on_admin(
    ctx: Context, clock: ManualClock
) -> None:
    auth.add_user(ctx, "monitor", READER_PASSWORD, auth.Role.READ_ONLY)
    client = client_at(create_app(ctx), ATTACKER)
    for n in range(PAIR_FREE):
        assert token(client, "admin", f"guess {n}").status_code == 400
    assert token(client, "monitor", READER_PASSWORD).status_code == 200
    assert em_logon(client, "monitor", READER_PASSWORD).status_code == 201
    assert token(client, "admin", ADMIN_PASSWORD).status_code == 429
    clock.advance(timedelta(seconds=1))
    assert token(client, "admin", ADMIN_PASSWORD).status_code == 200  # the delay was only 1 s


def test_concurrent_wrong_guesses_are_all_counted(ctx: Context) -> None:
    client = client_at(create_app(ctx), ATTACKER)
    guesses = 12
    start = threading.Barrier(guesses)
    statuses: list[int] = []

    def guess(n: int) -> None:
        start.wait()
        statuses.append(token(client, "admin", f"guess {n}").status_code)

    run_all(guess, guesses)
    # Each attempt is counted before its password is hashed: only the free ones were verified.
    assert sorted(statuses) == [400] * PAIR_FREE + [429] * (guesses - PAIR_FREE)
    assert token(client, "admin", ADMIN_PASSWORD).status_code == 429


def test_another_address_still_logs_in_while_one_is_throttled(ctx: Context) -> None:
    app = create_app(ctx)
    attacker, colleague = client_at(app, ATTACKER), client_at(app, "192.0.2.10")
    for n in range(15):
        token(attacker, "admin", f"guess {n}")
        em_logon(attacker, "admin", f"guess {n}")
    assert token(attacker, "admin", ADMIN_PASSWORD).status_code == 429
    assert token(colleague, "admin", ADMIN_PASSWORD).status_code == 200
    assert em_logon(colleague, "admin", ADMIN_PASSWORD).status_code == 201


def test_a_guess_distributed_over_many_addresses_waits_at_most_a_minute(
    ctx: Context, clock: ManualClock
) -> None:
    app = create_app(ctx)
    for n in range(USER_FREE):
        assert token(client_at(app, f"203.0.113.{n + 1}"), "admin", "guess").status_code == 400
    elsewhere = client_at(app, "192.0.2.10")
    refused = token(elsewhere, "admin", ADMIN_PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    clock.advance(USER_MAX_DELAY)
    assert token(elsewhere, "admin", ADMIN_PASSWORD).status_code == 200


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(ctx: Context) -> None:
    client = client_at(create_app(ctx), "10.0.0.1")
    for n in range(PAIR_FREE):  # a new forged address each time: all one address to the guard
        forged = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
        assert token(client, "admin", "guess", **forged).status_code == 400
    assert (
        token(client, "admin", ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.99"}).status_code
        == 429
    )
    assert login_addresses(ctx) == {"10.0.0.1"}


def test_forwarded_for_from_a_trusted_proxy_names_the_client(ctx: Context) -> None:
    app = create_app(ctx, trusted_proxies=parse_networks(["10.0.0.0/8"]))
    proxy = client_at(app, "10.0.0.1")
    attacker = {"X-Forwarded-For": f"192.0.2.1, {ATTACKER}, 10.0.0.7"}  # right-most untrusted
    for _ in range(PAIR_FREE):
        assert token(proxy, "admin", "guess", **attacker).status_code == 400
    assert token(proxy, "admin", ADMIN_PASSWORD, **attacker).status_code == 429
    # Everyone else behind the same proxy still logs in.
    assert (
        token(proxy, "admin", ADMIN_PASSWORD, **{"X-Forwarded-For": "192.0.2.1"}).status_code == 200
    )
    assert login_addresses(ctx) == {ATTACKER, "192.0.2.1"}


# Real cost: concurrent logins overlap only while a verification takes real time.
@pytest.mark.production_password_hashing
def test_argon2_verifications_are_capped(ctx: Context) -> None:
    app = create_app(ctx)
    guard = LoginGuard(ctx.clock, max_verifications=2)
    app.state.login_guard = guard
    logins = 8
    start = threading.Barrier(logins)
    statuses: list[int] = []

    def log_in(n: int) -> None:
        client = client_at(app, f"192.0.2.{n + 1}")
        start.wait()
        statuses.append(token(client, "admin", ADMIN_PASSWORD).status_code)

    run_all(log_in, logins)
    assert statuses == [200] * logins  # they queued for a slot: none refused, none lost
    assert guard.peak_verifications == 2  # concurrent, yet never more than two at once


def test_a_login_that_finds_no_verification_slot_is_told_to_retry(ctx: Context) -> None:
    app = create_app(ctx)
    guard = LoginGuard(ctx.clock, max_verifications=1, queue_seconds=0)
    app.state.login_guard = guard
    client = client_at(app, "192.0.2.1")
    with guard.verifying():  # the only slot is taken
        busy = token(client, "admin", ADMIN_PASSWORD)
        em_busy = em_logon(client, "admin", ADMIN_PASSWORD)
    assert busy.status_code == em_busy.status_code == 503
    assert busy.headers["retry-after"] == em_busy.headers["retry-after"] == "1"
    assert "busy" in busy.json()["message"]


def run_all(work: Callable[[int], Any], count: int) -> None:
    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()


def login_addresses(ctx: Context) -> set[str | None]:
    with ctx.db.read() as s:
        return set(s.scalars(select(AuditEvent.address).where(AuditEvent.action == "Login")))
