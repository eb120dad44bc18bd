"""How busy the proxy's host is: CPU and memory use in percent, as the v8 proxy reports them.

CPU use is the share of non-idle time between two readings of ``/proc/stat`` (one reading says
nothing: the counters count since boot). The proxy takes a reading at every heartbeat, so the
figure covers the last second or so; a read between heartbeats measures from the last reading.
Memory use is ``1 - MemAvailable / MemTotal`` from ``/proc/meminfo`` at the time of the read.
Where ``/proc`` is missing (not Linux) the figures are unknown (``None``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
IDLE_FIELDS = (3, 4)  # idle, iowait: the columns of the "cpu" line that are not busy time


@dataclass(frozen=True)
class Load:
    cpu_percent: float | None
    memory_percent: float | None


@dataclass(frozen=True)
class CpuTimes:
    busy: int
    total: int


def cpu_times(proc: Path = PROC) -> CpuTimes | None:
    """The host's CPU counters since boot (the first line of ``/proc/stat``)."""
    try:
        first = (proc / "stat").read_text(encoding="ascii").splitlines()[0]
    except (OSError, IndexError):
        return None
    label, *fields = first.split()
    if label != "cpu":
        return None
    ticks = [int(field) for field in fields[:8]]  # guest time is already counted in user time
    idle = sum(ticks[i] for i in IDLE_FIELDS if i < len(ticks))
    return CpuTimes(busy=sum(ticks) - idle, total=sum(ticks))


def memory_percent(proc: Path = PROC) -> float | None:
    """The share of the host's memory in use: what is not available to new programs."""
    try:
        lines = (proc / "meminfo").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    kilobytes: dict[str, int] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        kilobytes[name] = int(rest.split()[0]) if rest.split() else 0
    total, available = kilobytes.get("MemTotal", 0), kilobytes.get("MemAvailable")
    if total <= 0 or available is None:
        return None
    return round(100.0 * (total - available) / total, 1)


class LoadMonitor:
    """CPU use between successive readings, and memory use now; safe across threads."""

    def __init__(self, proc: Path = PROC) -> None:
        self._proc = proc
        self._lock = threading.Lock()
        self._last = cpu_times(proc)
        self._cpu: float | None = None

    def sample(self) -> None:
        """Take a CPU reading; the figure becomes the use since the previous reading."""
        now = cpu_times(self._proc)
        with self._lock:
            before, self._last = self._last, now
            if before is None or now is None or now.total <= before.total:
                return  # no time has passed (or no /proc): keep the last figure
            busy = now.busy - before.busy
            self._cpu = round(100.0 * busy / (now.total - before.total), 1)

    def current(self) -> Load:
        """The latest figures; a read measures CPU since the last reading if none was taken."""
        if self._cpu is None:
            self.sample()
        return Load(self._cpu, memory_percent(self._proc))


HOST = LoadMonitor()  # the host this process runs on, where the built-in proxy works
