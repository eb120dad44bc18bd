"""Every benchmark at a small scale in one go, to check in a few minutes that nothing got slow.

    uv run python bench/all.py [--only NAME ...] [--growth] [--logs DIR]

Each benchmark runs as its own process with small settings (a few seconds to a minute each) and
prints its own table; this script then prints one summary: each benchmark's exit status and time.
Nothing is written to docs/benchmarks.md (the full-size runs do that, with ``--write``).

``--growth`` runs the benchmarks that take a ``--scale`` a second time with four times the data
and prints the ratio of the two wall times: about 4 (or less: fixed costs) is linear; a ratio
far above 4 (flagged above 6) means some path grew faster than the data, as a quadratic one does.
The work-counting tests in the suite prove the same per path without timing; this is the check
of the whole.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
GROWTH_FLAG = 6.0  # a 4x-data run this much slower than the 1x run is reported as suspicious


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...]
    scale: float | None = None  # passed as --scale (and 4x it with --growth)


BENCHES = [
    Bench("api", "api.py", ("--seconds", "3", "--starts", "2")),
    Bench("scheduler", "scheduler.py", ("--jobs", "2000", "--due", "200")),
    Bench("listings", "listings.py", ("--small",)),
    # 500 saves in one restore session (2,000 with --growth): per-save cost must not grow.
    Bench("saves", "saves.py", ("--saves", "2000"), scale=0.25),
    Bench("backup", "backup.py", (), scale=0.02),
    Bench("imap", "imap.py", (), scale=0.02),
    Bench("graph", "graph.py", ("--mailboxes", "5"), scale=0.05),
    Bench("scale", "scale.py", ("--jobs", "6", "--seconds", "3"), scale=0.01),
]


@dataclass
class Outcome:
    bench: Bench
    scale: float | None
    code: int
    seconds: float


def run(bench: Bench, scale: float | None, logs: Path) -> Outcome:
    """Run one benchmark to completion, its output both shown and kept in ``logs``."""
    command = [sys.executable, str(BENCH / bench.script), *bench.args]
    if scale is not None:
        command += ["--scale", f"{scale:g}"]
    log = logs / f"{bench.name}{'' if scale is None else f'-{scale:g}'}.log"
    print(f"\n=== {bench.name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
            out.write(line)
        code = process.wait()
    return Outcome(bench, scale, code, time.monotonic() - started)


def summary(outcomes: list[Outcome]) -> str:
    lines = ["| benchmark | scale | exit | seconds | 4x/1x |", "|---|---|---|---|---|"]
    first: dict[str, Outcome] = {}
    for outcome in outcomes:
        name = outcome.bench.name
        ratio = ""
        if name in first and outcome.code == 0 and first[name].code == 0:
            growth = outcome.seconds / max(first[name].seconds, 1e-9)
            ratio = f"{growth:.1f}" + (
                " **grew faster than the data**" if growth > GROWTH_FLAG else ""
            )
        first.setdefault(name, outcome)
        scale = "" if outcome.scale is None else f"{outcome.scale:g}"
        status = "ok" if outcome.code == 0 else f"FAILED ({outcome.code})"
        lines.append(f"| {name} | {scale} | {status} | {outcome.seconds:.1f} | {ratio} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    names = [b.name for b in BENCHES]
    parser.add_argument("--only", nargs="+", choices=names, help="run only these")
    parser.add_argument("--growth", action="store_true", help="also run at 4x scale and compare")
    parser.add_argument("--logs", type=Path, help="keep each benchmark's output here")
    args = parser.parse_args()
    logs = args.logs or Path(f"/tmp/keepstone-bench-all-{int(time.time())}")
    logs.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    for bench in BENCHES:
        if args.only and bench.name not in args.only:
            continue
        outcomes.append(run(bench, bench.scale, logs))
        if args.growth and bench.scale is not None and outcomes[-1].code == 0:
            outcomes.append(run(bench, bench.scale * 4, logs))
    print(f"\n{summary(outcomes)}\n\n(each benchmark's output: {logs})")
    return 0 if all(o.code == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
