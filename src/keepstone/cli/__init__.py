"""The ``keepstone`` command line."""

from __future__ import annotations

import gc


def main() -> None:
    """The ``keepstone`` command: its modules (the CLI, the server, SQLAlchemy's tables) are
    imported with the garbage collector paused. Importing makes a few hundred thousand
    long-lived objects and no garbage, and the 220 collections they set off walked them again
    and again: a sixth of the imports' time (docs/benchmarks.md, the start). Nothing of
    ``keepstone`` is imported before the pause (``engine.heap`` would import the engine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        from keepstone.cli.main import app
    finally:
        if enabled:
            gc.enable()
    app()
