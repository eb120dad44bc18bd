"""`keepstone serve --graph-url/--login-url` reach the server's context, https only."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import keepstone.cli.main as main  # the module (the package also has a function `main`)
from keepstone.server import ServeOptions, open_context
from keepstone.sources.graph.settings import GraphEndpoints


def _served(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> tuple[int, list[ServeOptions], str]:
    seen: list[ServeOptions] = []
    monkeypatch.setattr(main, "serve", lambda options, say: seen.append(options))
    # serve configures logging onto the runner's stderr, closed once it returns: later tests
    # would log into a closed file
    monkeypatch.setattr(main.logs, "configure", lambda: None)
    result = CliRunner().invoke(main.app, ["serve", *args])
    return result.exit_code, seen, result.output


def test_the_options_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KEEPSTONE_GRAPH_URL", "https://graph.env.test")
    monkeypatch.setenv("KEEPSTONE_LOGIN_URL", "https://login.env.test")
    code, seen, _ = _served(
        monkeypatch, ["--data-dir", str(tmp_path), "--graph-url", "https://graph.opt.test/"]
    )
    assert code == 0
    assert seen[0].graph == GraphEndpoints("https://graph.opt.test", "https://login.env.test")


def test_the_defaults_are_microsoft(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KEEPSTONE_GRAPH_URL", raising=False)
    monkeypatch.delenv("KEEPSTONE_LOGIN_URL", raising=False)
    code, seen, _ = _served(monkeypatch, ["--data-dir", str(tmp_path)])
    assert code == 0
    assert seen[0].graph == GraphEndpoints(
        "https://graph.microsoft.com", "https://login.microsoftonline.com"
    )


def test_plain_http_is_refused_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, seen, output = _served(
        monkeypatch, ["--data-dir", str(tmp_path), "--login-url", "http://login.test"]
    )
    assert code == 2 and seen == []
    assert "--login-url must be an https URL" in output


def test_the_context_carries_the_endpoints(tmp_path: Path) -> None:
    endpoints = GraphEndpoints("https://graph.ctx.test", "https://login.ctx.test")
    ctx = open_context(tmp_path / "data", graph=endpoints)
    try:
        assert ctx.graph == endpoints
    finally:
        ctx.db.dispose()
