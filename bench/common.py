"""Helpers shared by the benchmarks: writing a section of docs/benchmarks.md, stopping a server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def write_section(path: Path, title: str, text: str) -> None:
    """Replace (or append) the ``## title`` section of a Markdown file."""
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{text.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(existing):
        updated = pattern.sub(lambda _: section + "\n", existing)
    else:
        updated = existing.rstrip() + "\n\n" + section
    path.write_text(updated.rstrip() + "\n")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 30 s."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
