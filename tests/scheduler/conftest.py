"""Fixtures for scheduling tests: the real scheduler and proxy over a real SQLite catalog, with an
injected clock, and a scripted executor in place of an organization connector (the connectors
arrive with the engine; what is tested here is the machinery around any executor)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.clock import ManualClock
from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.executor import Outcome, RunContext
from keepstone.proxy.worker import ProxyWorker
from keepstone.scheduler import Scheduler
from keepstone.services import catalog
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, Api, LongLivedApi, login

Step = Callable[[RunContext, int], None]


@dataclass
class ScriptedExecutor:
    """Does ``steps`` items of work; each step may advance the clock or act (stop, fail).

    ``fail_first`` attempts raise; every step calls ``run.check()`` like a real connector does
    between items, and reports progress.
    """

    clock: ManualClock
    steps: int = 1
    step_time: timedelta = timedelta(0)
    fail_first: int = 0
    on_step: Step | None = None
    attempts: int = 0
    seen: list[tuple[int, int]] = field(default_factory=list)  # (attempt, step)

    def __call__(self, run: RunContext) -> Outcome:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            raise RuntimeError(f"source unreachable (attempt {self.attempts})")
        for step in range(1, self.steps + 1):
            run.check()
            self.clock.advance(self.step_time)
            if self.on_step is not None:
                self.on_step(run, step)
            run.report(progress=step, read_items=step, read_bytes=step * 1024)
            self.seen.append((self.attempts, step))
        return Outcome(SessionStatus.SUCCESS, f"Processed {self.steps} items")


@pytest.fixture
def executor(clock: ManualClock) -> ScriptedExecutor:
    return ScriptedExecutor(clock)


@pytest.fixture
def proxy(ctx: Context, executor: ScriptedExecutor) -> ProxyWorker:
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    return ProxyWorker(ctx, local.id, executor, renew_every=0)


@pytest.fixture
def scheduler(ctx: Context) -> Scheduler:
    return Scheduler(ctx)


def week(open_hours: set[int]) -> list[bool]:
    return [hour in open_hours for hour in range(168)]


def hour_of_week(day: int, hour: int) -> int:
    """Day 0 = Sunday, as the window's 168 booleans count."""
    return day * 24 + hour


def set_policy(api: Api, job: dict[str, Any], **policy: Any) -> dict[str, Any]:
    response = api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": policy})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = api.get(f"/v2/Jobs/{job['id']}").json()
    return body


def sessions(api: Api, job: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    return result


def log_titles(api: Api, session: dict[str, Any]) -> list[str]:
    return [item["title"] for item in api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def api(client: TestClient) -> Api:
    return LongLivedApi(client, login(client, "admin", ADMIN_PASSWORD))
