"""docs/compatibility.md's table of every vendor path is what the generator makes of the code."""

from __future__ import annotations

import pytest

from tests.contract import compat_table
from tests.contract.compat_table import (
    BEGIN,
    COMMAND,
    DOC,
    END,
    SECTION_TITLE,
    UnexplainedPath,
    committed_region,
    render,
    rewrite,
    rows,
)
from tests.contract.served import implemented_by_version


def test_the_committed_table_is_up_to_date() -> None:
    committed = committed_region(DOC.read_text(encoding="utf-8"))
    assert committed is not None, f"{DOC} has no generated region; run `{COMMAND}`"
    assert committed == render(implemented_by_version()), (
        f"the table of vendor paths in {DOC.name} is out of date; run `{COMMAND}`"
    )


def test_every_path_that_is_not_served_has_a_reason() -> None:
    table = rows(implemented_by_version())  # raises UnexplainedPath otherwise
    assert table, "no rows: are the specs in reference/vb365-openapi?"
    for row in table:
        if any(cell == "n/a" or cell.startswith("partly") for cell in row.cells.values()):
            assert row.note, row.path


def test_a_path_without_a_reason_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # An operation that stops being served needs a reason as much as one never served.
    implemented = dict(implemented_by_version())
    implemented[8] = implemented[8] - {("GET", "/v8/Jobs")}
    with pytest.raises(UnexplainedPath, match="/Jobs is not served"):
        rows(implemented)
    monkeypatch.setattr(compat_table, "REASONS", [])
    with pytest.raises(UnexplainedPath, match="no entry of REASONS"):
        rows({6: frozenset(), 7: frozenset(), 8: frozenset()})


def test_the_first_matching_reason_wins() -> None:
    assert compat_table.reason_for("/CopyJobs/{id}/start").startswith("Keepstone has no backup")
    assert "PST" in compat_table.reason_for(
        "/RestoreSessions/{restoreSessionId}/organization/mailboxes/{mailboxId}/exportToPst"
    )


def test_the_region_is_replaced_or_appended() -> None:
    document = f"# Compatibility\n\ntext\n\n{BEGIN}\nold\n{END}\n\n## After\n"
    assert (
        rewrite(document, "new") == f"# Compatibility\n\ntext\n\n{BEGIN}\nnew\n{END}\n\n## After\n"
    )
    appended = rewrite("# Compatibility\n\ntext\n", "new")
    assert appended == f"# Compatibility\n\ntext\n\n{SECTION_TITLE}\n\n{BEGIN}\nnew\n{END}\n"
    assert committed_region(appended) == "new"
