"""docs/compatibility.md's table of every Enterprise Manager resource is what the generator makes
of the resource list and the app's EM routes."""

from __future__ import annotations

import pytest

from tests.contract import em_compat_table
from tests.contract.compat_table import DOC, UnexplainedPath, committed_region
from tests.contract.em_compat_table import (
    COMMAND,
    EM_REGION,
    EMPTY,
    NOT_SERVED,
    SERVED,
    app_operations,
    render,
    resources,
    rows,
    template_key,
)


def test_the_committed_em_table_is_up_to_date() -> None:
    committed = committed_region(DOC.read_text(encoding="utf-8"), EM_REGION)
    assert committed is not None, f"{DOC} has no generated EM region; run `{COMMAND}`"
    assert committed == render(app_operations()), (
        f"the table of EM resources in {DOC.name} is out of date; run `{COMMAND}`"
    )


def test_every_resource_has_a_status_and_the_unserved_a_reason() -> None:
    table = rows(app_operations())  # raises UnexplainedPath otherwise
    assert len(table) == len(resources()) > 150
    for row in table:
        assert row.status in (SERVED, EMPTY, NOT_SERVED)
        if row.status != SERVED:
            assert row.note, row.resource.path


def test_a_resource_that_stops_being_served_needs_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = app_operations()
    assert "GET" in served["/jobs"]
    # /jobs has no reason: a Keepstone that stopped serving it could not explain why.
    without_jobs = {key: methods for key, methods in served.items() if key != "/jobs"}
    with pytest.raises(UnexplainedPath, match="/jobs is not served"):
        rows(without_jobs)
    monkeypatch.setattr(em_compat_table, "REASONS", [])
    with pytest.raises(UnexplainedPath, match="no entry of REASONS"):
        rows({})


def test_an_answering_collection_of_objects_keepstone_never_has_is_empty() -> None:
    served = app_operations() | {"/nas/jobs": {"GET"}, "/jobs": {"GET"}}
    by_path = {row.resource.path: row for row in rows(served)}
    assert by_path["/nas/jobs"].status == EMPTY
    assert "NAS" in by_path["/nas/jobs"].note
    assert by_path["/jobs"].status == SERVED
    assert by_path["/jobs"].served_methods == ("GET",)


def test_templates_compare_whatever_their_parameter_names() -> None:
    assert template_key("/catalog/vms/{vmname}/vmRestorePoints/{ID}/guestfs/") == (
        "/catalog/vms/{id}/vmrestorepoints/{id}/guestfs"
    )
    assert template_key("/jobs/{job_id}") == template_key("/jobs/{ID}")
    assert template_key("/") == "/"


def test_every_em_route_is_a_resource_of_the_vendors_reference() -> None:
    # A route outside the list would be a path Keepstone invented, or a gap in the list.
    documented = {template_key(resource.path) for resource in resources()}
    assert sorted(set(app_operations()) - documented) == []


def test_the_resource_list_names_each_resource_once_with_known_methods() -> None:
    keys = [template_key(resource.path) for resource in resources()]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []
    for resource in resources():
        assert resource.path.startswith("/") and resource.methods, resource
        assert set(resource.methods) <= {"GET", "POST", "PUT", "DELETE"}, resource
        assert resource.source in ("page", "rule"), resource
