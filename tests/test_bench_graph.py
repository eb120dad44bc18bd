"""Smoke test of the Microsoft 365 benchmark: a tiny configuration run whole (the fake with the
time-scaled limits, a real `keepstone serve`, both tenants, every measure) and its options. The
benchmark itself is run by hand: ``uv run python bench/graph.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import graph  # noqa: E402


def test_a_tiny_configuration_runs_every_measure(tmp_path: Path) -> None:
    config = graph.Config(scale=0.01, k=60, mailboxes=2)
    run = graph.run_all(config, tmp_path, lambda _: None)
    names = [m.name for m in run.measures]
    assert names == [
        "mail backup, one mailbox",
        "requests per message",
        "mail MB/s, one mailbox",
        "restore, one mailbox (restoreTo)",
        "OneDrive backup",
        "mail backup, 2 mailboxes",
        "no-change incremental",
    ]
    assert all(m.value > 0 for m in run.measures)
    restore = next(m for m in run.measures if m.name.startswith("restore"))
    assert restore.note.startswith(f"{config.big} of {config.big} messages")
    unchanged = run.measures[-1]
    assert unchanged.value <= int(unchanged.note.split("= ")[1].split(" ")[0])  # at most F + 2
    assert run.throttled["Outlook premature requests"] == 0
    assert run.throttled["OneDrive premature requests"] == 0
    text = graph.report(run, "bench/graph.py --scale 0.01 --mailboxes 2")
    assert "| mail backup, one mailbox |" in text and "k = 60" in text


def test_options() -> None:
    assert graph.parse_args(["--small"]).scale == 0.1
    assert graph.parse_args([]).k == 60
    assert graph.parse_args(["--k", "10", "--mailboxes", "5"]).mailboxes == 5
    with pytest.raises(SystemExit):
        graph.parse_args(["--k", "0"])
    with pytest.raises(SystemExit):
        graph.parse_args(["--small", "--scale", "2"])


def test_limits_scale_with_k() -> None:
    config = graph.Config(scale=1.0, k=60)
    assert (config.big, config.files, config.each) == (1000, 600, 100)
    assert graph.Config(scale=0.001).big == 5  # never empty
