"""Logs never carry a frame's local variables: a local may hold a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_an_info_line_is_the_line_structlog_writes(
    level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    saved = structlog.get_config()
    logger = structlog.get_logger("keepstone.test")
    bound = structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        logs.configure(level)
        fields = {"method": "GET", "path": "/v2/Jobs", "status": 401, "ms": 0.25}
        logger.info("request", **fields)
        logs.info_line(logger, "request", dict(fields))
    finally:
        structlog.contextvars.reset_contextvars(**bound)
        structlog.configure(**saved)
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    if level > logging.INFO:
        assert lines == []
        return
    by_structlog, by_hand = lines
    assert list(by_hand) == list(by_structlog)  # the same keys, in the same order
    assert by_hand.pop("timestamp").endswith("Z") and by_structlog.pop("timestamp").endswith("Z")
    assert (
        by_hand
        == by_structlog
        == {
            "method": "GET",
            "path": "/v2/Jobs",
            "status": 401,
            "ms": 0.25,
            "event": "request",
            "request_id": "r-1",
            "level": "info",
        }
    )


def test_an_info_line_is_seen_by_a_test_capturing_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    saved = structlog.get_config()
    try:
        logs.configure()
        with structlog.testing.capture_logs() as captured:
            logs.info_line(structlog.get_logger(), "request", {"status": 200})
    finally:
        structlog.configure(**saved)
    assert captured == [{"status": 200, "event": "request", "log_level": "info"}]


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_the_lines_of_a_loop_turn_are_written_together_in_order() -> None:
    stream = Recording()
    lines = logs.Lines(stream)

    async def serve() -> None:
        for n in range(12):  # a dozen requests' lines in one turn
            lines.write(f"line {n}")
        assert stream.writes == []
        await asyncio.sleep(0)  # the turn ends
        assert stream.writes == ["".join(f"line {n}\n" for n in range(12))]
        lines.write("after")
        await asyncio.sleep(0)

    asyncio.run(serve())
    lines.write("no loop")  # a worker thread's, the CLI's: at once
    assert stream.writes[1:] == ["after\n", "no loop\n"]


def test_a_line_of_a_loop_stopped_before_its_turn_ended_is_not_lost() -> None:
    stream = Recording()
    lines = logs.Lines(stream)
    loop = asyncio.new_event_loop()

    async def stop_midway() -> None:
        lines.write("last words")
        loop.stop()  # this turn is the loop's last
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError):
        loop.run_until_complete(stop_midway())
    assert stream.getvalue() == ""

    async def elsewhere() -> None:  # another loop's line: the stopped one's are written first
        lines.write("next")

    asyncio.run(elsewhere())
    loop.close()
    assert stream.getvalue() == "last words\nnext\n"


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque ünïcode>"


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "request", "status": 401, "ms": 0.12, "path": "/v2/Jobs"},
        {"name": 'naïve \u2028 "quoted" \\ \x00 \ud800', "nested": {"a": [1, 2.5, None, True]}},
        {"nan": float("nan"), "inf": float("-inf"), "big": 10**30, "flag": False},
        {"object": _Opaque(), "bytes": b"\xff", "empty": {}, "list": []},
        "a plain string",
    ],
)
def test_a_line_is_what_json_dumps_writes(fields: Any) -> None:
    """The line encoder made once is the encoder ``json.dumps`` makes per call."""
    default = structlog.processors._json_fallback_handler
    assert logs._line(fields) == json.dumps(fields, default=default)


@given(
    method=st.text(max_size=8),
    path=st.text(max_size=40),
    status=st.integers(min_value=100, max_value=599),
    ms=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    user=st.one_of(st.none(), st.text(max_size=12)),
    request_id=st.text(max_size=34),
)
def test_a_request_s_line_from_its_template_is_the_encoder_s(
    method: str, path: str, status: int, ms: float, user: str | None, request_id: str
) -> None:
    at = "2026-12-05T20:18:54.767218Z"
    fields: dict[str, Any] = {"method": method, "path": path, "status": status, "ms": ms}
    if user:
        fields["user"] = user
    fields |= {"event": "request", "request_id": request_id, "level": "info", "timestamp": at}
    made = logs._request_text(method, path, status, ms, user, request_id, at)
    assert made == logs._line(fields)


@pytest.mark.parametrize("more", [{}, {"job_id": "j-1"}], ids=["request id", "more bound"])
def test_a_request_s_line_is_info_line_s(
    more: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``request_line`` writes what ``info_line`` writes for the same request, from its template
    while the request id is all that is bound, else through ``info_line``."""
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    saved = structlog.get_config()
    logger = structlog.get_logger("keepstone.test")
    bound = structlog.contextvars.bind_contextvars(request_id='r-\u00e9"1', **more)
    try:
        logs.configure()
        for user in ("admin", None, ""):
            fields: dict[str, Any] = {"method": "PUT", "path": "/v2/Jobs/\u00e9", "status": 204}
            fields["ms"] = 0.3
            if user:
                fields["user"] = user
            logs.info_line(logger, "request", fields)
            logs.request_line(logger, "PUT", "/v2/Jobs/\u00e9", 204, 0.3, user)
    finally:
        structlog.contextvars.reset_contextvars(**bound)
        structlog.configure(**saved)
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert len(lines) == 6
    for by_info_line, by_template in zip(lines[::2], lines[1::2], strict=True):
        assert by_info_line.pop("timestamp").endswith("Z")
        assert by_template.pop("timestamp").endswith("Z")
        assert list(by_template.items()) == list(by_info_line.items())
        assert by_template["request_id"] == 'r-\u00e9"1' and by_template.get("job_id") == (
            more.get("job_id")
        )
