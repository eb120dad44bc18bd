"""Structured logs: JSON lines for machines, a readable console form on a terminal."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TextIO

import structlog
from structlog.contextvars import merge_contextvars
from structlog.processors import _json_fallback_handler
from structlog.typing import EventDict, Processor, WrappedLogger

# One encoder for every line: ``json.dumps`` given a ``default`` builds a new encoder per call,
# a few microseconds of every access-log line, and so does ``JSONEncoder.encode`` (its C encoder,
# made per call with a new set of the containers it is in, to refuse a cycle). The C encoder is
# made once, without that set (it is then stateless, so threads share it): a log event holding
# a cycle fails with a RecursionError rather than a ValueError.
_ENCODER = json.JSONEncoder(default=_json_fallback_handler)
_make_c_encoder: Callable[..., Callable[[Any, int], Sequence[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_C_ENCODER = (
    None
    if _make_c_encoder is None
    else _make_c_encoder(
        None,  # no set of containers
        _json_fallback_handler,
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        ": ",
        ", ",
        False,  # keys unsorted
        False,  # keys not skipped
        True,  # NaN allowed
    )
)


def _line(fields: Any) -> str:
    """``fields`` as JSON, as ``json.dumps(fields, default=...)`` writes it."""
    if _C_ENCODER is None:
        return _ENCODER.encode(fields)
    return "".join(_C_ENCODER(fields, 0))


class Lines:
    """Whole lines to one stream (structlog's ``PrintLogger`` did this, a write call per line).

    A line logged on an event loop's thread is written when that loop's turn ends, with the
    other lines of the turn: a server under load answers a dozen requests a turn, each with its
    access-log line, and one write call instead of a dozen is a tenth of a refused request's CPU.
    Lines keep their order; a line logged elsewhere (a worker thread, the CLI) is written at once,
    after any waiting; what waits on a loop that stopped before its turn ended is written by
    the next line logged, or at the process's exit."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._waiting: list[str] = []
        self._flushed_by: asyncio.AbstractEventLoop | None = None  # the loop asked to write them
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        loop = asyncio._get_running_loop()
        with self._lock:
            self._waiting.append(line)
            if loop is None:
                self._write_waiting()
                return
            if self._flushed_by is not None and not self._flushed_by.is_running():
                self._write_waiting()  # that loop stopped: its turn may never end
            elif self._flushed_by is None:
                self._flushed_by = loop
                loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            self._write_waiting()

    def _write_waiting(self) -> None:
        self._flushed_by = None
        if self._waiting:
            text = "\n".join(self._waiting) + "\n"
            self._waiting.clear()
            self.stream.write(text)
            self.stream.flush()


class _LineLogger:
    """structlog's wrapped logger: every level writes the rendered line."""

    def __init__(self, lines: Lines) -> None:
        self.lines = lines

    def msg(self, message: str) -> None:
        self.lines.write(message)

    log = debug = info = warn = warning = fatal = failure = err = error = critical = msg
    exception = msg


class _Configured:
    """What ``configure`` set up when its lines are JSON: ``info_line`` renders them itself."""

    def __init__(self, processors: list[Processor], lines: Lines, level: int) -> None:
        self.processors = list(processors)  # a copy: capture_logs changes the list in place
        self.lines = lines
        self.info = level <= logging.INFO


_json_lines: _Configured | None = None


def configure(level: int = logging.INFO) -> None:
    global _json_lines
    console = sys.stderr.isatty()
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(serializer=_encode)
    )
    processors: list[Processor] = [
        merge_contextvars,
        structlog.processors.add_log_level,
        utc_timestamp,
        structlog.processors.format_exc_info,
        renderer,
    ]
    lines = Lines(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_args: _LineLogger(lines),
        cache_logger_on_first_use=True,
    )
    _json_lines = None if console else _Configured(processors, lines, level)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def info_line(logger: Any, event: str, fields: dict[str, Any]) -> None:
    """``logger.info(event, **fields)`` (``fields`` is consumed), the same line, rendered here
    when ``configure`` set up JSON lines and they are still in place: the access log writes one
    line a request, and structlog's bound logger, its event copies and its processor calls were
    a third of a refused request's CPU. Anything else (a console, a test capturing logs, another
    configuration) goes through structlog."""
    configured = _json_lines
    if configured is None or structlog.get_config()["processors"] != configured.processors:
        logger.info(event, **fields)
        return
    if not configured.info:
        return
    # the processors' work, in their order: context, level, time, and no exception to format
    fields["event"] = event
    merge_contextvars(None, "info", fields)
    fields["level"] = "info"
    utc_timestamp(None, "info", fields)
    configured.lines.write(_line(fields))


def request_line(
    logger: Any, method: str, path: str, status: int, ms: float, user: str | None
) -> None:
    """The access log's line: ``info_line(logger, "request", fields)`` of the request's fields
    (``user`` left out when empty), the same text. While ``configure``'s JSON lines are in
    place and the request's bound context is its request id alone (as ``api.edge`` binds it),
    the line is made from one template (``_request_text``) rather than a dict of its fields
    walked by the encoder: about 1 us of every request less (docs/benchmarks.md)."""
    configured = _json_lines
    if (
        configured is not None
        and configured.info
        and structlog.get_config()["processors"] == configured.processors
        and type(status) is int  # what the template writes as the encoder does
        and type(ms) is float
        and math.isfinite(ms)
        and (not user or type(user) is str)
    ):
        bound = merge_contextvars(None, "info", {})
        request_id = bound.get("request_id")
        if len(bound) == 1 and isinstance(request_id, str):
            text = _request_text(method, path, status, ms, user, request_id, _utc_now())
            configured.lines.write(text)
            return
    fields: dict[str, Any] = {"method": method, "path": path, "status": status, "ms": ms}
    if user:
        fields["user"] = user
    info_line(logger, "request", fields)


def _request_text(
    method: str, path: str, status: int, ms: float, user: str | None, request_id: str, at: str
) -> str:
    """``_line`` of a request's fields in ``info_line``'s order (its own, the event, the bound
    request id, the level, the time), as the encoder writes each value."""
    who = f", {_STRING('user')}: {_STRING(user)}" if user else ""
    return (
        f'{{"method": {_STRING(method)}, "path": {_STRING(path)}, "status": {status}, '
        f'"ms": {float.__repr__(ms)}{who}, "event": "request", '
        f'"request_id": {_STRING(request_id)}, "level": "info", "timestamp": "{at}"}}'
    )


_STRING = json.encoder.encode_basestring_ascii  # the encoder's, for every text


def _encode(event_dict: EventDict, **_options: Any) -> str:
    return _line(event_dict)


def utc_timestamp(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """``timestamp``: ISO 8601 UTC with microseconds, ``2026-12-04T16:10:18.032007Z``, as
    structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it (which drops a zero fraction),
    from one clock read and the second's text made once (a request's line is made each time)."""
    event_dict["timestamp"] = _utc_now()
    return event_dict


def _utc_now() -> str:
    now = time.time()
    second = int(now)
    micros = int((now - second) * 1_000_000)
    fraction = f".{micros:06d}" if micros else ""
    return f"{_utc_second(second)}{fraction}Z"


@lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
