"""Scheduler benchmark: 10,000 jobs with mixed policies on a real SQLite catalog.

    uv run python bench/scheduler.py [--jobs 10000] [--due 1000] [--write docs/benchmarks.md]

Measures next-run computations per second (the pure maths), the cost of one scheduler tick with
nothing due, and the dispatch lag when ``--due`` jobs fall due at the same instant, with the real
scheduler thread on the real clock.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update

from common import write_section
from keepstone.clock import SystemClock
from keepstone.domain.policy import DailyType, Period, SchedulePolicy, ScheduleType
from keepstone.domain.schedule import next_run
from keepstone.scheduler import Scheduler
from keepstone.server import bootstrap, open_context
from keepstone.services import catalog
from keepstone.store.codecs import policy_to_record
from keepstone.store.tables import Job, JobSession

BERLIN = ZoneInfo("Europe/Berlin")


def window_pool(rng: random.Random) -> list[tuple[bool, ...]]:
    """Windows as organizations set them: nights, weekends, outside office hours, and a few odd
    ones; many jobs share each (10,000 distinct random windows would be no real deployment)."""
    nights = tuple(hour % 24 >= 20 or hour % 24 < 6 for hour in range(168))
    weekends = tuple(hour < 24 or hour >= 144 for hour in range(168))
    off_hours = tuple(not (24 <= hour < 144 and 8 <= hour % 24 < 18) for hour in range(168))
    odd = [tuple(rng.random() < 0.6 for _ in range(168)) for _ in range(20)]
    return [nights, weekends, off_hours, *odd]


def random_policy(rng: random.Random, windows: list[tuple[bool, ...]]) -> SchedulePolicy:
    kind = rng.choice(
        [
            ScheduleType.DAILY,
            ScheduleType.DAILY,
            ScheduleType.PERIODICALLY,
            ScheduleType.MANUAL_ONLY,
        ]
    )
    windowed = rng.random() < 0.4
    window = rng.choice(windows) if windowed else (True,) * 168
    return SchedulePolicy(
        type=kind,
        daily_type=rng.choice(list(DailyType)),
        daily_time=time_of_day(rng.randrange(24), rng.choice([0, 15, 30, 45])),
        periodically_every=rng.choice(list(Period)),
        backup_window_enabled=windowed and any(window),
        backup_window=window,
        minute_offset=rng.choice([0, 60, -300, 330]),
    )


def bench_maths(policies: list[SchedulePolicy], rng: random.Random) -> float:
    instants = [
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525_600))
        for _ in range(len(policies))
    ]
    started = time.perf_counter()
    for policy, instant in zip(policies, instants, strict=True):
        next_run(policy, instant, BERLIN)
    return len(policies) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    rng = random.Random(20261122)
    windows = window_pool(rng)
    policies = [random_policy(rng, windows) for _ in range(args.jobs)]
    rates = [bench_maths(policies, rng) for _ in range(3)]

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("KEEPSTONE_ADMIN_PASSWORD", "benchmark-password")
        ctx = open_context(Path(tmp) / "data", SystemClock(), BERLIN)
        bootstrap(ctx, Path(tmp) / "data")
        source = Path(tmp) / "org"  # beside the data directory: an organization may not hold it
        source.mkdir()
        org = catalog.create_organization(
            ctx, catalog.OrganizationEdit(name="bench", type="Local", local_path=str(source))
        )
        repo = catalog.list_repositories(ctx)[0]
        now = ctx.clock.now()
        future = now + timedelta(days=1)
        rows = [
            {
                "id": str(uuid.uuid4()),
                "organization_id": org.id,
                "name": f"job {n}",
                "description": "",
                "backup_type": "EntireOrganization",
                "selected_items": [],
                "excluded_items": [],
                "schedule_policy": policy_to_record(policy),
                "schedule_type": policy.type.value,
                "repository_id": repo.id,
                "proxy_id": repo.proxy_id,
                "is_enabled": True,
                "last_run": None,
                "last_backup": None,
                "last_status": None,
                "next_run": next_run(policy, future, BERLIN),
                "version": 1,
            }
            for n, policy in enumerate(policies)
        ]
        with ctx.db.write() as s:
            s.execute(insert(Job), rows)
        scheduler = Scheduler(ctx)
        ticks = []
        for _ in range(50):
            started = time.perf_counter()
            dispatch = scheduler.tick()
            ticks.append((time.perf_counter() - started) * 1000)
            assert dispatch.started == 0

        due_ids = [row["id"] for row in rows[: args.due]]
        due_at = ctx.clock.now().replace(microsecond=0) + timedelta(seconds=2)
        with ctx.db.write() as s:
            s.execute(
                update(Job)
                .where(Job.id.in_(due_ids))
                .values(
                    next_run=due_at,
                    schedule_policy=policy_to_record(
                        SchedulePolicy(
                            type=ScheduleType.PERIODICALLY, periodically_every=Period.HOURS1
                        )
                    ),
                    schedule_type=ScheduleType.PERIODICALLY.value,
                )
            )
        scheduler.start()
        deadline = time.monotonic() + 30
        count = 0
        while count < args.due and time.monotonic() < deadline:
            time.sleep(0.01)
            with ctx.db.read() as s:
                count = s.scalar(select(func.count()).select_from(JobSession)) or 0
        all_seen = ctx.clock.now()
        scheduler.stop()
        with ctx.db.read() as s:
            created = list(s.scalars(select(JobSession.creation_time)))
        ctx.db.dispose()
    first, last = min(created) - due_at, max(created) - due_at
    lag = (all_seen - due_at).total_seconds()
    report = (
        f"`bench/scheduler.py --jobs {args.jobs} --due {args.due}` on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite catalog in a temporary directory, server "
        f"time zone Europe/Berlin; policies drawn at random (daily, periodic, manual; 40 % with a "
        f"backup window drawn from 23 shared ones: nights, weekends, outside office hours and "
        f"20 random; offsets 0, +60, -300, +330).\n\n"
        f"| measure | result | aim |\n|---|---|---|\n"
        f"| `next_run` computations per second (best of 3) | {max(rates):,.0f} | > 100,000 |\n"
        f"| one scheduler tick, {args.jobs:,} jobs, none due (median of 50) | "
        f"{statistics.median(ticks):.1f} ms (p99 {sorted(ticks)[-1]:.1f} ms) | < 50 ms |\n"
        f"| {args.due:,} jobs due at one instant: all queued, as seen by a client | "
        f"{lag:.2f} s after the instant | < 2 s |\n"
        f"| the same, by the sessions' creation times | first +{first.total_seconds():.2f} s, "
        f"last +{last.total_seconds():.2f} s | |\n"
    )
    print(report)
    if args.write:
        write_section(args.write, "Scheduler: 10,000 jobs", report)


if __name__ == "__main__":
    main()
