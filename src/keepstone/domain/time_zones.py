"""IANA time zones named by users: found, or refused with a message that quotes the name."""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

QUOTED = 40  # characters of a refused name a message shows


class UnknownTimeZone(ValueError):
    """``name`` is no time zone this machine's database holds."""


def time_zone(name: str) -> tzinfo:
    """The zone called ``name``. ``ZoneInfo`` refuses a name in three ways, all the same to a
    user: not in the database (``ZoneInfoNotFoundError``), not a plain key (a path, a NUL, a
    lone surrogate: ``ValueError``), longer than a file name may be (``OSError``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimeZone(
            f"unknown time zone '{_quoted(name)}' (use an IANA name such as Europe/Berlin)"
        ) from None


def _quoted(name: str) -> str:
    shown = name if len(name) <= QUOTED else f"{name[:QUOTED]}..."
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")
