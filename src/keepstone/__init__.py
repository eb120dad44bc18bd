"""Keepstone. Importing the package first keeps two libraries' terminal extras out of every
process (a server's start, a backup run's memory): Rich and Pygments, about 120 modules and
0.15 s, which only the CLI's own tables need (tests/test_imports.py)."""

import sys

from keepstone.hidden_imports import hidden

__version__ = "0.1.0"


def _leave_out_terminal_extras() -> None:
    """- structlog's ``dev`` module, which ``import structlog`` always loads, imports Rich (and
      through Rich's tracebacks, Pygments) when it is installed, only to choose the default
      exception formatter of its console renderer. Keepstone never renders a traceback with it
      (``logs.py`` formats exceptions before any renderer, without locals), so structlog is
      imported here with Rich hidden: its default becomes its plain traceback, which prints no
      frame's locals either. Rich is imported later by the CLI as before.
    - ``import httpx`` loads httpx's command-line client (``httpx._main``: Rich, Pygments and
      click) to offer ``httpx.main``, which Keepstone never calls; it is marked absent, and httpx
      then offers a ``main`` that says the CLI is not installed."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if "structlog" not in sys.modules:
        with hidden("rich"):
            import structlog  # noqa: F401


_leave_out_terminal_extras()
