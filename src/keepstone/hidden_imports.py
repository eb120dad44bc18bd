"""Importing a library while one of its optional extras is hidden: a library that imports an
extra when installed (and copes when it is not) then runs without it, for a process that
never uses what the extra adds. Used where the extra is heavy and only decorates output
(``keepstone/__init__.py``: Rich in structlog; ``store/db.py``: Pygments in Mako)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hidden(*names: str) -> Iterator[None]:
    """While inside, ``import name`` raises ImportError for each of ``names`` not already
    imported (``None`` in ``sys.modules`` is Python's own marker for that)."""
    absent = [name for name in names if name not in sys.modules]
    for name in absent:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in absent:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
