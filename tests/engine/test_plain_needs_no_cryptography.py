"""A process that backs up into and restores from an unencrypted repository never imports
cryptography: its library is about 8 MB resident, a fifteenth of the bench's initial backup's
peak (issue 15 item 4, docs/benchmarks.md). An encrypted repository imports it when it is made
or opened (tests/engine/test_roundtrip.py runs both)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_unencrypted_repository_is_written_and_read_without_cryptography(
    tmp_path: Path,
) -> None:
    program = textwrap.dedent(
        f"""
        import sys
        sys.modules["cryptography"] = None  # importing it, or any part of it, now fails
        import keepstone.proxy.backup, keepstone.proxy.worker, keepstone.services.restores
        from pathlib import Path
        from keepstone.engine import LocalStore, Repository
        from tests.engine.helpers import backup, new_repo, pseudo_random, restore
        files = {{"alice/random": pseudo_random("r", 300_000), "bob/one": b"x"}}
        snapshot = backup(new_repo(Path({str(tmp_path)!r}), None), files)
        reopened = Repository.open(LocalStore(Path({str(tmp_path)!r})), None)
        assert restore(reopened, snapshot) == files and reopened.verify().ok
        print("restored")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "restored"
