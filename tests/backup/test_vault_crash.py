"""A repository's password file is replaced atomically: a process SIGKILLed at any point while
it rewrites the password leaves the old or the new password, never a missing, empty or partial
file (it may be the only copy of the key to an encrypted repository)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from keepstone.server import open_context
from keepstone.services import vault

REPO_ID = "crash-test"
PASSWORD_LENGTH = 300_000  # long enough that a write is not one instant
# Rewrites the password forever, each one distinct and recognisable: 8 digits, then one letter.
CHILD = f"""
import sys
from pathlib import Path
from keepstone.server import open_context
from keepstone.services import vault

ctx = open_context(Path(sys.argv[1]))
print("ready", flush=True)
serial = 0
while True:
    serial += 1
    vault.keep_password(ctx, {REPO_ID!r}, f"{{serial:08d}}" + "AB"[serial % 2] * {PASSWORD_LENGTH})
"""


def kept_password(data_dir: Path) -> str:
    return (data_dir / "secrets" / f"repository-{REPO_ID}").read_text()


def is_whole(password: str) -> bool:
    serial, body = password[:8], password[8:]
    return (
        serial.isdigit()
        and len(body) == PASSWORD_LENGTH
        and body == "AB"[int(serial) % 2] * PASSWORD_LENGTH
    )


def password_file_identity(data_dir: Path) -> int:
    return (data_dir / "secrets" / f"repository-{REPO_ID}").stat().st_ino


def kill_while_writing(data_dir: Path, delay: float) -> None:
    """Kills the child ``delay`` seconds after its first completed rewrite, so that every child
    rewrites at least once however slow a loaded machine makes it, and dies at a random point."""
    before = password_file_identity(data_dir)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while password_file_identity(data_dir) == before:  # replaced: a new file's inode
            assert time.monotonic() < deadline, "the child never rewrote the password"
            assert child.poll() is None, "the child died on its own"
            time.sleep(0.01)
        time.sleep(delay)  # not a wait for a condition: the point at which the child dies
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        child.wait()
        child.stdout.close()


def test_a_password_rewrite_killed_at_random_points_leaves_a_whole_password(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    ctx = open_context(data_dir)  # migrated once, so the children start quickly
    vault.keep_password(ctx, REPO_ID, "00000000" + "A" * PASSWORD_LENGTH)
    ctx.db.dispose()
    rng = random.Random(10)
    seen = set()
    for _ in range(8):
        kill_while_writing(data_dir, rng.uniform(0.05, 0.4))
        password = kept_password(data_dir)
        assert is_whole(password), f"{len(password)} characters: {password[:20]!r}..."
        seen.add(password[:8])
    assert len(seen) > 1  # the children did rewrite it
