"""Path maths for the places the server keeps data: which two directories overlap. No I/O: the
callers resolve symbolic links and ``..`` first, so two spellings of one place compare equal."""

from __future__ import annotations

from pathlib import PurePosixPath


def overlaps(first: str, second: str) -> bool:
    """Whether two absolute, resolved directories are the same, or one lies inside the other."""
    a, b = PurePosixPath(first), PurePosixPath(second)
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def first_overlap(path: str, places: dict[str, str]) -> str | None:
    """The description of the first of ``places`` (description -> resolved directory) that
    ``path`` overlaps, or ``None``."""
    return next((what for what, place in places.items() if overlaps(path, place)), None)
