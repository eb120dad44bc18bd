"""The ``keepstone`` command line."""

from __future__ import annotations

import gc
import os

# pydantic looks for plugins in the entry points of every installed distribution when it
# builds its first model (14 ms of CPU with the 166 distributions of a development install, at
# every command's start). Keepstone uses none; an operator who wants one (an observability
# plugin) sets the variable to "" to load them all, or to the names to leave out.
PYDANTIC_PLUGINS = ("PYDANTIC_DISABLE_PLUGINS", "__all__")


def main() -> None:
    """The ``keepstone`` command: its modules (the CLI, the server, SQLAlchemy's tables) are
    imported with the garbage collector paused. Importing makes a few hundred thousand
    long-lived objects and no garbage, and the 220 collections they set off walked them again
    and again: a sixth of the imports' time (docs/benchmarks.md, the start). Nothing of
    ``keepstone`` is imported before the pause (``engine.heap`` would import the engine)."""
    os.environ.setdefault(*PYDANTIC_PLUGINS)
    enabled = gc.isenabled()
    gc.disable()
    try:
        from keepstone.cli.main import app
    finally:
        if enabled:
            gc.enable()
    app()
