"""Organization and repository paths may not overlap the data directory or a repository (nor a
repository an organization): such a path is refused with a 400 naming it, after links and ``..``
are resolved, and nothing is created or changed. The CLI's ``repo attach`` keeps the same rule."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.process_helpers import process_env, run_cli

PathMaker = Callable[[Path, Path], Path]  # (tmp_path, data_dir) -> the path to try


def inside_data_dir(tmp: Path, data: Path) -> Path:
    return data / "secrets"


def the_data_dir(tmp: Path, data: Path) -> Path:
    return data


def containing_the_data_dir(tmp: Path, data: Path) -> Path:
    return tmp


def inside_the_default_repository(tmp: Path, data: Path) -> Path:
    return data / "repository" / "nested"


def through_a_link_to_the_data_dir(tmp: Path, data: Path) -> Path:
    link = tmp / "innocent-looking"
    link.symlink_to(data)
    return link / "secrets"


def through_dot_dot(tmp: Path, data: Path) -> Path:
    (tmp / "elsewhere").mkdir(exist_ok=True)
    return tmp / "elsewhere" / ".." / data.name / "more"


OVERLAPPING = [
    inside_data_dir,
    the_data_dir,
    containing_the_data_dir,
    inside_the_default_repository,
    through_a_link_to_the_data_dir,
    through_dot_dot,
]


def refused(response: Any, path: Path, prop: str) -> bool:
    message = response.json()["message"]
    named = os.path.normpath(path)  # the path as it would be stored
    return response.status_code == 400 and named in message and prop in message


@pytest.mark.parametrize("make", OVERLAPPING)
def test_a_repository_overlapping_the_data_dir_or_a_repository_is_refused(
    api: Api, tmp_path: Path, data_dir: Path, make: PathMaker
) -> None:
    path = make(tmp_path, data_dir)
    response = api.post("/v2/BackupRepositories", {"name": "sneaky", "path": str(path)})
    assert refused(response, path, "path"), response.text
    assert "overlaps" in response.json()["message"]
    assert len(api.get("/v2/BackupRepositories").json()) == 1


@pytest.mark.parametrize("make", OVERLAPPING)
def test_an_organization_overlapping_the_data_dir_or_a_repository_is_refused(
    api: Api, tmp_path: Path, data_dir: Path, make: PathMaker
) -> None:
    path = make(tmp_path, data_dir)
    path.mkdir(parents=True, exist_ok=True)
    body = {"type": "Local", "name": "sneaky", "localSettings": {"path": str(path)}}
    response = api.post("/v2/Organizations", body)
    assert refused(response, path, "localSettings.path"), response.text
    assert api.get("/v2/Organizations").json() == []


def test_an_organization_cannot_be_moved_onto_the_data_dir(
    api: Api, org: dict[str, Any], data_dir: Path
) -> None:
    response = api.put(
        f"/v2/Organizations/{org['id']}",
        {"type": "Local", "name": org["name"], "localSettings": {"path": str(data_dir)}},
    )
    assert refused(response, data_dir, "localSettings.path"), response.text
    after = api.get(f"/v2/Organizations/{org['id']}").json()
    assert after["localSettings"] == org["localSettings"]


def test_a_repository_and_an_organization_may_not_contain_each_other(
    api: Api, org: dict[str, Any], org_dir: Path, tmp_path: Path
) -> None:
    around_org = api.post("/v2/BackupRepositories", {"name": "around", "path": str(org_dir.parent)})
    assert refused(around_org, org_dir.parent, "path"), around_org.text
    in_org = api.post("/v2/BackupRepositories", {"name": "in", "path": str(org_dir / "alice")})
    assert refused(in_org, org_dir / "alice", "path"), in_org.text

    elsewhere = tmp_path / "repositories" / "second"
    created = api.post("/v2/BackupRepositories", {"name": "second", "path": str(elsewhere)})
    assert created.status_code == 200, created.text
    body = {"type": "Local", "name": "over", "localSettings": {"path": str(elsewhere.parent)}}
    around_repo = api.post("/v2/Organizations", body)
    assert refused(around_repo, elsewhere.parent, "localSettings.path"), around_repo.text
    assert "repository 'second'" in around_repo.json()["message"]


def test_a_sibling_whose_name_starts_like_the_data_dir_is_accepted(
    api: Api, data_dir: Path
) -> None:
    sibling = data_dir.with_name(data_dir.name + "-repositories")
    response = api.post("/v2/BackupRepositories", {"name": "beside", "path": str(sibling)})
    assert response.status_code == 200, response.text


def test_repo_attach_refuses_a_path_inside_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = process_env(KEEPSTONE_ADMIN_PASSWORD="attach test password")
    target = data_dir / "secrets"
    result = run_cli("repo", "attach", str(target), "--data-dir", str(data_dir), env=env)
    assert result.returncode != 0
    assert str(target) in result.stdout + result.stderr, result.stdout + result.stderr
    with sqlite3.connect(data_dir / "keepstone.db") as db:
        assert db.execute("SELECT count(*) FROM repositories").fetchone() == (0,)
