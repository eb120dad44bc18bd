"""What the ``keepstone`` commands print is data: names and paths come from organizations and
operators, and nothing in them may drive the terminal or be read as markup."""

from __future__ import annotations

import os

import pytest

from keepstone.cli.common import say


def test_control_characters_never_reach_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    say("name\x1b]0;owned\x07 \x1b[31mred\x9b2J\rback\x08\x7f and\ta tab")
    printed = capsys.readouterr().out
    assert printed == (
        "name\ufffd]0;owned\ufffd \ufffd[31mred\ufffd2J\ufffdback\ufffd\ufffd and\ta tab\n"
    )


def test_markup_and_emoji_codes_are_printed_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    say("[red]not red[/red] :thumbs_up: [link=x]y[/link]")
    assert capsys.readouterr().out == "[red]not red[/red] :thumbs_up: [link=x]y[/link]\n"


def test_a_path_that_is_not_utf8_is_printed_with_a_replacement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    say("data directory " + os.fsdecode(b"/srv/caf\xe9"))
    assert capsys.readouterr().out == "data directory /srv/caf\ufffd\n"


def test_lines_keep_their_line_feeds(capsys: pytest.CaptureFixture[str]) -> None:
    say("one\ntwo")
    assert capsys.readouterr().out == "one\ntwo\n"
