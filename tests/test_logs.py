"""Logs never carry a frame's local variables: a local may hold a secret."""

from __future__ import annotations

import io
from typing import Any

import pytest
import structlog

from keepstone import logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _log_a_failure_holding_a_secret() -> None:
    password = "hunter2-never-logged"  # noqa: F841 - the local a rich traceback would print
    try:
        raise RuntimeError("the failure")
    except RuntimeError:
        structlog.get_logger().exception("request failed")


@pytest.mark.parametrize("tty", [True, False], ids=["console", "json"])
def test_a_logged_exception_shows_its_traceback_but_no_locals(
    tty: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr: Any = Terminal() if tty else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    saved = structlog.get_config()
    try:
        logs.configure()
        _log_a_failure_holding_a_secret()
    finally:
        structlog.configure(**saved)
    output = stderr.getvalue()
    assert "RuntimeError" in output and "the failure" in output
    assert "_log_a_failure_holding_a_secret" in output  # the traceback is there
    assert "hunter2" not in output
