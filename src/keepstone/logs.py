"""Structured logs: JSON lines for machines, a readable console form on a terminal."""

from __future__ import annotations

import json
import logging
import sys
import time
from functools import lru_cache
from typing import Any

import structlog
from structlog.processors import _json_fallback_handler
from structlog.typing import EventDict, WrappedLogger

# One encoder for every line: ``json.dumps`` given a ``default`` builds a new encoder per call,
# a few microseconds of every access-log line.
_ENCODER = json.JSONEncoder(default=_json_fallback_handler)


def configure(level: int = logging.INFO) -> None:
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer(serializer=_encode)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            utc_timestamp,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def _encode(event_dict: EventDict, **_options: Any) -> str:
    return _ENCODER.encode(event_dict)


def utc_timestamp(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """``timestamp``: ISO 8601 UTC with microseconds, ``2026-12-04T16:10:18.032007Z``, as
    structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it (which drops a zero fraction),
    from one clock read and the second's text made once (a request's line is made each time)."""
    now = time.time()
    second = int(now)
    micros = int((now - second) * 1_000_000)
    fraction = f".{micros:06d}" if micros else ""
    event_dict["timestamp"] = f"{_utc_second(second)}{fraction}Z"
    return event_dict


@lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
